"""Ensembles through the library: training every member resumably, then scoring them."""

from __future__ import annotations

import pytest

from digitlab.errors import SpecError
from digitlab.evaluation.scoring import evaluate
from digitlab.nn.model_file import load_model
from digitlab.presets import Ensemble
from digitlab.train.ensemble import member_paths, train_ensemble

TINY = Ensemble("tiny", (("book-ch1", 0), ("book-ch1", 1)), "two quick book-ch1 networks")
QUICK = {"epochs": 1, "train_size": 3000}


def test_members_are_trained_once_then_kept_and_scored_together(mnist, tmp_path) -> None:
    heard: list[str] = []
    paths = train_ensemble(TINY, mnist, tmp_path / "tiny", QUICK, report=heard.append)
    assert paths == member_paths(TINY, tmp_path / "tiny")
    assert [path.name for path in paths] == ["book-ch1-seed0.npz", "book-ch1-seed1.npz"]
    models = [load_model(path) for path in paths]
    assert [model.spec.seed for model in models] == [0, 1]
    assert all(model.spec.epochs == 1 and model.spec.train_size == 3000 for model in models)
    assert not any("already trained" in line for line in heard)

    heard.clear()
    assert train_ensemble(TINY, mnist, tmp_path / "tiny", QUICK, report=heard.append) == paths
    assert sum("already trained" in line for line in heard) == 2

    scores = evaluate(models, mnist.test.head(500))
    assert len(scores.members) == 2 and 0.5 < scores.accuracy <= 1


def test_a_file_is_not_a_folder_for_members(mnist, tmp_path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(SpecError, match="must be a folder"):
        train_ensemble(TINY, mnist, tmp_path / "taken", QUICK)

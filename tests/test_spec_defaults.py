"""A spec never silently ignores what it is told: Adam gets its own learning rate when
none is named, a changed optimizer drops the old one's, and a setting the network
cannot use is warned of."""

from __future__ import annotations

import json
import warnings

import pytest

from digitlab.presets import get, resolve_spec
from digitlab.spec import ADAM_ETA, Spec, make_spec, overridden


def test_adam_without_a_learning_rate_takes_its_own() -> None:
    assert make_spec({"optimizer": "adam"}).eta == ADAM_ETA == Spec(optimizer="adam").eta
    assert make_spec({"optimizer": "adam", "eta": 0.5}).eta == 0.5  # named: kept
    assert make_spec({}).eta == make_spec({"optimizer": "momentum"}).eta == 0.5
    saved = make_spec({"optimizer": "adam", "eta": 0.01}).model_dump()
    assert make_spec(saved).eta == 0.01  # a saved spec keeps the rate it trained with


def test_a_new_optimizer_without_an_eta_starts_from_its_own_default() -> None:
    book = get("book-ch1").spec  # SGD at eta 3.0
    assert book.with_overrides(optimizer="adam").eta == ADAM_ETA
    assert book.with_overrides(optimizer="adam", eta=0.01).eta == 0.01
    assert book.with_overrides(epochs=3).eta == 3.0  # the optimizer kept: so is its rate
    assert get("cnn-best").spec.with_overrides(optimizer="sgd").eta == 0.5
    assert get("book-ch6-fc").spec.with_overrides(optimizer="momentum").eta == 0.1  # kept
    assert resolve_spec("book-ch1", overrides={"optimizer": "adam"}).eta == ADAM_ETA
    assert resolve_spec("cnn-best", overrides={"epochs": 3}).eta == ADAM_ETA
    assert overridden({"eta": 3.0}, {"optimizer": "sgd"}) == {"eta": 3.0, "optimizer": "sgd"}


def test_a_spec_file_that_switches_the_preset_s_optimizer(tmp_path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text('preset = "book-ch3-ce"\noptimizer = "adam"\n')
    assert resolve_spec(spec_file=path).eta == ADAM_ETA
    path.write_text('preset = "book-ch3-ce"\noptimizer = "adam"\neta = 0.002\n')
    assert resolve_spec(spec_file=path).eta == 0.002


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"momentum": 0.5}, "momentum: only optimizer 'momentum' uses it"),
        ({"momentum": 0.5, "optimizer": "adam"}, "with 'adam' 0.5 has no effect"),
        ({"dropout": 0.5, "layers": [784, 10]}, "dropout: it drops hidden dense layers'"),
        ({"dropout": 0.5, "layers": ["conv:8:5", "pool:2", "dense:10"]}, "dropout: "),
        ({"batch_norm": True, "layers": [784, 10]}, "batch_norm: it normalises"),
        ({"patience": 3}, "patience: only the plateau schedule"),
        ({"warmup_epochs": 5, "schedule": "cosine"}, "warmup_epochs: only the warmup-cosine"),
        ({"gamma": 0.1, "schedule": "cosine"}, "gamma: only the step and plateau"),
    ],
)
def test_a_setting_that_does_nothing_is_warned_of(fields, fragment) -> None:
    with pytest.warns(UserWarning, match=fragment):
        make_spec(fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"momentum": 0.5, "optimizer": "momentum"},
        {"dropout": 0.5, "layers": [784, 30, 10]},
        {"batch_norm": True, "layers": ["conv:8:5", "pool:2", "dense:10"]},
        {"batch_norm": True, "layers": [784, 30, 10]},
        {"patience": 3, "schedule": "plateau"},
        {"gamma": 0.1, "step_size": 5, "schedule": "step"},
        get("cnn-best").spec.model_dump(),
        get("book-ch6-dropout").spec.model_dump(),
    ],
)
def test_settings_that_act_are_not_warned_of(fields) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_spec(fields)


def test_the_command_line_shows_a_warning_as_one_line_and_adam_s_rate(run_cli) -> None:
    result = run_cli(
        "train", "--layers", "784,10", "--dropout", "0.5", "--optimizer", "adam",
        "--epochs", "1", "--train-size", "100", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        "warning: dropout: it drops hidden dense layers' outputs and this network has none, "
        "so 0.5 has no effect; a 'dropout:P' layer drops where it stands"
    ]
    assert "UserWarning" not in result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["spec"]["eta"] == ADAM_ETA


def test_a_study_merges_its_base_and_trials_as_the_command_line_does(tmp_path) -> None:
    from digitlab.experiments.study_file import apply_params, base_spec, load_study_file

    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\n[base]\npreset = "book-ch3-ce"\noptimizer = "adam"\n'
        '[space]\noptimizer = ["sgd", "adam"]\n'
    )
    study = load_study_file(path)
    base = base_spec(study)
    assert base.eta == ADAM_ETA  # the preset's SGD rate is not Adam's
    assert apply_params(base, {"optimizer": "sgd"}, {}).eta == 0.5
    assert apply_params(base, {"optimizer": "adam"}, {}).eta == ADAM_ETA

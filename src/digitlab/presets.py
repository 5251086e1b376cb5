"""Named specs: the book's networks, so its results can be reproduced by name.

Each preset records the accuracy the book reports and on which split it reports it
(chapter 1 and early chapter 3 evaluate on the test set; later chapter 3 runs
evaluate on the validation set), so ``benchmarks/book.py`` compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from digitlab.errors import SpecError
from digitlab.spec import Spec, make_spec, overridden, parse_layers, read_spec_file


@dataclass(frozen=True)
class Preset:
    """A named spec.  ``varies`` names the preset this one differs from in a single
    ingredient, so that ``benchmarks/cnn.py`` can set their runs side by side, seed by
    seed, and measure what that ingredient does."""

    name: str
    spec: Spec
    summary: str
    book_accuracy: float | None = None
    book_split: Literal["test", "validation"] = "test"
    book_source: str = ""
    varies: str | None = None


def _book(
    name: str, summary: str, accuracy: float, split: str, source: str, **fields: Any
) -> Preset:
    return Preset(
        name, make_spec(fields, source=f"preset {name}"), summary, accuracy, split, source
    )


_CH1 = {
    "cost": "quadratic",
    "activation": "sigmoid",
    "init": "large",
    "eta": 3.0,
    "batch_size": 10,
    "epochs": 30,
}
_CH3 = {
    "cost": "cross-entropy",
    "activation": "sigmoid",
    "init": "large",
    "eta": 0.5,
    "batch_size": 10,
    "epochs": 30,
}

_CH6 = {
    "cost": "log-likelihood",
    "activation": "sigmoid",
    "init": "normal",
    "eta": 0.1,
    "batch_size": 10,
    "epochs": 60,
}
_CONV2 = ["conv:20:5", "pool:2", "conv:40:5", "pool:2", "dense:100", "dense:10"]

#: How our own networks train (chosen on validation: docs/results/cnn-recipe.md).
_OURS = {
    "activation": "relu",
    "batch_norm": True,
    "cost": "log-likelihood",
    "init": "he",
    "optimizer": "adam",
    "eta": 0.001,
    "schedule": "cosine",
    "epochs": 40,
    "batch_size": 64,
    "augment": "affine",
}


#: cnn-best's convolutions (docs/results/cnn-recipe.md, round 3).
_BEST_CONVOLUTIONS = ["conv:32:5", "pool:2", "conv:64:3:same", "conv:64:3", "pool:2"]

#: What the record holders add to a simple CNN with batch norm (An et al., 2020): wider
#: rotations and shifts instead of our affine warps, a moving average of the weights, and
#: a learning rate that warms up before its cosine; label smoothing besides.
_RECORD = {
    "augment": "none",
    "rotation": 20.0,
    "translation": 3.0,
    "ema": 0.999,
    "label_smoothing": 0.1,
    "schedule": "warmup-cosine",
    "warmup_epochs": 2,
    "epochs": 50,
}

#: The record holders' recipe with cnn-best's random affine warps instead of their
#: rotations and shifts.
_RECORD_AFFINE = {**_RECORD, "augment": "affine", "rotation": 0.0, "translation": 0.0}


def _ours(
    name: str,
    convolutions: list[str],
    summary: str,
    varies: str | None = None,
    **changes: Any,
) -> Preset:
    """One of our networks: ``convolutions``, then dense 512 with dropout, and softmax;
    ``changes`` to how it trains, if any."""
    layers = [*convolutions, "dense:512", "dropout:0.5", "dense:10"]
    fields = {**_OURS, "layers": layers, **changes}
    return Preset(name, make_spec(fields, source=f"preset {name}"), summary, varies=varies)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in [
        _book(
            "book-ch1",
            "[784,30,10] quadratic cost, sigmoid, N(0,1) weights, eta 3.0",
            95.42,
            "test",
            "chapter 1",
            layers=[784, 30, 10],
            **_CH1,
        ),
        _book(
            "book-ch1-100",
            "[784,100,10] quadratic cost, sigmoid, N(0,1) weights, eta 3.0",
            96.59,
            "test",
            "chapter 1",
            layers=[784, 100, 10],
            **_CH1,
        ),
        _book(
            "book-ch3-ce",
            "[784,30,10] cross-entropy cost, eta 0.5",
            95.49,
            "test",
            "chapter 3, cross-entropy",
            layers=[784, 30, 10],
            **_CH3,
        ),
        _book(
            "book-ch3-l2",
            "[784,30,10] cross-entropy, L2 lambda 5.0, eta 0.5",
            96.49,
            "test",
            "chapter 3, regularization",
            layers=[784, 30, 10],
            lmbda=5.0,
            **_CH3,
        ),
        _book(
            "book-ch3-l2-100",
            "[784,100,10] cross-entropy, L2 lambda 5.0, eta 0.5",
            97.92,
            "validation",
            "chapter 3, regularization",
            layers=[784, 100, 10],
            lmbda=5.0,
            **_CH3,
        ),
        _book(
            "book-ch3-l2-100-slow",
            "[784,100,10] cross-entropy, L2 lambda 5.0, eta 0.1",
            98.04,
            "validation",
            "chapter 3, regularization",
            layers=[784, 100, 10],
            lmbda=5.0,
            **{**_CH3, "eta": 0.1, "epochs": 60},
        ),
        _book(
            "book-ch6-fc",
            "[784,100,10] sigmoid, softmax + log-likelihood, eta 0.1",
            97.80,
            "test",
            "chapter 6",
            layers=[784, 100, 10],
            **_CH6,
        ),
        _book(
            "book-ch6-conv1",
            "conv 20x5x5, max-pool 2, dense 100, softmax (sigmoid)",
            98.78,
            "test",
            "chapter 6",
            layers=["conv:20:5", "pool:2", "dense:100", "dense:10"],
            **_CH6,
        ),
        _book(
            "book-ch6-conv2",
            "2 x (conv 5x5, max-pool 2): 20 then 40 filters, dense 100 (sigmoid)",
            99.06,
            "test",
            "chapter 6",
            layers=_CONV2,
            **_CH6,
        ),
        _book(
            "book-ch6-relu",
            "book-ch6-conv2 with ReLU, eta 0.03, L2 (book's 0.1 in network3's "
            "per-batch scaling = 1.0 here)",
            99.23,
            "test",
            "chapter 6",
            layers=_CONV2,
            **{**_CH6, "activation": "relu", "eta": 0.03, "lmbda": 1.0},
        ),
        _book(
            "book-ch6-expanded",
            "book-ch6-relu trained on the training set expanded by 1-pixel shifts (250,000 images)",
            99.37,
            "test",
            "chapter 6",
            layers=_CONV2,
            **{**_CH6, "activation": "relu", "eta": 0.03, "lmbda": 1.0, "expand": True},
        ),
        _book(
            "book-ch6-fc2",
            "book-ch6-expanded with a second dense layer of 100",
            99.43,
            "test",
            "chapter 6",
            layers=[*_CONV2[:-1], "dense:100", "dense:10"],
            **{**_CH6, "activation": "relu", "eta": 0.03, "lmbda": 1.0, "expand": True},
        ),
        _book(
            "book-ch6-dropout",
            "expanded data, two dense layers of 1000 with dropout 0.5; He init (the book's "
            "N(0,1) biases leave some seeds' ReLUs silent and the net stuck at chance)",
            99.60,
            "test",
            "chapter 6",
            layers=[
                *_CONV2[:4],
                "dropout:0.5",
                "dense:1000",
                "dropout:0.5",
                "dense:1000",
                "dropout:0.5",
                "dense:10",
            ],
            **{
                **_CH6,
                "activation": "relu",
                "init": "he",
                "eta": 0.03,
                "expand": True,
                "epochs": 40,
            },
        ),
        Preset(
            "mlp-web",
            make_spec(
                {
                    "layers": [784, 100, 10],
                    "cost": "log-likelihood",
                    "eta": 0.1,
                    "lmbda": 5.0,
                    "epochs": 30,
                    "batch_size": 10,
                },
                source="preset mlp-web",
            ),
            "[784,100,10] sigmoid, softmax + log-likelihood, L2 lambda 5.0, eta 0.1: small "
            "and quick to train, for trying the web page with a model of your own",
        ),
        _ours(
            "cnn-5x5",
            ["conv:32:5", "pool:2", "conv:64:5", "pool:2"],
            "ours, first version: conv 32x5x5, pool, conv 64x5x5, pool, dense 512; batch "
            "norm, ReLU, dropout 0.5, Adam + cosine schedule, random affine warps each epoch",
        ),
        _ours(
            "cnn-best",
            _BEST_CONVOLUTIONS,
            "ours: conv 32x5x5, pool, 2 x conv 64x3x3, pool, dense 512; batch norm, ReLU, "
            "dropout 0.5, Adam + cosine schedule, random affine warps each epoch",
        ),
        _ours(
            "cnn-record",
            _BEST_CONVOLUTIONS,
            "cnn-best's network trained as the record holders train (An et al. 2020): "
            "rotations up to 20 degrees and shifts up to 3 pixels, a moving average of the "
            "weights (0.999), label smoothing 0.1, 2 warm-up epochs then cosine",
            **_RECORD,
        ),
        _ours(
            "cnn-record-affine",
            _BEST_CONVOLUTIONS,
            "cnn-record trained with cnn-best's random affine warps (turns up to 12 "
            "degrees, zoom up to 10 %, shifts up to 2 pixels) instead of its rotations up "
            "to 20 degrees and shifts up to 3 pixels",
            "cnn-record",
            **_RECORD_AFFINE,
        ),
        _ours(
            "cnn-record-affine-no-smoothing",
            _BEST_CONVOLUTIONS,
            "cnn-record-affine trained on one-hot targets: no label smoothing, so a run "
            "beside cnn-record-affine's at the same seed measures what the smoothing does",
            "cnn-record-affine",
            **{**_RECORD_AFFINE, "label_smoothing": 0.0},
        ),
        _ours(
            "cnn-record-affine-no-warmup",
            _BEST_CONVOLUTIONS,
            "cnn-record-affine without its 2 warm-up epochs: the cosine schedule starts at "
            "the full rate, so a run beside cnn-record-affine's at the same seed measures "
            "what the warm-up does",
            "cnn-record-affine",
            **{**_RECORD_AFFINE, "warmup_epochs": 0},
        ),
        Preset(
            "mlp-elastic",
            make_spec(
                {
                    "layers": [784, 800, 10],
                    "activation": "relu",
                    "init": "he",
                    "cost": "log-likelihood",
                    "optimizer": "adam",
                    "eta": 0.001,
                    "schedule": "warmup-cosine",
                    "warmup_epochs": 2,
                    "ema": 0.999,
                    "epochs": 100,
                    "batch_size": 64,
                    "augment": "elastic",
                },
                source="preset mlp-elastic",
            ),
            "Simard et al. (2003): one hidden layer of 800 ReLUs, elastic distortions each "
            "epoch (their 99.3 %); Adam, warm-up then cosine, a moving average of the weights",
        ),
        Preset(
            "cnn-robust",
            make_spec(
                {
                    **_OURS,
                    "layers": [*_BEST_CONVOLUTIONS, "dense:128", "dropout:0.3", "dense:10"],
                    "augment": "robust",
                    "outliers": 0.1,
                    "epochs": 30,
                },
                source="preset cnn-robust",
            ),
            "ours, for people's own digits (bundled with `digitlab serve`): cnn-best's "
            "convolutions, dense 128; robust warps, pens, blur and noise each epoch, and "
            "generated non-digits trained as 'not sure'",
        ),
    ]
}


@dataclass(frozen=True)
class Ensemble:
    """Several trained networks whose averaged probabilities vote.  Networks that make
    different mistakes make fewer together: the book's chapter 6 ends with five copies
    of one network, trained from different seeds (99.67 %); networks of different
    architectures differ more."""

    name: str
    members: tuple[tuple[str, int], ...]  # (preset, seed) of each network
    summary: str
    book_accuracy: float | None = None

    @property
    def presets(self) -> list[str]:
        """The member presets, each once, in order."""
        return list(dict.fromkeys(preset for preset, _ in self.members))

    def describe(self) -> str:
        """``5 x cnn-best + 5 x book-ch6-dropout``: how many networks of each preset."""
        counts = [sum(p == preset for p, _ in self.members) for preset in self.presets]
        return " + ".join(f"{n} x {p}" for n, p in zip(counts, self.presets, strict=True))


def at_seeds(preset: str, seeds: range) -> tuple[tuple[str, int], ...]:
    """Ensemble members: ``preset`` trained once from each seed."""
    return tuple((preset, seed) for seed in seeds)


def seeded_name(preset: str, seed: int) -> str:
    """``PRESET-seedN``: how a preset trained at one seed is named on disk."""
    return f"{preset}-seed{seed}"


ENSEMBLES: dict[str, Ensemble] = {
    ensemble.name: ensemble
    for ensemble in [
        Ensemble(
            "book-ch6-ensemble",
            at_seeds("book-ch6-dropout", range(5)),
            "5 x book-ch6-dropout (seeds 0-4), probabilities averaged",
            99.67,
        ),
        Ensemble(
            "cnn-best-ensemble",
            at_seeds("cnn-best", range(5)),
            "our best ensemble (chosen on validation): 5 x cnn-best (seeds 0-4), "
            "probabilities averaged",
        ),
        Ensemble(
            "cnn-mixed-ensemble",
            at_seeds("cnn-best", range(5)) + at_seeds("book-ch6-dropout", range(5)),
            "two architectures: 5 x cnn-best and 5 x book-ch6-dropout (seeds 0-4), "
            "probabilities averaged",
        ),
        Ensemble(
            "cnn-record-ensemble",
            at_seeds("cnn-record", range(4)),
            "4 x cnn-record (seeds 0-3), probabilities averaged",
        ),
    ]
}


@dataclass(frozen=True)
class TrainingTime:
    """How long training one preset (or all of an ensemble's members) took on the 2-core
    CPU machine the committed results were measured on, and where that is recorded."""

    seconds: float
    source: str

    def describe(self) -> str:
        """The time rounded for reading: ``8 s``, ``29 min`` or ``6 h 31 min``."""
        if self.seconds < 60:
            return f"{round(self.seconds)} s"
        minutes = round(self.seconds / 60)
        if minutes < 90:
            return f"{minutes} min"
        return f"{minutes // 60} h {minutes % 60} min"


_BOOK_MD = "docs/results/book.md: wall time per run, median of seeds 0-4"
_CNN_TRAINING = "docs/results/cnn.md: training passes of seed 0, two runs sharing the 2 cores"
_CNN_WALL = "docs/results/cnn.md: wall time of seed 0, two runs sharing the 2 cores"
_ENSEMBLE_WALL = "docs/results/cnn.md: wall time of all members, two runs sharing the 2 cores"
_RECORD_WALL = "docs/results/record.md: wall time of seed 0, sharing the 2 cores with other work"

#: Measured training times by preset or ensemble name; a name missing here is shown as
#: not measured.  Each comes from a committed measurement, named with the command that
#: made it; nothing here is estimated from the size of a network.
TRAINING_TIMES: dict[str, TrainingTime] = {
    # docs/results/book.md, `python benchmarks/book.py --seeds 5`: "wall time per run (s)",
    # the evaluation after each epoch included.
    "book-ch1": TrainingTime(8, _BOOK_MD),
    "book-ch1-100": TrainingTime(14, _BOOK_MD),
    "book-ch3-ce": TrainingTime(8, _BOOK_MD),
    "book-ch3-l2": TrainingTime(9, _BOOK_MD),
    "book-ch3-l2-100": TrainingTime(17, _BOOK_MD),
    "book-ch3-l2-100-slow": TrainingTime(34, _BOOK_MD),
    # docs/results/cnn.md, trained by `python benchmarks/cnn.py` (the table written with
    # `--no-train`): "wall time (min)" where it was recorded, else "training time (min)",
    # the training passes alone.
    "book-ch6-fc": TrainingTime(1 * 60, _CNN_TRAINING),
    "book-ch6-conv1": TrainingTime(7 * 60, _CNN_TRAINING),
    "book-ch6-conv2": TrainingTime(12 * 60, _CNN_TRAINING),
    "book-ch6-relu": TrainingTime(9 * 60, _CNN_TRAINING),
    "book-ch6-expanded": TrainingTime(80 * 60, _CNN_TRAINING),
    "book-ch6-fc2": TrainingTime(46 * 60, _CNN_WALL),
    "book-ch6-dropout": TrainingTime(67 * 60, _CNN_WALL),
    "cnn-5x5": TrainingTime(22 * 60, _CNN_WALL),
    "cnn-best": TrainingTime(35 * 60, _CNN_WALL),
    "book-ch6-ensemble": TrainingTime(391 * 60, _ENSEMBLE_WALL),
    "cnn-best-ensemble": TrainingTime(165 * 60, _ENSEMBLE_WALL),
    "cnn-mixed-ensemble": TrainingTime(555 * 60, _ENSEMBLE_WALL),
    # docs/results/speed-xeon.md, `python benchmarks/speed.py --epochs 1 --rounds 3` on an
    # Intel Xeon: 0.48 s per epoch for [784,100,10] sigmoid, softmax + log-likelihood at
    # mini-batch 10 -- mlp-web's network (without its L2 term) -- times its 30 epochs; the
    # training passes alone.
    "mlp-web": TrainingTime(
        14.4, "docs/results/speed-xeon.md: 0.48 s per epoch of this network x 30 epochs"
    ),
    # src/digitlab/serve/default-model.npz, trained by `python scripts/build-bundled-model.py`:
    # the train_seconds its metrics record (the training passes of seed 0).
    "cnn-robust": TrainingTime(
        2207, "src/digitlab/serve/default-model.npz: training passes of seed 0, as recorded"
    ),
    # docs/results/record-quiet.md, trained by `python benchmarks/cnn.py --presets cnn-record
    # --ensembles --lanes 1 --out docs/results/record-quiet.md`: wall time of seed 0 on an
    # AMD EPYC with nothing else running.
    "cnn-record": TrainingTime(
        46 * 60, "docs/results/record-quiet.md: wall time of seed 0, the machine to itself"
    ),
    # docs/results/record-affine.md, trained by `python benchmarks/cnn.py --presets
    # cnn-record-affine --seeds 2 --ensembles --lanes 2`: wall time of seed 0, two runs
    # sharing the 2 cores with tests beside them (an upper bound; the same work per epoch
    # as cnn-record's, whose 46 minutes were measured with the machine to itself).
    "cnn-record-affine": TrainingTime(
        87 * 60,
        "docs/results/record-affine.md: wall time of seed 0, two runs sharing the 2 cores "
        "with other work",
    ),
    # docs/results/record.md, trained by `python benchmarks/cnn.py --presets cnn-record
    # mlp-elastic --seeds 4 --ensembles cnn-record-ensemble --lanes 2`: wall time of seed 0, on a
    # machine busy with other runs and tests for much of it (an upper bound).
    "mlp-elastic": TrainingTime(63 * 60, _RECORD_WALL),
}


def describe_training_time(name: str) -> str:
    """``trains in 8 s`` for a preset or ensemble with a measured time, else ``training
    time not measured``."""
    measured = TRAINING_TIMES.get(name)
    return f"trains in {measured.describe()}" if measured else "training time not measured"


def preset_of(spec: Spec) -> str | None:
    """The name of the preset ``spec`` is (at any seed), or None if it is none of them."""
    for name, preset in PRESETS.items():
        if spec.model_copy(update={"seed": preset.spec.seed}) == preset.spec:
            return name
    return None


def get(name: str) -> Preset:
    """The preset called ``name``, or a one-line error listing the ones that exist."""
    try:
        return PRESETS[name]
    except KeyError:
        if name in ENSEMBLES:
            ensemble = ENSEMBLES[name]
            raise SpecError(
                f"{name} is an ensemble ({ensemble.describe()}), not one network: use the "
                f"preset {' or '.join(ensemble.presets)}"
            ) from None
        names = ", ".join([*PRESETS, *ENSEMBLES])
        raise SpecError(f"unknown preset {name!r}; choose one of: {names}") from None


def resolve_spec(
    preset: str | None = None,
    spec_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Spec:
    """Combine a preset, a TOML spec file and explicit overrides, later ones winning.

    A spec file may itself name a base preset with ``preset = "..."``.  A later one that
    changes the optimizer without naming ``eta`` gives the new optimizer its own default
    learning rate (:func:`digitlab.spec.overridden`).
    """
    fields: dict[str, Any] = {}
    if preset:
        fields = get(preset).spec.model_dump()
    if spec_file:
        from_file = read_spec_file(spec_file)
        base = from_file.pop("preset", None)
        if base is not None:
            if not isinstance(base, str):
                raise SpecError(f"{spec_file}: preset: must be a preset name")
            fields = get(base).spec.model_dump()
        if isinstance(from_file.get("layers"), str):  # "784,30,10", as flags and studies
            from_file["layers"] = parse_layers(from_file["layers"], f"{spec_file}: layers")
        # name the file in errors, and take its values only as their own types
        fields = overridden(fields, from_file)
        make_spec(fields, source=str(spec_file), strict=True)
    return make_spec(overridden(fields, overrides or {}), source="", as_flags=True)

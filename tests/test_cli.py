"""The ``digitlab`` command as a user runs it: results, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.data.fetch import MNIST_FILES
from digitlab.data.idx import write_idx
from digitlab.errors import SpecError
from digitlab.nn.model_file import load_model
from digitlab.presets import ENSEMBLES, PRESETS, get
from digitlab.spec import Spec, make_spec


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()  # progress lines may come first
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:], result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    """A quickly trained model, through the CLI, shared by the tests below."""
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("model")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "digitlab",
            "train",
            "--layers",
            "784,30,10",
            "--cost",
            "log-likelihood",
            "--epochs",
            "2",
            "--train-size",
            "5000",
            "--out",
            str(folder / "m.npz"),
            "--history",
            str(folder / "h.csv"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DIGITLAB_DATA_DIR": str(mnist_dir)},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return folder, json.loads(done.stdout.strip().splitlines()[-1])


def test_train_json_model_history_and_no_leftover_checkpoint(trained) -> None:
    folder, payload = trained
    assert payload["epochs_run"] == 2 and payload["validation_accuracy"] > 0.85
    assert payload["spec"]["layers"] == [784, 30, 10] and payload["spec"]["train_size"] == 5000
    assert (folder / "m.npz").exists() and not (folder / "m.checkpoint.npz").exists()
    assert (folder / "h.csv").read_text().splitlines()[0].startswith("epoch,eta,train_cost")


def test_evaluate_json(trained, run_cli) -> None:
    folder, payload = trained
    result = run_cli("evaluate", folder / "m.npz", "--json")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 10_000
    assert report["test_accuracy"] == pytest.approx(np.trace(matrix) / 10_000)
    assert report["test_accuracy"] == pytest.approx(payload["test_accuracy"])
    assert set(report["per_digit_accuracy"]) == {str(d) for d in range(10)}

    result = run_cli("evaluate", folder / "m.npz", "--split", "validation", "--json")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["split"] == "validation" and "test_accuracy" not in report
    assert report["validation_accuracy"] == pytest.approx(payload["validation_accuracy"])


def test_evaluate_a_folder_of_own_images_with_plots(trained, run_cli, mnist, tmp_path) -> None:
    """DIR/DIGIT/*.png of any size and polarity; stray files and folders are skipped with
    a warning and counted, not fatal."""
    folder, _ = trained
    images = tmp_path / "mine"
    for index in range(30):
        label = int(mnist.test.labels[index])
        (images / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = 255 - (mnist.test.images[index].reshape(28, 28) * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((90, 90)).save(images / str(label) / f"{index}.png")
    (images / "3" / "notes.txt").write_text("not an image")
    (images / "letters").mkdir()
    result = run_cli(
        "evaluate", folder / "m.npz", "--images", images, "--plots", tmp_path / "plots", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["images"] == 30 and report["accuracy"] > 0.8
    # a digit with no image has no accuracy, not 0 %
    absent = {str(d) for d in set(range(10)) - set(mnist.test.labels[:30].tolist())}
    assert absent  # the first 30 test images have no 8
    per_digit = report["per_digit_accuracy"]
    assert {d for d, accuracy in per_digit.items() if accuracy is None} == absent
    text = run_cli("evaluate", folder / "m.npz", "--images", images).stdout
    assert text.count("n/a") == len(absent)
    assert "notes.txt" in result.stderr and "letters" in result.stderr
    assert report["calibrated"]["ece"] >= 0 and report["uncalibrated"]["nll"] > 0
    for name in ("confusion.png", "misclassified.png", "reliability.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000

    assert_one_line_error(run_cli("evaluate", folder / "m.npz", "--images", tmp_path / "no"), "no")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        run_cli("evaluate", folder / "m.npz", "--images", tmp_path / "empty"), "no readable"
    )


def test_evaluate_needs_only_the_test_files(trained, run_cli, mnist_dir, tmp_path) -> None:
    import shutil

    folder, payload = trained
    for path in mnist_dir.glob("t10k-*"):
        shutil.copy(path, tmp_path / path.name)
    result = run_cli("evaluate", folder / "m.npz", "--data-dir", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["test_accuracy"] == pytest.approx(payload["test_accuracy"])
    assert_one_line_error(
        run_cli("evaluate", folder / "m.npz", "--data-dir", tmp_path / "missing"), "not exist"
    )
    assert_one_line_error(
        run_cli("evaluate", folder / "m.npz", "--split", "train"),
        "--split: input should be 'test' or 'validation', not 'train'",
    )
    assert "--split <test|validation>" in run_cli("evaluate", "--help").stdout


def test_test_split_fetches_into_a_folder_without_mnist(mnist_dir, tmp_path, monkeypatch) -> None:
    """As training does: a named folder holding none of MNIST's files is fetched into."""
    import shutil

    from digitlab.data import mnist

    def fetch(data_dir, report):
        for path in mnist_dir.iterdir():
            shutil.copy(path, data_dir / path.name)

    monkeypatch.setattr(mnist, "fetch_mnist", fetch)
    test = mnist.load_test_split(tmp_path)
    assert len(test.labels) == 10_000 and not mnist.holds_no_mnist(tmp_path)
    with pytest.raises(mnist.DataError, match=r"`digitlab data fetch --data-dir .*` creates it"):
        mnist.load_test_split(tmp_path / "missing")


def test_calibrate_stores_a_temperature_that_changes_no_answer(trained, run_cli, tmp_path) -> None:
    import shutil

    folder, _ = trained
    model = tmp_path / "m.npz"
    shutil.copy(folder / "m.npz", model)
    before = json.loads(run_cli("evaluate", model, "--json").stdout.splitlines()[-1])
    result = run_cli("calibrate", model, "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["temperature"] > 0 and 0 < found["unsure_below"] < 1
    after = json.loads(run_cli("evaluate", model, "--json").stdout.splitlines()[-1])
    assert after["test_accuracy"] == before["test_accuracy"]
    assert after["calibrated"] is not None


def test_calibrate_notes_a_rise_in_ece_that_shows() -> None:
    from digitlab.cli import ece_note

    assert ece_note((0.0050, 0.0031)) is None
    assert ece_note((0.00301, 0.00304)) is None  # both print as 0.30 %
    assert "the ECE went up" in ece_note((0.0030, 0.0041))


def test_version() -> None:
    from typer.testing import CliRunner

    from digitlab import __version__, cli

    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"digitlab {__version__}\n"


def test_predict_own_images(trained, run_cli, mnist, tmp_path: Path) -> None:
    folder, _ = trained
    paths = []
    for index in range(8):  # real test digits, enlarged, as dark ink on white paper
        pixels = 255 - (mnist.test.images[index].reshape(28, 28) * 255).astype(np.uint8)
        path = tmp_path / f"digit{index}.png"
        Image.fromarray(pixels).resize((140, 140)).save(path)
        paths.append(path)
    result = run_cli("predict", folder / "m.npz", *paths, "--json")
    predictions = json.loads(result.stdout.strip().splitlines()[-1])["predictions"]
    assert len(predictions) == 8
    assert all(
        len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-4
        for p in predictions
    )
    right = sum(
        p["digit"] == label for p, label in zip(predictions, mnist.test.labels[:8], strict=True)
    )
    assert right >= 7


def test_predict_knows_a_model_by_any_case_or_by_its_content(
    trained, run_cli, mnist, tmp_path: Path
) -> None:
    """M.NPZ, or a model saved without the suffix, is the model to use, not an image that
    fails to read while the bundled model answers; the same model twice is refused."""
    import shutil

    folder, _ = trained
    image = tmp_path / "digit.png"
    Image.fromarray((mnist.test.images[0].reshape(28, 28) * 255).astype(np.uint8)).save(image)
    expected = json.loads(run_cli("predict", folder / "m.npz", image, "--json").stdout)
    for name in ("M.NPZ", "mymodel"):
        shutil.copy(folder / "m.npz", tmp_path / name)
        result = run_cli("predict", tmp_path / name, image, "--json")
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert found["model"] == str(tmp_path / name)
        assert found["predictions"] == expected["predictions"]
    twice = run_cli("predict", folder / "m.npz", folder / "m.npz", image)
    assert twice.returncode == 0 and "is given more than once" in twice.stderr


def test_evaluate_refuses_plots_inside_the_images_it_scores(
    trained, run_cli, mnist, tmp_path
) -> None:
    folder, _ = trained
    (tmp_path / "mine" / "1").mkdir(parents=True)
    result = run_cli("evaluate", folder / "m.npz", "--images", tmp_path / "mine",
                     "--plots", tmp_path / "mine" / "1")  # fmt: skip
    assert_one_line_error(result, "would be read as your digits")
    assert list((tmp_path / "mine" / "1").iterdir()) == []
    # beside the digits' folders, where nothing is read as a digit, plots may go
    digit = (mnist.test.images[2].reshape(28, 28) * 255).astype(np.uint8)  # a 1
    Image.fromarray(digit).save(tmp_path / "mine" / "1" / "a.png")
    result = run_cli("evaluate", folder / "m.npz", "--images", tmp_path / "mine",
                     "--plots", tmp_path / "mine")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mine" / "confusion.png").exists()


def test_predict_without_a_model_uses_the_bundled_one_and_says_when_unsure(
    run_cli, mnist, tmp_path: Path
) -> None:
    """A real digit gets a sure answer; a cross (an 'X', no digit) an unsure one naming
    three contenders -- the bundled model is calibrated and trained with non-digits."""
    digit = tmp_path / "seven.png"
    pixels = 255 - (mnist.test.images[0].reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(pixels).resize((140, 140)).save(digit)
    cross = np.full((140, 140), 255, np.uint8)
    for i in range(20, 120):
        cross[i, i - 6 : i + 6] = cross[i, 134 - i : 146 - i] = 0
    Image.fromarray(cross).save(tmp_path / "cross.png")
    result = run_cli("predict", digit, tmp_path / "cross.png", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"] == "the bundled model"
    sure, unsure = report["predictions"]
    assert sure["digit"] == mnist.test.labels[0] and sure["unsure"] is False
    assert unsure["unsure"] is True and len(unsure["contenders"]) == 3
    assert sure["unlike_digits"] is False and unsure["unlike_digits"] is True
    Image.fromarray(np.full((50, 50), 255, np.uint8)).save(tmp_path / "blank.png")
    text = run_cli("predict", digit, tmp_path / "blank.png", tmp_path / "cross.png")
    lines = text.stdout.strip().splitlines()
    label = int(mnist.test.labels[0])
    assert lines[0].endswith(f": {label} ({100 * sure['probabilities'][label]:.1f}%)")
    assert lines[1].endswith("blank.png: no answer: the image is blank: no digit found")
    # the blank stopped nothing, and the cross is unlike any digit the model knows
    assert ": unsure, unlike any digit: " in lines[2] and " or " in lines[2]
    assert_one_line_error(text, "1 of 3 images gave no answer")


def test_presets_lists_every_preset_with_book_accuracy(run_cli) -> None:
    result = run_cli("presets")
    assert result.returncode == 0
    for name, preset in PRESETS.items():
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        if preset.book_accuracy is not None:
            assert f"book {preset.book_accuracy:.2f}% ({preset.book_split})" in line
    for name, ensemble in ENSEMBLES.items():
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert all(preset in line for preset in ensemble.presets)


def test_presets_say_how_long_each_trained_here(monkeypatch) -> None:
    from typer.testing import CliRunner

    from digitlab import cli, presets

    assert set(presets.TRAINING_TIMES) <= set(PRESETS) | set(ENSEMBLES)
    took = [presets.TrainingTime(s, "").describe() for s in (8.4, 60, 35 * 60, 391 * 60)]
    assert took == ["8 s", "1 min", "35 min", "6 h 31 min"]
    monkeypatch.delitem(presets.TRAINING_TIMES, "mlp-web")
    listed = json.loads(CliRunner().invoke(cli.app, ["presets", "--json"]).stdout)
    rows = {row["name"]: row for row in listed["presets"] + listed["ensembles"]}
    assert rows["book-ch1"]["training_time"]["seconds"] == 8
    assert rows["book-ch1"]["training_time"]["source"].startswith("docs/results/book.md")
    assert rows["mlp-web"]["training_time"] is None
    text = CliRunner().invoke(cli.app, ["presets"]).stdout
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "30 epochs, trains in 8 s  book 95.42% (test)" in lines["book-ch1"]
    assert "training time not measured" in lines["mlp-web"]
    assert "trains in 6 h 31 min" in lines["book-ch6-ensemble"]


def test_shell_completion_scripts_and_completions() -> None:
    import os
    import subprocess
    import sys

    def digitlab(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "digitlab"],  # named digitlab all the same
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    for shell, line in [
        ("bash", "complete -o default -F _digitlab_completion digitlab"),
        ("zsh", "#compdef digitlab"),
    ]:
        script = digitlab(_DIGITLAB_COMPLETE=f"source_{shell}")  # as --show-completion SHELL
        assert script.returncode == 0 and line in script.stdout.splitlines()
    answer = digitlab(_DIGITLAB_COMPLETE="complete_bash", COMP_WORDS="digitlab pre", COMP_CWORD="1")
    assert answer.stdout.split() == ["presets", "predict"]


def test_mixed_ensemble_names_its_presets_and_is_not_a_network(run_cli) -> None:
    mixed = ENSEMBLES["cnn-mixed-ensemble"]
    assert mixed.presets == ["cnn-best", "book-ch6-dropout"]
    assert mixed.describe() == "5 x cnn-best + 5 x book-ch6-dropout"
    with pytest.raises(SpecError, match=r"\(5 x cnn-best \+ 5 x book-ch6-dropout\)"):
        get("cnn-mixed-ensemble")
    result = run_cli("train", "--preset", "cnn-mixed-ensemble", "--seed", "1")
    assert_one_line_error(result, "ensemble preset")


def test_data_fetch_prints_location(run_cli, mnist_dir) -> None:
    result = run_cli("data", "fetch")
    assert result.returncode == 0 and result.stdout.strip() == str(mnist_dir)


def every_command() -> list[list[str]]:
    """The app itself, each command and each group with its commands, as registered: a
    command added later is covered without a list to keep up to date."""
    from digitlab.cli import app

    commands = [[], *([c.name] for c in app.registered_commands)]
    for group in app.registered_groups:
        commands.append([group.name])
        commands += [[group.name, c.name] for c in group.typer_instance.registered_commands]
    return commands


@pytest.mark.parametrize("command", every_command(), ids=" ".join)
def test_every_command_has_help(run_cli, command) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout


def test_h_is_help_too(run_cli) -> None:
    for command in ([], ["train"], ["study", "run"]):
        result = run_cli(*command, "-h")
        assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr


def test_a_spec_saved_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    """Windows' Notepad starts UTF-8 files with one; TOML itself does not allow it."""
    from digitlab.spec import read_spec_file

    (tmp_path / "s.toml").write_bytes(b"\xef\xbb\xbflayers = [784, 10, 10]\n")
    assert read_spec_file(tmp_path / "s.toml") == {"layers": [784, 10, 10]}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--preset", "nope"], ["unknown preset 'nope'", "book-ch1", "cnn-best-ensemble"]),
        (["train", "--preset", "cnn-best-ensemble", "--seed", "3"], ["ensemble", "seed"]),
        (["train", "--layers", "784,x,10"], ["--layers", "784,x,10"]),
        (["train", "--layers", "conv:20,pool:2,dense:10"], ["--layers", "'conv:20' is not one of"]),
        (["train", "--layers", "784,10,10,dropout:0.5"], ["'784' is a bare number among"]),
        (["train", "--layers", "dense:30,dropout:1.5,dense:10"], ["dropout's share must be"]),
        (
            ["train", "--spec", Path(__file__).parents[1] / "studies" / "epochs.toml"],
            ["is a study file", "digitlab study run"],
        ),
        (["train", "--layers", "conv:20:5,pool:5,dense:10"], ["pool:5 cannot divide 24x24"]),
        (["train", "--layers", "500,30,10", "--epochs", "1"], ["500", "784"]),
        (["train", "--eta", "-1"], ["--eta"]),
        (["train", "--eta", "inf"], ["--eta", "finite"]),
        (["train", "--layers", ""], ["--layers", "''"]),
        (["train", "--train-size", "50001", "--epochs", "1"], ["--train-size", "50,000"]),
        (["train", "--epochs", "0"], ["--epochs"]),
        (["train", "--batch-size", "0"], ["--batch-size"]),
        (
            ["train", "--cost", "cross-entropy", "--output-activation", "softmax"],
            ["--output-activation"],
        ),
        (["evaluate", "missing.npz"], ["missing.npz", "does not exist"]),
        (["train", "--resume", "missing.npz"], ["missing.npz"]),
    ],
)
def test_bad_input_is_one_line(run_cli, args, fragments) -> None:
    assert_one_line_error(run_cli(*args), *fragments)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("eta = 0.5\nspeed = 3\n", ["speed", "unknown key"]),
        ('eta = "fast"\n', ["eta"]),
        ('eta = "0.5"\n', ["eta", "valid number, not '0.5'"]),
        ("eta = true\n", ["eta", "valid number, not true"]),
        ('expand = "yes"\n', ["expand", "valid boolean"]),
        ('layers = "784,x,10"\n', ["layers", "784,x,10"]),
        ("eta = \n", ["TOML"]),
    ],
)
def test_bad_spec_file_names_the_key(run_cli, tmp_path: Path, content: str, fragments) -> None:
    (tmp_path / "my.toml").write_text(content)
    assert_one_line_error(run_cli("train", "--spec", tmp_path / "my.toml"), "my.toml", *fragments)


def test_spec_file_with_preset_base(run_cli, tmp_path: Path) -> None:
    (tmp_path / "my.toml").write_text('preset = "book-ch1"\nepochs = 1\ntrain_size = 1000\n')
    result = run_cli("train", "--spec", tmp_path / "my.toml", "--json")
    spec = json.loads(result.stdout.strip().splitlines()[-1])["spec"]
    assert spec["cost"] == "quadratic" and spec["eta"] == 3.0 and spec["epochs"] == 1
    # without --out nothing is saved, and train says so before it starts, not after
    assert result.stderr.splitlines()[0] == (
        "note: no --out given, so the trained model will not be saved"
    )


def test_spec_file_layers_as_text_and_whole_numbers_as_floats(run_cli, tmp_path: Path) -> None:
    """Layers written as the --layers flag and study files write them; eta = 1 is a number."""
    (tmp_path / "my.toml").write_text(
        'layers = "784,20,10"\neta = 1\nepochs = 1\ntrain_size = 500\n'
    )
    result = run_cli("train", "--spec", tmp_path / "my.toml", "--json")
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout.strip().splitlines()[-1])["spec"]
    assert spec["layers"] == [784, 20, 10] and spec["eta"] == 1.0


def test_bad_images_and_models(trained, run_cli, tmp_path: Path) -> None:
    folder, _ = trained
    (tmp_path / "bad.png").write_bytes(b"not an image")
    Image.new("L", (30, 30), 255).save(tmp_path / "blank.png")
    alone = run_cli("predict", folder / "m.npz", tmp_path / "bad.png")
    assert_one_line_error(alone, "bad.png", "not a readable")
    assert alone.stdout == "" and len(alone.stderr.splitlines()) == 1  # its error, once
    assert_one_line_error(
        run_cli("predict", folder / "m.npz", tmp_path / "gone.png"), "gone.png", "does not exist"
    )
    assert_one_line_error(run_cli("predict", folder / "m.npz", tmp_path / "blank.png"), "blank")
    assert_one_line_error(run_cli("evaluate", tmp_path / "bad.png"), "not a digitlab model file")


def test_divergence_is_one_line_naming_eta(run_cli) -> None:
    result = run_cli(
        "train",
        "--layers",
        "784,30,10",
        "--activation",
        "relu",
        "--cost",
        "quadratic",
        "--output-activation",
        "linear",
        "--eta",
        "1000",
        "--epochs",
        "2",
        "--train-size",
        "500",
    )
    assert_one_line_error(result, "diverged", "eta = 1000 is probably too large")


def copy_mnist(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in MNIST_FILES:
        (target / name).write_bytes((source / name).read_bytes())
    return target


def test_truncated_idx_names_the_file_and_says_refetch(run_cli, mnist_dir, tmp_path: Path) -> None:
    folder = copy_mnist(mnist_dir, tmp_path / "data")
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:5000])
    result = run_cli("train", "--epochs", "1", "--train-size", "100", "--data-dir", folder)
    assert_one_line_error(
        result,
        "t10k-labels-idx1-ubyte",
        "truncated",
        f"if it is MNIST's, `digitlab data fetch --force --data-dir {folder}`",
    )


def test_checksum_mismatch_is_reported_and_file_left_alone(
    run_cli, mnist_dir, tmp_path: Path
) -> None:
    folder = copy_mnist(mnist_dir, tmp_path / "data")
    images = folder / "t10k-images-idx3-ubyte"
    write_idx(images, np.zeros((10_000, 28, 28), dtype=np.uint8))  # valid IDX, not MNIST's
    result = run_cli("data", "fetch", "--data-dir", folder)
    assert_one_line_error(
        result, "t10k-images-idx3-ubyte", "checksum", "--force", "another data set"
    )
    assert images.stat().st_size == 7_840_016


def test_other_dataset_in_mnist_layout_trains_via_data_dir(
    run_cli, mnist_dir, tmp_path: Path
) -> None:
    """A folder in MNIST's layout (e.g. Fashion-MNIST) works through --data-dir."""
    folder = copy_mnist(mnist_dir, tmp_path / "data")
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((10_000, 28, 28), dtype=np.uint8))
    result = run_cli(
        "train", "--epochs", "1", "--train-size", "200", "--data-dir", folder, "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["epochs_run"] == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--out", "m.npz", "--checkpoint", "m.npz"], "--out and --checkpoint name the same file"),
        (["--resume", "ck.npz", "--out", "ck.npz"], "--out and --resume name the same file"),
        (["--out", "m.npz", "--history", "m.npz"], "--history: m.npz is no name for a history"),
        (["--out", "notes.txt"], "--out: notes.txt is no name for a model file; end it in .npz"),
        (["--checkpoint", "c.json"], "--checkpoint: c.json is no name for a checkpoint"),
        (["--spec", "s.json", "--history", "s.json"], "--history and --spec name the same file"),
        (["--out", "/proc/m.npz"], "--out: cannot write into /proc (No such file or directory)"),
        (["--out", "arrays.npz"], "arrays.npz holds something other than a digitlab model"),
    ],
)
def test_files_of_one_run_that_would_overwrite_each_other_are_refused(
    run_cli, tmp_path: Path, flags: list[str], message: str
) -> None:
    """Before the data is loaded: the model deleted with its checkpoint, a history written
    over the model, a text file overwritten by a model -- each refused up front."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "arrays.npz").write_text("someone's numpy arrays")
    result = run_cli("train", "--layers", "784,10,10", "--epochs", "1", *flags, cwd=tmp_path)
    assert_one_line_error(result, message)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "arrays.npz").read_text() == "someone's numpy arrays"
    assert not (tmp_path / "m.npz").exists()


def test_the_same_command_again_continues_an_interrupted_run(
    run_cli, mnist, tmp_path: Path
) -> None:
    """A checkpoint left by an interrupted run of the same spec is resumed, bit-exactly;
    one of another spec, or a file that is no checkpoint, is left alone with an error."""
    from digitlab.train import Trainer

    from .interrupt import StopAfter

    flags = ["--layers", "784,30,10", "--epochs", "2", "--train-size", "500", "--seed", "3"]
    spec = make_spec({"layers": [784, 30, 10], "epochs": 2, "train_size": 500, "seed": 3})
    checkpoint = tmp_path / "m.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, mnist, [StopAfter(1)], checkpoint).run()
    kept = checkpoint.read_bytes()
    other = run_cli("train", *flags[:-1], "4", "--out", tmp_path / "m.npz")
    assert_one_line_error(other, "from an interrupted run with a different spec", "--resume")
    assert checkpoint.read_bytes() == kept
    (tmp_path / "m.npz").write_text("notes")  # where --resume would put the model
    taken = run_cli("train", "--resume", checkpoint)
    assert_one_line_error(taken, "m.npz holds something other than a digitlab model file")
    assert not re.search(r"epoch +2/2", taken.stderr)  # refused before training, not after
    assert (tmp_path / "m.npz").read_text() == "notes" and checkpoint.read_bytes() == kept
    (tmp_path / "m.npz").unlink()
    again = run_cli("train", *flags, "--out", tmp_path / "m.npz")
    assert again.returncode == 0, again.stderr
    assert f"continuing the interrupted run of this spec in {checkpoint} after epoch 1" in (
        again.stderr
    )
    straight = Trainer(spec, mnist).run().model
    resumed = load_model(tmp_path / "m.npz")
    for a, b in zip(straight.network.arrays(), resumed.network.arrays(), strict=True):
        assert np.array_equal(a, b)
    assert not checkpoint.exists()
    # a run kept in a checkpoint alone (no --out) that had finished is not trained on
    finished = tmp_path / "kept.checkpoint.npz"
    assert run_cli("train", *flags, "--checkpoint", finished).returncode == 0
    kept = finished.read_bytes()
    again = run_cli("train", *flags, "--checkpoint", finished)
    assert again.returncode == 0 and "had already finished (epoch 2)" in again.stderr
    assert finished.read_bytes() == kept
    (tmp_path / "notes.npz").write_text("not a checkpoint")
    taken = run_cli("train", *flags, "--checkpoint", tmp_path / "notes.npz")
    assert_one_line_error(taken, "is where this run keeps its checkpoint, and it cannot be resumed")
    assert (tmp_path / "notes.npz").read_text() == "not a checkpoint"


def test_killed_run_resumes_to_the_same_model(run_cli, mnist_dir, tmp_path: Path) -> None:
    """SIGKILL a real training process after its first checkpoint, then --resume it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from digitlab.train.checkpoint import read_checkpoint

    args = ["train", "--layers", "784,30,10", "--epochs", "6", "--dropout", "0.1", "--seed", "3"]
    assert run_cli(*args, "--out", tmp_path / "straight.npz").returncode == 0

    checkpoint = tmp_path / "killed.checkpoint.npz"
    env = {**os.environ, "DIGITLAB_DATA_DIR": str(mnist_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "digitlab", *args, "--out", tmp_path / "killed.npz"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    done = len(read_checkpoint(checkpoint).history)
    assert 1 <= done < 6 and not (tmp_path / "killed.npz").exists()

    resumed = run_cli("train", "--resume", checkpoint)  # no --out: derived from the checkpoint
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} after epoch {done}" in resumed.stderr
    assert not checkpoint.exists()
    straight, killed = load_model(tmp_path / "straight.npz"), load_model(tmp_path / "killed.npz")
    for a, b in zip(straight.network.arrays(), killed.network.arrays(), strict=True):
        assert np.array_equal(a, b)


def test_layer_syntax_trains_a_conv_net(run_cli) -> None:
    result = run_cli(
        "train",
        "--layers",
        "conv:4:5:same,pool:2:avg,dense:10",
        "--activation",
        "relu",
        "--init",
        "he",
        "--cost",
        "log-likelihood",
        "--eta",
        "0.1",
        "--epochs",
        "1",
        "--train-size",
        "500",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout.strip().splitlines()[-1])["spec"]
    assert spec["layers"] == ["conv:4:5:same", "pool:2:avg", "dense:10"]


def test_ensemble_of_identical_models_equals_the_model(
    trained, run_cli, mnist, tmp_path: Path
) -> None:
    folder, _ = trained
    model = folder / "m.npz"
    single = json.loads(run_cli("evaluate", model, "--json").stdout.strip().splitlines()[-1])
    double = json.loads(run_cli("evaluate", model, model, "--json").stdout.strip().splitlines()[-1])
    assert double["test_accuracy"] == single["test_accuracy"]
    assert [m["test_accuracy"] for m in double["members"]] == [single["test_accuracy"]] * 2
    assert double["confusion_matrix"] == single["confusion_matrix"]

    path = tmp_path / "digit.png"
    Image.fromarray((mnist.test.images[0].reshape(28, 28) * 255).astype(np.uint8)).save(path)
    one = json.loads(run_cli("predict", model, path, "--json").stdout.strip().splitlines()[-1])
    two = json.loads(
        run_cli("predict", model, model, path, "--json").stdout.strip().splitlines()[-1]
    )
    assert np.allclose(
        one["predictions"][0]["probabilities"], two["predictions"][0]["probabilities"]
    )
    assert_one_line_error(run_cli("predict", model), "give at least one image")


def test_ensemble_preset_trains_its_members_resumably_and_evaluates(
    run_cli, tmp_path: Path
) -> None:
    """A tiny stand-in for cnn-best-ensemble (same members' recipe, smaller network and
    data): five member files, the ensemble's evaluation, and a re-run that keeps them."""
    small = ["--layers", "conv:4:5,pool:2,dense:10", "--epochs", "1", "--eta", "0.01"]
    small += ["--batch-size", "10", "--train-size", "500"]
    folder = tmp_path / "ensemble"
    first = run_cli("train", "--preset", "cnn-best-ensemble", *small, "--out", folder, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout.strip().splitlines()[-1])
    members = sorted(folder.glob("*.npz"))
    assert [p.name for p in members] == [f"cnn-best-seed{seed}.npz" for seed in range(5)]
    assert sorted(m["model"] for m in report["members"]) == [str(p) for p in members]
    assert len({m["test_accuracy"] for m in report["members"]}) > 1  # the seeds differ
    assert 0.7 < report["test_accuracy"] <= 1  # members alone: 73-82 % (seeds 0-2)
    assert not list(folder.glob("*.checkpoint.npz"))
    assert len(list(folder.glob("*.history.json"))) == 5

    again = run_cli("train", "--preset", "cnn-best-ensemble", *small, "--out", folder, "--json")
    assert again.returncode == 0 and again.stderr.count("already trained") == 5
    assert json.loads(again.stdout.strip().splitlines()[-1]) == report

    other = run_cli("train", "--preset", "cnn-best-ensemble", *small[:-1], "600", "--out", folder)
    assert_one_line_error(other, "cnn-best-seed0.npz", "another spec")
    assert_one_line_error(run_cli("train", "--preset", "cnn-best", "--spec", "x.toml"), "x.toml")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--layers", "784,30"], "needs 10, one per digit"),
        (["--layers", "784,30,9"], "needs 10, one per digit"),
        (["--layers", "conv:4:5,pool:2,dense:9"], "needs 10, one per digit"),
        (["--layers", "784,1000000000,10"], "weights; use fewer units"),
        (["--seed", "-5"], "--seed"),
        (["--data-dir", "/nonexistent/digitlab-data"], "does not exist"),
    ],
    ids=["no output layer", "9 outputs", "9 dense outputs", "a billion units", "seed", "data"],
)
def test_a_network_that_cannot_be_trained_is_refused_before_training(
    run_cli, tmp_path: Path, args, fragment
) -> None:
    result = run_cli("train", "--epochs", "1", "--train-size", "100", *args)
    assert_one_line_error(result, fragment)
    assert not Path("/nonexistent/digitlab-data").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("eta = 0.1\n".encode("utf-16"), "not UTF-8"),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (None, "is a folder"),
    ],
    ids=["utf-16", "deep", "folder"],
)
def test_spec_and_study_files_that_cannot_be_read(run_cli, tmp_path: Path, content, fragment):
    path = tmp_path / "bad.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert_one_line_error(run_cli("train", "--spec", path, "--epochs", "1"), fragment)
    assert_one_line_error(run_cli("study", "run", path), fragment)


@pytest.mark.parametrize("flag", ["--out", "--history"])
def test_an_output_that_cannot_be_written_is_refused_before_training(run_cli, tmp_path, flag):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("train", "--epochs", "1", "--train-size", "100", flag, blocker / "m.npz")
    assert_one_line_error(result, flag, "it is a file")
    result = run_cli("train", "--epochs", "1", "--train-size", "100", flag, tmp_path)
    assert_one_line_error(result, flag, "is a folder")


def assert_round_trips_through_the_train_flags(spec, monkeypatch) -> None:
    """spec -> `digitlab train` flags (as reports print them) -> the CLI's parser -> the
    same spec: the flags the reports print are flags the CLI takes, meaning the same."""
    import shlex

    from typer.testing import CliRunner

    from digitlab import cli
    from digitlab.experiments.report import train_command

    class Built(Exception):
        pass

    def capture(spec, *args, **kwargs):
        raise Built(spec)

    monkeypatch.setattr(cli, "Trainer", capture)
    monkeypatch.setattr(cli, "load_data", lambda data_dir: None)
    command = shlex.split(train_command(spec.model_dump()))
    assert command[:2] == ["digitlab", "train"]
    result = CliRunner().invoke(cli.app, command[1:])
    assert isinstance(result.exception, Built), result.output
    assert result.exception.args[0] == spec


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_the_train_flags(name, monkeypatch) -> None:
    spec = PRESETS[name].spec.with_overrides(seed=3)
    assert_round_trips_through_the_train_flags(spec, monkeypatch)


def test_the_record_holders_training_flags_round_trip(monkeypatch) -> None:
    """Every field the record holders' training added, away from its default, each with
    its own flag: --warmup-epochs, --rotation, --zoom, --translation, --label-smoothing
    and --ema."""
    spec = make_spec(
        {
            "cost": "log-likelihood",
            "schedule": "warmup-cosine",
            "warmup_epochs": 4,
            "rotation": 12.5,
            "zoom": 0.15,
            "translation": 2.5,
            "label_smoothing": 0.05,
            "ema": 0.995,
        }
    )
    changed = {"warmup_epochs", "rotation", "zoom", "translation", "label_smoothing", "ema"}
    assert all(getattr(spec, key) != getattr(Spec(), key) for key in changed)
    assert_round_trips_through_the_train_flags(spec, monkeypatch)


@pytest.mark.parametrize(
    "fields",
    [{"optimizer": "adam", "eta": 0.5}, {"optimizer": "adam"}, {"optimizer": "momentum"}],
)
def test_a_learning_rate_round_trips_whatever_the_optimizer_s_default(fields, monkeypatch) -> None:
    """Adam's default rate is not SGD's: the flags name the rate whenever it is not the
    optimizer's own default, and only then."""
    assert_round_trips_through_the_train_flags(make_spec(fields), monkeypatch)


def test_choose_takes_one_of_two_identical_models_and_refuses_a_single_one(
    trained, run_cli
) -> None:
    folder, _ = trained
    model = folder / "m.npz"
    single = json.loads(run_cli("evaluate", model, "--json").stdout.strip().splitlines()[-1])
    assert single["chosen_on_validation"] is None
    result = run_cli("evaluate", model, model, "--choose", "--json")
    assert result.returncode == 0, result.stderr
    chosen = json.loads(result.stdout.strip().splitlines()[-1])
    assert chosen["model"] == str(model) and chosen["members"] is None
    assert chosen["test_accuracy"] == single["test_accuracy"]
    candidates = chosen["chosen_on_validation"]["candidates"]
    assert [c["step"] for c in candidates] == [1, None]  # the copy adds nothing
    [step] = chosen["chosen_on_validation"]["steps"]
    assert step["ensemble_validation_accuracy"] == candidates[0]["validation_accuracy_alone"]
    text = run_cli("evaluate", model, model, "--choose", "--split", "validation")
    assert f"1. {model} (alone " in text.stdout and "not taken" in text.stdout
    assert "chosen on these same images" in text.stderr
    assert_one_line_error(run_cli("evaluate", model, "--choose"), "at least two models")


def test_training_with_a_moving_average_says_what_the_raw_weights_scored(run_cli) -> None:
    small = ["--layers", "784,30,10", "--cost", "log-likelihood", "--optimizer", "adam"]
    small += ["--eta", "0.01", "--epochs", "2", "--train-size", "500", "--ema", "0.9"]
    report = json.loads(run_cli("train", *small, "--json").stdout.strip().splitlines()[-1])
    raw = report["without_average"]
    assert raw["best_epoch"] in (1, 2)
    assert 0.5 < raw["validation_accuracy"] < 1 and 0.5 < raw["test_accuracy"] < 1
    text = run_cli("train", *small)
    assert "without the moving average (the raw weights): best epoch" in text.stdout
    plain = run_cli("train", *small[:-2], "--json")
    assert json.loads(plain.stdout.strip().splitlines()[-1])["without_average"] is None

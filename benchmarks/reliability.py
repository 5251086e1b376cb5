"""Reliability: every interface fed the bad input a careless or hostile user could give.

    python benchmarks/reliability.py [--clients 16] [--seconds 20]
                                     [--out docs/results/reliability.md]

Each input is tried once, as a user would try it, and its outcome classified:

- CLI (``digitlab ...`` in a subprocess, 60 s at most): an *answer* (exit 0), a *clean
  error* (exit 1 and one ``error:`` line), a *usage error* (exit 2, the CLI framework's
  usage message), a *traceback*, or a *hang* (still running at the limit);
- web service (a real ``digitlab serve`` on loopback): the status class of each answer,
  and whether the connection was let go when the client stalled;
- data: whether a file the command was given to continue from (a checkpoint) was left
  as it was when the command failed.

Then the service under load: ``--clients`` clients posting drawn digits for
``--seconds``, with the health check probed every 50 ms (benchmarks/serve_load.py).
The script exits non-zero if anything gave a traceback, a hang, a 5xx or lost data.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import numpy as np
from PIL import Image
from report import machine, table, write
from serve_load import drive

from digitlab.data import default_data_dir, load_mnist
from digitlab.data.idx import write_idx
from digitlab.nn.model_file import HEADER_KEY
from digitlab.serve.background import running_server

CLI_LIMIT = 60.0


@dataclass(frozen=True)
class Outcome:
    interface: str
    given: str
    kind: str  # answer, clean error, usage error, traceback, hang, 4xx, 5xx, let go, held
    detail: str
    lost: bool = False  # a file the command was given was changed by a failed command


def run_cli(*args: object, cwd: Path | None = None) -> tuple[str, str]:
    """(kind, last stderr line) of ``digitlab ARGS``."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "digitlab", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=CLI_LIMIT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        return "hang", f"still running after {CLI_LIMIT:g} s"
    last = (done.stderr.strip().splitlines() or [""])[-1]
    if "Traceback (most recent call last)" in done.stderr:
        return "traceback", last
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    if done.returncode == 0:
        return "answer", (done.stdout.strip().splitlines() or [""])[-1][:80]
    if done.returncode == 1 and len(errors) == 1:
        return "clean error", errors[0]
    if done.returncode == 2:
        return "usage error", last
    return f"exit {done.returncode}", last


# -- bad files ---------------------------------------------------------------------------


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def model_variant(good: Path, out: Path, header: dict | None = None, members=None, **kw) -> Path:
    """A copy of the model ``good`` with its header fields or members replaced."""
    with zipfile.ZipFile(good) as archive:
        contents = {i.filename: archive.read(i) for i in archive.infolist()}
    stored = json.loads(str(np.load(io.BytesIO(contents[HEADER_KEY + ".npy"]))))
    if header is not None:
        stored.update(header)
        contents[HEADER_KEY + ".npy"] = npy(np.array(json.dumps(stored)))
    for name, data in (members or {}).items():
        if data is None:
            contents.pop(name, None)
        else:
            contents[name] = data
    method = zipfile.ZIP_DEFLATED if kw.get("compress") else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return out


def bad_models(folder: Path, good: Path) -> dict[str, Path]:
    spec = json.loads(str(np.load(good)[HEADER_KEY]))["spec"]
    nan = np.zeros(10, np.float32)
    nan[0] = np.nan
    raw = folder / "text.npz"
    raw.write_text("not a model")
    empty = folder / "empty.npz"
    empty.write_bytes(b"")
    pipe = folder / "pipe.npz"
    os.mkfifo(pipe)
    claim = npy(np.zeros(10, np.float32)).replace(b"(10,)", b"(1000000, 1000000)")
    nested = '{"format": "digitlab-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return {
        "text file": raw,
        "empty file": empty,
        "a pipe": pipe,
        "a folder": folder,
        "missing file": folder / "missing.npz",
        "format_version a string": model_variant(good, folder / "v.npz", {"format_version": "1"}),
        "format_version null": model_variant(good, folder / "vn.npz", {"format_version": None}),
        "metrics a list": model_variant(good, folder / "m.npz", {"metrics": [1]}),
        "a billion-unit layer": model_variant(
            good, folder / "b.npz", {"spec": {**spec, "layers": [784, 10**9, 10]}}
        ),
        "9 outputs": model_variant(good, folder / "9.npz", {"spec": {**spec, "layers": [784, 9]}}),
        "parameters with a gap": model_variant(
            good, folder / "gap.npz", members={"param/1.npy": None, "param/2.npy": npy(nan)}
        ),
        "NaN weights": model_variant(good, folder / "nan.npz", members={"param/1.npy": npy(nan)}),
        "integer weights": model_variant(
            good, folder / "int.npz", members={"param/1.npy": npy(np.zeros(10, np.int64))}
        ),
        "structured dtype": model_variant(
            good, folder / "st.npz", members={"param/1.npy": npy(np.zeros(10, [("a", "f4")]))}
        ),
        "an array claiming 10^12 values": model_variant(
            good, folder / "t.npz", members={"param/1.npy": claim}
        ),
        "a zip bomb (50 MB behind 10 values)": model_variant(
            good,
            folder / "zb.npz",
            members={"param/1.npy": npy(np.zeros(10, np.float32)) + bytes(50_000_000)},
            compress=True,
        ),
        "a header nested 100,000 deep": model_variant(
            good, folder / "deep.npz", members={HEADER_KEY + ".npy": npy(np.array(nested))}
        ),
    }


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def bomb(format_name: str) -> bytes:
    """A small file whose header claims 20000 x 20000 pixels."""
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format_name)
    return buffer.getvalue()


def bad_images(folder: Path, digit: np.ndarray) -> dict[str, Path]:
    drawn = 255 - (digit.reshape(28, 28) * 255).astype(np.uint8)
    wide = (65535 - digit.reshape(28, 28) * 65535).astype(np.uint16)
    files = {
        "text file": b"this is text",
        "empty file": b"",
        "PNG bomb (20000x20000)": bomb("PNG"),
        "GIF bomb (20000x20000)": bomb("GIF"),
        "TIFF bomb (20000x20000)": bomb("TIFF"),
        "blank canvas": png(np.full((280, 280), 255, np.uint8)),
        "16-bit grey PNG": png(np.asarray(Image.fromarray(wide).resize((140, 140)))),
        "truncated PNG": png(drawn)[:60],
    }
    paths = {}
    for index, (name, data) in enumerate(files.items()):
        paths[name] = folder / f"image{index}.png"
        paths[name].write_bytes(data)
    os.mkfifo(folder / "pipe.png")
    paths["a pipe"] = folder / "pipe.png"
    paths["a folder"] = folder
    paths["missing file"] = folder / "missing.png"
    return paths


def bad_data_dirs(folder: Path, mnist_dir: Path) -> dict[str, Path]:
    def test_pair(name: str, images: bytes | np.ndarray, labels: np.ndarray) -> Path:
        place = folder / name
        place.mkdir()
        if isinstance(images, bytes):
            (place / "t10k-images-idx3-ubyte").write_bytes(images)
        else:
            write_idx(place / "t10k-images-idx3-ubyte", images)
        write_idx(place / "t10k-labels-idx1-ubyte", labels)
        return place

    real = (mnist_dir / "t10k-images-idx3-ubyte").read_bytes()
    labels = np.zeros(10_000, np.uint8)
    overflow = bytes([0, 0, 0x08, 4]) + struct.pack(">4I", 65536, 65536, 65536, 65536)
    return {
        "truncated images": test_pair("truncated", real[:5000], labels),
        "dimensions overflowing 64 bits": test_pair("overflow", overflow, labels),
        "a gzip bomb (250 MB)": test_pair(
            "gzbomb", gzip.compress(bytes([0, 0, 8, 1]) + bytes(250_000_000)), labels
        ),
        "no images": test_pair("zero", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)),
        "signed labels (-1)": test_pair(
            "signed", np.zeros((2, 28, 28), np.uint8), np.array([3, -1], np.int8)
        ),
        "a folder that does not exist": folder / "nowhere",
    }


# -- the interfaces ----------------------------------------------------------------------


def cli_outcomes(work: Path, mnist_dir: Path, digit: np.ndarray) -> list[Outcome]:
    outcomes = []

    def record(interface: str, given: str, *args: object) -> None:
        kind, detail = run_cli(*args, cwd=work)
        outcomes.append(Outcome(interface, given, kind, detail.replace(str(work), "…")))
        print(f"{interface:<22} {given:<40} {kind}", file=sys.stderr)

    good = work / "good.npz"
    record(
        "train",
        "a small valid run",
        "train",
        "--layers",
        "784,10,10",
        "--epochs",
        "1",
        "--train-size",
        "200",
        "--out",
        good,
    )
    image = work / "digit.png"
    Image.fromarray(255 - (digit.reshape(28, 28) * 255).astype(np.uint8)).save(image)
    models = work / "models"
    models.mkdir()
    for given, path in bad_models(models, good).items():
        record("evaluate (model)", given, "evaluate", path, "--data-dir", mnist_dir)
        record("predict (model)", given, "predict", path, image)
    images = work / "images"
    images.mkdir()
    for given, path in bad_images(images, digit).items():
        record("predict (image)", given, "predict", good, path)
    data = work / "data"
    data.mkdir()
    for given, path in bad_data_dirs(data, mnist_dir).items():
        record("evaluate (data)", given, "evaluate", good, "--data-dir", path)
    specs = work / "specs"
    specs.mkdir()
    (specs / "utf16.toml").write_bytes("eta = 0.1\n".encode("utf-16"))
    (specs / "deep.toml").write_bytes(b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n")
    (specs / "bad.toml").write_text("eta = [\n")
    blocker = specs / "a-file"
    blocker.write_text("")
    flags = {
        "--layers 784,30": ["--layers", "784,30"],
        "--layers 784,30,9": ["--layers", "784,30,9"],
        "--layers conv:4:5,pool:2,dense:9": ["--layers", "conv:4:5,pool:2,dense:9"],
        "a billion units": ["--layers", "784,1000000000,10"],
        "--seed -5": ["--seed", "-5"],
        "--eta -1": ["--eta", "-1"],
        "--epochs many": ["--epochs", "many"],
        "--activation swish": ["--activation", "swish"],
        "a spec file not UTF-8": ["--spec", specs / "utf16.toml"],
        "a spec file nested 5,000 deep": ["--spec", specs / "deep.toml"],
        "a spec file that is not TOML": ["--spec", specs / "bad.toml"],
        "a spec file that is a folder": ["--spec", specs],
        "--out under a file": ["--out", blocker / "m.npz"],
        "--out a folder": ["--out", specs],
        "--history under a file": ["--history", blocker / "h.csv"],
        "--data-dir that does not exist": ["--data-dir", specs / "nowhere"],
        "an unknown preset": ["--preset", "book-ch99"],
    }
    for given, extra in flags.items():
        record("train (flags)", given, "train", "--epochs", "1", "--train-size", "100", *extra)
    for given, path in {
        "a folder": specs,
        "not UTF-8": specs / "utf16.toml",
        "nested 5,000 deep": specs / "deep.toml",
        "missing": specs / "none.toml",
    }.items():
        record("study run", given, "study", "run", path, "--storage", f"sqlite:///{work}/s.db")
    outcomes += damaged_checkpoints(work)
    outcomes += colliding_outputs(work, good, image)
    return outcomes


def colliding_outputs(work: Path, good: Path, image: Path) -> list[Outcome]:
    """Outputs named where someone's file already is: a note, a picture of their digits,
    the model being tuned, the run's own other outputs.  Each must be a clean error that
    leaves every file it names as it was."""
    folder = work / "collisions"
    (folder / "mine" / "7").mkdir(parents=True)
    note, picture, model = folder / "notes.txt", folder / "mine" / "7" / "a.png", folder / "m.npz"
    note.write_text("a note")
    picture.write_bytes(image.read_bytes())
    model.write_bytes(good.read_bytes())
    small = ["--layers", "784,10,10", "--epochs", "1", "--train-size", "100"]
    tune = ["tune", "--model", model, "--images", folder / "mine", "--epochs", "1"]
    cases: dict[str, list[object]] = {
        "train --out a text file": ["train", *small, "--out", note],
        "train --out = --checkpoint": ["train", *small, "--out", model, "--checkpoint", model],
        "train --history at the model": ["train", *small, "--out", folder / "n.npz",
                                         "--history", model],
        "tune --out a picture of a digit": [*tune, "--out", picture],
        "tune --out = --model": [*tune, "--out", model],
        "evaluate --plots inside --images": ["evaluate", model, "--images", folder / "mine",
                                             "--plots", folder / "mine" / "7"],
        "serve --host empty": ["serve", "--host", ""],
    }  # fmt: skip
    outcomes = []
    for given, args in cases.items():
        before = {path: path.read_bytes() for path in (note, picture, model)}
        listed = sorted(folder.rglob("*"))
        kind, detail = run_cli(*args, cwd=work)
        lost = sorted(folder.rglob("*")) != listed or any(
            path.read_bytes() != content for path, content in before.items()
        )
        outcomes.append(Outcome("outputs", given, kind, detail.replace(str(work), "…"), lost))
        print(f"{'outputs':<22} {given:<40} {kind}", file=sys.stderr)
    return outcomes


def damaged_checkpoints(work: Path) -> list[Outcome]:
    """``train --resume`` on damaged checkpoints: a clean error, the file left as it was."""
    from digitlab.nn.model_file import read_container, write_container
    from digitlab.spec import make_spec
    from digitlab.train import Trainer
    from digitlab.train.callbacks import Callback
    from digitlab.train.checkpoint import FORMAT

    class StopAfterOne(Callback):
        def on_epoch_end(self, record) -> None:
            raise KeyboardInterrupt

    source = work / "run.checkpoint.npz"
    spec = make_spec({"layers": [784, 10, 10], "epochs": 3, "train_size": 200, "optimizer": "adam"})
    with contextlib.suppress(KeyboardInterrupt):
        Trainer(spec, load_mnist(), [StopAfterOne()], checkpoint_path=source).run()
    outcomes = []
    damages: dict[str, Callable[[dict, dict], None]] = {
        "optimiser state missing": lambda h, a: [a.pop(k) for k in list(a) if "mean" in k],
        "wrong RNG state": lambda h, a: h.update(rng_state={"bit_generator": "PCG64"}),
        "a weight of another shape": lambda h, a: a.update({"param/0": np.zeros((3, 3))}),
        "history not a list": lambda h, a: h.update(history=5),
        "spec missing": lambda h, a: h.pop("spec"),
    }
    for given, damage in damages.items():
        header, arrays = read_container(source, FORMAT)
        header.pop("format"), header.pop("format_version")
        damage(header, arrays)
        path = work / f"damaged-{len(outcomes)}.checkpoint.npz"
        write_container(path, FORMAT, header, arrays)
        before = path.read_bytes()
        kind, detail = run_cli("train", "--resume", path, cwd=work)
        detail = detail.replace(str(work), "…")
        lost = not path.exists() or path.read_bytes() != before
        outcomes.append(Outcome("train --resume", given, kind, detail, lost))
        print(f"{'train --resume':<22} {given:<40} {kind}", file=sys.stderr)
    return outcomes


def api_outcomes(url: str, digit: np.ndarray) -> list[Outcome]:
    drawn = png(255 - (digit.reshape(28, 28) * 255).astype(np.uint8))
    wide = (65535 - digit.reshape(28, 28) * 65535).astype(np.uint16)

    def chunks(total: int, head: bytes = b""):
        yield head
        for _ in range(total // 1_000_000):
            yield bytes(1_000_000)

    multipart = "multipart/form-data; boundary=x"
    part = b"--x\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n"
    requests = {
        "a drawn digit": {"files": {"image": ("d.png", drawn, "image/png")}},
        "not an image": {"files": {"image": ("d.png", b"text", "image/png")}},
        "an empty body": {"content": b"", "headers": {"content-type": "image/png"}},
        "PNG bomb": {"content": bomb("PNG"), "headers": {"content-type": "image/png"}},
        "GIF bomb": {"content": bomb("GIF"), "headers": {"content-type": "image/gif"}},
        "TIFF bomb": {"content": bomb("TIFF"), "headers": {"content-type": "image/tiff"}},
        "16-bit grey PNG": {"content": png(wide), "headers": {"content-type": "image/png"}},
        "Content-Type IMAGE/PNG": {"content": drawn, "headers": {"content-type": "IMAGE/PNG"}},
        "a 400-digit number": {
            "content": b'{"pixels": ' + b"9" * 400 + b"}",
            "headers": {"content-type": "application/json"},
        },
        "JSON nested 100,000 deep": {
            "content": b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "headers": {"content-type": "application/json"},
        },
        "NaN pixels": {
            "content": b'{"pixels": [[NaN]]}',
            "headers": {"content-type": "application/json"},
        },
        "a 50 MB chunked upload": {
            "content": chunks(50_000_000),
            "headers": {"content-type": "image/png"},
        },
        "a 50 MB chunked multipart upload": {
            "content": chunks(50_000_000, part),
            "headers": {"content-type": multipart},
        },
        "a broken multipart body": {
            "content": b"--x\r\nbroken",
            "headers": {"content-type": multipart},
        },
        "saliency=maybe": {
            "files": {"image": ("d.png", drawn, "image/png")},
            "params": {"saliency": "maybe"},
        },
    }
    outcomes = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for given, arguments in requests.items():
            try:
                response = client.post("/api/predict", **arguments)
                kind = f"{response.status_code // 100}xx"
                detail = f"{response.status_code} {response.text[:70]}"
            except httpx.HTTPError as exc:
                kind, detail = "no answer", type(exc).__name__
            outcomes.append(Outcome("API", given, kind, detail))
    port = int(url.rsplit(":", 1)[1])
    for given, payload in {
        "a connection that sends nothing": b"",
        "half a request head": b"POST /api/predict HTTP/1.1\r\nHost: x\r\n",
        "a body that stops": b"POST /api/predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: image/png\r\nContent-Length: 1000\r\n\r\n\x89PNG",
    }.items():
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(payload)
            connection.settimeout(30)
            started = time.monotonic()
            try:
                answer = connection.recv(200)
                waited = time.monotonic() - started
                status = answer.split(b"\r\n", 1)[0].decode() or "closed"
                outcomes.append(Outcome("API", given, "let go", f"{status} after {waited:.1f} s"))
            except TimeoutError:
                outcomes.append(Outcome("API", given, "held", "still open after 30 s"))
    return outcomes


# -- the report --------------------------------------------------------------------------

FAILURES = ("traceback", "hang", "5xx", "held", "no answer")


def summary_rows(outcomes: list[Outcome]) -> list[list[object]]:
    interfaces = list(dict.fromkeys(o.interface for o in outcomes))
    rows = []
    for interface in interfaces:
        mine = [o for o in outcomes if o.interface == interface]

        def count(*kinds: str, among: list[Outcome] = mine) -> int:
            return sum(o.kind in kinds for o in among)

        rows.append(
            [
                interface,
                len(mine),
                count("answer", "2xx"),
                count("clean error", "usage error", "4xx", "let go"),
                sum(o.kind == "traceback" or o.kind.startswith("exit") for o in mine),
                count("hang", "held", "no answer"),
                count("5xx"),
                sum(o.lost for o in mine),
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("docs/results/reliability.md"))
    args = parser.parse_args()
    load_mnist()  # fetched before anything is timed or tried
    digit = load_mnist().test.images[0]
    with tempfile.TemporaryDirectory() as scratch:
        outcomes = cli_outcomes(Path(scratch), default_data_dir(), digit)
    with running_server() as url:
        outcomes += api_outcomes(url, digit)
        load = drive(url, args.clients, args.seconds, 100_000, 280)
    header = [
        "interface",
        "inputs",
        "answers",
        "clean errors",
        "tracebacks",
        "hangs",
        "5xx",
        "data lost",
    ]
    details = [[o.interface, o.given, o.kind, o.detail.replace("|", "/")] for o in outcomes]
    text = f"""# Reliability: bad input, stalled clients, load

{machine()}

Reproduce: `python benchmarks/reliability.py --clients {args.clients} --seconds {args.seconds:g}`
(a few minutes). Each input below was tried once, as a user would: the CLI in a
subprocess (60 s at most), the web service as a real `digitlab serve` on loopback. A
*clean error* is exit status 1 with one `error:` line (or, for a mistyped flag value,
the CLI framework's usage message and exit status 2); an API *clean error* is a 4xx
answer with a JSON `detail`, or a stalled connection let go. *Data lost*: a checkpoint
given to `--resume` was changed by the failed command, or (*outputs*) a command named an
output where a file already was -- a note, a picture of the user's digits, the model it
reads -- and that file, or the folder, changed.

{table(header, summary_rows(outcomes))}

## Under load

{args.clients} clients posting a drawn digit (280×280 PNG) for {args.seconds:g} s while a
probe asks `/api/health` every 50 ms: {load.requests:,} requests, {load.errors} errors,
{load.throughput:.0f} requests/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms;
health check p99 {load.health_p99_ms:.1f} ms, at most {load.health_max_ms:.1f} ms.

## Every input and what it got

{table(["interface", "input", "outcome", "what the user saw"], details)}
"""
    write(args.out, text)
    bad = [o for o in outcomes if o.kind in FAILURES or o.kind.startswith("exit") or o.lost]
    if bad or load.errors:
        sys.exit(f"{len(bad)} inputs failed badly, {load.errors} errors under load")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

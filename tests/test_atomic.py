"""Files written atomically: all of the new content or none of it, and a replaced file
keeps the permissions its owner gave it."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from digitlab.atomic import atomic_write


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    atomic_write(path, lambda handle: handle.write(b"new"))
    assert path.read_bytes() == b"new" and mode_of(path) == 0o640


def test_a_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.npz", lambda handle: handle.write(b"x"))
    finally:
        os.umask(mask)
    assert mode_of(tmp_path / "new.npz") == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")

    def fail(handle) -> None:
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_an_error_names_the_file_asked_for_not_the_temporary_one(tmp_path: Path) -> None:
    def disk_full(handle) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as found:
        atomic_write(tmp_path / "m.npz", disk_full)
    assert found.value.errno == errno.ENOSPC and found.value.filename == str(tmp_path / "m.npz")
    with pytest.raises(OSError) as found:  # a folder that takes no new files
        atomic_write(Path("/proc/m.npz"), lambda handle: handle.write(b"x"))
    assert found.value.filename == "/proc/m.npz"


def test_a_symbolic_link_is_written_through_and_kept(tmp_path: Path) -> None:
    """latest.npz -> run42.npz: rewriting latest.npz (digitlab calibrate, say) updates
    run42.npz and leaves latest.npz a link to it, rather than a copy beside it."""
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "run42.npz"
    target.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    atomic_write(link, lambda handle: handle.write(b"new"))
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["run42.npz"]

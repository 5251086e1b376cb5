"""Writing files atomically: all of the new content, or the old file untouched.

The content goes to a temporary file in the target's directory, which is then renamed
over the target -- a single step on POSIX and Windows.  An interrupted write (a crash,
a kill, a full disk) therefore never leaves a truncated model, checkpoint or data file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create or replace ``path`` with what ``write`` writes to the handle it is given.
    A replaced file keeps its permissions; a new one gets the usual ones.  A symbolic
    link is written through, as writing to it would be: the file it points to is
    replaced and the link kept (``latest.npz -> run42.npz`` stays a link).  A hard link
    cannot be: the new content is a new file, and the other names keep the old one."""
    asked = Path(path)
    # realpath, unlike Path.resolve, gives up on a loop of links instead of raising
    path = Path(os.path.realpath(asked)) if asked.is_symlink() else asked
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _named(exc, asked) from None
    try:
        os.chmod(tmp, mode)  # mkstemp makes files private
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _named(exc, asked) from None
        raise


def _named(error: OSError, path: Path) -> OSError:
    """The system's error, told of the file that was asked for rather than the temporary
    one a user never named (a disk full, a folder that takes no files)."""
    if error.errno is None:
        return error
    return OSError(error.errno, error.strerror, str(path))

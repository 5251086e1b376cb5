"""How long-running work tells its caller what it is doing.

Fetching MNIST, running a study, writing its report and training an ensemble take
minutes.  Each takes a ``report`` function and calls it with one line of plain text per
step: the command line passes a printer, a notebook can pass ``print``, a test a list's
``append``.  The default, :func:`silent`, says nothing.
"""

from __future__ import annotations

from collections.abc import Callable

Report = Callable[[str], None]


def silent(message: str) -> None:
    """A report that says nothing."""

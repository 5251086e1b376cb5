"""Errors a user can act on.

Every problem caused by the user's input (a bad flag, a corrupt file, a diverging
run) is raised as a :class:`DigitlabError` whose message is one sentence saying what
is wrong and what to do.  The CLI prints that sentence and exits non-zero; only bugs
produce tracebacks.
"""


class DigitlabError(Exception):
    """A problem the user can fix; its message is shown as-is, on one line."""


class DataError(DigitlabError):
    """MNIST files are missing, corrupt or could not be fetched."""


class SpecError(DigitlabError, ValueError):
    """A network spec (from flags, a TOML file or a preset) is invalid.  Also a
    ``ValueError``, as pydantic's own validation error is, so code that caught that
    from ``Spec(...)`` still catches this."""


class ModelFileError(DigitlabError):
    """A file is not a readable digitlab model or checkpoint."""


class ImageError(DigitlabError):
    """A user image cannot be read or holds no digit."""


class ImageTooLargeError(ImageError):
    """A user image has more pixels than allowed (its header says so, before decoding)."""


class ArrayError(DigitlabError, ValueError):
    """Images or labels handed to a model as an array are not what it reads: the wrong
    shape, empty, not finite, or out of range.  Also a ValueError, as NumPy and
    scikit-learn users expect of a bad array."""


class DivergenceError(DigitlabError):
    """Training produced NaN or infinite values."""

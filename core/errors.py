"""The project's error types.

Every error a user can cause is a :class:`ChromaflowError` whose message says what was wrong and what to do.
Each class carries the exit code the command line returns for it (documented in the README).
"""


class ChromaflowError(Exception):
    """Base class of all user-facing errors."""

    exit_code: int = 1


class UsageError(ChromaflowError):
    """A bad option or a bad combination of options."""

    exit_code = 2


class InputError(ChromaflowError):
    """Missing, unreadable or unsupported input (file, frame, image, format)."""

    exit_code = 3


class ModelError(ChromaflowError):
    """Unknown model, absent weights, or weights that fail their checksum or do not load."""

    exit_code = 4


class DeviceError(ChromaflowError):
    """A requested device or precision is not available."""

    exit_code = 5


class OutputError(ChromaflowError):
    """The output cannot be written (missing folder, same path as the input, disk error)."""

    exit_code = 6

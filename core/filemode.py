"""Output files written under a temporary name get the mode a plainly created file would have.

``tempfile.mkstemp`` creates its file with mode 0600 (private to the owner), and ``os.replace`` keeps that mode,
so an output finished that way would be unreadable to the group and others whatever the user's umask says.
:func:`set_output_mode` gives the temporary file ``0666 & ~umask`` instead, as ``open()`` would.
"""

import os
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (read from /proc where it can be, so no other thread sees it change)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def output_mode() -> int:
    """The permission bits of a newly created regular file: ``0666`` less the umask."""
    return 0o666 & ~current_umask()


def set_output_mode(fd: int, path: str | Path) -> None:
    """Give the open temporary file ``fd`` (at ``path``) the mode of a plainly created file."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, output_mode())
    else:  # pragma: no cover - platforms without fchmod
        os.chmod(path, output_mode())

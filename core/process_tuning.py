"""Process-wide settings for a long frame-by-frame run (the ``chromaflow`` command; benchmarks that time it).

Why: profiling a CPU colorize (``perf``) found much of its time in the kernel zeroing fresh pages. Every frame
allocates megabytes of arrays and frees them again (a model batch's activations, a logits tensor of tens of MB);
glibc's default serves the largest from fresh ``mmap`` regions, gives each thread its own arena and hands freed
space back to the system, so the next frame faults the same amount in again. One arena that never maps blocks of
its own and trims only above 512 MB keeps that space for reuse; the peak memory does not rise for it (up to 512 MB
of freed memory may stay with the process, which a video run holds at its peak anyway). The figures are in
``benchmarks/README.md`` (issue 23's section).

Some more went to Python's cyclic collector walking the millions of objects torch and numba create at import;
:func:`freeze_startup_objects` moves those out of its reach once the run's objects are built.

Only the process's owner may do either (a library imported into someone's application must not change its
allocator, nor freeze its objects): the console script calls :func:`claim_process` first thing, and
:func:`freeze_startup_objects` does nothing in a process nobody claimed (e.g. a test calling ``main(argv)``).
"""

import ctypes
import gc
import platform

# mallopt(3) parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_THRESHOLD = 512 << 20


_claimed = False


def claim_process() -> bool:
    """Declare this process a chromaflow run and make glibc's malloc reuse freed frame buffers instead of returning
    them to the system (module docstring).

    Call it before worker threads start (threads that already allocated keep their arenas). Returns whether the
    allocator settings took (False off glibc).
    """
    global _claimed
    _claimed = True
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)


def freeze_startup_objects() -> None:
    """Move every object alive now out of the cyclic collector's scans (``gc.freeze``): the imported modules, the
    loaded model. They live until exit anyway; per-frame garbage is still collected as before. Only in a claimed
    process."""
    if not _claimed:
        return
    gc.collect()
    gc.freeze()

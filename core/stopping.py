"""Stop signals (SIGINT, SIGTERM, SIGHUP) handled the way Ctrl-C is: an exception that unwinds the run, so every
``finally`` removes its partial outputs, then the shell's exit code for the signal (130, 143, 129).

``timeout``, ``kill``, ``docker stop`` and hosts cancelling a job send SIGTERM; a closed terminal sends SIGHUP.
The command line installs the handlers first thing (:func:`handling_signals`), before torch or any other heavy
module is imported, so a signal during start-up is a clean exit as well. While outputs are being moved into place
(:func:`moving_into_place`) a signal is held until the move is done, so a run never stops with half of its outputs
renamed; the command line then exits with the signal's code. A second signal while the first is being handled
removes this process's registered partials (:mod:`chromaflow.core.partials`) and exits at once.

``CHROMAFLOW_TEST_PAUSE_AT=frame`` (or ``commit``) makes a run wait at that point, after its first processed frame
or just before its first rename, for a signal: the interruption tests use it where no outside event marks the
point. Unset, it costs one dictionary lookup.
"""

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

from chromaflow.core import partials

PAUSE_ENV = "CHROMAFLOW_TEST_PAUSE_AT"
_PAUSE_LIMIT_S = 120.0

SIGNALS: dict[int, tuple[int, str]] = {
    signal.SIGINT: (130, "interrupted"),
    signal.SIGTERM: (143, "terminated"),
}
if hasattr(signal, "SIGHUP"):
    SIGNALS[signal.SIGHUP] = (129, "hung up")


def exit_code_of(signum: int) -> int:
    return SIGNALS.get(signum, (128 + signum, ""))[0]


def describe(signum: int) -> str:
    """``interrupted`` for Ctrl-C; ``terminated (SIGTERM)``, ``hung up (SIGHUP)`` for the others."""
    text = SIGNALS.get(signum, (0, "stopped"))[1]
    return text if signum == signal.SIGINT else f"{text} ({signal.Signals(signum).name})"


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; raised in the main thread so the run unwinds as it does for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.signum)

    def __str__(self) -> str:
        return describe(self.signum)


class _State:
    def __init__(self) -> None:
        self.stopping: int | None = None  # the signal being acted on
        self.held: int | None = None  # a signal that arrived while outputs were moved into place
        self.holding = 0
        self.paused: set[str] = set()


_state = _State()


def _handle(signum: int, _frame: object) -> None:
    if _state.holding:
        if _state.held is None:
            _state.held = signum
        return
    if _state.stopping is not None or _state.held is not None:
        _exit_now(signum)
    _state.stopping = signum
    raise Stopped(signum)


def _exit_now(signum: int) -> None:
    """The second signal: remove what this process still has under partial names and leave at once."""
    partials.remove_tracked()
    with contextlib.suppress(OSError):
        os.write(
            2, f"chromaflow: {describe(signum)} again: stopped at once, partial files removed\n".encode()
        )
    os._exit(exit_code_of(signum))


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """Stop signals raise :class:`Stopped` in this (main) thread for the duration; the previous handlers come
    back afterwards. Outside the main thread, where Python cannot install handlers, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    global _state
    _state = _State()
    for signum in SIGNALS:
        signal.signal(signum, _handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def moving_into_place() -> Iterator[None]:
    """Hold stop signals while finished outputs are renamed to their final names."""
    _state.holding += 1
    try:
        yield
    finally:
        _state.holding -= 1


def requested() -> bool:
    """Whether a stop signal has arrived in this run (acted on, or held until outputs are in place)."""
    return _state.stopping is not None or _state.held is not None


def held() -> Stopped | None:
    """The signal that arrived while outputs were moved into place, if one did."""
    return None if _state.held is None else Stopped(_state.held)


def pause_at(point: str) -> None:
    """Wait here for a signal when ``$CHROMAFLOW_TEST_PAUSE_AT`` names ``point`` (once per point and process)."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted or point not in wanted.split(",") or point in _state.paused:
        return
    _state.paused.add(point)
    print(f"chromaflow: test pause at {point}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + _PAUSE_LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(0.02)

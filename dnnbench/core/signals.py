"""SIGTERM as an orderly stop for the front-ends: what finished is kept, one line says so.

The journal holds SIGTERM back while it writes a record (results/journal.py), so a terminated run
never leaves half a line; `--resume` continues it. Only the front-ends (CLI, pytest plugin) install
this; the engine lets `Terminated` pass, since it is not an Exception.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM)."""


def _raise(signum: int, frame) -> None:
    raise Terminated(signal.Signals(signum).name)


@contextlib.contextmanager
def terminate_on_sigterm(handler: Callable[[int, object], None] = _raise) -> Iterator[None]:
    """While inside, SIGTERM raises Terminated (or calls `handler`); the previous handler comes back after."""
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

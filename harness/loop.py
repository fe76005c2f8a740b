"""The harness's event loop: uvloop where it is installed, else asyncio's own.

Most of the generator's, the subscriber fleet's and the embedded Toxiproxy's
CPU is event-loop work (socket reads and writes, callbacks, timers), which
uvloop does in C.

Ctrl-C and SIGTERM cancel the main task instead of raising inside whatever
callback the loop was running: every ``finally`` (fleets closed, the target
stopped, a partial report written) runs, and :func:`run` then raises
:class:`Interrupted` naming the signal.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

__all__ = ["Interrupted", "received_signal", "run"]

T = TypeVar("T")

#: The signal that is stopping the current run, if any (see received_signal).
_received: list[int] = []


def received_signal() -> int | None:
    """The signal (SIGINT, SIGTERM) that is stopping the current :func:`run`, if any."""
    return _received[0] if _received else None


class Interrupted(Exception):
    """The run was stopped by a signal (``signum``: SIGINT or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + self.signum


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it can be imported."""
    received = _received
    received.clear()

    async def guarded() -> tuple[bool, T | None]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        signals = (signal.SIGINT, signal.SIGTERM)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(_cancel, task, signum, received)

        # Python-level handlers (not loop.add_signal_handler): they replace the
        # asyncio runner's own SIGINT handler, which uvloop would still call,
        # and the CLI's SIGTERM one; the callers' are put back afterwards.
        previous = {signum: signal.signal(signum, on_signal) for signum in signals}
        try:
            return True, await main
        except asyncio.CancelledError:
            # Ours: end the task normally, so that the loop shuts down in order
            # (uvloop's runner fails to when the main task ends cancelled).
            if received:
                return False, None
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    try:
        import uvloop
    except ImportError:
        finished, value = asyncio.run(guarded())
    else:
        finished, value = uvloop.run(guarded())
    if not finished:
        raise Interrupted(received[0])
    return value  # type: ignore[return-value]  # finished: main's own result


def _cancel(task: asyncio.Task[Any], signum: int, received: list[int]) -> None:
    if not received:
        received.append(signum)
        task.cancel()

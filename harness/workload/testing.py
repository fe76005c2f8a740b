"""A virtual-clock event loop: deterministic tests of timing code, no real waiting.

    result = run_virtual(main())          # asyncio.sleep(60) returns at once

The loop's clock (``loop.time()``) only moves when every task is waiting: it
then jumps to the next timer. ``loop.advance(s)`` moves it by hand, e.g. to
simulate a callback that blocks the loop for ``s`` seconds. Real I/O still
works (it is polled without blocking), but tests using this loop should not
need any.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualClockLoop", "run_virtual"]

T = TypeVar("T")

_IDLE_GUARD_S = 5.0


class _VirtualSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing scheduled: only real I/O (e.g. another thread) can wake us.
            ready = super().select(_IDLE_GUARD_S)
            if not ready:
                raise RuntimeError("virtual clock loop is idle: every task waits forever")
            return ready
        self.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer instead of waiting for it."""

    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward, as if the loop had been blocked for ``seconds``."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._virtual.now += seconds


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualClockLoop`."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(main)

"""Which event loop runs a process: uvloop when it is installed, else asyncio.

uvloop's transports and scheduler are C (libuv). Under load most of a process
of this pipeline is event-loop work (socket reads and writes, callbacks,
timers): py-spy put 35 % of the app's samples in asyncio itself at 150
completions/s. The embedded Toxiproxy and the load generator gain the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LOOPS", "LoopError", "run", "uvloop_available"]

T = TypeVar("T")

LOOPS: tuple[str, ...] = ("auto", "uvloop", "asyncio")
"""``auto``: uvloop if importable, else asyncio."""


class LoopError(ValueError):
    """An unknown loop name, or uvloop asked for but not installed."""


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def check(loop: str) -> str:
    """``loop`` if it can be used here; LoopError naming the problem otherwise."""
    if loop not in LOOPS:
        raise LoopError(f"loop: must be one of {', '.join(LOOPS)}, got {loop!r}")
    if loop == "uvloop" and not uvloop_available():
        raise LoopError("loop: uvloop is not installed (pip install uvloop), or use --loop asyncio")
    return loop


def run(main: Coroutine[Any, Any, T], *, loop: str = "auto") -> T:
    """``asyncio.run(main)`` on the chosen event loop."""
    check(loop)
    if loop != "asyncio" and uvloop_available():
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)

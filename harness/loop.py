"""The harness's event loop: uvloop where it is installed, else asyncio's own.

Most of the generator's, the subscriber fleet's and the embedded Toxiproxy's
CPU is event-loop work (socket reads and writes, callbacks, timers), which
uvloop does in C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it can be imported."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)

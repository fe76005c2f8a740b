"""uvicorn's WebSocket protocol, with the frames of one event-loop turn written at once.

An alert reaches a project's subscribed socket as two or three Socket.IO
events (``new_alert``, ``alerts_refresh``, ``workflow_updated``), queued
together; Engine.IO's writer sends them one frame at a time, and uvicorn
writes each frame to the socket as it comes: one ``send()`` system call per
frame. At 300 completions/s with 1,000 sockets those writes were the largest
single item of the app's CPU (py-spy: ~8 %, in ``transport.write``). Here
every write of a connection made during one turn of the event loop is kept and
written as one buffer at the end of the turn: the same bytes, in the same
order, a turn later (microseconds), in fewer system calls.

The HTTP side has the same pattern: uvicorn writes a response's status line
and headers on ``http.response.start`` and its body on ``http.response.body``,
two ``send()`` calls per response (py-spy at 300 completions/s: uvicorn's
``RequestResponseCycle.send`` was 8 % of the app's CPU, nearly all in those
writes). ``CoalescingHttpToolsProtocol`` puts its connection on the same
transport, so a response goes out in one write. A WebSocket upgraded from
such a connection keeps that transport (it is not wrapped twice).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

__all__ = ["CoalescingHttpToolsProtocol", "CoalescingTransport", "CoalescingWebSocketProtocol"]

if AutoWebSocketsProtocol is None:  # pragma: no cover - uvicorn[standard] ships websockets
    raise ImportError("uvicorn has no WebSocket implementation: install websockets")


class CoalescingTransport:
    """A transport whose writes of one loop turn go out as one ``write``.

    Everything else (``close``, ``is_closing``, ``get_extra_info``, flow
    control...) is the wrapped transport's; ``close`` and ``abort`` first
    deal with what is pending (written, or dropped on abort).
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Write what is pending now (a closing transport drops it, as it would)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingWebSocketProtocol(AutoWebSocketsProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's WebSocket protocol (the one it picks itself) on a CoalescingTransport.

    Pass it as ``uvicorn.Config(ws=CoalescingWebSocketProtocol)``.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_coalescing(transport, self.loop))


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP protocol on a CoalescingTransport: one write per response.

    Pass it as ``uvicorn.Config(http=CoalescingHttpToolsProtocol)``.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stand-in for the transport (the rest is delegated to the real one).
        super().connection_made(cast(asyncio.Transport, _coalescing(transport, self.loop)))


def _coalescing(
    transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop
) -> CoalescingTransport:
    """``transport`` as a CoalescingTransport (itself if it is one already)."""
    if isinstance(transport, CoalescingTransport):
        return transport
    return CoalescingTransport(cast(asyncio.Transport, transport), loop)

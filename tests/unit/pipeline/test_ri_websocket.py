"""The transport that writes what one loop turn wrote at once (WebSocket frames, HTTP responses)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from reference_impl.websocket import CoalescingHttpToolsProtocol, CoalescingTransport


class FakeTransport:
    """Records what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closing, "write on a closing transport"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def next_turn() -> None:
    """Let the callbacks already scheduled with call_soon run (one loop turn)."""
    await asyncio.sleep(0)


def _coalescing() -> tuple[CoalescingTransport, FakeTransport]:
    fake = FakeTransport()
    return CoalescingTransport(fake, asyncio.get_running_loop()), fake  # type: ignore[arg-type]


async def test_writes_of_one_turn_reach_the_socket_as_one_write_in_order() -> None:
    transport, fake = _coalescing()
    transport.write(b"a")
    transport.writelines([b"b", bytearray(b"c")])
    assert fake.writes == []
    await next_turn()
    assert fake.writes == [b"abc"]
    transport.write(b"d")
    await next_turn()
    assert fake.writes == [b"abc", b"d"]


async def test_close_writes_what_is_pending_first_and_abort_drops_it() -> None:
    transport, fake = _coalescing()
    transport.write(b"last frame")
    transport.close()
    assert fake.writes == [b"last frame"]
    assert fake.closing
    await next_turn()  # the scheduled flush finds nothing more to write
    assert fake.writes == [b"last frame"]

    transport, fake = _coalescing()
    transport.write(b"never sent")
    transport.abort()
    await next_turn()
    assert fake.writes == []
    assert fake.aborted


async def test_a_transport_closed_meanwhile_gets_no_write() -> None:
    transport, fake = _coalescing()
    transport.write(b"too late")
    fake.close()  # the peer went away before the turn ended
    await next_turn()
    assert fake.writes == []


async def test_everything_else_is_the_wrapped_transports() -> None:
    transport, fake = _coalescing()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    assert transport.is_closing() is False
    fake.close()
    assert transport.is_closing() is True


async def test_an_http_response_goes_out_in_one_write() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"hello"})

    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    config.load()
    protocol = CoalescingHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    fake = FakeTransport()
    protocol.connection_made(fake)  # type: ignore[arg-type]
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    for _ in range(100):  # bounded: the app task, then the flush
        if fake.writes:
            break
        await next_turn()
    [response] = fake.writes
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nhello")
    protocol.connection_lost(None)

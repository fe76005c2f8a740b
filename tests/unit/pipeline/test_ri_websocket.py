"""The WebSocket transport that writes the frames of one loop turn at once."""

from __future__ import annotations

import asyncio
from typing import Any

from reference_impl.websocket import CoalescingTransport


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

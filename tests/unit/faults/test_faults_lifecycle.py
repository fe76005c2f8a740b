"""Disable/enable, delete, reset, unreachable upstreams, concurrency, shutdown, threads."""

from __future__ import annotations

import asyncio

import pytest
from faults_support import IO_TIMEOUT_S, Hop

from harness.faults import EmbeddedToxiproxy, ToxiproxyClient, ToxiproxyThread
from harness.faults.testing import EchoServer


@pytest.fixture
def hop_seed() -> int:
    return 3


async def _echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"ping")
    async with asyncio.timeout(IO_TIMEOUT_S):
        assert await reader.readexactly(4) == b"ping"


async def _closed(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(IO_TIMEOUT_S):
        try:
            return await reader.read() == b""
        except ConnectionResetError:
            return True


async def test_disable_drops_connections_and_refuses_new_ones(hop: Hop) -> None:
    reader, writer = await hop.connect()
    await _echo_once(reader, writer)
    await hop.tp.disable("app")
    assert await _closed(reader)
    with pytest.raises(ConnectionRefusedError):
        await hop.connect()
    writer.close()

    await hop.tp.enable("app")  # same port again
    reader, writer = await hop.connect()
    await _echo_once(reader, writer)
    writer.close()


async def test_delete_closes_connections_and_port(hop: Hop) -> None:
    reader, writer = await hop.connect()
    await _echo_once(reader, writer)
    await hop.tp.delete_proxy("app")
    assert await _closed(reader)
    with pytest.raises(ConnectionRefusedError):
        await hop.connect()
    writer.close()


async def test_reset_heals_everything(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "timeout", attributes={"timeout": 0})
    await hop.tp.disable("app")
    await hop.tp.reset()
    reader, writer = await hop.connect()
    await _echo_once(reader, writer)
    writer.close()


async def test_unreachable_upstream_closes_the_client(hop: Hop) -> None:
    await hop.echo.stop()
    reader, writer = await hop.connect()
    assert await _closed(reader)
    writer.close()


async def test_client_close_closes_the_upstream(hop: Hop) -> None:
    reader, writer = await hop.connect()
    await _echo_once(reader, writer)
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(IO_TIMEOUT_S):
        await hop.echo.disconnected.wait()
        await hop.server.collection.proxies["app"].idle.wait()
    assert hop.echo.closed == 1


async def test_concurrent_connections_keep_their_own_bytes(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "latency", attributes={"latency": 5, "jitter": 5})

    async def client(i: int) -> None:
        reader, writer = await hop.connect()
        for j in range(20):
            message = f"{i:03d}:{j:03d}|".encode()
            writer.write(message)
            async with asyncio.timeout(IO_TIMEOUT_S):
                assert await reader.readexactly(len(message)) == message
        writer.close()

    async with asyncio.timeout(30):
        await asyncio.gather(*(client(i) for i in range(50)))
    assert hop.echo.connections == 50


async def test_stop_closes_live_connections(hop: Hop) -> None:
    reader, writer = await hop.connect()
    await _echo_once(reader, writer)
    await hop.server.stop()
    assert await _closed(reader)
    writer.close()


async def test_embedded_rejects_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedToxiproxy("0.0.0.0")


async def test_thread_runs_its_own_loop() -> None:
    thread = ToxiproxyThread(seed=5)
    url = await asyncio.to_thread(thread.start)
    try:
        async with ToxiproxyClient(url) as tp, EchoServer() as echo:
            proxy = await tp.create_proxy("t", upstream=echo.address)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            await _echo_once(reader, writer)
            writer.close()
    finally:
        await asyncio.to_thread(thread.stop)
    assert thread.seed == 5
    thread.stop()  # idempotent


def test_the_proxy_forwards_on_uvloop_and_keeps_bytes_sent_at_once() -> None:
    # uvloop may deliver the client's first bytes before the upstream is
    # dialled (pause_reading() in connection_made does not hold them back);
    # they must be forwarded, not dropped. Both directions, with and without
    # a toxic, on a uvloop event loop.
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[bytes]:
        got: list[bytes] = []
        async with (
            EchoServer() as echo,
            EmbeddedToxiproxy(seed=1) as server,
            ToxiproxyClient(server.url) as tp,
        ):
            proxy = await tp.create_proxy("app", upstream=echo.address)
            for toxic in (False, True):
                if toxic:
                    await tp.add_toxic("app", "latency", attributes={"latency": 5})
                reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
                writer.write(b"first bytes")
                async with asyncio.timeout(IO_TIMEOUT_S):
                    got.append(await reader.readexactly(11))
                writer.close()
                await writer.wait_closed()
        return got

    assert uvloop.run(main()) == [b"first bytes", b"first bytes"]

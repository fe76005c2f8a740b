"""Each toxic's effect, measured on a real TCP echo server through the embedded proxy.

Timing assertions are lower bounds only ("delays at least N ms"), which hold on
any machine; accuracy figures live in tests/benchmarks/faults.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from faults_support import IO_TIMEOUT_S, Hop

from harness.faults.toxics import slice_sizes


@pytest.fixture
def hop_seed() -> int:
    return 7


async def _round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    writer.write(payload)
    async with asyncio.timeout(IO_TIMEOUT_S):
        assert await reader.readexactly(len(payload)) == payload
    return loop.time() - start


async def _eof_or_reset(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(IO_TIMEOUT_S):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def test_no_toxic_passes_bytes_intact(hop: Hop) -> None:
    reader, writer = await hop.connect()
    payload = random.Random(1).randbytes(1 << 20)
    writer.write(payload)
    async with asyncio.timeout(IO_TIMEOUT_S):
        assert await reader.readexactly(len(payload)) == payload
    writer.close()


async def test_latency_delays_at_least_the_configured_time(hop: Hop) -> None:
    reader, writer = await hop.connect()
    await hop.tp.add_toxic("app", "latency", attributes={"latency": 60})
    assert await _round_trip(reader, writer, b"ping") >= 0.060
    writer.close()


async def test_latency_on_both_streams_adds_up(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "latency", stream="upstream", attributes={"latency": 40})
    await hop.tp.add_toxic("app", "latency", stream="downstream", attributes={"latency": 40})
    reader, writer = await hop.connect()
    assert await _round_trip(reader, writer, b"ping") >= 0.080
    writer.close()


async def test_jitter_stays_within_bounds_below(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "latency", attributes={"latency": 50, "jitter": 20})
    reader, writer = await hop.connect()
    for _ in range(5):
        assert await _round_trip(reader, writer, b"ping") >= 0.030
    writer.close()


async def test_latency_update_and_removal_apply_to_live_connections(hop: Hop) -> None:
    reader, writer = await hop.connect()
    toxic = await hop.tp.add_toxic("app", "latency", attributes={"latency": 30})
    assert await _round_trip(reader, writer, b"a") >= 0.030
    await hop.tp.update_toxic("app", toxic.name, attributes={"latency": 90})
    assert await _round_trip(reader, writer, b"b") >= 0.090
    await hop.tp.remove_toxic("app", toxic.name)
    await _round_trip(reader, writer, b"c")  # still works, nothing lost
    writer.close()


async def test_bandwidth_limits_the_rate(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "bandwidth", attributes={"rate": 500})
    reader, writer = await hop.connect()
    payload = bytes(100_000)
    # 100 KB at 500 KB/s cannot take less than 0.2 s (a little slack for the clock).
    assert await _round_trip(reader, writer, payload) >= 0.19
    writer.close()


async def test_removing_a_toxic_mid_transfer_loses_no_bytes(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "bandwidth", attributes={"rate": 100})
    reader, writer = await hop.connect()
    payload = random.Random(2).randbytes(50_000)
    writer.write(payload)
    async with asyncio.timeout(IO_TIMEOUT_S):
        head = await reader.readexactly(1000)  # the transfer is under way
        await hop.tp.remove_toxic("app", "bandwidth_downstream")
        rest = await reader.readexactly(len(payload) - 1000)
    assert head + rest == payload
    writer.close()


async def test_toxics_added_and_removed_mid_stream_keep_every_byte_in_order(hop: Hop) -> None:
    """The no-toxic fast path hands over to the toxic chain (and back) between
    two chunks: a stream crossing every switch arrives whole and in order.

    The sender keeps a window of chunks in flight, so chunks are inside the
    proxy at each switch; the last switch removes the toxics while a hold
    keeps several chunks inside the chain."""
    reader, writer = await hop.connect()
    rng = random.Random(3)
    chunks = [rng.randbytes(2000) for _ in range(150)]
    window = 8
    received = bytearray()
    toxics: list[str] = []

    async def switch(index: int) -> None:
        if index == 20:
            up = await hop.tp.add_toxic(
                "app", "latency", stream="upstream", attributes={"latency": 3, "jitter": 2}
            )
            toxics.append(up.name)
        elif index == 60:
            down = await hop.tp.add_toxic("app", "bandwidth", attributes={"rate": 500})
            toxics.append(down.name)
        elif index == 90:
            # Holds the downstream from here: chunks pile up inside the chain.
            hold = await hop.tp.add_toxic("app", "bandwidth", name="hold", attributes={"rate": 0})
            toxics.append(hold.name)
        elif index == 91:
            for name in toxics:
                await hop.tp.remove_toxic("app", name)

    async with asyncio.timeout(IO_TIMEOUT_S * 3):
        for index, chunk in enumerate(chunks):
            await switch(index)
            writer.write(chunk)
            if index == 90:
                continue  # nothing comes back through the hold
            # Keep at most `window` chunks unanswered.
            while len(received) < (index + 1 - window) * len(chunk):
                received.extend(await reader.read(1 << 16))
        while len(received) < len(chunks) * len(chunks[0]):
            received.extend(await reader.read(1 << 16))
    assert bytes(received) == b"".join(chunks)
    writer.close()


async def test_slow_close_delays_the_close(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "slow_close", attributes={"delay": 80})
    reader, writer = await hop.connect()
    await _round_trip(reader, writer, b"x")
    loop = asyncio.get_running_loop()
    start = loop.time()
    writer.write_eof()  # the echo server closes in turn; the close comes back slowly
    assert await _eof_or_reset(reader) == b""
    assert loop.time() - start >= 0.080
    writer.close()


async def test_timeout_swallows_data_then_closes(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "timeout", attributes={"timeout": 100})
    reader, writer = await hop.connect()
    loop = asyncio.get_running_loop()
    start = loop.time()
    writer.write(b"lost")
    assert await _eof_or_reset(reader) == b""  # nothing came back, then EOF
    assert loop.time() - start >= 0.100
    writer.close()


async def test_timeout_zero_holds_until_removed(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "timeout", stream="upstream", attributes={"timeout": 0})
    reader, writer = await hop.connect()
    writer.write(b"lost")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await reader.read(1)
    # Removing a timeout toxic closes the held connection, as in Toxiproxy.
    await hop.tp.remove_toxic("app", "timeout_upstream")
    assert await _eof_or_reset(reader) == b""
    writer.close()


async def test_reset_peer_resets_with_rst(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "reset_peer", attributes={"timeout": 50})
    reader, writer = await hop.connect()
    loop = asyncio.get_running_loop()
    start = loop.time()
    writer.write(b"hello")
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(IO_TIMEOUT_S):
            await reader.read(100)
    assert loop.time() - start >= 0.050
    writer.close()


async def test_slicer_cuts_writes_into_small_pieces(hop: Hop) -> None:
    attrs = {"average_size": 100, "size_variation": 20, "delay": 1000}
    await hop.tp.add_toxic("app", "slicer", stream="upstream", attributes=attrs)
    reader, writer = await hop.connect()
    payload = random.Random(3).randbytes(5000)
    await _round_trip(reader, writer, payload)
    # ~50 pieces 1 ms apart: the echo server cannot have read them in one go.
    assert len(hop.echo.reads) > 1
    writer.close()


def test_slice_sizes_respects_average_and_variation() -> None:
    rng = random.Random(4)
    sizes = slice_sizes(10_000, 100, 20, rng)
    assert sum(sizes) == 10_000
    assert all(80 <= s <= 120 for s in sizes[:-1])
    assert 1 <= sizes[-1] <= 120
    assert slice_sizes(0, 10, 0, rng) == []


async def test_limit_data_closes_after_n_bytes(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "limit_data", attributes={"bytes": 100})
    reader, writer = await hop.connect()
    writer.write(bytes(300))
    async with asyncio.timeout(IO_TIMEOUT_S):
        received = await reader.read()
    assert len(received) == 100
    writer.close()


async def test_toxicity_zero_never_applies(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "timeout", toxicity=0.0, attributes={"timeout": 0})
    reader, writer = await hop.connect()
    await _round_trip(reader, writer, b"through")
    writer.close()


async def test_packet_loss_total_drops_everything(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "packet_loss", attributes={"loss_rate": 1.0})
    reader, writer = await hop.connect()
    writer.write(b"gone")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await reader.read(1)
    writer.close()


async def test_corrupt_flips_bits(hop: Hop) -> None:
    await hop.tp.add_toxic("app", "corrupt", attributes={"probability": 1.0})
    reader, writer = await hop.connect()
    payload = bytes(64)
    writer.write(payload)
    async with asyncio.timeout(IO_TIMEOUT_S):
        received = await reader.readexactly(64)
    assert all(a != b for a, b in zip(received, payload, strict=True))
    writer.close()

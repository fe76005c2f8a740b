"""Fault packages and schedules, through the async client against the embedded server."""

from __future__ import annotations

import asyncio

import pytest
from faults_support import IO_TIMEOUT_S, Hop

from harness.faults import (
    At,
    ConflictError,
    FaultEvent,
    InvalidFaultError,
    NotFoundError,
    bandwidth,
    down,
    latency,
    limit_data,
    packet_loss,
    partition,
    reset_peers,
    run_schedule,
    slicer,
    slow_close,
    timeout,
)


@pytest.fixture
def hop_seed() -> int:
    return 9


@pytest.fixture
def hop_proxy() -> str:
    return "postgres"


async def test_client_errors_carry_status_and_message(hop: Hop) -> None:
    with pytest.raises(NotFoundError) as not_found:
        await hop.tp.get_proxy("nope")
    assert (not_found.value.status, not_found.value.message) == (404, "proxy not found")
    with pytest.raises(ConflictError):
        await hop.tp.create_proxy("postgres", upstream="127.0.0.1:1")
    assert "alertbench" in await hop.tp.version()


async def test_client_covers_the_api(hop: Hop) -> None:
    toxic = await hop.tp.add_toxic("postgres", "latency", attributes={"latency": 1})
    assert await hop.tp.get_toxic("postgres", toxic.name) == toxic
    assert await hop.tp.toxics("postgres") == [toxic]
    proxies = await hop.tp.proxies()
    assert proxies["postgres"].toxics == (toxic,)
    populated = await hop.tp.populate([{"name": "redis", "upstream": "127.0.0.1:9"}])
    assert populated[0].name == "redis"
    assert (await hop.tp.update_proxy("redis", enabled=False)).enabled is False
    await hop.tp.delete_proxy("redis")
    await hop.tp.reset()
    assert await hop.tp.toxics("postgres") == []


async def test_latency_package_as_context_manager(hop: Hop) -> None:
    events: list[FaultEvent] = []
    fault = latency(hop.tp, "postgres", ms=50, jitter_ms=0)
    fault.on_event = events.append
    reader, writer = await hop.connect()
    loop = asyncio.get_running_loop()
    async with fault:
        start = loop.time()
        writer.write(b"q")
        async with asyncio.timeout(IO_TIMEOUT_S):
            await reader.readexactly(1)
        assert loop.time() - start >= 0.050
    assert await hop.tp.toxics("postgres") == []
    assert [e.phase for e in events] == ["start", "heal"]
    assert events[0].label == "latency postgres 50±0 ms"
    assert events[0].kind == "latency"
    writer.close()


async def test_partition_blackholes_then_heal_closes(hop: Hop) -> None:
    reader, writer = await hop.connect()
    async with partition(hop.tp, "postgres"):
        writer.write(b"lost")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await reader.read(1)
    async with asyncio.timeout(IO_TIMEOUT_S):
        assert await reader.read() == b""  # healed: the held connection is closed
    writer.close()
    reader, writer = await hop.connect()  # and new connections work
    writer.write(b"ok")
    async with asyncio.timeout(IO_TIMEOUT_S):
        assert await reader.readexactly(2) == b"ok"
    writer.close()


async def test_down_refuses_then_heals(hop: Hop) -> None:
    async with down(hop.tp, "postgres"):
        with pytest.raises(ConnectionRefusedError):
            await hop.connect()
    _, writer = await hop.connect()
    writer.close()


async def test_reset_peers_package(hop: Hop) -> None:
    reader, writer = await hop.connect()
    async with reset_peers(hop.tp, "postgres"):
        writer.write(b"x")
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(IO_TIMEOUT_S):
                await reader.read(1)
    writer.close()


async def test_heal_is_idempotent_after_reset(hop: Hop) -> None:
    fault = timeout(hop.tp, "postgres", timeout_ms=0)
    await fault.start()
    await hop.tp.reset()  # someone healed everything already
    await fault.heal()
    await fault.heal()
    assert [e.phase for e in fault.events] == ["start", "heal", "heal"]


async def test_overlapping_faults_of_one_kind_do_not_collide(hop: Hop) -> None:
    async with latency(hop.tp, "postgres", ms=1), latency(hop.tp, "postgres", ms=2):
        assert len(await hop.tp.toxics("postgres")) == 2
    assert await hop.tp.toxics("postgres") == []


@pytest.mark.parametrize(
    "make",
    [
        lambda tp: bandwidth(tp, "postgres", kb_per_s=100, stream="both"),
        lambda tp: slow_close(tp, "postgres", delay_ms=10),
        lambda tp: slicer(tp, "postgres", average_size=10, size_variation=2, delay_us=10),
        lambda tp: limit_data(tp, "postgres", bytes=1000, stream="upstream"),
        lambda tp: packet_loss(tp, "postgres", loss_rate=0.1),
    ],
)
async def test_every_package_installs_and_heals(hop: Hop, make: object) -> None:
    fault = make(hop.tp)  # type: ignore[operator]
    async with fault:
        assert len(await hop.tp.toxics("postgres")) >= 1
    assert await hop.tp.toxics("postgres") == []


async def test_schedule_runs_and_heals_in_order(hop: Hop) -> None:
    events = await run_schedule(
        [
            At(0.0, latency(hop.tp, "postgres", ms=5, for_s=0.05)),
            At(0.02, down(hop.tp, "postgres", for_s=0.05)),
        ]
    )
    assert [(e.kind, e.phase) for e in events] == [
        ("latency", "start"),
        ("down", "start"),
        ("latency", "heal"),
        ("down", "heal"),
    ]
    assert (await hop.tp.get_proxy("postgres")).enabled is True
    assert await hop.tp.toxics("postgres") == []


async def test_cancelled_schedule_still_heals(hop: Hop) -> None:
    started = asyncio.Event()
    fault = partition(hop.tp, "postgres", for_s=60)
    fault.on_event = lambda event: started.set()
    task = asyncio.create_task(run_schedule([At(0, fault)]))
    async with asyncio.timeout(IO_TIMEOUT_S):
        await started.wait()
    assert len(await hop.tp.toxics("postgres")) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await hop.tp.toxics("postgres") == []


@pytest.mark.parametrize(
    "make",
    [
        lambda tp: latency(tp, "p", ms=-1),
        lambda tp: latency(tp, "p", ms=1, toxicity=2),
        lambda tp: latency(tp, "p", ms=1, stream="sideways"),  # type: ignore[arg-type]
        lambda tp: bandwidth(tp, "p", kb_per_s=-5),
        lambda tp: slicer(tp, "p", average_size=0),
        lambda tp: partition(tp, "p", for_s=-1),
        lambda tp: packet_loss(tp, "p", loss_rate=1.5),
    ],
)
def test_bad_arguments_raise_one_error_type(make: object) -> None:
    with pytest.raises(InvalidFaultError):
        make(None)  # type: ignore[operator]


async def test_schedule_requires_durations(hop: Hop) -> None:
    with pytest.raises(InvalidFaultError, match="needs for_s"):
        await run_schedule([At(0, latency(hop.tp, "postgres", ms=1))])

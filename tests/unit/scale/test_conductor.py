"""The conductor names a shard that failed, with its error (a real shard
process), and takes the shards' messages in any order they arrive (a fake
link behind the ``Link`` protocol)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.contract import SeedResult, TokenScheme
from harness.contract.seed import LineItem
from harness.scale import ProcessLink, ShardError, ShardPlan
from harness.scale.conductor import Mailbox
from harness.scenario import RunParams
from harness.stack._net import free_port

pytestmark = pytest.mark.timeout(120)


async def test_a_shard_that_cannot_reach_the_app_is_named_with_its_error(tmp_path: Path) -> None:
    items = [LineItem(i, 1, 1, f"step {i}", "project_manager", 1, True) for i in (1, 2, 3)]
    plan = ShardPlan(
        index=0,
        shards=1,
        app_urls=[f"http://127.0.0.1:{free_port()}"],  # nothing listens there
        direct_dsn="postgresql://nobody@127.0.0.1:1/none",
        target="reference",
        tokens=TokenScheme(secret="s" * 32),
        seeded=SeedResult(
            project_ids=[1, 2],
            members={1: {"project_manager": 11}, 2: {"project_manager": 12}},
            tracker_ids={1: 1, 2: 2},
            line_items=items,
        ),
        params=RunParams(projects=2, rate_per_s=5.0, duration_s=1.0),
        history_path=str(tmp_path / "shard-0.jsonl"),
    )
    link = ProcessLink(tmp_path)
    try:
        await link.start([plan])
        with pytest.raises(
            ShardError, match=r"(?s)shard 0 exited \(1\) .* for 'ready'.*Cannot connect"
        ):
            await Mailbox(link).gather("ready", 1, 60.0)
    finally:
        await link.stop()


class _Replay:
    """A link that hands over a fixed sequence of messages, then none."""

    def __init__(self, messages: Sequence[tuple[int, dict[str, Any]]]) -> None:
        self._queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        for message in messages:
            self._queue.put_nowait(message)

    async def start(self, plans: Sequence[ShardPlan]) -> None: ...
    async def send(self, message: dict[str, Any]) -> None: ...

    async def receive(self) -> tuple[int, dict[str, Any]]:
        return await self._queue.get()

    def processes(self) -> dict[str, int]:
        return {}

    async def finish(self, requests: int) -> dict[str, Any]:
        return {}

    async def log_tail(self, index: int) -> str:
        return f"(shard {index}'s log)"

    async def stop(self) -> None: ...


async def test_a_message_of_a_later_step_that_arrives_early_waits_for_its_step() -> None:
    # Shard 0 has little to connect: it is ready before shard 1 said hello.
    mail = Mailbox(
        _Replay(
            [
                (0, {"kind": "hello"}),
                (0, {"kind": "ready", "clients": 3}),
                (1, {"kind": "hello"}),
                (1, {"kind": "ready", "clients": 4}),
                (1, {"kind": "done"}),
                (1, {"kind": "exit", "code": 0}),  # ended after its "done": fine
                (0, {"kind": "done"}),
            ]
        )
    )
    assert set(await mail.gather("hello", 2, 5.0)) == {0, 1}
    ready = await mail.gather("ready", 2, 5.0)
    assert {i: m["clients"] for i, m in ready.items()} == {0: 3, 1: 4}
    assert set(await mail.gather("done", 2, 5.0)) == {0, 1}


async def test_a_shard_that_ends_before_its_done_is_named() -> None:
    mail = Mailbox(_Replay([(0, {"kind": "hello"}), (0, {"kind": "exit", "code": 0})]))
    await mail.gather("hello", 1, 5.0)
    with pytest.raises(ShardError, match=r"shard 0 exited \(0\) while the conductor waited"):
        await mail.gather("ready", 1, 5.0)


async def test_a_late_shard_is_named_with_its_log() -> None:
    mail = Mailbox(_Replay([(0, {"kind": "hello"})]))
    with pytest.raises(ShardError, match=r"(?s)shards \[1\] did not report 'hello'.*shard 1's log"):
        await mail.gather("hello", 2, 0.2)


async def test_a_shard_s_task_dump_shows_the_whole_await_chain(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.scale.plan import DUMP_END
    from harness.scale.shard import _dump_tasks

    gate, waiting = asyncio.Event(), asyncio.Event()

    async def innermost_wait() -> None:
        waiting.set()
        await gate.wait()

    async def outer_step() -> None:
        await innermost_wait()

    task = asyncio.create_task(outer_step(), name="the-step")
    await waiting.wait()  # it has suspended on the gate
    _dump_tasks()
    gate.set()
    await task
    err = capsys.readouterr().err
    dump = err[err.index("--- the-step:") :]
    assert "in outer_step" in dump
    assert "in innermost_wait" in dump  # not only the outermost frame
    assert err.rstrip().endswith(DUMP_END)

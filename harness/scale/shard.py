"""One shard of a sharded load run: ``python -m harness.scale.shard``.

It reads its :class:`~harness.scale.plan.ShardPlan` (the first line on
stdin), then runs the load scenario's work for its slice of the projects,
in step with the other shards. Reports go out on stdout, one JSON object a
line; orders come in on stdin:

====================  =========================================================
shard says            after
====================  =========================================================
``hello``             reading the plan (with its clocks, pid and host)
``ready``             its fleet is connected and its warm-up is done
``generated``         ``go``: batch generation of its projects, drained
``loaded``            ``measure``: its share of the measured open-loop load
                      (with its commits, so others can wait for theirs)
``done``              ``close``: every commit it was told of whose assignee it
                      has a client for arrived; fleet closed, history written
                      (with the shard's own garbage-collector pauses)
====================  =========================================================

With ``stats`` in the plan it also sends ``stats`` lines (every half second):
``[type, name, ms, ok]`` rows for Locust, the measured completions (latency
from the intended start) and every live event (receipt minus the commit time
of the alert it announces: the target's ``committedAtMs`` where it gives it,
else the arrival of the response that created it).

Nothing else may write to stdout: logging goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, TypeVar, cast

from harness import loop as event_loop
from harness.history import Commit, Event, History, Op, Receive, announced_alert, write_jsonl
from harness.metrics.gcwatch import GcWatch
from harness.scale.plan import DUMP_END, ShardPlan, decode, encode
from harness.scenario import ScenarioContext
from harness.stack import Stack
from harness.targets import Target
from harness.workload import constant_rate, run_open_loop

__all__ = ["main", "run_shard"]

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

#: How long a shard waits for the conductor's next order, in seconds.
ORDER_TIMEOUT_S = 600.0


class _Addresses:
    """The part of a :class:`Stack` a shard's context uses: the app's URLs."""

    app: None = None

    def __init__(self, urls: list[str]) -> None:
        self.app_urls = urls

    @property
    def app_url(self) -> str:
        return self.app_urls[0]

    def local_processes(self) -> dict[str, int]:
        return {}


class _Stats:
    """Per-request figures for Locust: measured completions and live events."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.fired = 0
        self._commits: dict[int, float] = {}
        self._waiting: dict[int, list[tuple[str, float]]] = defaultdict(list)
        self._invokes: dict[int, Op] = {}

    def add(self, kind: str, name: str, ms: float, ok: bool) -> None:
        self.rows.append([kind, name, round(max(ms, 0.0), 3), ok])
        self.fired += 1

    def commit(self, alert_id: int, wall_s: float) -> None:
        if alert_id in self._commits:
            return
        self._commits[alert_id] = wall_s
        for event, received in self._waiting.pop(alert_id, ()):
            self.add("push", event, (received - wall_s) * 1000.0, True)

    def see(self, event: Event) -> None:
        if isinstance(event, Commit):
            self.commit(int(event.alert_id), event.wall_s)
        elif isinstance(event, Receive):
            alert = announced_alert(event)
            if event.via != "live" or event.repeat or alert is None:
                return
            committed = self._commits.get(alert)
            if committed is None:  # the push beat the response, or another shard's commit
                self._waiting[alert].append((event.event, event.wall_s))
            else:
                self.add("push", event.event, (event.wall_s - committed) * 1000.0, True)
        elif isinstance(event, Op) and event.f == "complete":
            if event.type == "invoke":
                self._invokes[event.op_id] = event
                return
            invoke = self._invokes.pop(event.op_id, None)
            if invoke is not None:
                start = invoke.intended_mono_s or invoke.mono_s
                self.add("POST", "complete", (event.mono_s - start) * 1000.0, event.type == "ok")

    def unmatched(self) -> int:
        return sum(len(v) for v in self._waiting.values())

    def take(self) -> list[list[Any]]:
        rows, self.rows = self.rows, []
        return rows


class _Channel:
    """The shard's end of the conversation: stdout out, stdin in."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def send(self, message: dict[str, Any]) -> None:
        sys.stdout.buffer.write(encode(message))
        sys.stdout.buffer.flush()

    async def order(self, expected: str) -> dict[str, Any]:
        async with asyncio.timeout(ORDER_TIMEOUT_S):
            line = await self._reader.readline()
        if not line:
            raise ConnectionError(f"the conductor went away while the shard waited for {expected}")
        message = decode(line)
        if message["kind"] != expected:
            raise ConnectionError(f"expected {expected}, got {message['kind']}")
        return message


def _context(plan: ShardPlan, history: History) -> ScenarioContext:
    # The stack and the target live with the conductor; a shard's context
    # only uses their addresses, its tokens, its history and its data.
    return ScenarioContext(
        name="load",
        params=plan.params,
        stack=cast(Stack, _Addresses(plan.app_urls)),
        history=history,
        database="",
        seeded=plan.seeded,
        target=Target(name=plan.target, kind="url", source="shard"),
        tokens=plan.tokens,
        direct_dsn=plan.direct_dsn,
    )


async def run_shard(plan: ShardPlan, channel: _Channel) -> None:
    """The load scenario's work for one shard (see the module docstring)."""
    # Imported here: scenarios import the harness, not the other way round.
    from scenarios._round_robin import RoundRobin
    from scenarios.load import LoadScenario, load_plan

    params, seeded = plan.params, plan.seeded
    stats = _Stats() if plan.stats else None
    history = History(on_append=stats.see if stats is not None else None)
    ctx = _context(plan, history)
    channel.send(
        {
            "kind": "hello",
            "mono": time.monotonic(),
            "wall": time.time(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
    )
    flusher = asyncio.create_task(_flush_stats(stats, channel)) if stats else None
    rate = params.rate_per_s / plan.shards
    workload = RoundRobin(seeded)
    warmup, total, subscribers = load_plan(params, workload, rate)
    connected = {s.user_id for s in subscribers}
    scenario = LoadScenario()
    # As in the runner: the shard's own collections timed, full ones rare.
    gc_watch = GcWatch(tune=True)
    gc_watch.start()
    try:
        fleet = ctx.fleet(subscribers)
        started = await fleet.start()
        async with ctx.http(max_connections=256) as http:
            await scenario._warm_up(ctx, http, sorted(connected))
            if warmup:
                await run_open_loop(
                    constant_rate(rate, warmup / rate, seed=params.seed),
                    workload.operation(ctx, http),
                    history=history,
                    max_in_flight=512,
                    deadline_s=warmup / rate + 30.0,
                    f="complete_warmup",
                    describe=workload.describe,
                )
            channel.send(
                {
                    "kind": "ready",
                    "clients": len(subscribers),
                    "connected": started.connected,
                    "failed": len(started.failed),
                    "connect_s": round(started.seconds, 2),
                }
            )
            await channel.order("go")
            await scenario._generate_all(ctx, http, seeded.project_ids)
            drained_generation = await ctx.drain(lambda: _announced(history))
            channel.send({"kind": "generated", "drained": drained_generation})
            await channel.order("measure")
            cpu0 = time.process_time()
            measured = total - warmup
            report = await run_open_loop(
                constant_rate(rate, measured / rate, seed=params.seed),
                workload.operation(ctx, http, offset=warmup),
                history=history,
                max_in_flight=512,
                deadline_s=measured / rate + 30.0,
                f="complete",
                describe=lambda i: workload.describe(i + warmup),
            )
            cpu_s = time.process_time() - cpu0
        commits = [
            [c.alert_id, c.assignee_id, c.wall_s]
            for c in history.of_type(Commit)
            if c.assignee_id is not None
        ]
        channel.send(
            {"kind": "loaded", "generator": report.to_dict(), "cpu_s": cpu_s, "commits": commits}
        )
        order = await channel.order("close")
        everyone = [(int(a), u, float(w)) for a, u, w in order["commits"]]
        if stats is not None:
            for alert, _, wall in everyone:
                stats.commit(alert, wall)
        owed = {a for a, u, _ in everyone if u in connected}
        drained = await ctx.drain(lambda: owed <= _received(history))
        await ctx.close_fleets()
    finally:
        gc_watch.stop()
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        await ctx.close_fleets()
    if stats is not None:
        channel.send({"kind": "stats", "rows": stats.take()})
    write_jsonl(history, plan.history_path)
    channel.send(
        {
            "kind": "done",
            "drained": drained,
            "history": plan.history_path,
            "stats_fired": stats.fired if stats is not None else 0,
            "unmatched_pushes": stats.unmatched() if stats is not None else 0,
            "gc_pauses": gc_watch.to_dict(),
        }
    )


def _announced(history: History) -> bool:
    generated = {c.alert_id for c in history.of_type(Commit) if c.op_id is not None}
    got = {announced_alert(r) for r in history.of_type(Receive) if r.event == "workflow_updated"}
    return generated <= got


def _received(history: History) -> set[int]:
    return {
        int(r.alert_id)
        for r in history.of_type(Receive)
        if r.event == "new_alert" and r.alert_id is not None
    }


async def _flush_stats(stats: _Stats | None, channel: _Channel, every_s: float = 0.5) -> None:
    while stats is not None:
        await asyncio.sleep(every_s)
        rows = stats.take()
        if rows:
            channel.send({"kind": "stats", "rows": rows})


async def _main() -> None:
    loop = asyncio.get_running_loop()
    # SIGUSR1: where every task waits, on stderr (the conductor asks for it
    # when a shard is late, and puts it in its error).
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    # Plans and the close order carry every commit: lines may be large.
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    channel = _Channel(reader)
    message = await channel.order("plan")
    await run_shard(ShardPlan.from_dict(message["plan"]), channel)


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where a task waits: its coroutine and every one it awaits, innermost last
    (``Task.print_stack`` shows one frame of a suspended coroutine)."""
    where: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            where.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaited = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if awaited is None:
            break
        if not hasattr(awaited, "cr_frame") and not hasattr(awaited, "gi_frame"):
            where.append(f"  awaiting {awaited!r}"[:300])
            break
        coro = awaited
    return where


def _dump_tasks() -> None:
    """Every task and what it awaits, on stderr: where a late shard waits."""

    def ours(chain: list[str]) -> bool:
        return any("/harness/" in w or "/scenarios/" in w for w in chain)

    chains = [(task.get_name(), _awaiting(task)) for task in asyncio.all_tasks()]
    out = io.StringIO()
    # The harness's own tasks last: the end of the log is what gets quoted.
    for name, chain in sorted(chains, key=lambda named: ours(named[1])):
        out.write(f"--- {name}:\n" + "\n".join(chain) + "\n")
    out.write(DUMP_END + "\n")
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


def main(argv: Iterable[str] = ()) -> int:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s shard %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        event_loop.run(_main())
    except event_loop.Interrupted as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

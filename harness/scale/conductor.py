"""The conductor: shard the load scenario over worker processes and merge what they saw.

``run_sharded(ctx)`` gives each of ``ctx.params.workers`` shards a slice of
the projects (:func:`harness.scale.plan.shard_of`: per-project checkers stay
valid, as one shard completes one project's steps), keeps them in step
(everyone connected before anything is generated, generation drained before
the measured load, everyone's commits known before anyone closes), reads
the database's statement counters and the CPU of every local process at
those barriers, and at the end merges the shards' histories into
``ctx.history`` and their generator reports into ``ctx.generator``. The
runner then reads the final state, runs the load scenario's checkers and
writes its report as for any run.

Two ways to reach the shards, one conversation (:mod:`harness.scale.shard`):

- :class:`ProcessLink` (``alertbench run load --workers N``): N child
  processes on this machine, spoken to over their stdin/stdout;
- :class:`LocustLink` (``alertbench locust``): a Locust master (started
  here) relays to Locust workers, started here or on other machines, each
  of which runs one shard and reports its requests and pushed events to
  Locust's statistics (:mod:`harness.scale.locustfile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from harness.errors import ConfigError
from harness.history import iter_jsonl
from harness.metrics.resources import CpuMark, mark_cpu
from harness.scale.merge import ShardHistory, merge_generators, merge_histories
from harness.scale.plan import DUMP_END, ShardPlan, decode, encode, shard_of
from harness.scenario import LocustOptions, ScenarioContext
from harness.stack._net import free_port

__all__ = ["LocustLink", "ProcessLink", "ShardError", "run_sharded"]

logger = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
#: How long shards may take to connect their fleets and warm up, in seconds.
CONNECT_TIMEOUT_S = 180.0
#: How long a late shard has to write where its tasks wait (SIGUSR1).
DUMP_WAIT_S = 5.0


class ShardError(RuntimeError):
    """A shard (or the Locust master) failed or went away; the message says which and why."""


class Link(Protocol):
    """How the conductor reaches its shards."""

    async def start(self, plans: Sequence[ShardPlan]) -> None: ...
    async def send(self, message: dict[str, Any]) -> None:
        """To every shard."""

    async def receive(self) -> tuple[int, dict[str, Any]]:
        """The next message from any shard (``exit`` when one ended)."""

    def processes(self) -> dict[str, int]:
        """Local processes of the link (role -> pid), for CPU marks."""

    async def finish(self, requests: int) -> dict[str, Any]:
        """After the run: what the link has to report (Locust's statistics)."""

    async def log_tail(self, index: int) -> str:
        """The end of what shard ``index`` (or the processes that host it) logged."""

    async def stop(self) -> None:
        """Stop every process still running (idempotent)."""


async def _stop_process(proc: asyncio.subprocess.Process, timeout_s: float = 10.0) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_bytes()[-limit:].decode(errors="replace")
    except OSError:
        return ""


class ProcessLink:
    """N shard processes on this machine, over their stdin and stdout."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._procs: list[asyncio.subprocess.Process] = []
        self._readers: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()

    async def start(self, plans: Sequence[ShardPlan]) -> None:
        for plan in plans:
            log = self._workdir / f"shard-{plan.index}.stderr"
            with log.open("wb") as stderr:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "harness.scale.shard",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=stderr,
                    limit=1 << 30,
                )
            self._procs.append(proc)
            assert proc.stdin is not None
            proc.stdin.write(encode({"kind": "plan", "plan": plan.to_dict()}))
            await proc.stdin.drain()
            self._readers.append(asyncio.create_task(self._read(plan.index, proc, log)))

    async def _read(self, index: int, proc: asyncio.subprocess.Process, log: Path) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                message = decode(line)
            except ConfigError as exc:
                # A line that is not the protocol's: say so at once, with the
                # line, instead of a reader that dies unseen and a late shard.
                message = {"kind": "exit", "code": None, "stderr": f"{exc}\n{_tail(log)}"}
            await self._inbox.put((index, message))
        code = await proc.wait()
        await self._inbox.put((index, {"kind": "exit", "code": code, "stderr": _tail(log)}))

    async def send(self, message: dict[str, Any]) -> None:
        for proc in self._procs:
            if proc.stdin is not None and proc.returncode is None:
                proc.stdin.write(encode(message))
                await proc.stdin.drain()

    async def log_tail(self, index: int) -> str:
        # Ask the shard where its tasks wait (SIGUSR1), bounded.
        log = self._workdir / f"shard-{index}.stderr"
        proc = self._procs[index] if index < len(self._procs) else None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + DUMP_WAIT_S
            # Polled: the file is another process's, and no event tells of it.
            while DUMP_END not in _tail(log) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return _tail(log)

    async def receive(self) -> tuple[int, dict[str, Any]]:
        return await self._inbox.get()

    def processes(self) -> dict[str, int]:
        return {f"harness shard {i}": p.pid for i, p in enumerate(self._procs)}

    async def finish(self, requests: int) -> dict[str, Any]:
        for proc in self._procs:
            await asyncio.wait_for(proc.wait(), 30.0)
        return {}

    async def stop(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for proc in self._procs:
            await _stop_process(proc)


class LocustLink:
    """A Locust master started here (and ``local_workers`` workers): the master
    relays between the conductor (a TCP connection on 127.0.0.1) and its workers."""

    def __init__(self, options: LocustOptions, workers: int, workdir: Path) -> None:
        self._options = options
        self._workers = workers
        self._workdir = workdir
        self._inbox: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._master: asyncio.subprocess.Process | None = None
        self._local: list[asyncio.subprocess.Process] = []
        self._watchers: list[asyncio.Task[None]] = []
        self._stats: asyncio.Future[dict[str, Any]] | None = None
        self.master_port = options.master_port

    async def start(self, plans: Sequence[ShardPlan]) -> None:
        self._stats = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=1 << 30)
        conductor_port = self._server.sockets[0].getsockname()[1]
        if not self.master_port:
            self.master_port = free_port(self._options.master_host)
        n = str(self._workers)
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--master",
            "--master-bind-host",
            self._options.master_host,
            "--master-bind-port",
            str(self.master_port),
            "--expect-workers",
            n,
            "--users",
            n,
            "--spawn-rate",
            n,
            "--alertbench-conductor",
            f"127.0.0.1:{conductor_port}",
            "--loglevel",
            "WARNING",
        ]
        if self._options.headless:
            command += ["--headless", "--only-summary"]
        else:
            command += [
                "--web-host",
                self._options.web_host,
                "--web-port",
                str(self._options.web_port),
            ]
            logger.warning(
                "Locust web UI on http://%s:%d: once %d workers are connected, start as many"
                " users (one per worker)",
                self._options.web_host,
                self._options.web_port,
                self._workers,
            )
        if self._options.local_workers < self._workers:
            logger.warning(
                "waiting for %d Locust workers from other machines: `locust -f %s --worker"
                " --master-host <this host> --master-port %d`",
                self._workers - self._options.local_workers,
                LOCUSTFILE,
                self.master_port,
            )
        self._master = await self._spawn("master", command)
        async with asyncio.timeout(60.0):
            while not self._connected.is_set():
                if self._master.returncode is not None:
                    raise ShardError(
                        f"the Locust master exited ({self._master.returncode}) before it"
                        f" connected: {_tail(self._workdir / 'master.log')}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._connected.wait(), 0.5)
        await self._tell({"kind": "plans", "plans": [p.to_dict() for p in plans]})
        for i in range(self._options.local_workers):
            worker = [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--worker",
                "--master-host",
                "127.0.0.1"
                if self._options.master_host in ("0.0.0.0", "*", "")
                else self._options.master_host,
                "--master-port",
                str(self.master_port),
                "--loglevel",
                "WARNING",
            ]
            self._local.append(await self._spawn(f"worker-{i}", worker))

    async def _spawn(self, name: str, command: list[str]) -> asyncio.subprocess.Process:
        log = self._workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        self._watchers.append(asyncio.create_task(self._watch(name, proc, log)))
        return proc

    async def _watch(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        code = await proc.wait()
        if code != 0 and not (self._stats is not None and self._stats.done()):
            await self._inbox.put(
                (-1, {"kind": "exit", "code": code, "who": name, "stderr": _tail(log)})
            )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            writer.close()
            return
        self._writer = writer
        self._connected.set()
        while line := await reader.readline():
            message = decode(line)
            if message["kind"] == "locust_stats":
                if self._stats is not None and not self._stats.done():
                    self._stats.set_result(message)
                continue
            shard = int(message.pop("shard"))
            if message["kind"] == "done":
                # The worker shipped its history: keep it on this machine.
                path = self._workdir / f"shard-{shard}.jsonl"
                path.write_text(message.pop("history_jsonl"), encoding="utf-8")
                message["history"] = str(path)
            await self._inbox.put((shard, message))

    async def _tell(self, message: dict[str, Any]) -> None:
        assert self._writer is not None
        self._writer.write(encode(message))
        await self._writer.drain()

    async def send(self, message: dict[str, Any]) -> None:
        await self._tell({**message, "to": None})

    async def log_tail(self, index: int) -> str:
        # A shard runs inside a Locust worker; which one is not known here.
        logs = sorted(self._workdir.glob("*.log"))
        return "\n".join(f"--- {log.name}:\n{_tail(log, 1500)}" for log in logs)

    async def receive(self) -> tuple[int, dict[str, Any]]:
        return await self._inbox.get()

    def processes(self) -> dict[str, int]:
        roles = {f"locust worker {i}": p.pid for i, p in enumerate(self._local)}
        if self._master is not None:
            roles["locust master"] = self._master.pid
        return roles

    async def finish(self, requests: int) -> dict[str, Any]:
        assert self._stats is not None
        assert self._master is not None
        await self._tell({"kind": "quit", "expect_requests": requests})
        try:
            async with asyncio.timeout(60.0):
                stats = await self._stats
                await self._master.wait()
                for proc in self._local:
                    await proc.wait()
        except TimeoutError:
            raise ShardError(
                "the Locust master or a local worker did not end within 60 s of the run's end:"
                f" {_tail(self._workdir / 'master.log')}"
            ) from None
        return {"master_port": self.master_port, **stats}

    async def stop(self) -> None:
        for proc in [*self._local, *([self._master] if self._master else [])]:
            await _stop_process(proc)
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            self._server.close()


class Mailbox:
    """The shards' messages, step by step. A message of a later step that
    arrives early waits here for its step instead of being dropped: a shard
    with little to connect can be ``ready`` before a slower one (still
    importing, on a busy machine) said ``hello``, and dropping that ``ready``
    left the conductor waiting for it until its timeout."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._early: list[tuple[int, dict[str, Any]]] = []
        self._finished: set[int] = set()

    async def gather(self, kind: str, shards: int, timeout_s: float) -> dict[int, dict[str, Any]]:
        """Wait until every shard sent ``kind`` (bounded); ShardError on any exit."""
        got: dict[int, dict[str, Any]] = {}
        waiting = self._early
        self._early = []
        for index, message in waiting:
            self._take(kind, index, message, got)
        try:
            async with asyncio.timeout(timeout_s):
                while len(got) < shards:
                    index, message = await self.link.receive()
                    self._take(kind, index, message, got)
        except TimeoutError:
            missing = sorted(set(range(shards)) - set(got))
            logged = ""
            for index in missing:
                tail = (await self.link.log_tail(index))[-6000:] or "(nothing)"
                logged += f"\nshard {index} logged:\n{tail}"
            raise ShardError(
                f"shards {missing} did not report {kind!r} in {timeout_s:g} s{logged}"
            ) from None
        return got

    def _take(
        self, kind: str, index: int, message: dict[str, Any], got: dict[int, dict[str, Any]]
    ) -> None:
        if message["kind"] == "exit":
            if message.get("code") == 0 and index in self._finished:
                return  # it said "done", then ended: as it should
            who = message.get("who") or f"shard {index}"
            raise ShardError(
                f"{who} exited ({message.get('code')}) while the conductor waited"
                f" for {kind!r}: {message.get('stderr', '')[-2000:]}"
            )
        if message["kind"] == "done":
            self._finished.add(index)
        if message["kind"] == kind and index not in got:
            got[index] = message
        else:
            self._early.append((index, message))


async def run_sharded(ctx: ScenarioContext) -> None:
    """The load scenario over ``ctx.params.workers`` shards (see the module docstring)."""
    params = ctx.params
    n = params.workers
    with tempfile.TemporaryDirectory(prefix="alertbench-shards-") as tmp:
        workdir = Path(tmp)
        link: Link = (
            LocustLink(params.locust, n, workdir)
            if params.locust is not None
            else ProcessLink(workdir)
        )
        plans = [
            ShardPlan(
                index=k,
                shards=n,
                app_urls=list(ctx.stack.app_urls),
                direct_dsn=ctx.direct_dsn,
                target=ctx.target.name,
                tokens=ctx.tokens,
                seeded=shard_of(ctx.seeded, k, n),
                params=params,
                stats=params.locust is not None,
                history_path=str(workdir / f"shard-{k}.jsonl"),
            )
            for k in range(n)
        ]
        try:
            await link.start(plans)
            await _conduct(ctx, link, n)
        finally:
            await link.stop()


async def _conduct(ctx: ScenarioContext, link: Link, n: int) -> None:
    params = ctx.params
    mail = Mailbox(link)
    wait_ui = 3600.0 if params.locust is not None and not params.locust.headless else 0.0
    hello = await mail.gather("hello", n, CONNECT_TIMEOUT_S + wait_ui)
    here = time.time() - time.monotonic()
    shifts = {k: (float(m["wall"]) - float(m["mono"])) - here for k, m in hello.items()}
    host = socket.gethostname()
    shard_pids = {
        f"harness shard {k}": int(m["pid"]) for k, m in hello.items() if m["host"] == host
    }
    ready = await mail.gather("ready", n, CONNECT_TIMEOUT_S)
    ctx.extra["fleet"] = {
        name: sum(m[name] for m in ready.values()) for name in ("clients", "connected", "failed")
    } | {"connect_s": max(m["connect_s"] for m in ready.values()), "shards": n}
    await ctx.snapshot_pg_stat("before")
    await link.send({"kind": "go"})
    generated = await mail.gather("generated", n, 60.0 + params.drain_s)
    ctx.extra["drained_generation"] = all(m["drained"] for m in generated.values())
    await ctx.snapshot_pg_stat("generated")

    def mark() -> CpuMark:
        return mark_cpu(
            {**ctx.stack.local_processes(), **link.processes(), **shard_pids},
            alone={"harness (conductor)": os.getpid()},
        )

    start = mark()
    await link.send({"kind": "measure"})
    loaded = await mail.gather("loaded", n, params.duration_s * 1.5 + 60.0)
    ctx.cpu_window = (start, mark())
    await ctx.snapshot_pg_stat("after")
    commits = [c for k in sorted(loaded) for c in loaded[k]["commits"]]
    await link.send({"kind": "close", "commits": commits})
    done = await mail.gather("done", n, params.drain_s + 60.0)
    merge_histories(
        ctx.history,
        [ShardHistory(k, list(iter_jsonl(done[k]["history"])), shifts[k]) for k in sorted(done)],
    )
    ctx.generator = merge_generators([loaded[k]["generator"] for k in sorted(loaded)], ctx.history)
    ctx.extra["drained"] = all(m["drained"] for m in done.values())
    ctx.extra["shards"] = [
        {
            "shard": k,
            "host": hello[k]["host"],
            "pid": hello[k]["pid"],
            "clock_shift_ms": round(shifts[k] * 1000, 3),
            "completed": loaded[k]["generator"]["completed"],
            "cpu_s": round(loaded[k]["cpu_s"], 3),
            "cpu_ms_per_completion": round(
                1000 * loaded[k]["cpu_s"] / max(1, loaded[k]["generator"]["completed"]), 3
            ),
            "gc_pauses": done[k].get("gc_pauses") or {},
        }
        for k in sorted(loaded)
    ]
    fired = sum(int(m.get("stats_fired", 0)) for m in done.values())
    report = await link.finish(fired)
    if report:
        ctx.extra["locust"] = {
            **report,
            "unmatched_pushes": sum(int(m.get("unmatched_pushes", 0)) for m in done.values()),
        }
    await ctx.snapshot_alerts()

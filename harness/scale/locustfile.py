"""Locust's side of a sharded load run (``alertbench locust``).

Locust runs its users in gevent; the harness's subscribers and generator are
asyncio (python-socketio's AsyncClient, the open-loop driver). The two never
share a process: each Locust user is one *shard*, the harness's own
subscribers and completers for a slice of the projects, run as a child
process (``python -m harness.scale.shard``), which this user relays to:

- its ``stats`` lines become Locust requests (``events.request.fire``):
  ``POST complete`` with the open-loop latency from the intended start, and
  ``push new_alert`` / ``push workflow_updated`` / ``push alerts_refresh``
  with their real latency, receipt minus the commit time of the alert the
  event announces (Locust's stock Socket.IO user reports 0 for pushed events);
- its other lines go to the master (``alertbench_up`` messages), the
  conductor's orders come back (``alertbench_down``) to its stdin; the final
  ``done`` carries the shard's history, so the master's machine gets every
  worker's history wherever the worker ran.

The master only relays: to the conductor (``--alertbench-conductor``, a TCP
address of the ``alertbench`` process that started it, which runs the
stack, merges the histories and judges them) and back. Start as many users
as workers (``-u N``): the master hands each user's shard one slice; a user
beyond the plan stops at once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from locust import User, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

logger = logging.getLogger("alertbench.locust")

UP = "alertbench_up"
DOWN = "alertbench_down"
#: Bounds of the waits (seconds): the plan, the master's statistics.
PLAN_TIMEOUT_S = 300.0
STATS_TIMEOUT_S = 30.0


def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--alertbench-conductor",
        default="",
        help="HOST:PORT of the alertbench process conducting the run (set by `alertbench locust`)",
    )


events.init_command_line_parser.add_listener(_arguments)  # type: ignore[no-untyped-call]  # locust untyped


class _Master:
    """The master's relay between the workers and the conductor."""

    def __init__(self, environment: Environment, runner: MasterRunner, address: str) -> None:
        self.environment = environment
        self.runner = runner
        host, _, port = address.rpartition(":")
        self.conn = socket.create_connection((host, int(port)), timeout=30)
        self.conn.settimeout(None)
        self.lines = self.conn.makefile("rb")
        self.plans: list[dict[str, Any]] | None = None
        self.have_plans = Event()
        self.shard_of: dict[str, int] = {}
        self.node_of: dict[int, str] = {}
        runner.register_message(UP, self.from_worker, concurrent=True)
        gevent.spawn(self.from_conductor)

    def tell_conductor(self, message: dict[str, Any]) -> None:
        self.conn.sendall((json.dumps(message, separators=(",", ":")) + "\n").encode())

    def from_worker(self, environment: Environment, msg: Any, **kwargs: Any) -> None:
        data: dict[str, Any] = msg.data
        if data.get("kind") == "want_plan":
            self.have_plans.wait(PLAN_TIMEOUT_S)
            plans = self.plans or []
            if msg.node_id in self.shard_of:
                # One shard per worker: a second user there has nothing to do.
                self.runner.send_message(
                    DOWN, {"kind": "plan", "plan": None}, client_id=msg.node_id
                )
                return
            index = len(self.shard_of)
            self.shard_of[msg.node_id] = index
            plan = plans[index] if index < len(plans) else None
            if plan is not None:
                self.node_of[index] = msg.node_id
            self.runner.send_message(DOWN, {"kind": "plan", "plan": plan}, client_id=msg.node_id)
            return
        self.tell_conductor({**data, "shard": self.shard_of[msg.node_id]})

    def from_conductor(self) -> None:
        for line in self.lines:
            message: dict[str, Any] = json.loads(line)
            kind = message["kind"]
            if kind == "plans":
                self.plans = message["plans"]
                self.have_plans.set()
            elif kind == "quit":
                self.quit(int(message.get("expect_requests", 0)))
                return
            else:
                to = message.pop("to", None)
                client = self.node_of.get(to) if isinstance(to, int) else None
                self.runner.send_message(DOWN, message, client_id=client)

    def quit(self, expected: int) -> None:
        # Workers report their statistics every few seconds: wait (bounded)
        # until every request the shards fired is counted here.
        stats = self.environment.stats
        deadline = time.monotonic() + STATS_TIMEOUT_S
        while stats.total.num_requests < expected and time.monotonic() < deadline:
            gevent.sleep(0.1)
        rows = [
            {
                "type": entry.method,
                "name": entry.name,
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                "avg_ms": round(entry.avg_response_time, 2),
                "p50_ms": entry.get_response_time_percentile(0.5),
                "p99_ms": entry.get_response_time_percentile(0.99),
                "max_ms": entry.max_response_time,
            }
            for entry in stats.entries.values()
        ]
        self.tell_conductor(
            {
                "kind": "locust_stats",
                "expected": expected,
                "counted": stats.total.num_requests,
                "rows": rows,
            }
        )
        self.conn.close()
        self.runner.quit()
        if self.environment.web_ui is not None:
            # The run is over: the report is the harness's; let the process end.
            self.environment.web_ui.stop()  # type: ignore[no-untyped-call]  # locust untyped


class _Worker:
    """A worker's end: the plan from the master, orders to its shard."""

    def __init__(self, runner: WorkerRunner) -> None:
        self.runner = runner
        self.plan: dict[str, Any] | None = None
        self.have_plan = Event()
        self.shard: subprocess.Popen[bytes] | None = None
        #: One shard per worker: set by the first user.
        self.claimed = False
        runner.register_message(DOWN, self.from_master)

    def from_master(self, environment: Environment, msg: Any, **kwargs: Any) -> None:
        data: dict[str, Any] = msg.data
        if data.get("kind") == "plan":
            self.plan = data.get("plan")
            self.have_plan.set()
        elif self.shard is not None and self.shard.stdin is not None:
            self.shard.stdin.write((json.dumps(data, separators=(",", ":")) + "\n").encode())
            self.shard.stdin.flush()


_roles: dict[str, Any] = {}


def _init(environment: Environment, **kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        options = environment.parsed_options
        address = options.alertbench_conductor if options is not None else ""
        if not address:
            raise SystemExit("alertbench: start the master with `alertbench locust`")
        _roles["master"] = _Master(environment, runner, address)
    elif isinstance(runner, WorkerRunner):
        _roles["worker"] = _Worker(runner)


events.init.add_listener(_init)  # type: ignore[no-untyped-call]  # locust untyped


class ShardUser(User):
    """One shard: the harness's subscribers and completers for a slice of the projects."""

    def _up(self, message: dict[str, Any]) -> None:
        runner = self.environment.runner
        assert runner is not None
        runner.send_message(UP, message)

    @task
    def run_shard(self) -> None:
        worker: _Worker | None = _roles.get("worker")
        if worker is None or worker.claimed:
            # Not a worker (local mode), or this worker runs its shard already.
            raise StopUser()
        worker.claimed = True
        self._up({"kind": "want_plan"})
        if not worker.have_plan.wait(PLAN_TIMEOUT_S) or worker.plan is None:
            raise StopUser()
        handle, history = tempfile.mkstemp(prefix="alertbench-shard-", suffix=".jsonl")
        os.close(handle)
        plan = {**worker.plan, "history_path": history}
        with tempfile.TemporaryFile() as stderr:
            shard = subprocess.Popen(
                [sys.executable, "-m", "harness.scale.shard"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            worker.shard = shard
            assert shard.stdin is not None
            assert shard.stdout is not None
            shard.stdin.write((json.dumps({"kind": "plan", "plan": plan}) + "\n").encode())
            shard.stdin.flush()
            try:
                self._relay(shard.stdout, Path(history))
            finally:
                code = shard.wait(timeout=60)
                worker.shard = None
                if code != 0:
                    stderr.seek(0)
                    tail = stderr.read()[-4000:].decode(errors="replace")
                    self._up({"kind": "exit", "code": code, "stderr": tail})
        Path(history).unlink(missing_ok=True)
        raise StopUser()

    def _relay(self, lines: Any, history: Path) -> None:
        fire = self.environment.events.request.fire
        for line in lines:
            message: dict[str, Any] = json.loads(line)
            if message["kind"] == "stats":
                for kind, name, ms, ok in message["rows"]:
                    fire(
                        request_type=kind,
                        name=name,
                        response_time=ms,
                        response_length=0,
                        exception=None if ok else RuntimeError(f"{name} failed"),
                        context={},
                    )
                continue
            if message["kind"] == "done":
                message["history_jsonl"] = history.read_text(encoding="utf-8")
            self._up(message)

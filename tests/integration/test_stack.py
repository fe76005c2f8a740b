"""Each provider gives a working Postgres and Redis; teardown leaves nothing.

"Nothing" means: no process (by pid), no listening port, no run directory —
after a normal exit, an exception, SIGINT, SIGTERM, and (through the reaper
at the next start) after the owner was killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
import redis

from harness.stack import Stack, StackConfig, start_stack
from harness.stack._net import port_is_open
from harness.stack._process import RECORD
from harness.stack.docker import docker_unavailable_reason

CLI = [sys.executable, "-m", "harness.cli"]


def _child_pids(run_dir: Path) -> list[int]:
    record = json.loads((run_dir / RECORD).read_text())
    return [int(c["pid"]) for c in record["children"]]


def _assert_nothing_left(pids: list[int], ports: list[int], run_dir: Path | None) -> None:
    for pid in pids:
        if psutil.pid_exists(pid):
            status = psutil.Process(pid).status()
            assert status == psutil.STATUS_ZOMBIE, f"pid {pid} still running ({status})"
    for port in ports:
        assert not port_is_open("127.0.0.1", port), f"port {port} still accepts connections"
    if run_dir is not None:
        assert not run_dir.exists(), f"{run_dir} was left behind"


async def _exercise(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.postgres.dsn)
    try:
        await conn.execute("CREATE TABLE probe (id int PRIMARY KEY, note text)")
        await conn.execute("INSERT INTO probe VALUES (1, 'hello')")
        assert await conn.fetchval("SELECT note FROM probe WHERE id = 1") == "hello"
        calls = await conn.fetchval(
            "SELECT sum(calls) FROM pg_stat_statements WHERE query LIKE 'INSERT INTO probe%'"
        )
        assert calls == 1, "pg_stat_statements must count server-side statements"
    finally:
        await conn.close()
    client = redis.Redis.from_url(stack.redis.url)
    try:
        client.set("alertbench:probe", "42")
        assert client.get("alertbench:probe") == b"42"
    finally:
        client.close()


async def test_embedded_provider_serves_real_queries_and_commands(tmp_root: Path) -> None:
    with start_stack(StackConfig(provider="embedded", tmp_root=tmp_root)) as stack:
        assert stack.providers == {"postgres": "embedded", "redis": "embedded"}
        assert stack.postgres.host == stack.redis.host == "127.0.0.1"
        assert stack.check()["redis"] == "PONG"
        await _exercise(stack)


async def test_external_provider_attaches_without_owning(alertbench_stack: Stack) -> None:
    config = StackConfig(
        provider="external",
        pg_dsn=alertbench_stack.postgres.dsn,
        redis_url=alertbench_stack.redis.url,
    )
    with start_stack(config) as stack:
        assert stack.providers == {"postgres": "external", "redis": "external"}
        assert stack.run_dir is None
        await _exercise(stack)
    # Closing an external stack must not stop servers it did not start.
    assert alertbench_stack.check()["redis"] == "PONG"


@pytest.mark.skipif(
    (reason := docker_unavailable_reason()) is not None,
    reason=f"docker provider not testable here: {reason}",
)
async def test_docker_provider_serves_real_queries_and_commands() -> None:
    with start_stack(StackConfig(provider="docker")) as stack:
        assert stack.providers == {"postgres": "docker", "redis": "docker"}
        await _exercise(stack)


def test_normal_exit_leaves_nothing(tmp_root: Path) -> None:
    with start_stack(StackConfig(provider="embedded", tmp_root=tmp_root)) as stack:
        assert stack.run_dir is not None
        run_dir = stack.run_dir.path
        pids = _child_pids(run_dir)
        ports = [stack.postgres.port, stack.redis.port]
        assert len(pids) == 2
        assert all(port_is_open("127.0.0.1", p) for p in ports)
    _assert_nothing_left(pids, ports, run_dir)
    assert list(tmp_root.iterdir()) == []


def test_an_exception_leaves_nothing(tmp_root: Path) -> None:
    seen: dict[str, Any] = {}
    with (
        pytest.raises(RuntimeError, match="scenario blew up"),
        start_stack(StackConfig(provider="embedded", tmp_root=tmp_root)) as stack,
    ):
        assert stack.run_dir is not None
        seen.update(
            run_dir=stack.run_dir.path,
            pids=_child_pids(stack.run_dir.path),
            ports=[stack.postgres.port, stack.redis.port],
        )
        raise RuntimeError("scenario blew up")
    _assert_nothing_left(seen["pids"], seen["ports"], seen["run_dir"])


def _start_cli(tmp_root: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run ``alertbench stack up --json`` and wait (bounded) for its JSON line."""
    env = {**os.environ, "ALERTBENCH_TMPDIR": str(tmp_root), "ALERTBENCH_STACK": "embedded"}
    proc = subprocess.Popen(
        [*CLI, "stack", "up", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=60):
            proc.kill()
            pytest.fail(f"no JSON from `stack up` within 60 s; stderr: {proc.communicate()[1]}")
    line = proc.stdout.readline()
    assert line, f"`stack up` exited early: {proc.communicate()[1]}"
    return proc, json.loads(line)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_stops_cleanly_on_signal(tmp_root: Path, signum: int) -> None:
    proc, info = _start_cli(tmp_root)
    run_dir = Path(info["run_dir"])
    pids = _child_pids(run_dir)
    ports = [
        int(info["postgres"]["dsn"].rsplit(":", 1)[1].split("/")[0]),
        int(info["redis"]["url"].rsplit(":", 1)[1].split("/")[0]),
    ]
    assert info["startup_s"]["total"] > 0
    assert set(info["startup_s"]) >= {"postgres", "redis", "total"}

    proc.send_signal(signum)

    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    _assert_nothing_left(pids, ports, run_dir)


def test_sigkilled_owner_is_reaped_by_the_next_start(tmp_root: Path) -> None:
    proc, info = _start_cli(tmp_root)
    run_dir = Path(info["run_dir"])
    pids = _child_pids(run_dir)

    proc.kill()
    proc.communicate(timeout=30)
    # The services outlive an owner killed without a chance to clean up ...
    assert all(psutil.pid_exists(pid) for pid in pids)
    assert run_dir.exists()

    # ... until the next start proves they are its own and stops them.
    with start_stack(StackConfig(provider="embedded", tmp_root=tmp_root)) as stack:
        assert stack.run_dir is not None
        assert [p.name for p in tmp_root.iterdir()] == [stack.run_dir.path.name]
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    _assert_nothing_left(pids, [], run_dir)

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
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
import redis

from harness.faults import ToxiproxyClient
from harness.stack import AppSpec, Stack, StackConfig, start_stack
from harness.stack._net import port_is_open
from harness.stack._process import RECORD
from harness.stack.docker import docker_unavailable_reason

CLI = [sys.executable, "-m", "harness.cli"]


def _child_pids(run_dir: Path) -> list[int]:
    record = json.loads((run_dir / RECORD).read_text())
    return [int(c["pid"]) for c in record["children"]]


def _ports(stack: Stack) -> list[int]:
    """Every port the stack listens on: services, proxies, the Toxiproxy API."""
    toxiproxy_port = int(stack.toxiproxy.url.rsplit(":", 1)[1])
    return [
        stack.postgres_direct.port,
        stack.redis_direct.port,
        *stack.proxies.values(),
        toxiproxy_port,
    ]


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


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
    table = f"probe_{uuid.uuid4().hex}"
    conn = await asyncpg.connect(stack.postgres.dsn)
    try:
        await conn.execute(f"CREATE TEMP TABLE {table} (id int PRIMARY KEY, note text)")
        await conn.execute(f"INSERT INTO {table} VALUES (1, 'hello')")
        assert await conn.fetchval(f"SELECT note FROM {table} WHERE id = 1") == "hello"
        calls = await conn.fetchval(
            "SELECT sum(calls) FROM pg_stat_statements WHERE query LIKE $1", f"INSERT INTO {table}%"
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
        pg_dsn=alertbench_stack.postgres_direct.dsn,
        redis_url=alertbench_stack.redis_direct.url,
    )
    with start_stack(config) as stack:
        assert stack.providers == {"postgres": "external", "redis": "external"}
        assert stack.run_dir is not None
        assert [c.name for c in stack.run_dir.children] == ["toxiproxy"], "launches only proxies"
        await _exercise(stack)
    # Closing an external stack must not stop servers it did not start.
    assert alertbench_stack.check()["redis"] == "PONG"


async def test_an_external_toxiproxy_carries_the_proxies(
    alertbench_stack: Stack, tmp_root: Path
) -> None:
    config = StackConfig(
        provider="embedded", tmp_root=tmp_root, toxiproxy_url=alertbench_stack.toxiproxy.url
    )
    with start_stack(config) as stack:
        assert stack.toxiproxy.kind == "external"
        assert stack.run_dir is not None
        assert sorted(c.name for c in stack.run_dir.children) == ["postgres", "redis"]
        # Not a local process, yet not dropped from the CPU table: unmeasured, and why.
        assert "toxiproxy" not in stack.local_processes()
        assert "external Toxiproxy" in stack.unmeasured_roles()["toxiproxy"]
        names = {stack.toxiproxy.proxy_name(n) for n in ("postgres", "redis")}
        assert not names & {"postgres", "redis"}, "a shared server needs distinct names"
        await _exercise(stack)
        async with ToxiproxyClient(alertbench_stack.toxiproxy.url) as client:
            assert names <= set(await client.proxies())
    # Its proxies are removed from the server it does not own; the session
    # stack's proxies are untouched and still work.
    async with ToxiproxyClient(alertbench_stack.toxiproxy.url) as client:
        assert not names & set(await client.proxies())
    await _exercise(alertbench_stack)


async def test_without_the_proxy_everyone_connects_directly(tmp_root: Path) -> None:
    config = StackConfig(provider="embedded", tmp_root=tmp_root, proxy=False)
    with start_stack(config) as stack:
        assert stack.proxy_bypassed
        assert stack.toxiproxy is None
        assert stack.proxies == {}
        assert stack.postgres == stack.postgres_direct
        assert stack.redis == stack.redis_direct
        assert stack.check()["redis"] == "PONG"
        url = stack.start_app(AppSpec())
        assert stack.app is not None
        assert url == stack.app.direct_urls[0]
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            assert (await http.get("/healthz")).status_code == 200
        assert stack.run_dir is not None
        assert sorted(c.name for c in stack.run_dir.children) == ["app", "postgres", "redis"]
        assert stack.describe()["proxy_bypassed"] is True
        stack.stop_app()
        assert stack.app_urls == []


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
        ports = _ports(stack)
        assert len(pids) == 3  # postgres, redis, toxiproxy
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
            ports=_ports(stack),
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
        _port_of(info["postgres"]["dsn"]),
        _port_of(info["postgres"]["direct_dsn"]),
        _port_of(info["redis"]["url"]),
        _port_of(info["redis"]["direct_url"]),
        _port_of(info["toxiproxy"]["url"]),
    ]
    assert info["startup_s"]["total"] > 0
    assert set(info["startup_s"]) >= {"postgres", "redis", "toxiproxy", "total"}

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
    alive = {pid: psutil.pid_exists(pid) for pid in pids}
    assert all(alive.values()), f"children alive after SIGKILL of the owner: {alive}"
    assert run_dir.exists()

    # ... until the next start proves they are its own and stops them.
    with start_stack(StackConfig(provider="embedded", tmp_root=tmp_root)) as stack:
        assert stack.run_dir is not None
        assert [p.name for p in tmp_root.iterdir()] == [stack.run_dir.path.name]
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    _assert_nothing_left(pids, [], run_dir)


async def test_the_app_runs_behind_its_proxy_and_stops_with_the_stack(tmp_root: Path) -> None:
    with start_stack(StackConfig(provider="embedded", tmp_root=tmp_root)) as stack:
        url = stack.start_app(AppSpec(flaws=frozenset({"no_retry"})))
        assert stack.app is not None
        assert url == f"http://127.0.0.1:{stack.proxies['app']}"
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200
            openapi = (await http.get("/openapi.json")).json()
            assert "/api/alerts/generate" in openapi["paths"]
        assert stack.run_dir is not None
        run_dir = stack.run_dir.path
        pids = _child_pids(run_dir)
        assert len(pids) == 4  # postgres, redis, toxiproxy, app
        ports = [*_ports(stack), int(stack.app.direct_urls[0].rsplit(":", 1)[1])]
    _assert_nothing_left(pids, ports, run_dir)

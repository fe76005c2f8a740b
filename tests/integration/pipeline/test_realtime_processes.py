"""Two server processes deliver every alert to the clients of both.

``redis``: one relay, its emits cross processes through python-socketio's
Redis manager. ``listen``: each process runs the LISTEN/NOTIFY relay and
emits to its own clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ri_support import EventLog

from harness.clients.subscriber import AlertClient
from harness.contract.seed import SeedResult
from harness.stack._net import free_port
from reference_impl import issue_token
from reference_impl.config import DEV_TOKEN_SECRET


@contextlib.asynccontextmanager
async def _server(pg_dsn: str, redis_url: str, log: Path, *extra: str) -> AsyncIterator[str]:
    """``python -m reference_impl`` on a free port; stopped (by pid) afterwards."""
    port = free_port()
    argv = [
        sys.executable, "-m", "reference_impl",
        "--pg-dsn", pg_dsn, "--redis-url", redis_url,
        "--port", str(port), "--no-worker", "--log-level", "WARNING",
        *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=1.0) as http, asyncio.timeout(30):
            while True:
                assert proc.returncode is None, f"the server exited; its log: {log}"
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=15)
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), timeout=15)


FANOUT_FLAGS = {
    # (flags of the first process, flags of the second)
    "redis": (("--socketio-redis",), ("--socketio-redis", "--no-relay")),
    "listen": ((), ()),
}


@pytest.mark.parametrize("fanout", sorted(FANOUT_FLAGS))
async def test_a_client_on_either_process_gets_every_event_meant_for_it_once(
    pg_dsn: str, redis_url: str, seeded: SeedResult, tmp_path: Path, fanout: str
) -> None:
    first_flags, second_flags = FANOUT_FLAGS[fanout]
    p = seeded.project_ids[0]
    first, second = seeded.active_line_items[:2]
    assignee = seeded.members[p][second.responsible_role]
    bystander = next(u for u in seeded.members[p].values() if u != assignee)
    completer = seeded.members[p]["project_manager"]

    async with (
        _server(pg_dsn, redis_url, tmp_path / "a.log", *first_flags) as relaying,
        _server(pg_dsn, redis_url, tmp_path / "b.log", *second_flags) as plain,
    ):
        logs = {"assignee": EventLog(), "bystander": EventLog()}
        # The assignee listens on the second process (without the relay in
        # ``redis`` mode).
        clients = [
            AlertClient(
                plain,
                issue_token(assignee, secret=DEV_TOKEN_SECRET),
                projects=[p],
                on_event=logs["assignee"],
            ),
            AlertClient(
                relaying,
                issue_token(bystander, secret=DEV_TOKEN_SECRET),
                projects=[p],
                on_event=logs["bystander"],
            ),
        ]
        try:
            for client in clients:
                await client.start()
            # The completion goes to the process without the relay, too.
            async with httpx.AsyncClient(base_url=plain, timeout=10) as http:
                token = issue_token(completer, secret=DEV_TOKEN_SECRET)
                response = await http.post(
                    f"/api/projects/{p}/line-items/{first.id}/complete",
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert response.status_code == 200, response.text
            alert_id = response.json()["alert"]["id"]
            await logs["assignee"].wait_for(lambda log: log.alert_ids() == [alert_id])
            await logs["assignee"].wait_for(lambda log: len(log.named("workflow_updated")) == 1)
            await logs["bystander"].wait_for(lambda log: len(log.named("workflow_updated")) == 1)
            assert logs["bystander"].alert_ids() == []
            # A later completion's events come after: had either process sent
            # an event twice, it would show before these (same order per client).
            async with httpx.AsyncClient(base_url=relaying, timeout=10) as http:
                response = await http.post(
                    f"/api/projects/{p}/line-items/{second.id}/complete",
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert response.status_code == 200, response.text
            for log in logs.values():
                await log.wait_for(lambda log: len(log.named("workflow_updated")) == 2)
            for log in logs.values():
                ids = log.alert_ids()
                assert len(ids) == len(set(ids)), ids  # no alert twice
                assert len(log.named("workflow_updated")) == 2
            assert logs["assignee"].alert_ids()[0] == alert_id
        finally:
            for client in clients:
                await client.stop()

"""The per-user alert cache: hits, invalidation, the slow-reader race, Redis down."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from ri_support import Api, StartApi

from harness.contract.seed import SeedResult
from reference_impl import Flaw, generate_alerts
from reference_impl.db import Connection


def _first_assignee(seeded: SeedResult) -> tuple[int, int, int]:
    """(project id, first line item id, the user assigned its alert)."""
    pid, first = seeded.project_ids[0], seeded.active_line_items[0]
    return pid, first.id, seeded.members[pid][first.responsible_role]


async def _read(api: Api, user: int) -> tuple[list[int], str]:
    response = await api.http.get(f"/api/users/{user}/alerts", headers=api.auth(user))
    assert response.status_code == 200
    return [a["stepId"] for a in response.json()["alerts"]], response.headers["X-Cache"]


async def test_reads_are_cached_and_a_change_invalidates_them(
    api: Api, conn: Connection, seeded: SeedResult
) -> None:
    pid, first, user = _first_assignee(seeded)
    await generate_alerts(conn, [pid])
    assert await _read(api, user) == ([first], "miss")
    assert await _read(api, user) == ([first], "hit")
    await api.runtime.complete(pid, first, user)
    steps, source = await _read(api, user)
    assert first not in steps
    assert source == "miss"


async def test_generation_through_the_api_invalidates_the_assignees(
    api: Api, seeded: SeedResult
) -> None:
    pid, first, user = _first_assignee(seeded)
    assert await _read(api, user) == ([], "miss")
    await api.http.post("/api/alerts/generate", json={"project_ids": [pid]}, headers=api.auth(user))
    assert await _read(api, user) == ([first], "miss")


async def _race(api: Api, seeded: SeedResult) -> list[int]:
    """A reader loads the old rows, a completion commits and invalidates, then the
    reader stores what it loaded. Returns what a read after all that sees."""
    pid, first, user = _first_assignee(seeded)
    runtime = api.runtime
    loaded, release = asyncio.Event(), asyncio.Event()

    async def slow_load() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await runtime.load_user_alerts(user)
        loaded.set()
        await asyncio.wait_for(release.wait(), timeout=10)
        return rows

    reader = asyncio.create_task(runtime.cache.get_or_load(user, slow_load))
    await asyncio.wait_for(loaded.wait(), timeout=10)
    await runtime.complete(pid, first, user)
    release.set()
    old, _ = await asyncio.wait_for(reader, timeout=10)
    assert [a["stepId"] for a in old] == [first]  # the slow reader did read the old state
    steps, _ = await _read(api, user)
    return steps


async def test_a_slow_reader_cannot_put_stale_alerts_back_after_the_invalidation(
    api: Api, conn: Connection, seeded: SeedResult
) -> None:
    pid, first, _ = _first_assignee(seeded)
    await generate_alerts(conn, [pid])
    assert first not in await _race(api, seeded)


async def test_stale_cache_flaw_serves_the_old_list_after_a_change(
    start_api: StartApi, conn: Connection, seeded: SeedResult
) -> None:
    api = await start_api(flaws=frozenset({Flaw.STALE_CACHE}))
    pid, first, user = _first_assignee(seeded)
    await generate_alerts(conn, [pid])
    assert await _read(api, user) == ([first], "miss")
    await api.runtime.complete(pid, first, user)
    assert await _read(api, user) == ([first], "hit")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_redis_down_answers_from_postgres(
    start_api: StartApi, conn: Connection, seeded: SeedResult
) -> None:
    api = await start_api(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    pid, first, user = _first_assignee(seeded)
    await generate_alerts(conn, [pid])
    assert await _read(api, user) == ([first], "error")
    # The breaker is open: the next read skips Redis altogether.
    assert await _read(api, user) == ([first], "bypass")
    done = await api.http.post(
        f"/api/projects/{pid}/line-items/{first}/complete", headers=api.auth(user)
    )
    assert done.status_code == 200
    steps, _ = await _read(api, user)
    assert first not in steps
    metrics = (await api.http.get("/metrics")).text
    assert 'alertbench_cache_requests_total{result="error"} 1.0' in metrics

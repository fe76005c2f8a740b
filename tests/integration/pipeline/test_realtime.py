"""Real-time delivery over Socket.IO: rooms, authorization, relay, catch-up.

The app runs under uvicorn in the test's event loop on 127.0.0.1; clients are
the reference ``AlertClient`` over real websockets. "Nothing arrived" is never
asserted after a sleep: a client that must not get an event gets a later
*sentinel* event instead, and per-connection order proves the absence.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import socketio
from ri_support import EventLog, Live, StartLive, first_step

from harness.contract.seed import SeedResult
from harness.faults import ToxiproxyClient, down
from harness.stack import Stack
from reference_impl import Flaw, issue_token
from reference_impl.completion import Stage
from reference_impl.db import Connection
from reference_impl.relay import APPLICATION_NAME


def _other_member(seeded: SeedResult, project_id: int, not_user: int) -> int:
    return next(u for u in seeded.members[project_id].values() if u != not_user)


async def test_missing_forged_or_expired_tokens_are_refused(
    start_live: StartLive, seeded: SeedResult
) -> None:
    live = await start_live()
    user = seeded.members[seeded.project_ids[0]]["project_manager"]
    bad = {
        "missing": None,
        "forged": issue_token(user, secret="x" * 40),
        "expired": issue_token(
            user, secret=live.config.token_secret, ttl_s=1, now_s=time.time() - 600
        ),
        "garbage": "not-a-jwt",
    }
    for label, token in bad.items():
        sio = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(
                live.url,
                auth={"token": token} if token is not None else None,
                transports=["websocket"],
                wait_timeout=5,
            )
        assert not sio.connected, label
        await sio.disconnect()
    client, _log = await live.client(user)
    assert client.connected


async def test_events_reach_exactly_the_entitled_rooms(
    start_live: StartLive, seeded: SeedResult
) -> None:
    live = await start_live()
    p, q = seeded.project_ids[:2]
    item, completer, assignee = first_step(seeded, p)
    bystander = _other_member(seeded, p, assignee)
    outsider = seeded.members[q]["project_manager"]

    _a, a_log = await live.client(assignee, [p])
    _b, b_log = await live.client(bystander, [p])
    c, c_log = await live.client(outsider, [p, q])
    assert c.forbidden == [p], "a non-member must not join the project room"

    response = await live.complete(p, item, completer)
    assert response.status_code == 200, response.text
    alert_id = response.json()["alert"]["id"]

    await a_log.wait_for(lambda log: alert_id in log.alert_ids())
    await a_log.wait_for(lambda log: len(log.named("workflow_updated")) == 1)
    await b_log.wait_for(lambda log: len(log.named("workflow_updated")) == 1)
    new_alert = a_log.named("new_alert")[0]
    assert new_alert["projectId"] == p
    assert set(new_alert) >= {"id", "title", "message", "priority", "stepId", "createdAt"}
    assert a_log.named("alerts_refresh")[0] == {
        "projectId": p,
        "type": "workflow_progression",
        "alertId": alert_id,
    }
    # new_alert goes to the assignee's room only; it was emitted before the
    # project-room events the bystander already has, so it would be here.
    assert b_log.alert_ids() == []

    # Sentinel: an event of the outsider's own project arrives after
    # everything of project p was emitted; nothing of p came before it.
    q_item, q_completer, _ = first_step(seeded, q)
    assert (await live.complete(q, q_item, q_completer)).status_code == 200
    await c_log.wait_for(lambda log: len(log.named("alerts_refresh")) >= 1)
    assert {e.data.get("projectId") for e in c_log.events} == {q}


async def test_malformed_payloads_get_error_acks_and_hurt_no_one(
    start_live: StartLive, seeded: SeedResult
) -> None:
    live = await start_live()
    p = seeded.project_ids[0]
    item, completer, assignee = first_step(seeded, p)
    client, _log = await live.client(completer)
    _bystander, b_log = await live.client(assignee, [p])
    bad_subscribes: list[object] = [
        "7",
        None,
        [],
        {},
        {"projectId": "1"},
        {"projectId": -5},
        {"projectId": True},
        {"projectId": 2**70},
    ]
    for payload in bad_subscribes:
        ack = await client.call("subscribe_project", payload)
        assert ack["ok"] is False, payload
        assert "projectId" in ack["error"], ack
    for payload in [{"sinceAlertId": -1}, "abc", {"sinceAlertId": 1.5}]:
        ack = await client.call("sync", payload)
        assert ack["ok"] is False
        assert "sinceAlertId" in ack["error"]
    ack = await client.call("launch_missiles", {"now": True})
    assert ack == {"ok": False, "error": "unknown event 'launch_missiles'"}
    # An event named "connect" is no new login (python-socketio would hand it
    # to the connect handler): refused, whatever token it carries.
    for token in (issue_token(assignee, secret=live.config.token_secret), "forged"):
        ack = await client.call("connect", ({}, {"token": token}))
        assert ack == {"ok": False, "error": "reserved event 'connect'"}
    # Still connected and working, and so is everyone else.
    assert client.connected
    assert (await client.call("subscribe_project", {"projectId": p}))["ok"] is True
    assert (await live.complete(p, item, completer)).status_code == 200
    await b_log.wait_for(lambda log: len(log.alert_ids()) == 1)


async def test_no_room_auth_flaw_leaks_a_foreign_projects_events(
    start_live: StartLive, seeded: SeedResult
) -> None:
    live = await start_live(flaws=frozenset({Flaw.NO_ROOM_AUTH}))
    p, q = seeded.project_ids[:2]
    item, completer, _ = first_step(seeded, p)
    outsider = seeded.members[q]["project_manager"]
    c, c_log = await live.client(outsider, [p])
    assert c.forbidden == []
    assert (await live.complete(p, item, completer)).status_code == 200
    await c_log.wait_for(lambda log: len(log.named("alerts_refresh")) == 1)
    assert c_log.named("alerts_refresh")[0]["projectId"] == p


class FailOnce:
    """Completion hooks that raise once, at ``stage``."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.armed = True

    async def after(self, stage: Stage, project_id: int) -> None:
        if self.armed and stage == self.stage:
            self.armed = False
            raise RuntimeError(f"injected failure at {stage}")


@pytest.mark.parametrize("flawed", [False, True], ids=["reference", "emit_before_commit"])
async def test_a_rolled_back_completion_sends_nothing(
    start_live: StartLive, seeded: SeedResult, conn: Connection, flawed: bool
) -> None:
    flaws = frozenset({Flaw.EMIT_BEFORE_COMMIT}) if flawed else frozenset()
    live = await start_live(hooks=FailOnce("before_commit"), flaws=flaws)
    p = seeded.project_ids[0]
    item, completer, assignee = first_step(seeded, p)
    _a, a_log = await live.client(assignee, [p])

    failed = await live.complete(p, item, completer)
    assert failed.status_code == 500
    retried = await live.complete(p, item, completer)
    assert retried.status_code == 200, retried.text
    committed = retried.json()["alert"]["id"]

    await a_log.wait_for(lambda log: committed in log.alert_ids())
    in_db = {r["id"] for r in await conn.fetch("SELECT id FROM workflow_alerts")}
    phantoms = [i for i in a_log.alert_ids() if i not in in_db]
    if flawed:
        assert len(phantoms) == 1, "emit before commit must show the rolled-back alert"
    else:
        assert phantoms == []
        assert a_log.alert_ids() == [committed]


async def _wait(event: asyncio.Event, *, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        await event.wait()


async def _wait_for_all(
    logs: Sequence[EventLog],
    expected: list[int],
    ids: Callable[[EventLog], list[int]],
    *,
    timeout_s: float = 15.0,
) -> None:
    """Wait until the logs together hold exactly ``expected`` alert ids (sorted)."""
    async with asyncio.timeout(timeout_s):
        while sorted(i for log in logs for i in ids(log)) != expected:
            waiters = [asyncio.ensure_future(log.changed.wait()) for log in logs]
            for log in logs:
                log.changed.clear()
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()


@contextlib.asynccontextmanager
async def _proxy(
    stack: Stack, name: str, port: int
) -> AsyncIterator[tuple[ToxiproxyClient, str, int]]:
    """A proxy of our own on the stack's Toxiproxy, removed afterwards."""
    async with ToxiproxyClient(stack.toxiproxy.url) as client:
        info = await client.create_proxy(name, upstream=f"127.0.0.1:{port}")
        try:
            yield client, name, info.listen_port
        finally:
            await client.delete_proxy(name)


async def test_relay_loses_nothing_when_its_backend_is_terminated(
    start_live: StartLive, seeded: SeedResult, conn: Connection
) -> None:
    live = await start_live()
    relay = live.app.state.relay
    p = seeded.project_ids[0]
    items = seeded.active_line_items
    completer = seeded.members[p]["project_manager"]
    assignees = {seeded.members[p][li.responsible_role] for li in items[1:4]}
    logs = [(await live.client(user, [p]))[1] for user in sorted(assignees)]

    killed = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        APPLICATION_NAME,
    )
    assert killed == 1
    committed = []
    for current in items[:3]:
        response = await live.complete(p, current.id, completer)
        assert response.status_code == 200, response.text
        committed.append(response.json()["alert"]["id"])

    # Live or replayed: every committed alert reaches its assignee, once.
    def received(log: EventLog) -> list[int]:
        return [i for i in log.alert_ids() if i in committed]

    await _wait_for_all(logs, committed, received)
    await relay.stats.wait_for_connections(2)


async def test_relay_replays_what_was_committed_while_it_was_cut_off(
    start_live: StartLive, seeded: SeedResult, alertbench_stack: Stack, pg_dsn: str
) -> None:
    database = pg_dsn.rsplit("/", 1)[1]
    async with _proxy(
        alertbench_stack, f"relay-{database}", alertbench_stack.postgres_direct.port
    ) as (toxiproxy, proxy_name, port):
        relay_dsn = alertbench_stack.postgres_direct.dsn_for(database).replace(
            f":{alertbench_stack.postgres_direct.port}/", f":{port}/"
        )
        live = await start_live(relay_pg_dsn=relay_dsn)
        relay = live.app.state.relay
        p = seeded.project_ids[0]
        items = seeded.active_line_items
        completer = seeded.members[p]["project_manager"]
        assignees = {seeded.members[p][li.responsible_role] for li in items[1:4]}
        logs = [(await live.client(user, [p]))[1] for user in sorted(assignees)]

        async with down(toxiproxy, proxy_name):
            await _wait(relay.stats.lost)
            committed = []
            for current in items[:3]:
                response = await live.complete(p, current.id, completer)
                assert response.status_code == 200, response.text
                committed.append(response.json()["alert"]["id"])
            assert relay.stats.emitted_live == 0

        await _wait_for_all(logs, committed, EventLog.alert_ids)
        assert relay.stats.emitted_replay == 3
        assert relay.stats.emitted_live == 0


@pytest.mark.parametrize("rejoin", [True, False], ids=["reference", "no_rejoin"])
async def test_a_client_catches_up_after_a_forced_disconnect(
    start_live: StartLive,
    seeded: SeedResult,
    alertbench_stack: Stack,
    conn: Connection,
    rejoin: bool,
) -> None:
    first, second, third = seeded.active_line_items[:3]
    # The same user is assigned the alerts of the second and third steps, so
    # the third can serve as a sentinel for the second.
    await conn.execute(
        "UPDATE workflow_line_items SET responsible_role = $1 WHERE id = $2",
        second.responsible_role,
        third.id,
    )
    live = await start_live()
    port = int(live.url.rsplit(":", 1)[1])
    p = seeded.project_ids[0]
    completer = seeded.members[p]["project_manager"]
    async with _proxy(alertbench_stack, f"app-{port}", port) as (toxiproxy, name, proxy_port):
        missed_assignee = seeded.members[p][second.responsible_role]
        client, log = await live.client(
            missed_assignee, [p], url=f"http://127.0.0.1:{proxy_port}", rejoin=rejoin
        )
        async with down(toxiproxy, name):
            await _wait(client.disconnected)
            response = await live.complete(p, first.id, completer)
            assert response.status_code == 200
            missed = response.json()["alert"]["id"]
        if rejoin:
            await log.wait_for(lambda log: missed in log.alert_ids())
            record = client.reconnects[0]
            assert record.subscribed_at is not None
            assert record.connected_at is not None
            assert record.caught_up == 1
            assert [e.via for e in log.events if e.name == "new_alert"] == ["sync"]
        else:
            # Sentinel: the next alert to the same user arrives live after the
            # reconnect; the one committed during the outage never does.
            await _wait(client.reconnected)
            response = await live.complete(p, second.id, completer)
            nxt = response.json()["alert"]
            assert nxt["assignedToId"] == missed_assignee
            await log.wait_for(lambda log: nxt["id"] in log.alert_ids())
            assert missed not in log.alert_ids()
            assert client.reconnects[0].subscribed_at is None


@contextlib.asynccontextmanager
async def _pool_behind_a_proxy(
    start_live: StartLive, stack: Stack, pg_dsn: str
) -> AsyncIterator[tuple[Live, ToxiproxyClient, str]]:
    """The app with its connection pool behind a proxy of its own (the relay
    connects directly): the live app, the Toxiproxy client, the proxy's name."""
    database = pg_dsn.rsplit("/", 1)[1]
    direct = stack.postgres_direct
    async with _proxy(stack, f"pool-{database}", direct.port) as (toxiproxy, name, port):
        pool_dsn = direct.dsn_for(database).replace(f":{direct.port}/", f":{port}/")
        live = await start_live(pg_dsn=pool_dsn, relay_pg_dsn=direct.dsn_for(database))
        yield live, toxiproxy, name


async def test_a_sync_the_database_cannot_answer_gets_an_ack_that_says_so(
    start_live: StartLive, seeded: SeedResult, alertbench_stack: Stack, pg_dsn: str
) -> None:
    """Postgres out of reach (the app's pool behind a proxy that is down): the
    ack names the cause, the socket stays up, and a sync after the heal
    answers again."""
    async with _pool_behind_a_proxy(start_live, alertbench_stack, pg_dsn) as (
        live,
        toxiproxy,
        proxy_name,
    ):
        p = seeded.project_ids[0]
        client, _log = await live.client(seeded.members[p]["project_manager"], [p])
        async with down(toxiproxy, proxy_name):
            ack = await client.call("sync", {"sinceAlertId": 0})
            assert ack == {"ok": False, "error": "database unavailable"}
        assert client.connected
        ack = await client.call("sync", {"sinceAlertId": 0})
        assert ack["ok"] is True, ack


async def test_a_refused_catch_up_is_retried_on_the_same_connection(
    start_live: StartLive, seeded: SeedResult, alertbench_stack: Stack, pg_dsn: str
) -> None:
    """The client is back but Postgres is not: its re-join and sync are
    refused. The connection is fine, so the client tries them again on it
    until they succeed. (It used to drop the connection each time, and a
    disconnect that hung there left one client of a chaos run never caught
    up.)"""
    async with _pool_behind_a_proxy(start_live, alertbench_stack, pg_dsn) as (
        live,
        toxiproxy,
        pg_proxy,
    ):
        app_port = int(live.url.rsplit(":", 1)[1])
        p = seeded.project_ids[0]
        item, completer, assignee = first_step(seeded, p)
        async with _proxy(alertbench_stack, f"app-{app_port}", app_port) as (_, app_proxy, port):
            client, log = await live.client(assignee, [p], url=f"http://127.0.0.1:{port}")
            postgres_away = down(toxiproxy, pg_proxy)
            async with down(toxiproxy, app_proxy):
                await _wait(client.disconnected)
                response = await live.complete(p, item, completer)
                assert response.status_code == 200, response.text
                missed = response.json()["alert"]["id"]
                await postgres_away.start()
            try:
                await _wait(client.refused)
            finally:
                await postgres_away.heal()
            await log.wait_for(lambda log: missed in log.alert_ids())
            await _wait(client.subscribed)
        assert [e.via for e in log.events if e.name == "new_alert"] == ["sync"]
        assert len(client.reconnects) == 1, client.reconnects  # no drop of its own
        assert client.reconnects[0].caught_up == 1

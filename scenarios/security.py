"""``security``: an attacker fuzzes the HTTP API and the Socket.IO server while victims watch.

Everything is judged by the contract (``docs/contract.md``), never by a
target's own description of itself:

1. **Victims and bystanders.** Every member of every project but the
   attacker's connects (the harness's client, into the history) and joins
   their project's room; every project then walks its workflow, a step at a
   time, all through the Socket.IO fuzzing.
2. **Bad credentials.** Socket.IO connections and requests to every
   authenticated operation with missing, malformed, truncated, re-signed,
   tampered (another user's id under the attacker's signature), ``alg:
   none``, expired and non-positive-user tokens (``harness.fuzz.tokens``):
   every one refused (connect error, 401).
3. **The attacker** (a real user, member of one project) and a **ghost** (a
   valid token of a user id that exists nowhere) ask to join every other
   project's room: every request refused. The attacker then sends a seeded
   Hypothesis stream of events (``harness.fuzz.realtime``): malformed, wrongly
   typed, binary, deeply nested and oversized payloads, unknown and reserved
   event names, random room ids, ``sync`` catch-ups, and an event named
   ``connect`` carrying a forged token. Every ``subscribe_project`` and
   ``sync`` is acked within 5 s, malformed ones refused; no handler drops the
   connection (only protocol abuse may: oversized packets, NaN, reserved
   event names); ``sync`` returns only the attacker's own alerts.
4. **Cross-user HTTP**: the attacker reads a victim's alert list and completes
   the victim project's current step: 403 both.
5. **Schemathesis** over the contract's OpenAPI document
   (``harness/contract/openapi.json``), positive and negative data, with the
   attacker's valid token (``harness.fuzz.api``): never a 5xx, every answer a
   documented status with a documented body, malformed input a 4xx; and raw
   bodies no JSON strategy makes (not JSON, NaN, bad UTF-8, nested 100,000
   deep): a 4xx.
6. **Afterwards**: the server still answers ``/healthz`` and a fresh
   Socket.IO connection's ``sync``; no victim or bystander was ever
   disconnected.

Judged by ``no_leaks`` (every event the victims, the attacker and the ghost
received, and every alert a ``sync`` returned to the attacker, was meant for
them), ``no_phantoms``, ``delivery`` (the victims got their alerts through the
attack), ``no_duplicates``, and this scenario's own checks (``http_*``,
``socket_*``, ``bystanders_connected``, ``server_alive``). The report's extra
section holds the counts: examples and requests per schemathesis pass,
Socket.IO events sent by kind, acks, drops, statuses.

Budget: ``ALERTBENCH_FUZZ_EXAMPLES`` (default 10) examples per operation and
generation mode for schemathesis, and ten times as many Socket.IO actions.
CI runs the default (about 110 schemathesis requests and 120 Socket.IO
events); raise it for a deeper search (100: about 1,100 requests and 1,000
events, two minutes on a shared 2-core machine). The run's ``--seed`` seeds
both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import aiohttp
import socketio

from harness.checks import CheckResult
from harness.checks.result import Validity
from harness.clients import AppHttp, Subscriber, SubscriberFleet
from harness.contract.openapi import openapi_document
from harness.errors import ConfigError
from harness.fuzz.api import ApiFuzzConfig, ApiFuzzReport, fuzz_api
from harness.fuzz.realtime import (
    ALLOWED_DROP_KINDS,
    Attacker,
    SocketAction,
    SocketFuzzTally,
    draw_actions,
    socket_actions,
    try_connect,
)
from harness.fuzz.tokens import bad_authorization_headers, bad_tokens
from harness.history import Commit, Session
from harness.scenario import ScenarioContext
from harness.slo import only_slos
from harness.stack import _sql

__all__ = ["DEFAULT_EXAMPLES", "FUZZ_EXAMPLES_ENV", "SecurityScenario", "fuzz_examples"]

MAX_PROJECTS = 5
STEPS = 5
FUZZ_EXAMPLES_ENV = "ALERTBENCH_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 10
#: Socket.IO actions per schemathesis example budget unit.
SOCKET_ACTIONS_PER_EXAMPLE = 10
#: Auth shapes that are not ``{"token": <string>}`` (each must refuse the connection).
BAD_AUTH_SHAPES: tuple[tuple[str, Any], ...] = (
    ("auth_not_an_object", "a-string"),
    ("auth_empty_object", {}),
    ("token_null", {"token": None}),
    ("token_number", {"token": 123}),
    ("token_list", {"token": ["x"]}),
)


#: Request bodies of ``POST /api/alerts/generate`` that are not the documented
#: JSON: (kind, body, must be refused). Contract 6: never a 5xx; a 4xx where
#: the body is plainly not the documented JSON. Duplicate keys (RFC 8259 leaves
#: them to the parser) and more ids than the reference takes (100,000) may
#: also be served.
MALFORMED_BODIES: tuple[tuple[str, bytes, bool], ...] = (
    ("not_json", b"not json", True),
    ("truncated_json", b'{"project_ids": [1, 2', True),
    ("empty", b"", True),
    ("nan", b'{"project_ids": [NaN]}', True),
    ("invalid_utf8", b'{"project_ids": ["\xff\xfe"]}', True),
    ("deeply_nested", b'{"project_ids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", True),
    ("duplicate_keys", b'{"project_ids": [1], "project_ids": "x"}', False),
    ("too_many_ids", b'{"project_ids": [' + b",".join([b"1"] * 200_001) + b"]}", False),
)


def fuzz_examples(environ: Mapping[str, str] | None = None) -> int:
    """The example budget: ``ALERTBENCH_FUZZ_EXAMPLES``, default 10."""
    raw = (os.environ if environ is None else environ).get(FUZZ_EXAMPLES_ENV, "").strip()
    if not raw:
        return DEFAULT_EXAMPLES
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(FUZZ_EXAMPLES_ENV, f"must be an integer, got {raw!r}") from None
    if not 1 <= value <= 100_000:
        raise ConfigError(FUZZ_EXAMPLES_ENV, f"must be in 1..100000, got {value}")
    return value


def _answered(probe: Mapping[str, Any]) -> bool:
    """A malformed-body probe that got an answer below 500 (just not a 4xx)."""
    status = probe.get("status")
    return isinstance(status, int) and status < 500


class SecurityScenario:
    name = "security"
    summary = (
        "an attacker fuzzes the HTTP API (schemathesis, the contract's OpenAPI) and "
        "Socket.IO (bad tokens, foreign rooms, malformed events) while victims watch: "
        "no leak, no 5xx, no dropped client"
    )
    max_projects = MAX_PROJECTS
    min_projects = MAX_PROJECTS
    checks: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "no_leaks": {},
        "no_phantoms": {},
        "delivery": {},
        "no_duplicates": {},
    }
    slos: ClassVar[Mapping[str, Mapping[str, Any]]] = only_slos("delivery_rate", "duplication_rate")

    async def run(self, ctx: ScenarioContext) -> None:
        examples = fuzz_examples()
        seeded = ctx.seeded
        projects = seeded.project_ids[:MAX_PROJECTS]
        victim_project, attacker_project = projects[0], projects[1]
        members = {p: sorted(set(seeded.members[p].values())) for p in projects}
        attacker = seeded.members[attacker_project]["project_manager"]
        victim = seeded.members[victim_project]["project_manager"]
        ghost = max(u for us in members.values() for u in us) + 1000
        foreign = [p for p in projects if p != attacker_project]
        url = ctx.stack.app_urls[0] if ctx.stack.app_urls else ctx.app_url

        # Victims (project 0) and bystanders (the others), each in their room.
        fleet = ctx.fleet(
            [Subscriber(u, (p,)) for p in projects if p != attacker_project for u in members[p]]
        )
        phases: dict[str, float] = {}
        mark = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = round(now - mark, 3)
            mark = now

        started = await fleet.start()
        lap("victims_connect")
        if started.failed:
            raise RuntimeError(f"victims could not connect: {started.failed}")

        tally = SocketFuzzTally()
        history = ctx.history

        def on_event(user_id: int, event: str, data: dict[str, Any], via: str) -> None:
            alert_id = data.get("id") if event == "new_alert" else None
            room_alert = data.get("alertId") if event != "new_alert" else None
            history.receive(
                # Catch-up answers under a client name of their own: an alert
                # seen by sync and then pushed live is not a duplicate push.
                f"a{user_id}" if via == "live" else f"a{user_id}-sync",
                user_id=user_id,
                event=event,
                alert_id=alert_id if isinstance(alert_id, int) else None,
                project_id=data.get("projectId"),
                via=via,
                payload={"alertId": room_alert} if isinstance(room_alert, int) else None,
            )

        # Bad credentials first: nothing of them may connect.
        await self._bad_connects(ctx, url, attacker, victim, tally)
        lap("bad_credential_connects")

        intruder = Attacker(
            url,
            ctx.token(attacker),
            attacker,
            member_of=(attacker_project,),
            tally=tally,
            on_event=on_event,
        )
        ghost_client = Attacker(
            url, ctx.token(ghost), ghost, member_of=(), tally=tally, on_event=on_event
        )
        http_probes: dict[str, Any] = {}
        api_report = ApiFuzzReport()
        try:
            await intruder.connect()
            await ghost_client.connect()
            await self._probe_rooms(intruder, ghost_client, attacker_project, foreign)
            await self._probe_reserved_connect(ctx, intruder, attacker, victim)
            lap("room_probes")

            actions = await asyncio.to_thread(
                draw_actions,
                socket_actions([attacker_project], foreign),
                examples * SOCKET_ACTIONS_PER_EXAMPLE,
                ctx.params.seed,
            )
            lap("draw_socket_actions")
            async with ctx.http() as http:
                generated = await ctx.generate_recorded(http, projects)
                if generated.type != "ok":
                    raise RuntimeError(f"generation failed: {generated.error}")
                step = self._stepper(ctx, http, projects)
                await intruder.run(
                    actions, every=max(1, len(actions) // STEPS), between=step, budget_s=120.0
                )
                while await step():  # the rest of the walk, if the fuzz ended early
                    pass
                # Everything the attacker and the ghost can catch up on: their own only.
                for client in (intruder, ghost_client):
                    await client.send(
                        SocketAction("sync_valid", "sync", ({"sinceAlertId": 0},), True, "ok")
                    )
                lap("socket_fuzz_and_walk")
                http_probes = await self._probe_http(
                    ctx, http, attacker, victim, victim_project, attacker_project
                )
                lap("http_auth_probes")
                api_report = await asyncio.to_thread(
                    fuzz_api,
                    openapi_document(ctx.target.capabilities),
                    ApiFuzzConfig(
                        base_url=url,
                        headers=ctx.auth(attacker),
                        examples=examples,
                        seed=ctx.params.seed,
                        fixed_paths={
                            "GET /api/users/{user_id}/alerts": {"user_id": attacker},
                            "POST /api/projects/{project_id}/line-items/{line_item_id}/complete": {
                                "project_id": attacker_project
                            },
                        },
                        budget_s=120.0,
                    ),
                )
                lap("schemathesis")
                await self._drain(ctx, fleet)
                lap("drain")
                alive = await self._alive(ctx, http, url, victim)
                lap("aliveness")
        finally:
            await intruder.close()
            await ghost_client.close()
        await ctx.snapshot_alerts()
        dropped = self._bystander_drops(ctx, fleet)
        await ctx.close_fleets()

        ctx.extra["fuzz"] = {
            "examples_budget": examples,
            "phase_seconds": phases,
            "socket": tally.to_dict(),
            "http_fuzz": api_report.to_dict(),
            "http_probes": http_probes,
            "attacker_user": attacker,
            "ghost_user": ghost,
            "victim_project": victim_project,
            "attacker_project": attacker_project,
        }
        ctx.own_checks.extend(
            self._verdicts(tally, api_report, http_probes, dropped, alive, len(fleet.clients))
        )

    # -- phases -------------------------------------------------------------

    async def _bad_connects(
        self, ctx: ScenarioContext, url: str, attacker: int, victim: int, tally: SocketFuzzTally
    ) -> None:
        attempts: list[tuple[str, Any]] = [
            (b.kind, None if b.token is None else {"token": b.token})
            for b in bad_tokens(ctx.tokens, attacker, victim)
        ]
        attempts += list(BAD_AUTH_SHAPES)
        for kind, auth in attempts:
            tally.bad_connects[kind] += 1
            # A refusal is quick; a server that rejects a malformed handshake by
            # closing the socket leaves the client waiting, so 3 s, not 5.
            if await try_connect(url, auth, timeout_s=3.0):
                tally.bad_connects_accepted.append(kind)

    async def _probe_rooms(
        self, intruder: Attacker, ghost: Attacker, own: int, foreign: list[int]
    ) -> None:
        """Own room (must be joined), every other project's (must be refused),
        and a few fixed probes the random stream may miss."""
        await intruder.send(
            SocketAction("subscribe_own", "subscribe_project", ({"projectId": own},), True, "ok")
        )
        for client in (intruder, ghost):
            for p in [*foreign, *([own] if client is ghost else [])]:
                await client.send(
                    SocketAction(
                        "subscribe_foreign",
                        "subscribe_project",
                        ({"projectId": p},),
                        True,
                        "refused",
                    )
                )
        await intruder.send(SocketAction("sync_valid", "sync", ({"sinceAlertId": 0},), True, "ok"))
        # Unknown events SHOULD be acked: asked once, reported, not judged.
        await intruder.send(SocketAction("unknown_event_acked", "no_such_event", ({},), True))
        # Past any transport's size limit: the server may drop this connection
        # (the attacker reconnects), and nobody else's.
        await intruder.send(
            SocketAction(
                "oversized", "subscribe_project", ({"projectId": "x" * 2_000_000},), True, "refused"
            )
        )

    async def _probe_reserved_connect(
        self, ctx: ScenarioContext, intruder: Attacker, attacker: int, victim: int
    ) -> None:
        """An event named ``connect`` carrying a forged ``auth``: a server that
        hands client events to its connect handler (python-socketio does) must
        not let the socket become the victim's. The final ``sync`` shows it."""
        for bad in bad_tokens(ctx.tokens, attacker, victim):
            if bad.token:
                await intruder.send(
                    SocketAction("reserved_event", "connect", ({}, {"token": bad.token}), False)
                )

    def _stepper(
        self, ctx: ScenarioContext, http: AppHttp, projects: list[int]
    ) -> Callable[[], Awaitable[bool]]:
        """A callable completing the next step of every project; False when the walk is done."""
        items = ctx.seeded.active_line_items
        steps = min(STEPS, len(items) - 1)
        done = 0

        async def step() -> bool:
            nonlocal done
            if done >= steps:
                return False
            item = items[done]
            done += 1

            async def one(p: int) -> None:
                with contextlib.suppress(Exception):  # recorded by complete_recorded
                    await ctx.complete_recorded(
                        http, f"w{p}", p, item.id, ctx.seeded.members[p]["project_manager"]
                    )

            await asyncio.gather(*(one(p) for p in projects))
            return True

        return step

    async def _probe_http(
        self,
        ctx: ScenarioContext,
        http: AppHttp,
        attacker: int,
        victim: int,
        victim_project: int,
        attacker_project: int,
    ) -> dict[str, Any]:
        """Bad credentials on every authenticated operation (401), and the
        attacker's valid token on the victim's data (403)."""
        first = ctx.seeded.active_line_items[0].id
        requests: list[tuple[str, str, Any]] = [
            ("POST", f"/api/projects/{attacker_project}/line-items/{first}/complete", None),
            ("POST", "/api/alerts/generate", {"project_ids": [attacker_project]}),
            ("GET", f"/api/users/{attacker}/alerts", None),
        ]
        if "queue" in ctx.target.capabilities:
            requests += [
                ("GET", f"/api/queue/jobs/complete:{attacker_project}:{first}", None),
                ("GET", "/api/queue/dead-letters", None),
            ]
        headers: list[tuple[str, dict[str, str]]] = [
            (b.kind, {} if b.token is None else {"Authorization": f"Bearer {b.token}"})
            for b in bad_tokens(ctx.tokens, attacker, victim)
        ]
        headers += [
            (k, {"Authorization": v}) for k, v in bad_authorization_headers(ctx.tokens, attacker)
        ]
        statuses: Counter[str] = Counter()
        wrong: list[dict[str, Any]] = []
        for method, path, body in requests:
            for kind, header in headers:
                status = await self._status(http, method, path, body, header)
                statuses[str(status)] += 1
                if status != 401:
                    wrong.append({"request": f"{method} {path}", "token": kind, "status": status})
        # The attacker's own valid token on the victim's data.
        current = await self._current_line_item(ctx, victim_project)
        cross = [
            ("GET", f"/api/users/{victim}/alerts", None),
            ("POST", f"/api/projects/{victim_project}/line-items/{current}/complete", None),
        ]
        for method, path, body in cross:
            status = await self._status(http, method, path, body, ctx.auth(attacker))
            statuses[str(status)] += 1
            if status != 403:
                wrong.append({"request": f"{method} {path}", "token": "attacker", "status": status})
        # Bodies no JSON strategy produces: each must get a 4xx, never a 5xx.
        malformed: list[dict[str, Any]] = []
        # A connection of its own per body: a server may close one after a 500.
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10),
            connector=aiohttp.TCPConnector(force_close=True),
        ) as raw:
            for kind, body, must_reject in MALFORMED_BODIES:
                try:
                    async with raw.post(
                        f"{http.base_url}/api/alerts/generate",
                        data=body,
                        headers={**ctx.auth(attacker), "Content-Type": "application/json"},
                    ) as response:
                        await response.read()
                        answer: int | str = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    answer = type(exc).__name__
                statuses[str(answer)] += 1
                answered = isinstance(answer, int) and answer < 500
                if not answered or (must_reject and not 400 <= int(answer) < 500):
                    malformed.append({"body": kind, "status": answer})
        return {
            "requests": sum(statuses.values()),
            "bad_credentials": len(requests) * len(headers),
            "cross_user": len(cross),
            "malformed_bodies": len(MALFORMED_BODIES),
            "statuses": dict(sorted(statuses.items())),
            "wrong": wrong,
            "malformed_bodies_wrong": malformed,
        }

    @staticmethod
    async def _status(
        http: AppHttp, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> int | str:
        try:
            response = await http.request(method, path, json=body, headers=headers)
        except Exception as exc:
            return f"{type(exc).__name__}"
        return response.status

    @staticmethod
    async def _current_line_item(ctx: ScenarioContext, project: int) -> int:
        rows = await asyncio.to_thread(
            _sql.fetch,
            ctx.direct_dsn,
            "SELECT current_line_item_id FROM project_workflow_trackers WHERE project_id = $1",
            project,
        )
        current = rows[0]["current_line_item_id"] if rows else None
        return int(current) if current is not None else ctx.seeded.active_line_items[-1].id

    async def _drain(self, ctx: ScenarioContext, fleet: SubscriberFleet) -> None:
        """Until every recorded commit reached its connected assignee (at most drain_s)."""
        commits = ctx.history.of_type(Commit)

        def delivered() -> bool:
            for c in commits:
                client = fleet.clients.get(int(c.assignee_id)) if c.assignee_id else None
                if client is not None and int(c.alert_id) not in client.alert_ids:
                    return False
            return True

        ctx.extra["drained"] = await ctx.drain(delivered)

    async def _alive(
        self, ctx: ScenarioContext, http: AppHttp, url: str, user: int
    ) -> dict[str, Any]:
        """``/healthz`` and a fresh connection's ``sync`` after the attack."""
        health = await self._status(http, "GET", "/healthz", None, {})
        sync_ok = False
        client = socketio.AsyncClient(
            reconnection=False, logger=False, engineio_logger=False, handle_sigint=False
        )
        try:
            await client.connect(
                url, auth={"token": ctx.token(user)}, transports=["websocket"], wait_timeout=5
            )
            ack = await client.call("sync", {"sinceAlertId": 0}, timeout=5)
            sync_ok = isinstance(ack, dict) and ack.get("ok") is True
        except Exception as exc:
            return {"healthz": health, "sync_ok": False, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
        return {"healthz": health, "sync_ok": sync_ok}

    @staticmethod
    def _bystander_drops(ctx: ScenarioContext, fleet: SubscriberFleet) -> dict[str, Any]:
        drops = [
            {"client": s.process, "reason": s.reason}
            for s in ctx.history.of_type(Session)
            if s.type == "disconnect"
        ]
        down = sorted(u for u, c in fleet.clients.items() if not c.connected)
        return {"disconnects": drops, "not_connected": down}

    # -- verdicts -----------------------------------------------------------

    @staticmethod
    def _verdicts(
        tally: SocketFuzzTally,
        api: ApiFuzzReport,
        probes: Mapping[str, Any],
        dropped: Mapping[str, Any],
        alive: Mapping[str, Any],
        watched: int,
    ) -> list[CheckResult]:
        def known(valid: bool, evidence: int) -> Validity:
            return valid if evidence else "unknown"

        bodies: list[dict[str, Any]] = list(probes.get("malformed_bodies_wrong", []))
        auth_requests = int(probes.get("bad_credentials", 0)) + int(probes.get("cross_user", 0))
        five = sum(n for s, n in api.statuses.items() if s >= 500)
        probe_5xx = sum(
            n for s, n in probes.get("statuses", {}).items() if s.isdigit() and int(s) >= 500
        )
        results = [
            CheckResult.build(
                "http_no_server_errors",
                violations=api.counterexamples.get("server_error", [])
                + api.counterexamples.get("transport", [])
                + [m for m in bodies if not _answered(m)],
                valid=known(
                    five + probe_5xx + api.transport_errors == 0
                    and all(_answered(m) for m in bodies),
                    api.requests,
                ),
                summary=(
                    f"{five + probe_5xx} 5xx and {api.transport_errors} unanswered of "
                    f"{api.requests + probes.get('requests', 0)} requests "
                    f"({api.examples} schemathesis examples)"
                ),
                counts={
                    "requests": float(api.requests),
                    "examples": float(api.examples),
                    "server_errors": float(five + probe_5xx),
                    "unanswered": float(api.transport_errors),
                },
            ),
            CheckResult.build(
                "http_schema_conformance",
                violations=api.counterexamples.get("schema", []),
                valid=known(api.failures["schema"] == 0, api.requests),
                summary=(
                    f"{api.failures['schema']} of {api.requests} responses off the contract's "
                    "OpenAPI document (status, media type or body)"
                ),
                counts={
                    "requests": float(api.requests),
                    "nonconforming": float(api.failures["schema"]),
                },
            ),
            CheckResult.build(
                "http_malformed_rejected",
                violations=api.counterexamples.get("malformed_accepted", [])
                + [m for m in bodies if _answered(m)],
                valid=known(
                    api.failures["malformed_accepted"] == 0
                    and not any(_answered(m) for m in bodies),
                    api.requests,
                ),
                summary=(
                    f"{api.failures['malformed_accepted']} schema-violating requests and "
                    f"{sum(_answered(m) for m in bodies)} of {len(MALFORMED_BODIES)} "
                    "malformed bodies answered other than 4xx"
                ),
                counts={"accepted": float(api.failures["malformed_accepted"])},
            ),
            CheckResult.build(
                "http_auth",
                violations=list(probes.get("wrong", [])),
                valid=known(not probes.get("wrong"), auth_requests),
                summary=(
                    f"{len(probes.get('wrong', []))} of {auth_requests} requests with "
                    "bad credentials (401 due) or on another user's data (403 due) "
                    "answered otherwise"
                ),
                counts={
                    "requests": float(auth_requests),
                    "wrong": float(len(probes.get("wrong", []))),
                },
            ),
            CheckResult.build(
                "socket_auth",
                violations=[{"bad_connect_accepted": k} for k in tally.bad_connects_accepted]
                + tally.foreign_joins
                + tally.sync_leaks,
                valid=known(
                    not (tally.bad_connects_accepted or tally.foreign_joins or tally.sync_leaks),
                    tally.sent["subscribe_foreign"],
                ),
                summary=(
                    f"{len(tally.bad_connects_accepted)} of {sum(tally.bad_connects.values())} "
                    f"bad-credential connections accepted; {len(tally.foreign_joins)} of "
                    f"{tally.sent['subscribe_foreign'] + tally.sent['subscribe_malformed']} "
                    f"foreign or malformed room joins accepted; {len(tally.sync_leaks)} "
                    "foreign alerts in sync"
                ),
                counts={
                    "bad_connects": float(sum(tally.bad_connects.values())),
                    "bad_connects_accepted": float(len(tally.bad_connects_accepted)),
                    "foreign_joins": float(len(tally.foreign_joins)),
                    "sync_leaks": float(len(tally.sync_leaks)),
                },
            ),
            CheckResult.build(
                "socket_robustness",
                violations=tally.missing_ack_examples
                + (
                    [{"gave_up": "a valid token's reconnects were refused"}]
                    if tally.gave_up
                    else []
                )
                + tally.accepted_malformed
                + tally.valid_refused
                + [d for d in tally.drop_examples if d["kind"] not in ALLOWED_DROP_KINDS],
                valid=known(
                    not (
                        sum(tally.missing_acks.values())
                        or tally.accepted_malformed
                        or tally.valid_refused
                        or tally.forbidden_drops()
                        or tally.gave_up
                    ),
                    sum(tally.sent.values()),
                ),
                summary=(
                    f"{sum(tally.sent.values())} events sent: {sum(tally.missing_acks.values())} "
                    f"contract acks missing, {len(tally.accepted_malformed)} malformed accepted, "
                    f"{len(tally.valid_refused)} valid refused, {tally.forbidden_drops()} "
                    "connections dropped by a handler"
                    + ("; the attacker could not reconnect" if tally.gave_up else "")
                ),
                counts={
                    "sent": float(sum(tally.sent.values())),
                    "missing_acks": float(sum(tally.missing_acks.values())),
                    "drops": float(sum(tally.drops.values())),
                    "forbidden_drops": float(tally.forbidden_drops()),
                },
            ),
            CheckResult.build(
                "bystanders_connected",
                violations=list(dropped["disconnects"])
                + [{"not_connected": u} for u in dropped["not_connected"]],
                valid=not (dropped["disconnects"] or dropped["not_connected"]),
                summary=(
                    f"{len(dropped['disconnects'])} disconnects among {watched} victims and "
                    f"bystanders; {len(dropped['not_connected'])} not connected at the end"
                ),
                counts={
                    "watched": float(watched),
                    "disconnects": float(len(dropped["disconnects"])),
                },
            ),
            CheckResult.build(
                "server_alive",
                violations=[]
                if alive.get("healthz") == 200 and alive.get("sync_ok")
                else [dict(alive)],
                valid=alive.get("healthz") == 200 and alive.get("sync_ok") is True,
                summary=(
                    f"after the attack: /healthz {alive.get('healthz')}, "
                    f"a new connection's sync {'ok' if alive.get('sync_ok') else 'failed'}"
                ),
            ),
        ]
        return results

"""What a scenario is, and the context the runner hands it.

A scenario is data plus one coroutine: its name, the checkers that judge it,
the SLOs that apply (as overrides of the defaults), default parameters, and
``run(ctx)``, which drives the workload against the app the runner started
and records everything in ``ctx.history``. The runner does the rest: stack,
database, seed data, app (with the requested flaws), final reads, checks,
SLOs and the report (see :mod:`harness.runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.checks import CheckResult
from harness.clients import AppHttp, HttpStatusError, Subscriber, SubscriberFleet
from harness.clients.subscriber import ClientEvent, ReconnectPolicy
from harness.contract import SeedResult, TokenScheme
from harness.errors import ConfigError
from harness.history import Commit, History, Op, Receive, announced_alert
from harness.history.store import FaultEventLike
from harness.metrics.resources import CpuMark, mark_cpu
from harness.stack import Stack, _sql
from harness.stack.app import FANOUTS
from harness.stack.proxies import ToxiproxyServer
from harness.targets import Target
from harness.workload import GeneratorReport, OpFailed

__all__ = [
    "NO_PROXY_FLAG",
    "SUBSCRIBERS",
    "LocustOptions",
    "RunParams",
    "Scenario",
    "ScenarioContext",
    "announced_alert",
    "check_proxy_faults",
    "proxy_faults",
    "wait_until",
]

#: The flag that runs the stack without Toxiproxy (named in errors and reports).
NO_PROXY_FLAG = "--no-proxy"

#: ``--subscribers``: the load scenario's clients (see RunParams.subscribers).
SUBSCRIBERS: tuple[str, ...] = ("assignees", "all")


@dataclass(frozen=True, kw_only=True)
class LocustOptions:
    """A sharded run driven through Locust's master and workers (``alertbench locust``)."""

    #: Without Locust's web UI: the run starts at once and ends by itself.
    headless: bool = True
    #: Locust workers started on this machine (the rest connect from others).
    local_workers: int = 2
    #: Where the master listens for workers; port 0: a free one (all workers local).
    master_host: str = "127.0.0.1"
    master_port: int = 0
    #: The web UI's address (without ``headless``).
    web_host: str = "127.0.0.1"
    web_port: int = 8089

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class RunParams:
    """The knobs of a run (CLI flags), validated on construction."""

    #: Projects seeded (each with one member per role and a tracker).
    projects: int = 1000
    #: Open-loop arrival rate of the main operation, per second.
    rate_per_s: float = 100.0
    #: How long the measured load runs, in seconds.
    duration_s: float = 10.0
    #: Seed of everything random (data, schedules, jitter, faults).
    seed: int = 1
    #: Named flaws to switch on: the target's own, or the client's (``no_rejoin``).
    flaws: frozenset[str] = frozenset()
    #: Server processes of the app.
    app_processes: int = 1
    #: How alerts reach every app process (``redis`` or ``listen``; see AppSpec).
    fanout: str = "redis"
    #: Time allowed after the load for in-flight deliveries, in seconds.
    drain_s: float = 5.0
    #: Shard the subscribers and the generator over this many worker processes
    #: (0: in the harness's own process; see harness.scale).
    workers: int = 0
    #: Drive the shards through Locust's master and workers (else plain processes).
    locust: LocustOptions | None = None
    #: Which users the load scenario connects: ``assignees`` (those its
    #: completions assign an alert to) or ``all`` (every member of a project).
    subscribers: str = "assignees"

    def __post_init__(self) -> None:
        if not 1 <= self.projects <= 1_000_000:
            raise ConfigError("--projects", f"must be in 1..1000000, got {self.projects}")
        if not 0 < self.rate_per_s <= 100_000:
            raise ConfigError("--rate", f"must be in (0, 100000], got {self.rate_per_s}")
        if not 0 < self.duration_s <= 24 * 3600:
            raise ConfigError("--duration", f"must be in (0, 86400] s, got {self.duration_s}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError("--seed", f"must be in [0, 2**63), got {self.seed}")
        if not 0 <= self.drain_s <= 600:
            raise ConfigError("--drain", f"must be in [0, 600] s, got {self.drain_s}")
        if not 0 <= self.workers <= 256:
            raise ConfigError("--workers", f"must be in 0..256, got {self.workers}")
        if self.locust is not None and not 0 <= self.locust.local_workers <= self.workers:
            raise ConfigError(
                "--workers",
                f"{self.locust.local_workers} local Locust workers, more than the"
                f" {self.workers} expected in all",
            )
        if self.subscribers not in SUBSCRIBERS:
            raise ConfigError(
                "--subscribers",
                f"must be one of {', '.join(SUBSCRIBERS)}, got {self.subscribers!r}",
            )
        if self.fanout not in FANOUTS:
            raise ConfigError(
                "--fanout", f"must be one of {', '.join(FANOUTS)}, got {self.fanout!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "projects": self.projects,
            "rate_per_s": self.rate_per_s,
            "duration_s": self.duration_s,
            "seed": self.seed,
            "flaws": sorted(self.flaws),
            "app_processes": self.app_processes,
            "fanout": self.fanout,
            "drain_s": self.drain_s,
            "workers": self.workers,
            "locust": self.locust.to_dict() if self.locust is not None else None,
            "subscribers": self.subscribers,
        }


@dataclass
class ScenarioContext:
    """Everything a scenario's ``run`` may use."""

    name: str
    params: RunParams
    stack: Stack
    history: History
    #: Database of this scenario on the stack's Postgres.
    database: str
    seeded: SeedResult
    #: What is under test, and how to mint its users' tokens.
    target: Target
    tokens: TokenScheme
    #: The scenario's database, bypassing the proxy (set-up, final reads).
    direct_dsn: str
    #: Set by the scenario when it drove an open-loop workload.
    generator: GeneratorReport | None = None
    #: Extra sections for the report (tables, figures), JSON-ready.
    extra: dict[str, Any] = field(default_factory=dict)
    #: Verdicts the scenario reached itself (beyond the history checkers).
    own_checks: list[CheckResult] = field(default_factory=list)
    #: CPU marks around the measured load (:meth:`measuring_resources`).
    cpu_window: tuple[CpuMark, CpuMark] | None = None
    _fleets: list[SubscriberFleet] = field(default_factory=list)
    _tokens: dict[int, tuple[str, float]] = field(default_factory=dict)

    # -- addresses ---------------------------------------------------------

    @property
    def app_url(self) -> str:
        return self.stack.app_url

    @property
    def direct_app_urls(self) -> list[str]:
        """The target's own addresses, bypassing the ``app`` proxies (work that
        must go on while a fault cuts the clients' hop)."""
        if self.stack.app is not None:
            return list(self.stack.app.direct_urls)
        if self.target.url is not None:
            return [self.target.url.base_url]
        return list(self.stack.app_urls)

    @property
    def toxiproxy(self) -> ToxiproxyServer:
        """The Toxiproxy server in front of the stack's hops, for fault packages.

        Raises :class:`ConfigError` naming the scenario and ``--no-proxy`` when
        the stack bypasses the proxies (a scenario that breaks hops declares
        ``proxy_faults``, and the runner refuses it before it starts).
        """
        if self.stack.toxiproxy is None:
            raise ConfigError(
                NO_PROXY_FLAG,
                f"scenario {self.name!r} injects faults through Toxiproxy, which this run"
                f" bypasses; run it without {NO_PROXY_FLAG}",
            )
        return self.stack.toxiproxy

    def _cpu_mark(self) -> CpuMark:
        return mark_cpu(
            self.stack.local_processes(),
            alone={"harness (generator + clients)": os.getpid()},
            unmeasured=self.stack.unmeasured_roles(),
        )

    @contextlib.contextmanager
    def measuring_resources(self) -> Iterator[None]:
        """Mark the CPU of every local process around the measured load; the
        report shows it by role (and per operation of ``self.generator``)."""
        start = self._cpu_mark()
        try:
            yield
        finally:
            self.cpu_window = (start, self._cpu_mark())

    def token(self, user_id: int) -> str:
        """A valid token of ``user_id`` in the target's scheme, reused until half
        its lifetime is gone.

        Signing one per request was a tenth of the load generator's CPU."""
        now = time.monotonic()
        cached = self._tokens.get(user_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        token = self.tokens.mint(user_id)
        self._tokens[user_id] = (token, now + self.tokens.ttl_s / 2)
        return token

    def auth(self, user_id: int) -> dict[str, str]:
        """The ``Authorization`` header of ``user_id``'s requests."""
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    def http(self, *, max_connections: int = 256, timeout_s: float = 10.0) -> AppHttp:
        """An HTTP client of the app (through the ``app`` proxies): with several
        app processes, requests take turns over them, as behind a load balancer."""
        return AppHttp(
            self.stack.app_urls or [self.app_url],
            max_connections=max_connections,
            timeout_s=timeout_s,
        )

    # -- operations --------------------------------------------------------

    async def generate_recorded(
        self, http: AppHttp, project_ids: Sequence[int], *, process: str = "runner"
    ) -> Op:
        """POST one batch generation as a recorded operation; returns its completion.

        ``ok`` with the counts, each created alert recorded as a commit (for
        delivery and phantoms); anything else ``info`` (it may have happened).
        """
        ids = list(project_ids)
        user = self.seeded.members[ids[0]]["project_manager"]
        op = self.history.invoke(process, "generate", {"projects": len(ids)})
        sent = time.monotonic()
        try:
            response = await http.post(
                "/api/alerts/generate",
                json={"project_ids": ids},
                headers=self.auth(user),
            )
        except Exception as exc:
            return self.history.info(op, f"{type(exc).__name__}: {exc}")
        if not 200 <= response.status < 300 or not isinstance(response.body, dict):
            return self.history.info(op, f"{response.status} {response.detail()}")
        body = response.body
        answered = time.monotonic()
        done = self.history.ok(op, {k: body[k] for k in ("requested", "created")})
        if body["alertIds"]:
            rows = await asyncio.to_thread(
                _sql.fetch,
                self.direct_dsn,
                'SELECT id, project_id AS "projectId", assigned_to_id AS "assignedToId",'
                ' step_id AS "stepId" FROM workflow_alerts WHERE id = ANY($1::bigint[])',
                body["alertIds"],
            )
            for row in rows:
                self.record_commit(
                    row, op_id=op.op_id, requested_mono_s=sent, responded_mono_s=answered
                )
        return done

    async def complete(
        self, http: AppHttp, project_id: int, line_item_id: int, user_id: int
    ) -> dict[str, Any]:
        """POST a completion; record the commit; 409/403/404 raise OpFailed.

        For the open-loop driver: a returned value is ``ok``, :class:`OpFailed`
        is ``fail`` (it definitely did not happen), anything else ``info``.
        """
        sent = time.monotonic()
        response = await http.post(
            f"/api/projects/{project_id}/line-items/{line_item_id}/complete",
            headers=self.auth(user_id),
        )
        answered = time.monotonic()
        if response.status in (403, 404, 409):
            refusal = response.body if isinstance(response.body, dict) else {}
            # A 409 may name the item that was current (the contract's
            # currentLineItemId): ``linearizable`` checks it was.
            named = (
                {"current_line_item_id": refusal["currentLineItemId"]}
                if response.status == 409 and "currentLineItemId" in refusal
                else None
            )
            raise OpFailed(f"{response.status} {response.detail()}", named)
        if not 200 <= response.status < 300 or not isinstance(response.body, dict):
            raise HttpStatusError(response)
        body: dict[str, Any] = response.body
        alert = body.get("alert")
        if isinstance(alert, dict):
            committed = body.get("committedAtMs")  # the commit_timestamp capability
            self.record_commit(
                alert,
                committed_wall_s=committed / 1000 if isinstance(committed, int | float) else None,
                requested_mono_s=sent,
                responded_mono_s=answered,
            )
        return body

    async def complete_recorded(
        self,
        http: AppHttp,
        process: str,
        project_id: int,
        line_item_id: int,
        user_id: int,
        *,
        fail_statuses: Container[int] = (),
    ) -> Op:
        """:meth:`complete` as one recorded operation; returns its completion.

        ``ok`` with the new alert's id; ``fail`` for a refusal (403/404/409)
        and for ``fail_statuses`` (statuses known to mean "rolled back");
        any other error is recorded ``info`` (it may have happened) and raised.
        """
        op = self.history.invoke(
            process, "complete", {"project_id": project_id, "line_item_id": line_item_id}
        )
        try:
            result = await self.complete(http, project_id, line_item_id, user_id)
        except OpFailed as exc:
            return self.history.fail(op, str(exc), exc.value)
        except HttpStatusError as exc:
            if exc.response.status in fail_statuses:
                return self.history.fail(op, f"{exc.response.status} {exc.response.detail()}")
            self.history.info(op, str(exc))
            raise
        except Exception as exc:
            self.history.info(op, f"{type(exc).__name__}: {exc}")
            raise
        return self.history.ok(op, {"alert_id": (result.get("alert") or {}).get("id")})

    def record_commit(
        self,
        alert: Mapping[str, Any],
        *,
        committed_wall_s: float | None = None,
        op_id: int | None = None,
        requested_mono_s: float | None = None,
        responded_mono_s: float | None = None,
    ) -> None:
        """Record an alert known committed: at the target's (wall-clock) commit
        time where it reported one, else when its response arrived."""
        if committed_wall_s is not None:
            mono = time.monotonic() - (time.time() - committed_wall_s)
        else:
            mono = responded_mono_s if responded_mono_s is not None else time.monotonic()
        self.history.commit(
            alert_id=int(alert["id"]),
            project_id=int(alert["projectId"]),
            assignee_id=alert.get("assignedToId"),
            step_id=alert.get("stepId"),
            op_id=op_id,
            mono_s=mono,
            requested_mono_s=requested_mono_s,
            responded_mono_s=responded_mono_s,
            server_time=committed_wall_s is not None,
        )

    # -- clients -----------------------------------------------------------

    def fleet(
        self,
        subscribers: Sequence[Subscriber],
        *,
        rejoin: bool | None = None,
        policy: ReconnectPolicy | None = None,
    ) -> SubscriberFleet:
        """A fleet whose events and sessions land in the history.

        ``rejoin`` defaults to the run's flaws: the ``no_rejoin`` flaw is the
        seed client's, so it is applied here, not in the app; so are
        ``no_sync``, ``no_client_dedupe`` and ``no_catchup_overlap``.
        """
        if rejoin is None:
            rejoin = "no_rejoin" not in self.params.flaws
        dedupe = "no_client_dedupe" not in self.params.flaws
        if "no_catchup_overlap" in self.params.flaws:
            policy = dataclasses.replace(policy or ReconnectPolicy(), catchup_overlap_ids=0)
        history = self.history

        def on_event(user_id: int, event: ClientEvent) -> None:
            # Only new_alert is "an alert for this user"; room events name the
            # alert they announce in their payload (see room_alert_id).
            alert_id = event.data.get("id") if event.name == "new_alert" else None
            room_alert = event.data.get("alertId") if event.name != "new_alert" else None
            history.receive(
                f"c{user_id}",
                user_id=user_id,
                event=event.name,
                alert_id=alert_id if isinstance(alert_id, int) else None,
                project_id=event.data.get("projectId"),
                via=event.via,
                payload={"alertId": room_alert} if isinstance(room_alert, int) else None,
                repeat=event.repeat,
                surfaced=event.surfaced,
                mono_s=event.received_at,
            )

        def on_session(user_id: int, kind: str, details: dict[str, Any]) -> None:
            history.session(
                f"c{user_id}",
                kind,  # type: ignore[arg-type]  # AlertClient emits SESSION_TYPES only
                user_id=user_id,
                project_id=details.get("project_id"),
                reason=details.get("reason"),
                mono_s=details.get("at"),
            )

        fleet = SubscriberFleet(
            self.stack.app_urls,
            subscribers,
            token_for=self.token,
            on_event=on_event,
            on_session=on_session,
            policy=policy,
            seed=self.params.seed,
            rejoin=rejoin,
            dedupe=dedupe,
            sync="no_sync" not in self.params.flaws,
        )
        self._fleets.append(fleet)
        return fleet

    # -- database reads ----------------------------------------------------

    async def snapshot_alerts(self) -> None:
        """Record the alerts table (for no_duplicates)."""
        rows = await asyncio.to_thread(
            _sql.fetch,
            self.direct_dsn,
            "SELECT id, project_id, step_id, status, assigned_to_id FROM workflow_alerts",
        )
        self.history.snapshot("alerts", rows)

    async def snapshot_pg_stat(self, label: str) -> None:
        """Record this database's pg_stat_statements rows (for queries_per_request)."""
        rows = await asyncio.to_thread(
            _sql.fetch,
            self.direct_dsn,
            "SELECT queryid, query, calls, total_exec_time FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        self.history.snapshot("pg_stat_statements", rows, label=label)

    async def drain(self, done: Callable[[], bool]) -> bool:
        """Wait until ``done()`` (deliveries in flight arrived), at most ``drain_s``."""
        return await wait_until(done, self.params.drain_s)

    async def drain_commits(self) -> bool:
        """Wait (at most ``drain_s``) until every alert committed so far has
        reached every connected client of its assignee: a relay still
        reconnecting after a fault is waited for, not cut off by a quiet
        spell. Only the history is read: no guess at the target's timing."""
        owed: set[tuple[str, int]] = set()
        for fleet in self._fleets:
            users = {u for u, c in fleet.clients.items() if c.subscribed.is_set()}
            owed |= {
                (f"c{e.assignee_id}", int(e.alert_id))
                for e in self.history.of_type(Commit)
                if e.assignee_id in users and e.alert_id is not None
            }
        seen = 0
        got: set[tuple[str, int]] = set()

        def done() -> bool:
            nonlocal seen
            for e in self.history[seen:]:
                if isinstance(e, Receive) and e.event == "new_alert" and e.alert_id is not None:
                    got.add((e.process, int(e.alert_id)))
            seen = len(self.history)
            return owed <= got

        return await self.drain(done)

    def record_fault(self, event: FaultEventLike) -> None:
        """Record a fault's start or heal in the history (``Fault.on_event``)."""
        self.history.record_fault(event)

    async def settle(self, quiet_s: float = 0.5) -> None:
        """Wait until no client event arrived for ``quiet_s`` (at most ``drain_s``).

        For scenarios that cannot name every event they expect (a phantom is
        by nature unexpected): the stream must go quiet before the checks.
        """

        def receipts() -> int:
            return sum(1 for _ in self.history.of_type(Receive))

        deadline = time.monotonic() + self.params.drain_s
        seen, since = receipts(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
            await asyncio.sleep(0.05)
            now = receipts()
            if now != seen:
                seen, since = now, time.monotonic()

    async def close_fleets(self) -> None:
        for fleet in self._fleets:
            await fleet.stop()
        self._fleets.clear()


class Scenario(Protocol):
    """A scenario family member: data plus ``run``."""

    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> str:
        """One line for ``alertbench list`` and the report."""

    @property
    def checks(self) -> Mapping[str, Mapping[str, Any]]:
        """Checkers by name, with options."""

    @property
    def slos(self) -> Mapping[str, Mapping[str, Any]]:
        """SLO table overrides of the defaults (e.g. disable what does not apply)."""

    async def run(self, ctx: ScenarioContext) -> None: ...

    # Optional attributes, read with getattr by the runner:
    #   max_projects: int        -- seed at most this many projects
    #   min_projects: int        -- seed at least this many projects
    #   needs: tuple[str, ...]   -- capabilities of the target it needs (see
    #                               harness.targets.CAPABILITIES); without
    #                               one the scenario is "not applicable"
    #   inject: Injection        -- in-app fault injection it asks for
    #   user_pool: bool          -- seed as many users as projects, shared
    #                               across projects (see runner.seed_spec)
    #   proxy_faults: tuple[str, ...] -- the stack's proxies (``app``,
    #                               ``postgres``, ``redis``) it breaks through
    #                               Toxiproxy; such a scenario cannot run with
    #                               ``--no-proxy`` (see check_proxy_faults)


def proxy_faults(scenario: Scenario) -> tuple[str, ...]:
    """The proxies ``scenario`` injects faults on (empty: it needs no proxy)."""
    return tuple(getattr(scenario, "proxy_faults", ()))


def check_proxy_faults(scenarios: Sequence[Scenario], *, bypassed: bool) -> None:
    """Refuse, before anything starts, scenarios that break hops when the
    proxies are bypassed: without Toxiproxy their faults cannot happen, and a
    fault scenario whose fault never happened would pass without testing
    anything. Raises :class:`ConfigError` naming them and ``--no-proxy``."""
    if not bypassed:
        return
    refused = [
        f"{s.name} (faults on {', '.join(proxy_faults(s))})" for s in scenarios if proxy_faults(s)
    ]
    if refused:
        raise ConfigError(
            NO_PROXY_FLAG,
            f"scenario(s) {'; '.join(refused)} inject faults through Toxiproxy, which"
            f" {NO_PROXY_FLAG} bypasses: leave them out or drop {NO_PROXY_FLAG}",
        )


ScenarioRun = Callable[[ScenarioContext], Awaitable[None]]


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` every 50 ms until it holds; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True

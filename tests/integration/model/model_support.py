"""A running target for the workflow model test, driven from synchronous code.

Hypothesis's stateful tests are synchronous; :class:`ModelApp` owns one event
loop (an :class:`asyncio.Runner`) for the whole test, and every call into the
target goes through :meth:`ModelApp.run`, bounded in time. The app is started
the way scenarios start it (``harness.targets.launch``), on a database whose
workflow template this module writes itself: its ids follow neither the
workflow order nor each other, it has inactive items at the start, in the
middle and at the end, an empty section, and two items that tie on position.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

from harness.clients import AppHttp, ClientEvent
from harness.stack import Stack, _sql
from harness.targets import Target
from harness.targets.launch import Injection, prepare_database, start_target

T = TypeVar("T")

#: (id, name, position): ids out of order.
PHASES = ((2, "Lead", 0), (3, "Prospect", 1), (1, "Approved", 2))
#: (id, phase id, position); section 6 is empty.
SECTIONS = ((5, 2, 0), (4, 2, 1), (6, 3, 0), (1, 3, 1), (3, 1, 0), (2, 1, 1))
#: (id, section id, logical role, active, position); 11 and 14 tie on position.
ITEMS = (
    (20, 5, "project_manager", False, 0),
    (14, 5, "field_director", True, 1),
    (11, 5, "office_staff", True, 1),
    (8, 4, "administration", True, 0),
    (30, 4, "project_manager", False, 1),
    (2, 1, "field_director", True, 2),
    (25, 1, "office_staff", True, 0),
    (1, 3, "administration", True, 0),
    (7, 2, "project_manager", True, 0),
    (3, 2, "field_director", False, 1),
)
#: The active steps in workflow order (phase, section, item position, id), by hand.
WALK = (11, 14, 8, 25, 2, 1, 7)
#: Every line item in workflow order, inactive ones included.
ORDER = (20, 11, 14, 8, 30, 25, 2, 1, 7, 3)


async def write_template(dsn: str, roles: Mapping[str, str] | None) -> None:
    """The workflow template above, before seeding (the seeder reuses it)."""
    stored = dict(roles) if roles is not None else {}
    conn = await asyncpg.connect(dsn, timeout=30.0)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "workflow_phases",
                records=[(i, n, n.upper(), p) for i, n, p in PHASES],
                columns=("id", "name", "phase_type", "position"),
            )
            names = {i: n for i, n, _ in PHASES}
            await conn.copy_records_to_table(
                "workflow_sections",
                records=[(i, ph, f"{names[ph]} section {p + 1}", p) for i, ph, p in SECTIONS],
                columns=("id", "phase_id", "display_name", "position"),
            )
            await conn.copy_records_to_table(
                "workflow_line_items",
                records=[
                    (i, s, f"Step {i}", stored.get(r, r), 1 + i % 14, a, p)
                    for i, s, r, a, p in ITEMS
                ],
                columns=(
                    "id",
                    "section_id",
                    "item_name",
                    "responsible_role",
                    "alert_days",
                    "is_active",
                    "position",
                ),
            )
    finally:
        await conn.close()


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much exploring a run does (``ALERTBENCH_MODEL_*``, see the test module)."""

    examples: int = 15
    steps: int = 20
    seed: int = 20261201
    shrink: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Budget:
        def number(name: str, default: int, least: int) -> int:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"{name}: must be an integer, got {text!r}") from None
            if value < least:
                raise ValueError(f"{name}: must be >= {least}, got {value}")
            return value

        examples = number("ALERTBENCH_MODEL_EXAMPLES", cls.examples, 1)
        bigger = examples > cls.examples
        return cls(
            examples=examples,
            steps=number("ALERTBENCH_MODEL_STEPS", 50 if bigger else cls.steps, 1),
            seed=number("ALERTBENCH_MODEL_SEED", cls.seed, 0),
            shrink=bigger or env.get("ALERTBENCH_MODEL_SHRINK", "") == "1",
        )


@dataclasses.dataclass
class Inbox:
    """The events one subscriber received, and a bounded wait for a condition."""

    events: list[ClientEvent] = dataclasses.field(default_factory=list)
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def __call__(self, event: ClientEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def new_alerts(self) -> dict[int, ClientEvent]:
        return {int(e.data["id"]): e for e in self.events if e.name == "new_alert"}

    def room_events(self, name: str) -> Counter[int]:
        """How often each alert id was announced by room event ``name``."""
        return Counter(
            int(e.data["alertId"])
            for e in self.events
            if e.name == name and isinstance(e.data.get("alertId"), int)
        )

    async def wait_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """True once ``done()`` holds; False if it still does not after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while not done():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return done()
        return True


@dataclasses.dataclass
class Stats:
    """What a run exercised: examples, steps, rules fired, outcomes seen."""

    examples: int = 0
    steps: int = 0
    rules: Counter[str] = dataclasses.field(default_factory=Counter)
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    #: How long the target took to start (not part of ``wall_s``).
    startup_s: float = 0.0

    def summary(self) -> str:
        rules = ", ".join(f"{k}={v}" for k, v in sorted(self.rules.items()))
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.examples} examples, {self.steps} steps in {self.wall_s:.1f} s"
            f" (this process's CPU: {self.cpu_s:.1f} s; the target started in"
            f" {self.startup_s:.1f} s); rules: {rules}; outcomes: {outcomes}"
        )


class ModelApp:
    """A target started on ``stack`` for one test, with one event loop to drive it."""

    def __init__(
        self,
        stack: Stack,
        target: Target,
        *,
        flaws: frozenset[str],
        database: str,
        rollback_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.stack = stack
        self.target = target
        self.flaws = target.check_flaws(flaws)
        self.database = database
        #: Share of completion attempts the target fails before COMMIT
        #: (``fault_injection``): a direct one answers 503, a queued one is retried.
        self.rollback_rate = rollback_rate
        self.seed = seed
        if rollback_rate and "fault_injection" not in target.capabilities:
            raise ValueError(f"target {target.name!r} does not declare fault_injection")
        self.stats = Stats()
        self._runner = asyncio.Runner()
        self._exit = contextlib.ExitStack()
        self._tokens: dict[int, str] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self.url = ""
        self.dsn = ""
        self.http: AppHttp
        self.db: Any  # an asyncpg connection (direct, no proxy)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        """Run ``coro`` on this app's loop, at most ``timeout_s``."""
        return self._runner.run(asyncio.wait_for(coro, timeout_s))

    def later(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, while later calls run the loop; the
        app waits for it (bounded) before it closes."""
        self._background.add(asyncio.ensure_future(coro, loop=self._runner.get_loop()))

    async def _finish_background(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()

    def auth(self, user_id: int) -> dict[str, str]:
        if user_id not in self._tokens:
            self._tokens[user_id] = self._scheme.mint(user_id)
        return {"Authorization": f"Bearer {self._tokens[user_id]}"}

    def token(self, user_id: int) -> str:
        return self.auth(user_id)["Authorization"].removeprefix("Bearer ")

    def __enter__(self) -> ModelApp:
        if self.stack.app is not None or self.stack.app_urls:
            raise RuntimeError("an app is already running on this stack")
        self._exit.callback(self._runner.close)
        self.dsn = self.run(prepare_database(self.target, self.stack, self.database, self.flaws))
        self._exit.callback(
            _sql.execute,
            self.stack.postgres_direct.dsn,
            [f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'],
        )
        self.run(write_template(self.dsn, self.target.roles))
        secret = self.target.new_secret()
        self._scheme = self.target.tokens(secret)
        self._exit.callback(self.stack.stop_app)
        started = time.perf_counter()
        inject = Injection(
            rollback_rate=self.rollback_rate, queue_attempts=10, queue_retry_base_delay_s=0.05
        )
        start_target(
            self.target,
            self.stack,
            database=self.database,
            flaws=self.flaws,
            secret=secret,
            inject=inject if self.rollback_rate else None,
            seed=self.seed,
        )
        self.stats.startup_s = time.perf_counter() - started
        self.url = self.stack.app_urls[0]
        self.http = self.run(AppHttp(self.url, timeout_s=10.0).__aenter__())
        self._exit.callback(lambda: self.run(self.http.__aexit__(None, None, None)))
        self.db = self.run(asyncpg.connect(self.dsn, timeout=30.0))
        self._exit.callback(lambda: self.run(self.db.close()))
        self._exit.callback(lambda: self.run(self._finish_background()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit.close()

    def measure(self) -> contextlib.AbstractContextManager[None]:
        """Count wall and CPU time (of this process) into ``stats``."""

        @contextlib.contextmanager
        def timing() -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                yield
            finally:
                self.stats.wall_s += time.perf_counter() - wall
                self.stats.cpu_s += time.process_time() - cpu

        return timing()

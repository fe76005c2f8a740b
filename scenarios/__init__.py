"""Scenario suites, one module per scenario family.

``SCENARIOS`` maps a name to its scenario; ``alertbench list`` shows them and
``alertbench run NAME ...`` runs them. ``MAIN_SUITE`` is what the README's
main command runs.
"""

from __future__ import annotations

from harness.errors import ConfigError
from harness.scenario import Scenario
from scenarios.cache import CacheScenario
from scenarios.dedupe import DedupeScenario
from scenarios.delivery import DeliveryScenario
from scenarios.indexes import IndexScenario
from scenarios.load import LoadScenario
from scenarios.network import NetworkScenario
from scenarios.queue import QueueScenario
from scenarios.rollback import RollbackScenario
from scenarios.security import SecurityScenario

__all__ = ["CATCHES", "MAIN_SUITE", "SCENARIOS", "get"]

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        LoadScenario(),
        DeliveryScenario(),
        DedupeScenario(),
        NetworkScenario(),
        QueueScenario(),
        CacheScenario(),
        RollbackScenario(),
        IndexScenario(),
        SecurityScenario(),
    )
}
MAIN_SUITE: tuple[str, ...] = (
    "load",
    "delivery",
    "dedupe",
    "network",
    "rollback",
    "queue",
    "cache",
    "indexes",
    "security",
)

#: The self-check matrix: each flaw and the scenarios that must fail under it.
#: Flaws not listed here are not caught by any scenario yet (``alertbench
#: selfcheck`` says so).
CATCHES: dict[str, tuple[str, ...]] = {
    "n_plus_one": ("load",),
    "no_room_auth": ("delivery", "security"),
    "emit_before_commit": ("rollback",),
    "non_atomic_completion": ("rollback",),
    "no_rejoin": ("network",),
    "no_retry": ("queue",),
    "stale_cache": ("cache",),
    "no_unique_index": ("dedupe",),
    "unscoped_complete": ("dedupe",),
}


def get(names: list[str]) -> list[Scenario]:
    """The scenarios named, in order; an unknown name is a ConfigError listing the known ones."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ConfigError(
            "scenario", f"unknown {', '.join(map(repr, unknown))}; known: {', '.join(SCENARIOS)}"
        )
    return [SCENARIOS[n] for n in names]

"""Scenario suites, one module per scenario family.

``SCENARIOS`` maps a name to its scenario; ``alertbench list`` shows them and
``alertbench run NAME ...`` runs them. ``MAIN_SUITE`` is what the README's
main command runs.
"""

from __future__ import annotations

from harness.checks.catalog import INVARIANTS, SCENARIO_CHECKS
from harness.errors import ConfigError
from harness.scenario import Scenario
from scenarios.cache import CacheScenario
from scenarios.chaos import ChaosScenario
from scenarios.dedupe import DedupeScenario
from scenarios.delivery import DeliveryScenario
from scenarios.indexes import IndexScenario
from scenarios.load import LoadScenario
from scenarios.network import NetworkScenario
from scenarios.queue import QueueScenario
from scenarios.rollback import RollbackScenario
from scenarios.security import SecurityScenario
from scenarios.soak import SoakScenario

__all__ = ["CATCHES", "MAIN_SUITE", "SCENARIOS", "checks_of", "get", "judged_by"]

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
        SoakScenario(),
        ChaosScenario(),
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
    "chaos",
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
    "no_backoff": ("queue",),
    "stale_cache": ("cache",),
    "no_cache_fallback": ("cache",),
    "no_unique_index": ("dedupe",),
    "unscoped_complete": ("dedupe",),
    "id_order_advance": ("delivery",),
    "ignore_phase_order": ("delivery",),
    "memory_leak": ("soak",),
    "no_replay": ("chaos",),
    "no_sweep": ("chaos",),
    "no_sync": ("network",),
    "no_client_dedupe": ("network",),
    "no_catchup_overlap": ("network",),
}


def get(names: list[str]) -> list[Scenario]:
    """The scenarios named, in order; an unknown name is a ConfigError listing the known ones."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ConfigError(
            "scenario", f"unknown {', '.join(map(repr, unknown))}; known: {', '.join(SCENARIOS)}"
        )
    return [SCENARIOS[n] for n in names]


def checks_of(name: str) -> list[str]:
    """Every check scenario ``name`` judges: its history checkers, then its own."""
    return [*SCENARIOS[name].checks, *SCENARIO_CHECKS.get(name, ())]


def judged_by() -> dict[str, list[str]]:
    """Check name -> the scenarios that judge it, for every check in the catalog."""
    out: dict[str, list[str]] = {check: [] for check in INVARIANTS}
    for name in SCENARIOS:
        for check in checks_of(name):
            out.setdefault(check, []).append(name)
    return out

"""``no_duplicates``: never two ACTIVE alerts for one project step."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Event, Snapshot

__all__ = ["no_duplicates"]

NAME = "no_duplicates"


def _active_groups(rows: Iterable[dict[str, Any]]) -> tuple[int, dict[tuple[str, str], list[Any]]]:
    active = 0
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        if str(row.get("status", "")).upper() != "ACTIVE":
            continue
        active += 1
        groups[(str(row.get("project_id")), str(row.get("step_id")))].append(row.get("id"))
    return active, groups


def no_duplicates(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    snapshot: str = "alerts",
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies that no ``(project_id, step_id)`` ever has two ACTIVE alerts. O(rows).

    Looks at every ``Snapshot`` named ``snapshot`` in the history and at
    ``final.alerts``. Measures ``duplication_rate``: the largest share (in %)
    of ACTIVE alerts that were surplus copies, over all the states looked at.
    Unknown when there is neither a snapshot nor a final read.
    """
    states: list[tuple[str, Sequence[dict[str, Any]]]] = [
        (f"snapshot #{e.index}" + (f" ({e.label})" if e.label else ""), e.rows)
        for e in history
        if isinstance(e, Snapshot) and e.name == snapshot
    ]
    if final is not None and final.alerts is not None:
        states.append(("final", final.alerts))
    if not states:
        return CheckResult.unknown(
            NAME, f"no {snapshot!r} snapshot in the history and no final read of the alerts"
        )
    violations: list[dict[str, Any]] = []
    worst_rate = 0.0
    for where, rows in states:
        active, groups = _active_groups(rows)
        surplus = 0
        for (project_id, step_id), ids in sorted(groups.items()):
            if len(ids) > 1:
                surplus += len(ids) - 1
                violations.append(
                    {"where": where, "project_id": project_id, "step_id": step_id, "alert_ids": ids}
                )
        if active:
            worst_rate = max(worst_rate, 100.0 * surplus / active)
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{len(violations)} project step(s) with several ACTIVE alerts "
            f"in {len(states)} state(s)"
            if violations
            else f"at most one ACTIVE alert per project step in {len(states)} state(s)"
        ),
        counts={"states": len(states), "duplicate_groups": len(violations)},
        measurements={"duplication_rate": worst_rate},
        max_counterexamples=max_counterexamples,
    )

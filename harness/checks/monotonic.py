"""``monotonic_reads``: a user never reads an older alert list after a newer one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checks._ops import list_reads, operations
from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.checks.workflow import COMPLETION_OPS
from harness.history import Event

__all__ = ["monotonic_reads"]

NAME = "monotonic_reads"


@dataclass(frozen=True)
class _Read:
    op_id: int
    start: float
    end: float
    alerts: dict[str, tuple[str, str]]
    """alert id -> (project id, step id), as text."""


def monotonic_reads(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    read_ops: Sequence[str] = ("read_alerts",),
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies that no user's list read goes back in time. O(users x reads² x alerts).

    An ``ACTIVE`` alert is visible in a user's list over one interval, from
    its commit to its step's completion. For two reads of one user where
    the second began after the first answered:

    - ``vanished``: an alert in the first is missing from the second though
      no completion of its step had been sent before the second answered
      (the second shows a state from before the alert existed);
    - ``returned``: an alert missing from the first, which began after its
      step's completion had been acknowledged, is back in the second;
    - ``reappeared``: an alert present, then missing, then present again in
      three reads one after another.

    Reads are the successful operations in ``read_ops`` whose invoke names
    ``user_id`` and whose result lists ``items`` (``id``, ``projectId``,
    ``stepId``). Read-your-writes is the ``cache`` scenario's own check;
    this one needs no knowledge of what the list should hold. Unknown with
    fewer than two reads by one user.
    """
    events = list(history)
    reads = _reads(events, read_ops)
    sent, acknowledged = _completions(events)
    violations: list[dict[str, Any]] = []
    pairs = 0
    for reader, rs in sorted(reads.items()):
        rs.sort(key=lambda r: r.start)
        for i, first in enumerate(rs):
            for second in rs[i + 1 :]:
                if second.start <= first.end:
                    continue  # concurrent reads may see either order
                pairs += 1
                base = {"user_id": reader, "op_ids": [first.op_id, second.op_id]}
                for alert, step in first.alerts.items():
                    if alert not in second.alerts and sent.get(step, float("inf")) > second.end:
                        violations.append(
                            {**base, "kind": "vanished", "alert_id": alert, "step": list(step)}
                        )
                for alert, step in second.alerts.items():
                    if alert in first.alerts:
                        continue
                    if acknowledged.get(step, float("inf")) < first.start:
                        violations.append(
                            {**base, "kind": "returned", "alert_id": alert, "step": list(step)}
                        )
                    elif any(
                        alert in earlier.alerts and earlier.end < first.start for earlier in rs[:i]
                    ):
                        violations.append(
                            {**base, "kind": "reappeared", "alert_id": alert, "step": list(step)}
                        )
    if pairs == 0:
        return CheckResult.unknown(NAME, "no user read their list twice one after the other")
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{len(violations)} time(s) a later read showed an older list"
            if violations
            else f"{pairs} pair(s) of successive reads by {len(reads)} user(s): never older"
        ),
        counts={
            "users": len(reads),
            "reads": sum(len(rs) for rs in reads.values()),
            "pairs": pairs,
            "went_back": len(violations),
        },
        max_counterexamples=max_counterexamples,
    )


def _reads(events: list[Event], read_ops: Sequence[str]) -> dict[str, list[_Read]]:
    out: dict[str, list[_Read]] = defaultdict(list)
    for inv, ok, items in list_reads(events, read_ops):
        alerts = {str(a.get("id")): (str(a.get("projectId")), str(a.get("stepId"))) for a in items}
        out[str(inv.value["user_id"])].append(_Read(ok.op_id, inv.mono_s, ok.mono_s, alerts))
    return out


def _completions(
    events: list[Event],
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """(project, step) -> when a completion of it was first sent (any outcome
    but a definite failure), and when one was first acknowledged (ok)."""
    sent: dict[tuple[str, str], float] = {}
    acknowledged: dict[tuple[str, str], float] = {}
    for inv, end in operations(events, COMPLETION_OPS, needs=("project_id", "line_item_id")):
        if end is None or end.type == "fail":
            continue
        step = (str(inv.value["project_id"]), str(inv.value["line_item_id"]))
        sent[step] = min(sent.get(step, inv.mono_s), inv.mono_s)
        if end.type == "ok":
            acknowledged[step] = min(acknowledged.get(step, end.mono_s), end.mono_s)
    return sent, acknowledged

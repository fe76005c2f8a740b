"""``queries_per_request``: server-side statements per request, from pg_stat_statements."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Event, Snapshot, pair_operations
from harness.metrics import (
    DEFAULT_EXCLUDE,
    InvalidSnapshotError,
    PgStatDiff,
    diff_pg_stat_statements,
)

__all__ = ["queries_per_request"]

NAME = "queries_per_request"


@dataclass(frozen=True)
class _Phase:
    """The statements and requests between two consecutive snapshots."""

    kinds: str
    requests: int
    diff: PgStatDiff

    @property
    def per_request(self) -> float:
        return self.diff.total_calls / self.requests


def _phases(snaps: list[Snapshot]) -> list[tuple[Snapshot, Snapshot]]:
    """Consecutive snapshot pairs from ``before`` to ``after`` (else first to last)."""
    labels = [s.label for s in snaps]
    first = labels.index("before") if "before" in labels else 0
    last = len(labels) - 1 - labels[::-1].index("after") if "after" in labels else len(snaps) - 1
    window = snaps[first : last + 1] if last > first else [snaps[0], snaps[-1]]
    return list(itertools.pairwise(window))


def queries_per_request(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    requests: Sequence[str] = ("complete", "generate"),
    limit: float | None = None,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Statements executed on the server per successful request. O(n + statements).

    Uses the ``pg_stat_statements`` snapshots labelled ``before`` and
    ``after`` (else the first and the last), and counts the operations named in
    ``requests`` that completed ``ok`` between them. Measures
    ``queries_per_request``; with ``limit``, invalid when it is not below it
    (normally the SLO judges). Counterexamples: the statements, most-called
    first, with calls per request. Unknown without two snapshots or requests.
    """
    events = list(history)
    snaps = [e for e in events if isinstance(e, Snapshot) and e.name == "pg_stat_statements"]
    if len(snaps) < 2:
        return CheckResult.unknown(NAME, "needs two 'pg_stat_statements' snapshots (before/after)")
    ops = [
        op
        for op in pair_operations(events)
        if op.f in requests and op.outcome == "ok" and op.completion is not None
    ]
    # Each phase between two snapshots is judged on its own, and the worst
    # counts: a batch endpoint's N+1 (thousands of statements in one request)
    # must not hide behind many cheap requests of another phase.
    measured: list[_Phase] = []
    for before, after in _phases(snaps):
        inside = [
            op
            for op in ops
            if op.completion is not None and before.mono_s <= op.completion.mono_s <= after.mono_s
        ]
        if not inside:
            continue
        try:
            diff = diff_pg_stat_statements(before.rows, after.rows, exclude=exclude)
        except InvalidSnapshotError as exc:
            return CheckResult.unknown(NAME, f"unusable snapshot: {exc}")
        measured.append(_Phase("/".join(sorted({op.f for op in inside})), len(inside), diff))
    if not measured:
        return CheckResult.unknown(
            NAME, f"no ok {'/'.join(requests)} operation between the two snapshots"
        )
    worst = max(measured, key=lambda m: m.per_request)
    qpr = worst.per_request
    over = limit is not None and qpr >= limit
    statements: list[dict[str, Any]] = [
        {"query": d.query, "calls": d.calls, "per_request": d.calls / worst.requests}
        for d in worst.diff.deltas
    ]
    phases = (
        " ["
        + "; ".join(
            f"{m.kinds}: {m.per_request:.2f} = {m.diff.total_calls}/{m.requests}" for m in measured
        )
        + "]"
        if len(measured) > 1
        else ""
    )
    return CheckResult.build(
        NAME,
        violations=statements if over else [],
        valid=not over,
        summary=(
            f"{qpr:.2f} queries per request"
            f" ({worst.diff.total_calls} statements / {worst.requests} requests)"
            + (f", limit {limit:g}" if limit is not None else "")
            + phases
        ),
        counts={
            "requests": sum(m.requests for m in measured),
            "statements": sum(m.diff.total_calls for m in measured),
            "excluded_statements": sum(m.diff.excluded_calls for m in measured),
        },
        measurements={"queries_per_request": qpr},
        max_counterexamples=max_counterexamples,
    )

"""``queries_per_request``: server-side statements per request, from pg_stat_statements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Event, Snapshot, pair_operations
from harness.metrics import DEFAULT_EXCLUDE, InvalidSnapshotError, diff_pg_stat_statements

__all__ = ["queries_per_request"]

NAME = "queries_per_request"


def _bracket(snaps: list[Snapshot]) -> tuple[Snapshot, Snapshot]:
    labelled = {s.label: s for s in snaps if s.label in ("before", "after")}
    if "before" in labelled and "after" in labelled:
        return labelled["before"], labelled["after"]
    return snaps[0], snaps[-1]


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
    before, after = _bracket(snaps)
    count = sum(
        1
        for op in pair_operations(events)
        if op.f in requests
        and op.outcome == "ok"
        and op.completion is not None
        and before.mono_s <= op.completion.mono_s <= after.mono_s
    )
    if count == 0:
        return CheckResult.unknown(
            NAME, f"no ok {'/'.join(requests)} operation between the two snapshots"
        )
    try:
        diff = diff_pg_stat_statements(before.rows, after.rows, exclude=exclude)
    except InvalidSnapshotError as exc:
        return CheckResult.unknown(NAME, f"unusable snapshot: {exc}")
    qpr = diff.total_calls / count
    statements: list[dict[str, Any]] = [
        {"query": d.query, "calls": d.calls, "per_request": d.calls / count} for d in diff.deltas
    ]
    over = limit is not None and qpr >= limit
    return CheckResult.build(
        NAME,
        violations=statements if over else [],
        valid=not over,
        summary=(
            f"{qpr:.2f} queries per request ({diff.total_calls} statements / {count} requests)"
            + (f", limit {limit:g}" if limit is not None else "")
        ),
        counts={
            "requests": count,
            "statements": diff.total_calls,
            "excluded_statements": diff.excluded_calls,
        },
        measurements={"queries_per_request": qpr},
        max_counterexamples=max_counterexamples,
    )

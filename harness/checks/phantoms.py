"""``no_phantoms``: no client received an alert that was never committed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Commit, Event, Receive

__all__ = ["no_phantoms"]

NAME = "no_phantoms"


def no_phantoms(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies that every alert id received was committed. O(n).

    Committed means: a ``Commit`` in the history, or a row in ``final.alerts``
    (the final read is the authority; without it an alert whose request timed
    out but did commit would be a false phantom, so pass it). An alert emitted
    before a commit that then rolled back is the phantom this catches.
    Unknown when nothing says what was committed, or no alert was received.
    """
    events = list(history)
    committed = {str(e.alert_id) for e in events if isinstance(e, Commit)}
    if final is not None and final.alerts is not None:
        committed.update(str(row.get("id")) for row in final.alerts)
    elif not committed:
        return CheckResult.unknown(NAME, "no commit in the history and no final read of alerts")
    received = [e for e in events if isinstance(e, Receive) and e.alert_id is not None]
    if not received:
        return CheckResult.unknown(NAME, "no client received an alert")
    violations: list[dict[str, Any]] = [
        {
            "client": r.process,
            "user_id": r.user_id,
            "alert_id": r.alert_id,
            "event": r.event,
            "via": r.via,
            "mono_s": r.mono_s,
        }
        for r in received
        if str(r.alert_id) not in committed
    ]
    phantom_ids = {str(v["alert_id"]) for v in violations}
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{len(phantom_ids)} alert id(s) received but never committed "
            f"({len(violations)} receipt(s))"
            if violations
            else f"all {len(received)} alert receipt(s) match committed alerts"
        ),
        counts={
            "receipts": len(received),
            "phantom_receipts": len(violations),
            "phantom_alerts": len(phantom_ids),
        },
        max_counterexamples=max_counterexamples,
    )

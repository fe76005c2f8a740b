"""``catch_up``: after a reconnect, a client has everything committed for it meanwhile."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from harness.checks._clients import client_timelines
from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Commit, Event, Receive

__all__ = ["catch_up"]

NAME = "catch_up"


def catch_up(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    event: str = "new_alert",
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies each outage was fully caught up by the time the client said so. O(n).

    For every outage of a client (``disconnect`` .. ``reconnect``) that it
    came back from, each alert committed for its user during the outage
    must have reached it (live before the drop, or by ``sync``) by its first
    ``caught_up`` after the reconnect: catch-up is complete, including
    alerts whose ids are lower than ones the client had already seen (a
    transaction that took its id earlier and committed later). A
    reconnected client that never declares itself caught up (no re-join,
    no ``sync``) has caught up nothing. Commit times are the target's
    own or, without them, the response's arrival, which is never earlier
    than the commit. Counts ``out_of_id_order``: owed alerts whose id is
    below the highest id the client had received before the outage.
    Unknown when no client came back from an outage during which
    something was committed for it.
    """
    events = list(history)
    # Each client meets only its own user's commits (ids compare by text).
    commits: dict[str, list[Commit]] = defaultdict(list)
    for e in events:
        if isinstance(e, Commit) and e.assignee_id is not None:
            commits[str(e.assignee_id)].append(e)
    receipts: dict[str, dict[str, float]] = defaultdict(dict)
    highest_before: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for e in events:
        if isinstance(e, Receive) and e.event == event and e.alert_id is not None:
            first = receipts[e.process].get(str(e.alert_id))
            if first is None or e.mono_s < first:
                receipts[e.process][str(e.alert_id)] = e.mono_s
            if isinstance(e.alert_id, int):
                highest_before[e.process].append((e.mono_s, e.alert_id))
    violations: list[dict[str, Any]] = []
    owed = caught = out_of_order = outages = 0
    for tl in client_timelines(events).values():
        got = receipts.get(tl.client, {})
        for down, up in tl.outages:
            if up is None:
                continue  # never back: delivery reports what it lost
            done = next((t for t in tl.caught_up if t >= up), None)
            during = [c for c in commits.get(str(tl.user_id), ()) if down <= c.mono_s < up]
            if not during:
                continue
            outages += 1
            seen_max = max((a for t, a in highest_before[tl.client] if t < down), default=None)
            for c in during:
                owed += 1
                lower = seen_max is not None and int(c.alert_id) < seen_max
                out_of_order += lower
                at = got.get(str(c.alert_id))
                if done is not None and at is not None and at <= done:
                    caught += 1
                    continue
                violations.append(
                    {
                        "client": tl.client,
                        "alert_id": c.alert_id,
                        "project_id": c.project_id,
                        "disconnected_at": down,
                        "reconnected_at": up,
                        "caught_up_at": done,
                        "received_at": at,
                        "id_below_seen": lower,
                        "why": (
                            "the client never declared itself caught up"
                            if done is None
                            else "not received by the end of catch-up"
                            + (" (its id is below one seen before the outage)" if lower else "")
                        ),
                    }
                )
    if owed == 0:
        return CheckResult.unknown(
            NAME, "no client came back from an outage during which an alert was committed for it"
        )
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{len(violations)} of {owed} alert(s) committed during outages were missing"
            " when their client had caught up"
            if violations
            else f"all {owed} alert(s) committed during {outages} outage(s) were caught up"
            f" ({out_of_order} with an id below one already seen)"
        ),
        counts={
            "outages": outages,
            "owed": owed,
            "caught_up": caught,
            "missed": len(violations),
            "out_of_id_order": out_of_order,
        },
        max_counterexamples=max_counterexamples,
    )

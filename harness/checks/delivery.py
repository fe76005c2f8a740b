"""``delivery``: every committed alert reached every client entitled to it, once, in order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from harness.checks._clients import ClientTimeline, client_timelines
from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Commit, Event, Receive

__all__ = ["delivery"]

NAME = "delivery"


def delivery(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    event: str = "new_alert",
    require_subscription: bool = False,
    late_after_ms: float = 1000.0,
    fail_on_reorder: bool = False,
    fail_on_late: bool = False,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies that each ``Commit`` reached each entitled client. O(n): each
    commit meets only the clients logged in as its assignee, and their
    receipts of it.

    A client is entitled to an alert when it is logged in as the assignee, had
    connected before the commit and had not closed (and, with
    ``require_subscription``, was in the project's room). A client that was
    disconnected at the commit counts as delivered only by a receipt at or
    after its reconnect (live or ``sync``); one that never reconnected lost it.

    Counts: ``expected``, ``delivered``, ``lost``, ``duplicated`` (the same
    alert pushed live twice to one client, whether or not the client dropped
    the repeat; a ``sync`` repeat of an alert already seen is counted as
    ``resynced``, not duplicated: catch-up overlaps by design), ``reordered``
    (per client and project, received before an alert committed earlier),
    ``late`` (delivered more than ``late_after_ms`` after the commit, or after
    the reconnect for a disconnected client). Invalid on any lost or
    duplicated alert (and reordered / late when asked). Measures
    ``delivery_rate`` in %. Unknown without commits or entitled clients.
    """
    events = list(history)
    commits: dict[str, Commit] = {}
    for e in events:
        if isinstance(e, Commit):
            commits.setdefault(str(e.alert_id), e)
    if not commits:
        return CheckResult.unknown(NAME, "no commit in the history")
    # Ids compare by text (same_id): 7 from the database is "7" from a payload.
    by_user: dict[str, list[ClientTimeline]] = defaultdict(list)
    for tl in client_timelines(events).values():
        if tl.user_id is not None:
            by_user[str(tl.user_id)].append(tl)
    receipts: dict[str, list[Receive]] = defaultdict(list)
    of_alert: dict[tuple[str, str], list[Receive]] = defaultdict(list)
    for e in events:
        if isinstance(e, Receive) and e.event == event and e.alert_id is not None:
            receipts[e.process].append(e)
            of_alert[(e.process, str(e.alert_id))].append(e)

    violations: list[dict[str, Any]] = []
    expected = delivered = lost = late = 0
    for commit in commits.values():
        if commit.assignee_id is None:
            continue
        for tl in by_user.get(str(commit.assignee_id), ()):
            if not tl.entitled_at(commit.mono_s):
                continue
            if require_subscription and not tl.subscribed_at(commit.project_id, commit.mono_s):
                continue
            expected += 1
            got = of_alert.get((tl.client, str(commit.alert_id)), [])
            outage = tl.outage_at(commit.mono_s)
            since = commit.mono_s
            if outage is not None:
                if outage[1] is None:
                    got = []
                else:
                    since = outage[1]
                    got = [r for r in got if r.mono_s >= since]
            base = {
                "client": tl.client,
                "alert_id": commit.alert_id,
                "project_id": commit.project_id,
            }
            if not got:
                lost += 1
                why = "never received"
                if outage is not None:
                    why = (
                        "disconnected at commit and never reconnected"
                        if outage[1] is None
                        else "disconnected at commit and not received after reconnect"
                    )
                violations.append({"kind": "lost", **base, "why": why})
                continue
            delivered += 1
            latency_ms = (min(r.mono_s for r in got) - since) * 1000.0
            if latency_ms > late_after_ms:
                late += 1
                if fail_on_late:
                    violations.append({"kind": "late", **base, "latency_ms": latency_ms})

    duplicated, resynced, reordered = _repeats_and_order(
        receipts, commits, violations, fail_on_reorder
    )
    if expected == 0:
        return CheckResult.unknown(
            NAME, f"{len(commits)} commit(s) but no connected client logged in as an assignee"
        )
    rate = 100.0 * delivered / expected
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{delivered}/{expected} deliveries ({rate:.2f} %): {lost} lost, {duplicated} "
            f"duplicated, {reordered} reordered, {late} late"
        ),
        counts={
            "commits": len(commits),
            "expected": expected,
            "delivered": delivered,
            "lost": lost,
            "duplicated": duplicated,
            "resynced": resynced,
            "reordered": reordered,
            "late": late,
        },
        measurements={"delivery_rate": rate},
        max_counterexamples=max_counterexamples,
    )


def _repeats_and_order(
    receipts: dict[str, list[Receive]],
    commits: dict[str, Commit],
    violations: list[dict[str, Any]],
    fail_on_reorder: bool,
) -> tuple[int, int, int]:
    """Live duplicates (the server pushed one alert twice to a client),
    ``sync`` repeats (by design: catch-up overlaps), and reordering."""
    duplicated = resynced = reordered = 0
    for client, got in sorted(receipts.items()):
        seen: set[str] = set()
        seen_live: set[str] = set()
        newest: dict[str, int] = {}  # project -> highest commit index received so far
        for r in sorted(got, key=lambda r: (r.mono_s, r.index)):
            key = str(r.alert_id)
            if r.via == "live":
                if key in seen_live:
                    duplicated += 1
                    violations.append(
                        {"kind": "duplicated", "client": client, "alert_id": r.alert_id}
                    )
                seen_live.add(key)
            if key in seen:
                # Live after a sync answer that already held it is no
                # duplicate push: the socket received it live once.
                resynced += r.via == "sync"
                continue
            seen.add(key)
            commit = commits.get(key)
            if commit is None:
                continue  # a phantom: no_phantoms reports it
            project = str(commit.project_id)
            if commit.index < newest.get(project, -1):
                reordered += 1
                if fail_on_reorder:
                    violations.append(
                        {"kind": "reordered", "client": client, "alert_id": r.alert_id}
                    )
            newest[project] = max(newest.get(project, -1), commit.index)
    return duplicated, resynced, reordered

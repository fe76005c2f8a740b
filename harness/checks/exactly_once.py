"""``exactly_once``: each alert reaches each client's application once, by any path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Event, Receive

__all__ = ["exactly_once"]

NAME = "exactly_once"


def exactly_once(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    event: str = "new_alert",
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies that no client surfaced one alert to its application twice. O(n).

    An alert can reach a client live, through ``sync`` after a reconnect, or
    both (catch-up overlaps what came live, by design). The client must hand
    it to its application once: receipts marked ``surfaced`` count, whatever
    their path. Also counts what the client dropped (``dropped_repeats``)
    and the server's own live repeats (``live_repeats``, which ``delivery``
    judges). Unknown when no client received an alert.
    """
    surfaced: dict[tuple[str, str], list[Receive]] = defaultdict(list)
    received = dropped = live_repeats = 0
    live_seen: set[tuple[str, str]] = set()
    for e in history:
        if not isinstance(e, Receive) or e.event != event or e.alert_id is None:
            continue
        received += 1
        key = (e.process, str(e.alert_id))
        if e.via == "live":
            live_repeats += key in live_seen
            live_seen.add(key)
        if e.surfaced:
            surfaced[key].append(e)
        else:
            dropped += 1
    if not received:
        return CheckResult.unknown(NAME, f"no client received a {event!r} event")
    violations: list[dict[str, Any]] = [
        {
            "client": client,
            "alert_id": alert,
            "times": len(rs),
            "paths": [r.via for r in rs],
            "at_s": [round(r.mono_s, 3) for r in rs],
        }
        for (client, alert), rs in sorted(surfaced.items())
        if len(rs) > 1
    ]
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{len(violations)} alert(s) surfaced more than once to a client's application"
            if violations
            else f"{len(surfaced)} (client, alert) pair(s) surfaced once each;"
            f" {dropped} repeat(s) dropped by the client"
        ),
        counts={
            "receipts": received,
            "surfaced": sum(len(rs) for rs in surfaced.values()),
            "dropped_repeats": dropped,
            "live_repeats": live_repeats,
            "surfaced_twice": len(violations),
        },
        max_counterexamples=max_counterexamples,
    )

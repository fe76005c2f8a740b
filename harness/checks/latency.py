"""Latency checkers: generation, end-to-end delivery and reconnection time.

Each measures a percentile into ``measurements`` under the SLO metric name
(``generation_p99_ms``, ``delivery_p99_ms``, ``reconnection_p99_ms``) and is
valid unless a ``limit_ms`` is given and not met: normally the SLOs judge the
measurement (``harness.slo``), and these checkers only measure it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.checks._clients import client_timelines
from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Commit, Event, FaultMark, Receive, pair_operations
from harness.metrics import LatencyRecorder

__all__ = ["delivery_latency", "generation_latency", "reconnection"]


def _key(prefix: str, percentile: float) -> str:
    return f"{prefix}_p{percentile:g}_ms".replace(".", "")


def _judge(
    name: str,
    samples: list[tuple[float, dict[str, Any]]],
    *,
    prefix: str,
    what: str,
    percentile: float,
    limit_ms: float | None,
    extra_violations: Sequence[dict[str, Any]] = (),
    max_counterexamples: int,
) -> CheckResult:
    recorder = LatencyRecorder(name)
    recorder.record_many(ms for ms, _ in samples)
    value = recorder.percentile(percentile)
    assert value is not None  # callers return unknown on no samples
    over = limit_ms is not None and value >= limit_ms
    violations: list[dict[str, Any]] = list(extra_violations)
    if limit_ms is not None and over:
        slowest = sorted(samples, key=lambda s: -s[0])
        violations += [{"latency_ms": ms, **info} for ms, info in slowest if ms >= limit_ms]
    summary = f"{what} p{percentile:g} {value:.1f} ms over {len(samples)} sample(s)"
    if limit_ms is not None:
        summary += f" (limit {limit_ms:g} ms)"
    else:
        summary += " (measured; the SLO judges it)"
    return CheckResult.build(
        name,
        violations=violations,
        summary=summary,
        counts={"samples": len(samples), "max_ms": recorder.max_ms or 0.0},
        measurements={_key(prefix, percentile): value},
        max_counterexamples=max_counterexamples,
    )


def generation_latency(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    requests: Sequence[str] = ("complete", "generate"),
    percentile: float = 99.0,
    limit_ms: float | None = None,
    include_indeterminate: bool = True,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Request -> alert committed, from the intended start of each request. O(n).

    The end is the ``Commit`` linked to the operation (``op_id``) when
    recorded, else the operation's completion. ``info`` operations (timeouts)
    count with their completion time, a lower bound, so that a stall cannot
    hide (``include_indeterminate=False`` leaves them out). Measures
    ``generation_p99_ms``. Unknown without a completed request.
    """
    events = list(history)
    committed: dict[int, float] = {}
    for e in events:
        if isinstance(e, Commit) and e.op_id is not None:
            committed[e.op_id] = min(e.mono_s, committed.get(e.op_id, e.mono_s))
    outcomes = {"ok", "info"} if include_indeterminate else {"ok"}
    samples: list[tuple[float, dict[str, Any]]] = []
    for op in pair_operations(events):
        if op.f not in requests or op.completion is None or op.outcome not in outcomes:
            continue
        end = committed.get(op.op_id, op.completion.mono_s)
        samples.append(
            (
                (end - op.start_mono_s) * 1000.0,
                {"op_id": op.op_id, "f": op.f, "outcome": op.outcome},
            )
        )
    if not samples:
        return CheckResult.unknown("generation_latency", f"no completed {'/'.join(requests)} op")
    return _judge(
        "generation_latency",
        samples,
        prefix="generation",
        what="generation latency",
        percentile=percentile,
        limit_ms=limit_ms,
        max_counterexamples=max_counterexamples,
    )


def delivery_latency(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    event: str = "new_alert",
    percentile: float = 99.0,
    limit_ms: float | None = None,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """End-to-end delivery: ``Commit`` -> first receipt by each client. O(n).

    Measures ``delivery_p99_ms``. Where the target reported no commit time
    (no ``commit_timestamp`` capability) the sample runs from the start of
    the request that caused the alert instead: never shorter than the truth,
    so an SLO it passes holds. Unknown when no committed alert was received.
    """
    events = list(history)
    commits = {str(e.alert_id): e for e in events if isinstance(e, Commit)}
    first: dict[tuple[str, str], Receive] = {}
    for e in events:
        if isinstance(e, Receive) and e.event == event and str(e.alert_id) in commits:
            first.setdefault((e.process, str(e.alert_id)), e)
    samples = []
    from_request = 0
    for (client, alert), r in first.items():
        commit = commits[alert]
        start = commit.mono_s
        if not commit.server_time and commit.requested_mono_s is not None:
            start = commit.requested_mono_s
            from_request += 1
        samples.append(
            ((r.mono_s - start) * 1000.0, {"client": client, "alert_id": r.alert_id, "via": r.via})
        )
    if not samples:
        return CheckResult.unknown("delivery_latency", "no committed alert was received")
    what = "delivery latency"
    if from_request:
        what += f" ({from_request} of {len(samples)} from request start: no commit time)"
    return _judge(
        "delivery_latency",
        samples,
        prefix="delivery",
        what=what,
        percentile=percentile,
        limit_ms=limit_ms,
        max_counterexamples=max_counterexamples,
    )


def reconnection(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    until: str = "reconnect",
    percentile: float = 99.0,
    limit_ms: float | None = None,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Time from the network healing to each dropped client being back. O(n log n).

    For every ``disconnect``: from the later of the disconnect and the last
    fault ``heal`` before the client was back, to its ``reconnect`` (or, with
    ``until="caught_up"``, its first ``caught_up`` after that). A client that
    never came back is a violation (the check is invalid). Measures
    ``reconnection_p99_ms``. Unknown when no client was disconnected.
    """
    if until not in ("reconnect", "caught_up"):
        raise ValueError(f"until must be 'reconnect' or 'caught_up', got {until!r}")
    events = list(history)
    heals = sorted(e.mono_s for e in events if isinstance(e, FaultMark) and e.phase == "heal")
    end_of_history = max((e.mono_s for e in events), default=0.0)
    samples: list[tuple[float, dict[str, Any]]] = []
    never: list[dict[str, Any]] = []
    for tl in client_timelines(events).values():
        for down, up in tl.outages:
            back = up
            if up is not None and until == "caught_up":
                back = next((t for t in tl.caught_up if t >= up), None)
            info: dict[str, Any] = {"client": tl.client, "disconnected_at": down}
            if back is None:
                # Still away when the history ends: at least that long, so a
                # client that never returns pushes the percentile up.
                never.append({**info, "why": f"no {until} before the end of the history"})
                back = end_of_history
            healed = max((h for h in heals if down <= h <= back), default=down)
            samples.append(((back - healed) * 1000.0, info))
    if not samples:
        return CheckResult.unknown("reconnection", "no client was disconnected")
    result = _judge(
        "reconnection",
        samples,
        prefix="reconnection",
        what=f"time to {until}",
        percentile=percentile,
        limit_ms=limit_ms,
        extra_violations=never,
        max_counterexamples=max_counterexamples,
    )
    if not never:
        return result
    return CheckResult(
        name=result.name,
        valid=False,
        summary=f"{result.summary}; {len(never)} client(s) never came back",
        counts={**result.counts, "never_back": len(never)},
        measurements=result.measurements,
        counterexamples=result.counterexamples,
        counterexample_total=result.counterexample_total,
    )

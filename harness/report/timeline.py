"""From a history to the report's time axis: fault spans and latency per time bucket."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from typing import Any

from harness.history import (
    Commit,
    Event,
    FaultMark,
    Receive,
    Session,
    announced_alert,
    pair_operations,
)
from harness.metrics import LatencyRecorder
from harness.report.results import FaultSpan, ReceiptBucket, TimelineBucket

__all__ = ["fault_spans", "latency_timeline", "receipt_timeline", "reconnections", "run_start"]


def run_start(events: Iterable[Event]) -> float:
    """The earliest ``mono_s`` (intended starts included): the report's time zero."""
    starts = [min(e.mono_s, getattr(e, "intended_mono_s", None) or e.mono_s) for e in events]
    return min(starts, default=0.0)


def fault_spans(events: Iterable[Event], *, t0: float | None = None) -> list[FaultSpan]:
    """Pair each fault ``start`` with the next ``heal`` of the same label. O(n)."""
    evs = list(events)
    zero = run_start(evs) if t0 is None else t0
    open_: dict[str, deque[FaultMark]] = defaultdict(deque)
    spans: list[tuple[FaultMark, float | None]] = []
    for e in evs:
        if not isinstance(e, FaultMark):
            continue
        if e.phase == "start":
            open_[e.label].append(e)
        elif open_[e.label]:
            spans.append((open_[e.label].popleft(), e.mono_s))
    spans += [(start, None) for queue in open_.values() for start in queue]
    spans.sort(key=lambda s: s[0].mono_s)
    return [
        FaultSpan(
            label=start.label,
            kind=start.kind,
            target=start.target,
            start_s=start.mono_s - zero,
            end_s=None if end is None else end - zero,
        )
        for start, end in spans
    ]


def latency_timeline(
    events: Iterable[Event],
    *,
    requests: Sequence[str] | None = None,
    bucket_s: float = 1.0,
    t0: float | None = None,
) -> list[TimelineBucket]:
    """Latency (from the intended start) of completed operations, bucketed by completion time.

    ``requests`` limits it to those operation names (default: all).
    """
    if not bucket_s > 0:
        raise ValueError(f"bucket_s must be > 0, got {bucket_s}")
    evs = list(events)
    zero = run_start(evs) if t0 is None else t0
    recorders: dict[int, LatencyRecorder] = defaultdict(LatencyRecorder)
    errors: dict[int, int] = defaultdict(int)
    for op in pair_operations(evs):
        if op.completion is None or op.latency_ms is None:
            continue
        if requests is not None and op.f not in requests:
            continue
        bucket = int((op.completion.mono_s - zero) // bucket_s)
        recorders[bucket].record(op.latency_ms)
        if op.outcome != "ok":
            errors[bucket] += 1
    return [
        TimelineBucket(
            t_s=bucket * bucket_s,
            count=rec.count,
            errors=errors[bucket],
            p50_ms=rec.percentile(50),
            p99_ms=rec.percentile(99),
            max_ms=rec.max_ms,
        )
        for bucket, rec in sorted(recorders.items())
    ]


def receipt_timeline(
    events: Iterable[Event], *, bucket_s: float = 1.0, t0: float | None = None
) -> list[ReceiptBucket]:
    """Live receipts per event type and time bucket, with their delivery latency:
    commit -> receipt where the target reported its commit time, else from the
    start of the request that caused the alert. O(n)."""
    if not bucket_s > 0:
        raise ValueError(f"bucket_s must be > 0, got {bucket_s}")
    evs = list(events)
    zero = run_start(evs) if t0 is None else t0
    commits = {e.alert_id: e for e in evs if isinstance(e, Commit)}
    counts: dict[tuple[int, str], int] = defaultdict(int)
    recorders: dict[tuple[int, str], LatencyRecorder] = defaultdict(LatencyRecorder)
    for e in evs:
        if not isinstance(e, Receive) or e.via != "live" or e.repeat:
            continue
        key = (int((e.mono_s - zero) // bucket_s), e.event)
        counts[key] += 1
        alert = announced_alert(e)
        commit = commits.get(alert) if alert is not None else None
        if commit is None:
            continue
        start = commit.mono_s
        if not commit.server_time and commit.requested_mono_s is not None:
            start = commit.requested_mono_s
        recorders[key].record(max(0.0, (e.mono_s - start) * 1000.0))
    buckets = []
    for (bucket, event), count in sorted(counts.items()):
        rec = recorders.get((bucket, event))
        has = rec is not None and rec.count > 0
        buckets.append(
            ReceiptBucket(
                t_s=bucket * bucket_s,
                event=event,
                count=count,
                p50_ms=rec.percentile(50) if has and rec is not None else None,
                p99_ms=rec.percentile(99) if has and rec is not None else None,
            )
        )
    return buckets


def reconnections(events: Iterable[Event], *, t0: float | None = None) -> list[dict[str, Any]]:
    """Every client outage: when it dropped, how long until it was connected
    again and until it had re-joined its rooms and caught up (``sync``), in
    ms. A client that never came back has None. O(n)."""
    evs = list(events)
    zero = run_start(evs) if t0 is None else t0
    open_: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for e in evs:
        if not isinstance(e, Session):
            continue
        if e.type == "disconnect":
            row: dict[str, Any] = {
                "client": e.process,
                "user_id": e.user_id,
                "dropped_at_s": round(e.mono_s - zero, 3),
                "reconnected_ms": None,
                "caught_up_ms": None,
                "reason": e.reason or "",
                "_at": e.mono_s,
            }
            open_[e.process] = row
            rows.append(row)
        elif e.type == "reconnect" and e.process in open_:
            row = open_[e.process]
            row["reconnected_ms"] = round((e.mono_s - row["_at"]) * 1000.0, 1)
        elif e.type == "caught_up" and e.process in open_:
            row = open_.pop(e.process)
            row["caught_up_ms"] = round((e.mono_s - row["_at"]) * 1000.0, 1)
    for row in rows:
        row.pop("_at")
    return rows

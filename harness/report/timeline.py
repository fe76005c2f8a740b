"""From a history to the report's time axis: fault spans and latency per time bucket."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence

from harness.history import Event, FaultMark, pair_operations
from harness.metrics import LatencyRecorder
from harness.report.results import FaultSpan, TimelineBucket

__all__ = ["fault_spans", "latency_timeline", "run_start"]


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

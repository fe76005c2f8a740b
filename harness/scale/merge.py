"""One history out of the shards' histories, and one generator report.

The merge assumes the shards' wall clocks agree (one machine, or machines
kept in step by NTP): each shard's monotonic times are moved onto the
conductor's monotonic clock by the difference of the two clocks' offsets
(``wall - mono``, sampled when the shard said hello). On one machine
``time.monotonic()`` is one clock for every process and the shift is ~0.

Every process is renamed ``w<shard>/<process>`` (a user connected in two
shards is two clients, as with two browser tabs), and operation ids are
renumbered so they stay unique (commits follow their operation). Each
shard's own order is kept; shards are interleaved by time.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from harness.history import Commit, Event, History, Op, pair_operations
from harness.workload import GeneratorReport, OpenLoopLatency

__all__ = ["ShardHistory", "merge_generators", "merge_histories"]

_TIMES = ("mono_s", "intended_mono_s", "requested_mono_s", "responded_mono_s")


@dataclass(frozen=True)
class ShardHistory:
    """One shard's events and how far its monotonic clock is from the conductor's."""

    index: int
    events: Sequence[Event]
    #: Seconds to add to the shard's monotonic times.
    shift_s: float = 0.0


def _moved(event: Event, shard: ShardHistory, op_ids: dict[tuple[int, int], int]) -> Event:
    changes: dict[str, Any] = {"process": f"w{shard.index}/{event.process}"}
    for name in _TIMES:
        value = getattr(event, name, None)
        if isinstance(value, float | int):
            changes[name] = value + shard.shift_s
    if isinstance(event, Op):
        changes["op_id"] = op_ids[(shard.index, event.op_id)]
    elif isinstance(event, Commit) and event.op_id is not None:
        changes["op_id"] = op_ids.get((shard.index, event.op_id))
    return dataclasses.replace(event, **changes)


def _stream(shard: ShardHistory, op_ids: dict[tuple[int, int], int]) -> Iterator[Event]:
    for event in shard.events:
        yield _moved(event, shard, op_ids)


def merge_histories(into: History, shards: Iterable[ShardHistory]) -> int:
    """Append every shard's events to ``into``; returns how many."""
    shards = list(shards)
    next_id = 1 + max((e.op_id for e in into if isinstance(e, Op)), default=0)
    op_ids: dict[tuple[int, int], int] = {}
    for shard in shards:
        for event in shard.events:
            if isinstance(event, Op) and event.type == "invoke":
                op_ids[(shard.index, event.op_id)] = next_id
                next_id += 1
    streams = [_stream(s, op_ids) for s in shards]
    count = 0
    for event in heapq.merge(*streams, key=lambda e: e.mono_s):
        into.append(event)
        count += 1
    return count


def merge_generators(
    reports: Sequence[dict[str, Any]], history: History, *, f: str = "complete"
) -> GeneratorReport:
    """The shards' generator reports as one (sums, maxima, every reason), with
    latency histograms rebuilt from the merged history's ``f`` operations."""
    if not reports:
        raise ValueError("no generator report to merge")
    total = {
        name: sum(int(r[name]) for r in reports)
        for name in (
            "planned",
            "launched",
            "completed",
            "ok",
            "failed",
            "indeterminate",
            "cancelled",
            "late_starts",
            "max_in_flight",
            "peak_in_flight",
            "cap_hits",
        )
    }
    reasons = [
        f"shard {i}: {r['invalid_reason']}" for i, r in enumerate(reports) if r["invalid_reason"]
    ]
    latency = OpenLoopLatency()
    for op in pair_operations(history):
        if op.f == f and op.latency_ms is not None and op.raw_latency_ms is not None:
            latency.corrected.record(max(op.latency_ms, 0.0))
            latency.raw.record(max(op.raw_latency_ms, 0.0))
    return GeneratorReport(
        **total,
        planned_rate_per_s=sum(float(r["planned_rate_per_s"]) for r in reports),
        achieved_rate_per_s=sum(float(r["achieved_rate_per_s"]) for r in reports),
        max_lag_ms=max(float(r["max_lag_ms"]) for r in reports),
        p99_lag_ms=max(float(r["p99_lag_ms"]) for r in reports),
        late_start_threshold_ms=float(reports[0]["late_start_threshold_ms"]),
        lag_threshold_ms=float(reports[0]["lag_threshold_ms"]),
        elapsed_s=max(float(r["elapsed_s"]) for r in reports),
        valid=not reasons,
        invalid_reason="; ".join(reasons) or None,
        latency=latency,
    )

"""CPU used by each process of a run, by role, over the measured window.

On one machine the load generator, the subscribers, the app, the proxies and
the databases share the same cores, so a latency figure means little without
knowing who used the CPU. The runner marks the CPU time (user + system, the
process and its descendants: Postgres's backends count as ``postgres``) of
every process it started, plus its own, at the start and the end of the
measured load, and reports per role the share of one core and the CPU
milliseconds per operation. The whole machine's busy share is measured too:
near 100 % the figures describe this machine's limit, not the pipeline's.

Only local processes are known: a role the stack has but cannot read (a
Docker container, an external server such as a shared Toxiproxy at
``TOXIPROXY_URL``, a process that exited during the window) stays in the
table as *unmeasured*, with the reason, rather than disappearing from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

__all__ = [
    "SATURATED_SHARE",
    "CpuMark",
    "ResourceUsage",
    "mark_cpu",
    "process_cpu_s",
    "usage_between",
]

#: Machine busy share from which a run is flagged as CPU-saturated.
SATURATED_SHARE = 0.9

#: Why a role's process could not be read when its CPU was marked.
EXITED = "its process had exited when the CPU was read"
#: Why a role present in one mark only is not measured over the window.
CAME_OR_WENT = "its process started or exited during the measured window"
RESTARTED = "its process was killed and started again during the measured window"


def process_cpu_s(pid: int, *, children: bool = True) -> float | None:
    """User + system CPU seconds of ``pid`` and (``children``) its live
    descendants; None if the process is gone."""
    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.children(recursive=True)] if children else [proc]
    except psutil.Error:
        return None
    total = 0.0
    for member in family:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue  # a backend that just exited
        total += times.user + times.system
    return total


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return total - idle, total


@dataclass(frozen=True)
class CpuMark:
    """CPU seconds of each role at one moment."""

    mono_s: float
    cpu_s: dict[str, float]
    machine_busy_s: float
    machine_total_s: float
    #: Role -> why its CPU is not known (see the module docstring).
    unmeasured: Mapping[str, str] = field(default_factory=dict)
    #: The process id behind each role: a role whose process was restarted
    #: between two marks (another pid) cannot be measured across them.
    pids: Mapping[str, int] = field(default_factory=dict)


def mark_cpu(
    processes: Mapping[str, int],
    *,
    alone: Mapping[str, int] | None = None,
    clock: Callable[[], float] = time.monotonic,
    read: Callable[[int, bool], float | None] = lambda pid, children: process_cpu_s(
        pid, children=children
    ),
    machine: Callable[[], tuple[float, float]] = _machine_busy_s,
    unmeasured: Mapping[str, str] | None = None,
) -> CpuMark:
    """Read the CPU seconds of each role: ``processes`` (role -> pid) with
    their descendants, ``alone`` (role -> pid) without (the harness itself,
    whose descendants are the stack's servers). ``unmeasured`` (role ->
    reason) names the roles that exist but cannot be read here."""
    cpu: dict[str, float] = {}
    missing: dict[str, str] = dict(unmeasured or {})
    wanted = [(role, pid, True) for role, pid in processes.items()]
    wanted += [(role, pid, False) for role, pid in (alone or {}).items()]
    for role, pid, children in wanted:
        seconds = read(pid, children)
        if seconds is None:
            missing[role] = EXITED
        else:
            cpu[role] = seconds
            missing.pop(role, None)
    busy, total = machine()
    pids = {role: pid for role, pid, _ in wanted}
    return CpuMark(clock(), cpu, busy, total, missing, pids)


@dataclass(frozen=True)
class ResourceUsage:
    """CPU by role between two marks."""

    window_s: float
    cores: int
    cpu_s: dict[str, float]
    machine_busy_share: float
    """Busy share of all the machine's cores over the window (0..1)."""
    operations: int | None = None
    #: Role -> why its CPU is not known; listed in the table, never dropped.
    unmeasured: Mapping[str, str] = field(default_factory=dict)

    @property
    def saturated(self) -> bool:
        return self.machine_busy_share >= SATURATED_SHARE

    def _pct(self, seconds: float) -> float | None:
        """Share of one core over the window (100 = one core busy throughout)."""
        return round(100 * seconds / self.window_s, 1) if self.window_s else None

    def _ms_per_op(self, seconds: float) -> float | None:
        return round(1000 * seconds / self.operations, 3) if self.operations else None

    def to_dict(self) -> dict[str, Any]:
        roles: dict[str, dict[str, Any]] = {
            role: {
                "cpu_s": round(seconds, 3),
                "cpu_pct": self._pct(seconds),
                "cpu_ms_per_op": self._ms_per_op(seconds),
            }
            for role, seconds in sorted(self.cpu_s.items(), key=lambda kv: -kv[1])
        }
        for role, reason in sorted(self.unmeasured.items()):
            roles[role] = {
                "cpu_s": None,
                "cpu_pct": None,
                "cpu_ms_per_op": None,
                "unmeasured": reason,
            }
        total = sum(self.cpu_s.values())
        return {
            "window_s": round(self.window_s, 3),
            "cores": self.cores,
            "operations": self.operations,
            "roles": roles,
            "total_cpu_pct": self._pct(total),
            "total_cpu_ms_per_op": self._ms_per_op(total),
            "machine_busy_pct": round(100 * self.machine_busy_share, 1),
            "saturated": self.saturated,
            "unmeasured": list(self.unmeasured),
        }


def usage_between(
    start: CpuMark, end: CpuMark, *, operations: int | None = None, cores: int | None = None
) -> ResourceUsage:
    """What each role used from ``start`` to ``end``: roles read in both marks;
    the others are unmeasured, with the reason."""
    window = max(end.mono_s - start.mono_s, 0.0)
    restarted = {
        role for role, pid in start.pids.items() if role in end.pids and end.pids[role] != pid
    }
    cpu = {
        role: max(end.cpu_s[role] - start.cpu_s[role], 0.0)
        for role in start.cpu_s
        if role in end.cpu_s and role not in restarted
    }
    total = end.machine_total_s - start.machine_total_s
    busy = end.machine_busy_s - start.machine_busy_s
    missing = {role: CAME_OR_WENT for role in set(start.cpu_s) ^ set(end.cpu_s)}
    missing.update(end.unmeasured)
    missing.update(start.unmeasured)
    missing.update({role: RESTARTED for role in restarted})
    for role in cpu:
        missing.pop(role, None)
    return ResourceUsage(
        window_s=window,
        cores=cores or os.cpu_count() or 1,
        cpu_s=cpu,
        machine_busy_share=min(max(busy / total, 0.0), 1.0) if total > 0 else 0.0,
        operations=operations,
        unmeasured=dict(sorted(missing.items())),
    )


def gc_pauses_from_metrics(text: str) -> dict[str, dict[str, float | int | None]]:
    """Per generation collected: count, total pause (ms) and a bound on the
    longest pause (the smallest histogram bucket holding all of them), from
    the app's ``alertbench_gc_pause_seconds`` in Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float | int | None]] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "alertbench_gc_pause_seconds":
            continue
        for sample in family.samples:
            generation = sample.labels.get("generation", "?")
            entry = out.setdefault(
                generation, {"collections": 0, "pause_ms_total": 0.0, "longest_ms_at_most": None}
            )
            if sample.name.endswith("_count"):
                entry["collections"] = int(sample.value)
            elif sample.name.endswith("_sum"):
                entry["pause_ms_total"] = round(sample.value * 1000, 1)
            elif sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets.setdefault(generation, []).append((bound, sample.value))
    for generation, pairs in buckets.items():
        total = out[generation]["collections"]
        if not total:
            continue
        for bound, cumulative in sorted(pairs):
            if cumulative >= total:
                out[generation]["longest_ms_at_most"] = (
                    None if bound == float("inf") else round(bound * 1000, 1)
                )
                break
    return dict(sorted(out.items()))

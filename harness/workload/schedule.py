"""Deterministic arrival schedules: when each operation is intended to start.

    constant_rate(200, 60)                 # 200/s for 60 s, evenly spaced
    ramp(10, 500, 120)                     # linear ramp of the arrival rate
    poisson(200, 60, seed=7)               # exponential inter-arrival times, seeded
    ramp(0, 200, 30).then(constant_rate(200, 60))

A schedule is a sorted tuple of offsets in seconds from the start of the run.
The same arguments (and seed) always give the same schedule, and
:meth:`Schedule.rng` gives each operation its own seeded random stream for
choosing arguments (which project, which user), so a run is reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "MAX_OPERATIONS",
    "InvalidScheduleError",
    "Schedule",
    "constant_rate",
    "poisson",
    "ramp",
]

MAX_OPERATIONS: Final = 10_000_000
"""Largest schedule accepted: a guard against a rate given in the wrong unit."""


class InvalidScheduleError(ValueError):
    """A schedule argument is out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """Intended start offsets of each operation, plus how they were made."""

    kind: str
    """``constant``, ``ramp``, ``poisson`` or ``stages``."""
    offsets_s: tuple[float, ...]
    """Sorted start offsets, seconds from the start of the run, each ``< duration_s``."""
    duration_s: float
    """Length of the schedule, seconds."""
    seed: int
    """Seed of the arrival times (``poisson``) and of :meth:`rng`."""
    params: dict[str, Any] = field(default_factory=dict)
    """The arguments, for the report (``rate_per_s``...)."""

    def __len__(self) -> int:
        return len(self.offsets_s)

    @property
    def planned_rate_per_s(self) -> float:
        """Operations per second over the whole schedule (0 for an empty one)."""
        return len(self.offsets_s) / self.duration_s if self.duration_s > 0 else 0.0

    def rng(self, i: int) -> random.Random:
        """A random stream for operation ``i``, the same on every run with this seed."""
        # String seeds are hashed with SHA-512: stable across processes and versions.
        return random.Random(f"alertbench:{self.seed}:{i}")

    def then(self, other: Schedule) -> Schedule:
        """This schedule followed by ``other`` (its offsets shifted by this duration)."""
        shifted = tuple(self.duration_s + t for t in other.offsets_s)
        stages = [
            *self.params.get("stages", [self.describe()]),
            *other.params.get("stages", [other.describe()]),
        ]
        return Schedule(
            kind="stages",
            offsets_s=self.offsets_s + shifted,
            duration_s=self.duration_s + other.duration_s,
            seed=self.seed,
            params={"stages": stages},
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (without the offsets) for results.json."""
        return {
            "kind": self.kind,
            "operations": len(self.offsets_s),
            "duration_s": self.duration_s,
            "planned_rate_per_s": self.planned_rate_per_s,
            "seed": self.seed,
            **self.params,
        }


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidScheduleError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidScheduleError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}"
        )
    return float(value)


def _check_count(expected: float) -> None:
    if expected > MAX_OPERATIONS:
        raise InvalidScheduleError(
            f"schedule would have ~{expected:.0f} operations, more than {MAX_OPERATIONS}; "
            "is the rate per second?"
        )


def _seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidScheduleError(f"seed must be an integer, got {seed!r}")
    return seed


def constant_rate(rate_per_s: float, duration_s: float, *, seed: int = 0) -> Schedule:
    """``rate_per_s`` operations per second, evenly spaced, for ``duration_s`` seconds."""
    rate = _positive("rate_per_s", rate_per_s)
    duration = _positive("duration_s", duration_s)
    _check_count(rate * duration)
    # Offsets k / rate strictly below the duration (the epsilon absorbs float error
    # so 100/s for 1 s is exactly 100 operations).
    count = max(0, math.ceil(rate * duration - 1e-9))
    offsets = tuple(k / rate for k in range(count))
    return Schedule("constant", offsets, duration, _seed(seed), {"rate_per_s": rate})


def ramp(
    start_rate_per_s: float, end_rate_per_s: float, duration_s: float, *, seed: int = 0
) -> Schedule:
    """An arrival rate rising (or falling) linearly from start to end over ``duration_s``.

    Operation ``k`` starts when the integral of the rate reaches ``k``; the
    schedule holds ``(start + end) / 2 * duration`` operations.
    """
    r0 = _positive("start_rate_per_s", start_rate_per_s, allow_zero=True)
    r1 = _positive("end_rate_per_s", end_rate_per_s, allow_zero=True)
    duration = _positive("duration_s", duration_s)
    if r0 == 0 and r1 == 0:
        raise InvalidScheduleError("start_rate_per_s and end_rate_per_s must not both be 0")
    total = (r0 + r1) / 2 * duration
    _check_count(total)
    a = (r1 - r0) / (2 * duration)
    offsets: list[float] = []
    for k in range(max(0, math.ceil(total - 1e-9))):
        # Solve a t^2 + r0 t = k in the cancellation-free form 2k / (r0 + sqrt(...)).
        disc = max(0.0, r0 * r0 + 4 * a * k)
        t = 0.0 if k == 0 else 2 * k / (r0 + math.sqrt(disc))
        if t >= duration:
            break
        offsets.append(t)
    return Schedule(
        "ramp",
        tuple(offsets),
        duration,
        _seed(seed),
        {"start_rate_per_s": r0, "end_rate_per_s": r1},
    )


def poisson(rate_per_s: float, duration_s: float, *, seed: int) -> Schedule:
    """A Poisson process: exponential inter-arrival times of mean ``1 / rate_per_s``, seeded."""
    rate = _positive("rate_per_s", rate_per_s)
    duration = _positive("duration_s", duration_s)
    _check_count(rate * duration)
    rng = random.Random(_seed(seed))
    offsets: list[float] = []
    t = rng.expovariate(rate)
    while t < duration and len(offsets) < MAX_OPERATIONS:
        offsets.append(t)
        t += rng.expovariate(rate)
    return Schedule("poisson", tuple(offsets), duration, seed, {"rate_per_s": rate})

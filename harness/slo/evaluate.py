"""Evaluating SLOs against measurements: pass / fail / unknown, with the margin."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.slo.spec import Comparison, SloSpec

__all__ = ["SloStatus", "SloVerdict", "evaluate", "judge"]

SloStatus = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SloVerdict:
    """One SLO judged against one run."""

    name: str
    """The SLO's name."""
    description: str
    """For display."""
    metric: str
    """The measurement judged."""
    op: Comparison
    """The comparison that must hold: ``measured <op> target``."""
    target: float
    """The threshold."""
    unit: str
    """Unit of ``target``, ``measured`` and ``margin``."""
    measured: float | None
    """The measurement, ``None`` when the run did not produce it."""
    status: SloStatus
    """``pass``, ``fail``, or ``unknown`` without a measurement."""
    margin: float | None
    """Headroom in ``unit``: positive = inside the objective, negative = the overshoot."""
    margin_pct: float | None
    """``margin`` as a % of the target (``None`` for a zero target or no measurement)."""
    note: str = ""
    """Why the status is what it is, where that needs saying (e.g. a latency
    that failed on a SATURATED machine is ``unknown``: the machine's figure)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SloVerdict:
        """Inverse of :meth:`to_dict`."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def _holds(op: Comparison, measured: float, target: float) -> bool:
    if op == "<":
        return measured < target
    if op == "<=":
        return measured <= target
    if op == ">":
        return measured > target
    return measured >= target


def judge(spec: SloSpec, measured: float | None) -> SloVerdict:
    """Judge one SLO against one measurement."""
    if measured is not None and not math.isfinite(measured):
        measured = None
    margin: float | None = None
    margin_pct: float | None = None
    status: SloStatus = "unknown"
    if measured is not None:
        margin = spec.target - measured if spec.op in ("<", "<=") else measured - spec.target
        margin_pct = 100.0 * margin / abs(spec.target) if spec.target else None
        status = "pass" if _holds(spec.op, measured, spec.target) else "fail"
    return SloVerdict(
        name=spec.name,
        description=spec.description,
        metric=spec.metric,
        op=spec.op,
        target=spec.target,
        unit=spec.unit,
        measured=measured,
        status=status,
        margin=margin,
        margin_pct=margin_pct,
    )


def evaluate(
    slos: Mapping[str, SloSpec], measurements: Mapping[str, float | None]
) -> list[SloVerdict]:
    """Judge every enabled SLO, in name order; a missing measurement gives ``unknown``."""
    return [
        judge(spec, measurements.get(spec.metric))
        for name, spec in sorted(slos.items())
        if spec.enabled
    ]

"""Operations as pairs: an ``invoke`` and its completion (or none, if the run ended first)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.history.events import Event, Op

__all__ = ["Operation", "pair_operations"]


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: its invoke and its completion (``None``: never completed, i.e. ``info``)."""

    invoke: Op
    """The ``invoke`` event (arguments in ``invoke.value``)."""
    completion: Op | None
    """The ``ok`` / ``fail`` / ``info`` event, or ``None`` when the history ends first."""

    @property
    def op_id(self) -> int:
        """The shared ``op_id``."""
        return self.invoke.op_id

    @property
    def f(self) -> str:
        """The operation name."""
        return self.invoke.f

    @property
    def process(self) -> str:
        """Who invoked it."""
        return self.invoke.process

    @property
    def outcome(self) -> Literal["ok", "fail", "info"]:
        """``ok``, ``fail`` or ``info`` (an operation that never completed is ``info``)."""
        if self.completion is None or self.completion.type == "invoke":
            return "info"
        return self.completion.type

    @property
    def start_mono_s(self) -> float:
        """When it should have started: the intended time if open-loop, else the invoke time."""
        if self.invoke.intended_mono_s is not None:
            return self.invoke.intended_mono_s
        return self.invoke.mono_s

    @property
    def latency_ms(self) -> float | None:
        """Completion minus intended start (coordinated-omission safe); ``None`` if open."""
        if self.completion is None:
            return None
        return (self.completion.mono_s - self.start_mono_s) * 1000.0

    @property
    def raw_latency_ms(self) -> float | None:
        """Completion minus actual invoke time; ``None`` if open."""
        if self.completion is None:
            return None
        return (self.completion.mono_s - self.invoke.mono_s) * 1000.0


def pair_operations(events: Iterable[Event]) -> list[Operation]:
    """Pair each ``invoke`` with its completion by ``op_id``, in invoke order. O(n)."""
    invokes: dict[int, Op] = {}
    completions: dict[int, Op] = {}
    for event in events:
        if not isinstance(event, Op):
            continue
        if event.type == "invoke":
            invokes.setdefault(event.op_id, event)
        else:
            completions.setdefault(event.op_id, event)
    return [Operation(op, completions.get(op_id)) for op_id, op in invokes.items()]

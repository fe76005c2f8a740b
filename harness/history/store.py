"""The in-memory history: an append-only, thread-safe list of events with recording helpers."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol, TypeVar, overload

from harness.history.events import (
    Commit,
    Event,
    FaultMark,
    Id,
    Op,
    Receive,
    Session,
    SessionType,
    Snapshot,
)

__all__ = ["FaultEventLike", "History", "HistoryError"]

E = TypeVar("E", bound=Event)


class HistoryError(ValueError):
    """A history was misused (completing an unknown operation twice) or a file is malformed."""


class FaultEventLike(Protocol):
    """What :meth:`History.record_fault` needs: ``harness.faults.FaultEvent`` fits."""

    @property
    def label(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def proxy(self) -> str: ...
    @property
    def phase(self) -> Literal["start", "heal"]: ...
    @property
    def at_s(self) -> float: ...


class History(Sequence[Event]):
    """An append-only sequence of events; safe to append to from several threads.

    Recording helpers stamp events with ``mono_clock()`` and ``wall_clock()``
    unless given ``mono_s=`` explicitly (e.g. a receive time measured in a
    callback). Pass the event loop's clock as ``mono_clock`` to test with a
    virtual clock.
    """

    def __init__(
        self,
        events: Iterable[Event] = (),
        *,
        mono_clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_append: Callable[[Event], None] | None = None,
    ) -> None:
        """``on_append`` sees every event once it is stored, whichever way it
        came in (:meth:`append` or a recording helper)."""
        self._events: list[Event] = []
        self._on_append = on_append
        self._lock = threading.Lock()
        self._mono_clock = mono_clock
        self._wall_clock = wall_clock
        self._next_op_id = 1
        self._open: dict[int, Op] = {}
        for event in events:
            self.append(event)

    # -- Sequence -------------------------------------------------------------

    @overload
    def __getitem__(self, i: int) -> Event: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Event]: ...
    def __getitem__(self, i: int | slice) -> Event | Sequence[Event]:
        return self._events[i]

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))

    def __repr__(self) -> str:
        return f"<History {len(self._events)} events>"

    # -- appending ------------------------------------------------------------

    def append(self, event: E) -> E:
        """Append ``event`` (its ``index`` is set to its position) and return the stored copy."""
        with self._lock:
            stored = dataclasses.replace(event, index=len(self._events))
            if isinstance(stored, Op):
                self._track(stored)
            self._events.append(stored)
        if self._on_append is not None:
            self._on_append(stored)
        return stored

    def _add(self, event: E) -> E:
        """Append an event the recording helpers just made, without a copy.

        Nobody else holds it yet, so its ``index`` is set in place (the
        events are frozen: ``object.__setattr__``, as their own constructors
        would); a copy per event was most of what recording a receipt cost."""
        with self._lock:
            object.__setattr__(event, "index", len(self._events))
            if isinstance(event, Op):
                self._track(event)
            self._events.append(event)
        if self._on_append is not None:
            self._on_append(event)
        return event

    def _track(self, op: Op) -> None:
        # Called with the lock held. Keeps op ids unique and completions paired,
        # so a checker never has to guess which invoke a completion belongs to.
        if op.type == "invoke":
            if op.op_id in self._open:
                raise HistoryError(f"op_id {op.op_id} invoked twice")
            self._open[op.op_id] = op
            # Loaded histories carry their own ids: never hand those out again.
            self._next_op_id = max(self._next_op_id, op.op_id + 1)
            return
        if self._open.pop(op.op_id, None) is None:
            raise HistoryError(f"{op.type} for op_id {op.op_id} which is not open")

    def now(self) -> tuple[float, float]:
        """``(mono_s, wall_s)`` from this history's clocks."""
        return self._mono_clock(), self._wall_clock()

    def _stamp(self, mono_s: float | None) -> tuple[float, float]:
        mono, wall = self.now()
        if mono_s is None:
            return mono, wall
        # Back-date the wall clock by the same amount as the monotonic one.
        return mono_s, wall - (mono - mono_s)

    # -- operations -----------------------------------------------------------

    def invoke(
        self,
        process: str,
        f: str,
        value: Any = None,
        *,
        intended_mono_s: float | None = None,
        mono_s: float | None = None,
    ) -> Op:
        """Open an operation; complete it later with :meth:`ok`, :meth:`fail` or :meth:`info`."""
        mono, wall = self._stamp(mono_s)
        with self._lock:
            op_id = self._next_op_id
            self._next_op_id += 1
        return self._add(
            Op(
                type="invoke",
                process=process,
                f=f,
                op_id=op_id,
                value=value,
                intended_mono_s=intended_mono_s,
                mono_s=mono,
                wall_s=wall,
            )
        )

    def _complete(
        self,
        kind: Literal["ok", "fail", "info"],
        invoke: Op,
        value: Any,
        error: str | None,
        mono_s: float | None,
    ) -> Op:
        if invoke.type != "invoke":
            raise HistoryError(f"can only complete an invoke, got {invoke.type}")
        mono, wall = self._stamp(mono_s)
        return self._add(
            Op(
                type=kind,
                process=invoke.process,
                f=invoke.f,
                op_id=invoke.op_id,
                value=value,
                error=error,
                mono_s=mono,
                wall_s=wall,
            )
        )

    def ok(self, invoke: Op, value: Any = None, *, mono_s: float | None = None) -> Op:
        """The operation happened; ``value`` is its result."""
        return self._complete("ok", invoke, value, None, mono_s)

    def fail(self, invoke: Op, error: str, value: Any = None, *, mono_s: float | None = None) -> Op:
        """The operation definitely did not happen (e.g. rejected with 409)."""
        return self._complete("fail", invoke, value, error, mono_s)

    def info(self, invoke: Op, error: str, value: Any = None, *, mono_s: float | None = None) -> Op:
        """The outcome is unknown: it may have happened (timeout, reset connection)."""
        return self._complete("info", invoke, value, error, mono_s)

    def open_operations(self) -> list[Op]:
        """Invokes not completed yet (at the end of a run they count as ``info``)."""
        with self._lock:
            return list(self._open.values())

    # -- other events ---------------------------------------------------------

    def receive(
        self,
        process: str,
        *,
        user_id: Id,
        event: str,
        alert_id: Id | None = None,
        project_id: Id | None = None,
        via: str = "live",
        payload: Any = None,
        repeat: bool = False,
        surfaced: bool = True,
        mono_s: float | None = None,
    ) -> Receive:
        """A client received a server event (``mono_s``: when it arrived)."""
        mono, wall = self._stamp(mono_s)
        return self._add(
            Receive(
                process=process,
                user_id=user_id,
                event=event,
                alert_id=alert_id,
                project_id=project_id,
                via=via,
                payload=payload,
                repeat=repeat,
                surfaced=surfaced,
                mono_s=mono,
                wall_s=wall,
            )
        )

    def session(
        self,
        process: str,
        type: SessionType,
        *,
        user_id: Id,
        project_id: Id | None = None,
        reason: str | None = None,
        mono_s: float | None = None,
    ) -> Session:
        """A client connected, subscribed, dropped, reconnected, caught up or closed."""
        mono, wall = self._stamp(mono_s)
        return self._add(
            Session(
                process=process,
                type=type,
                user_id=user_id,
                project_id=project_id,
                reason=reason,
                mono_s=mono,
                wall_s=wall,
            )
        )

    def commit(
        self,
        *,
        alert_id: Id,
        project_id: Id,
        assignee_id: Id | None,
        step_id: Id | None = None,
        op_id: int | None = None,
        process: str = "runner",
        mono_s: float | None = None,
        requested_mono_s: float | None = None,
        responded_mono_s: float | None = None,
        server_time: bool = True,
    ) -> Commit:
        """An alert is known committed at ``mono_s`` (default: now)."""
        mono, wall = self._stamp(mono_s)
        return self._add(
            Commit(
                process=process,
                alert_id=alert_id,
                project_id=project_id,
                assignee_id=assignee_id,
                step_id=step_id,
                op_id=op_id,
                mono_s=mono,
                wall_s=wall,
                requested_mono_s=requested_mono_s,
                responded_mono_s=responded_mono_s,
                server_time=server_time,
            )
        )

    def fault(
        self,
        phase: Literal["start", "heal"],
        *,
        kind: str,
        label: str,
        target: str = "",
        process: str = "nemesis",
        mono_s: float | None = None,
    ) -> FaultMark:
        """A fault started or healed."""
        mono, wall = self._stamp(mono_s)
        return self._add(
            FaultMark(
                process=process,
                phase=phase,
                kind=kind,
                label=label,
                target=target,
                mono_s=mono,
                wall_s=wall,
            )
        )

    def record_fault(self, event: FaultEventLike) -> FaultMark:
        """Record a ``harness.faults.FaultEvent``; usable directly as ``Fault(on_event=...)``."""
        return self.fault(
            event.phase, kind=event.kind, label=event.label, target=event.proxy, mono_s=event.at_s
        )

    def snapshot(
        self,
        name: str,
        rows: Iterable[dict[str, Any]],
        *,
        label: str | None = None,
        process: str = "runner",
        mono_s: float | None = None,
    ) -> Snapshot:
        """Rows read from the database (``alerts``, ``pg_stat_statements``...)."""
        mono, wall = self._stamp(mono_s)
        return self._add(
            Snapshot(
                process=process,
                name=name,
                rows=[dict(r) for r in rows],
                label=label,
                mono_s=mono,
                wall_s=wall,
            )
        )

    # -- queries --------------------------------------------------------------

    def of_type(self, cls: type[E]) -> list[E]:
        """The events of one class, in history order."""
        return [e for e in self._events if isinstance(e, cls)]

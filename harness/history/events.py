"""The events of a history: operations, socket receipts, sessions, commits, faults, snapshots.

Every event carries who recorded it (``process``), when on the monotonic clock
(``mono_s``, ``time.monotonic()`` seconds, comparable across the whole run)
and when on the wall clock (``wall_s``, Unix seconds, for humans and for
correlating with server logs), and its position in the history (``index``,
assigned on append). The ``type`` field tells the kind apart; it is also the
discriminator of the JSONL form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

__all__ = [
    "COMPLETION_TYPES",
    "EVENT_CLASSES",
    "SESSION_TYPES",
    "Commit",
    "Event",
    "FaultMark",
    "Id",
    "Op",
    "OpType",
    "Receive",
    "Session",
    "SessionType",
    "Snapshot",
    "announced_alert",
]

Id: TypeAlias = int | str
"""A database identifier (user, project, alert, step): an integer or a string (e.g. a UUID)."""

OpType = Literal["invoke", "ok", "fail", "info"]
SessionType = Literal[
    "connect", "subscribe", "unsubscribe", "disconnect", "reconnect", "caught_up", "close"
]

COMPLETION_TYPES: Final = frozenset({"ok", "fail", "info"})
"""The types that complete an ``invoke``."""
SESSION_TYPES: Final = frozenset(
    {"connect", "subscribe", "unsubscribe", "disconnect", "reconnect", "caught_up", "close"}
)
"""The types of :class:`Session` events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    process: str
    """Who recorded it: a client id (``c17``), ``runner``, ``generator``, ``nemesis``."""
    mono_s: float
    """``time.monotonic()`` (or the event loop's clock, the same on asyncio and uvloop), seconds."""
    wall_s: float
    """``time.time()``, Unix seconds."""
    index: int = -1
    """Position in the history; assigned by :meth:`History.append` (``-1`` before)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Op(_Base):
    """One step of an operation: ``invoke``, then exactly one of ``ok``, ``fail``, ``info``.

    ``fail`` means it definitely did not happen (e.g. HTTP 409); ``info`` means
    it may or may not have happened (a timeout, a reset connection).
    """

    type: OpType
    """``invoke`` opens the operation; ``ok`` / ``fail`` / ``info`` complete it."""
    f: str
    """The operation: ``complete``, ``generate``, ``read_alerts``, ``sync``..."""
    op_id: int
    """Links the completion to its invoke; unique within the history."""
    value: Any = None
    """JSON: the arguments on ``invoke``, the result on ``ok`` (and what is known on fail/info)."""
    error: str | None = None
    """Why it failed or is indeterminate (``fail`` / ``info``): ``409 stale``, ``timeout``."""
    intended_mono_s: float | None = None
    """On ``invoke`` of an open-loop operation: when it was scheduled to start (monotonic s)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Receive(_Base):
    """A server event a client received (``process`` is the client id)."""

    user_id: Id
    """The user the client is logged in as."""
    event: str
    """Socket.IO event name: ``new_alert``, ``alerts_refresh``, ``workflow_updated``."""
    alert_id: Id | None = None
    """The alert it carries (``new_alert``), if any."""
    project_id: Id | None = None
    """The project it concerns, if any."""
    via: str = "live"
    """``live`` for a pushed event, ``sync`` for one returned by catch-up after a reconnect."""
    payload: Any = None
    """JSON: the event's data as received (optional; large histories may omit it)."""
    repeat: bool = False
    """The client had received this alert before (a server duplicate, or a
    ``sync`` answer overlapping what came live)."""
    surfaced: bool = True
    """The client handed it to its application (``exactly_once`` counts these)."""
    type: Literal["receive"] = "receive"


@dataclass(frozen=True, slots=True, kw_only=True)
class Session(_Base):
    """A change in a client's connection or room membership (``process`` is the client id).

    - ``connect``: first connection established (entitlement to alerts starts);
    - ``subscribe`` / ``unsubscribe``: joined / left ``project_id``'s room (acked ok);
    - ``disconnect``: the connection dropped (alerts committed meanwhile must be
      received after the next ``reconnect``);
    - ``reconnect``: connected again; ``caught_up``: rooms re-joined and ``sync`` done;
    - ``close``: the client stopped on purpose (no alert is owed to it afterwards).
    """

    type: SessionType
    """What happened (see the class docstring)."""
    user_id: Id
    """The user the client is logged in as."""
    project_id: Id | None = None
    """The room's project, for ``subscribe`` / ``unsubscribe``."""
    reason: str | None = None
    """Free text, e.g. why a ``disconnect`` happened."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit(_Base):
    """An alert the runner knows is committed.

    ``mono_s`` is the commit time the target reported (``committedAtMs``, the
    ``commit_timestamp`` capability) or, where it reports none, the arrival
    of the response that announced it (``server_time`` False), which is
    later than the commit."""

    alert_id: Id
    """The committed alert's id."""
    project_id: Id
    """Its project."""
    assignee_id: Id | None
    """The user it is assigned to (``new_alert`` goes to ``user_<assignee>``)."""
    step_id: Id | None = None
    """The workflow step (line item) it belongs to."""
    op_id: int | None = None
    """The operation that caused it, if known (links generation latency to its request)."""
    requested_mono_s: float | None = None
    """When the request that caused it was sent (the client's clock)."""
    responded_mono_s: float | None = None
    """When that request's response arrived (the client's clock)."""
    server_time: bool = True
    """``mono_s`` is the target's own commit time (else the response's arrival)."""
    type: Literal["commit"] = "commit"


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultMark(_Base):
    """A fault started or healed (``process`` is usually ``nemesis``)."""

    phase: Literal["start", "heal"]
    """Start or heal of the fault."""
    kind: str
    """The fault package (``partition``, ``latency``...): how the report shades it."""
    label: str
    """Human label, e.g. ``latency app 200±50 ms``; a start and its heal share it."""
    target: str = ""
    """The proxy (hop) it acts on: ``postgres``, ``redis``, ``app``."""
    type: Literal["fault"] = "fault"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot(_Base):
    """Rows read from the database during (or at the end of) the run.

    ``name`` says what: ``alerts`` (rows with ``id``, ``project_id``,
    ``step_id``, ``status``, ``assigned_to_id``) for ``no_duplicates``;
    ``pg_stat_statements`` (rows with ``queryid``, ``query``, ``calls``,
    ``total_exec_time``) for ``queries_per_request``.
    """

    name: str
    """What was read: ``alerts``, ``pg_stat_statements``..."""
    rows: list[dict[str, Any]]
    """The rows, as plain JSON dicts."""
    label: str | None = None
    """Free label, e.g. ``before`` / ``after`` for statement counters."""
    type: Literal["snapshot"] = "snapshot"


Event: TypeAlias = Op | Receive | Session | Commit | FaultMark | Snapshot
"""Any event of a history."""

EVENT_CLASSES: Final[dict[str, type[Event]]] = {
    **{t: Op for t in ("invoke", "ok", "fail", "info")},
    "receive": Receive,
    **{t: Session for t in SESSION_TYPES},
    "commit": Commit,
    "fault": FaultMark,
    "snapshot": Snapshot,
}
"""Event class by ``type``, for decoding."""


def announced_alert(receipt: Receive) -> int | None:
    """The alert a receipt is about: ``new_alert``'s own id, or a room event's ``alertId``."""
    if receipt.alert_id is not None:
        return int(receipt.alert_id)
    payload = receipt.payload
    if isinstance(payload, dict) and isinstance(payload.get("alertId"), int):
        return int(payload["alertId"])
    return None

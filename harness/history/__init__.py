"""The operation history of a run: what every process did and saw, in order (Jepsen's history).

Checkers (``harness.checks``) are pure functions of this history plus the final
reads of the database; so everything a checker needs must be recorded here.
One :class:`History` per run; the runner, the generator, the client fleet and
the nemesis all append to it (appends are thread-safe). It is written next to
the results as ``history.jsonl`` (:func:`write_jsonl` / :func:`read_jsonl`).

Clocks: ``mono_s`` is ``time.monotonic()`` seconds (asyncio's and uvloop's
loop clocks are the same clock), comparable across all processes of one run;
``wall_s`` is ``time.time()``. Helpers stamp "now" unless given ``mono_s=``
(pass it when the time was measured earlier, e.g. in a socket callback).

What to record, and with which helper:

===================  ==============================================================
what                 how
===================  ==============================================================
HTTP operation       ``op = h.invoke(client_id, "complete", {"project_id": 1,
                     "line_item_id": 7})`` then exactly one of ``h.ok(op, result)``,
                     ``h.fail(op, "409 stale")`` (definitely did not happen) or
                     ``h.info(op, "timeout")`` (may have happened). ``f`` names:
                     ``complete``, ``complete_queued``, ``generate``, ``read_alerts``.
                     Open-loop ops also pass ``intended_mono_s`` (the workload
                     driver does this itself).
socket receipt       ``h.receive(client_id, user_id=u, event="new_alert", alert_id=a,
                     project_id=p, via="live"|"sync", mono_s=received_at)``; one per
                     event as received (catch-up items from ``sync`` with
                     ``via="sync"``), including ``alerts_refresh`` and
                     ``workflow_updated`` (``alert_id=None``).
client session       ``h.session(client_id, "connect", user_id=u)`` on first connect;
                     ``"subscribe"`` / ``"unsubscribe"`` with ``project_id`` when the ack
                     says ok; ``"disconnect"`` when the connection drops;
                     ``"reconnect"`` when it is back; ``"caught_up"`` when rooms are
                     re-joined and ``sync`` answered; ``"close"`` when stopped on purpose.
commit               ``h.commit(alert_id=a, project_id=p, assignee_id=u, step_id=s,
                     op_id=op.op_id, mono_s=t)``: an alert the runner knows is
                     committed (from the response of the operation that created it,
                     or a read), ``mono_s`` = the commit time it measured.
fault                ``h.fault("start"|"heal", kind="partition", label=..., target=
                     "postgres")``, or pass ``h.record_fault`` as ``on_event`` of a
                     ``harness.faults`` package.
DB snapshot          ``h.snapshot("alerts", rows)`` (rows with ``id``, ``project_id``,
                     ``step_id``, ``status``, ``assigned_to_id``) during the run and at
                     the end, for ``no_duplicates``; ``h.snapshot("pg_stat_statements",
                     rows, label="before"|"after")`` around the measured load.
===================  ==============================================================

Event classes (all frozen dataclasses, common fields ``process``, ``mono_s``,
``wall_s``, ``index``; ``type`` is the discriminator of the JSONL form):
:class:`Op` (``invoke``/``ok``/``fail``/``info``), :class:`Receive`
(``receive``), :class:`Session` (``connect``/``subscribe``/``unsubscribe``/
``disconnect``/``reconnect``/``caught_up``/``close``), :class:`Commit`
(``commit``), :class:`FaultMark` (``fault``), :class:`Snapshot`
(``snapshot``). :func:`pair_operations` turns ops into :class:`Operation`
pairs with latencies from the intended start.
"""

from harness.history.events import (
    COMPLETION_TYPES,
    EVENT_CLASSES,
    SESSION_TYPES,
    Commit,
    Event,
    FaultMark,
    Id,
    Op,
    OpType,
    Receive,
    Session,
    SessionType,
    Snapshot,
    announced_alert,
)
from harness.history.jsonl import (
    HISTORY_FORMAT_VERSION,
    event_from_dict,
    event_to_dict,
    iter_jsonl,
    read_jsonl,
    write_jsonl,
)
from harness.history.ops import Operation, pair_operations
from harness.history.store import FaultEventLike, History, HistoryError

__all__ = [
    "COMPLETION_TYPES",
    "EVENT_CLASSES",
    "HISTORY_FORMAT_VERSION",
    "SESSION_TYPES",
    "Commit",
    "Event",
    "FaultEventLike",
    "FaultMark",
    "History",
    "HistoryError",
    "Id",
    "Op",
    "OpType",
    "Operation",
    "Receive",
    "Session",
    "SessionType",
    "Snapshot",
    "announced_alert",
    "event_from_dict",
    "event_to_dict",
    "iter_jsonl",
    "pair_operations",
    "read_jsonl",
    "write_jsonl",
]

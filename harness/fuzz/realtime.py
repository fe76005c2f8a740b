"""Socket.IO fuzzing: what an authenticated attacker can send, and what must come back.

Contract section 7 says what the server owes any client, whatever it sends:

- ``subscribe_project`` joins a project's room **only for a member**; a
  malformed payload gets ``{"ok": false, …}`` (7.3);
- ``sync`` returns **only the user's own** alerts; a malformed payload gets
  ``{"ok": false, …}`` (7.4);
- acks arrive within 5 s; a handler failure MUST NOT drop the connection; an
  unknown event SHOULD get an error ack (7.4);
- a missing, malformed, forged or expired token refuses the connection (7.2).

:func:`socket_actions` is the Hypothesis strategy of one attacker action
(malformed, oversized, wrongly typed and binary payloads, unknown and
reserved event names, foreign and random room names, valid catch-up calls);
:func:`draw_actions` draws a seeded batch of them; :class:`Attacker` sends
them over a real ``AsyncClient`` and judges each answer
(:class:`SocketFuzzTally`). The victims are watched elsewhere (the fleet in
the history): whatever the attacker does, they must keep their connection
and receive nothing of anyone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import socketio
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

__all__ = [
    "ALLOWED_DROP_KINDS",
    "JSON_SAFE_MAX",
    "MAX_ID",
    "Attacker",
    "SocketAction",
    "SocketFuzzTally",
    "draw_actions",
    "json_values",
    "malformed_ids",
    "socket_actions",
    "try_connect",
]

logger = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
#: The largest integer every JSON parser reads exactly (IEEE 754 doubles).
JSON_SAFE_MAX = 2**53 - 1
#: The contract's events a client may send (each MUST be acked within 5 s).
CONTRACT_EVENTS = ("subscribe_project", "sync")
#: The id each contract event's payload carries.
_KEYS = {"subscribe_project": "projectId", "sync": "sinceAlertId"}
#: Names the Socket.IO protocol reserves: a server may treat an event so named
#: as a protocol error and close the connection (the Node server does).
RESERVED_EVENT_NAMES = (
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
)
#: Event names that are not the contract's but that a server might trip on:
#: the server's own events sent back to it, JavaScript object keys,
#: near-misses of the real names.
TRICKY_EVENT_NAMES = (
    "message",
    "error",
    "new_alert",
    "alerts_refresh",
    "workflow_updated",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "*",
    "subscribe_project ",
    "SUBSCRIBE_PROJECT",
    "sync\x00",
    "",
)
#: Action kinds after which the server may close the attacker's connection:
#: payloads beyond a transport's size limit, not valid JSON (NaN), or an event
#: under a reserved name are a protocol error rather than a handler's input.
ALLOWED_DROP_KINDS = frozenset({"oversized", "invalid_json", "reserved_event"})
ACK_TIMEOUT_S = 5.0

Expect = Literal["refused", "ok", "any"]


@dataclass(frozen=True)
class SocketAction:
    """One thing the attacker sends, and what the contract says must come back."""

    #: What it tests (counted per kind in the report).
    kind: str
    event: str
    #: The event's arguments (none, one payload, or several).
    args: tuple[Any, ...]
    #: Ask for an ack (and wait for it, at most 5 s).
    ack: bool
    #: ``refused``: an ack whose ``ok`` is not true; ``ok``: an ack with
    #: ``ok: true``; ``any``: any ack. Acks asked for MUST come within 5 s
    #: (contract 7.4), except after a protocol-level abuse (ALLOWED_DROP_KINDS).
    expect: Expect = "any"

    def describe(self, limit: int = 200) -> dict[str, Any]:
        text = repr(self.args)
        return {
            "kind": self.kind,
            "event": self.event,
            "args": text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)",
        }


# -- strategies ---------------------------------------------------------------


@functools.cache
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (finite numbers, short strings, small containers).

    Cached: building (and validating) a recursive strategy is most of the cost
    of drawing from it."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def malformed_ids(*, allow_zero: bool, too_large: bool = True) -> st.SearchStrategy[Any]:
    """Values that are not a contract id (positive, or with ``allow_zero``
    non-negative, 64-bit integer): wrong types, below range, booleans, and
    with ``too_large`` integers past 2**63 - 1.

    Floats have a fraction: ``1.0`` is the integer 1 to a JavaScript server.
    """
    lowest = 0 if allow_zero else 1
    return st.one_of(
        st.integers(max_value=lowest - 1),
        st.integers(min_value=MAX_ID + 1, max_value=2**80) if too_large else st.nothing(),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15).filter(
            lambda f: not f.is_integer()
        ),
        st.text(max_size=20),
        st.integers(min_value=1, max_value=10**6).map(str),  # "12": a number as a string
        st.lists(st.integers(min_value=1, max_value=100), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    )


def _malformed_payload(key: str, *, allow_zero: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    """Arguments of a contract event that the server must refuse.

    ``sinceAlertId`` past 2**63 - 1 is left out: "alerts after it" is simply
    none, and a target answering ``ok`` with no alerts is right too."""
    not_an_object = json_values().filter(lambda v: not isinstance(v, dict))
    without_key = st.dictionaries(
        st.text(max_size=12).filter(lambda k: k != key), json_values(4), max_size=3
    )
    bad_value = st.builds(
        lambda v, extra: {**extra, key: v},
        malformed_ids(allow_zero=allow_zero, too_large=not allow_zero),
        st.dictionaries(st.text(max_size=8).filter(lambda k: k != key), json_values(3), max_size=2),
    )
    # The misspelt key: {"projectid": 12}.
    near_key = st.integers(min_value=1, max_value=MAX_ID).map(lambda v: {key.lower(): v})
    return st.one_of(
        st.just(()),  # no payload at all
        not_an_object.map(lambda v: (v,)),
        without_key.map(lambda v: (v,)),
        bad_value.map(lambda v: (v,)),
        near_key.map(lambda v: (v,)),
        st.binary(max_size=64).map(lambda b: (b,)),  # a binary attachment
    )


def _nested(depth: int, key: str) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return {key: value}


def socket_actions(
    own_projects: Sequence[int], foreign_projects: Sequence[int]
) -> st.SearchStrategy[SocketAction]:
    """One attacker action (see the module docstring for what each expects).

    ``own_projects``: the attacker's own (joining them must succeed, and the
    strategy never offers them as foreign); ``foreign_projects``: real
    projects of other users (joining them must be refused).
    """
    own = set(own_projects)
    if own & set(foreign_projects):
        raise ValueError("a project cannot be both the attacker's own and foreign")
    foreign_ids = st.integers(min_value=1, max_value=MAX_ID).filter(lambda p: p not in own)
    if foreign_projects:
        foreign_ids = st.sampled_from(list(foreign_projects)) | foreign_ids
    names = st.text(min_size=1, max_size=40).filter(lambda n: n not in CONTRACT_EVENTS)
    event_args = st.lists(json_values(6), max_size=3).map(tuple)
    actions: list[st.SearchStrategy[SocketAction]] = [
        _malformed_payload("projectId", allow_zero=False).map(
            lambda a: SocketAction("subscribe_malformed", "subscribe_project", a, True, "refused")
        ),
        foreign_ids.map(
            lambda p: SocketAction(
                "subscribe_foreign", "subscribe_project", ({"projectId": p},), True, "refused"
            )
        ),
        _malformed_payload("sinceAlertId", allow_zero=True).map(
            lambda a: SocketAction("sync_malformed", "sync", a, True, "refused")
        ),
        # Mostly from ids that exist, so that a leak would have something to show;
        # never past 2**53: RFC 8259 calls such numbers not interoperable (a
        # JavaScript server reads 2**63 - 2 as 2**63), so "must be accepted"
        # is not asked of them.
        st.one_of(
            st.just(0), st.integers(0, 10_000), st.integers(min_value=0, max_value=JSON_SAFE_MAX)
        ).map(lambda s: SocketAction("sync_valid", "sync", ({"sinceAlertId": s},), True, "ok")),
        st.tuples(names, event_args).map(
            lambda t: SocketAction("unknown_event", t[0], t[1], False, "any")
        ),
        st.tuples(st.sampled_from(RESERVED_EVENT_NAMES), event_args).map(
            lambda t: SocketAction("reserved_event", t[0], t[1], False, "any")
        ),
        st.tuples(st.sampled_from(TRICKY_EVENT_NAMES), event_args).map(
            lambda t: SocketAction("tricky_event", t[0], t[1], False, "any")
        ),
        st.tuples(
            st.sampled_from(CONTRACT_EVENTS), st.sampled_from((16, 64, 256)), st.booleans()
        ).map(
            lambda t: SocketAction(
                "oversized",
                t[0],
                (
                    {
                        "projectId" if t[0] == "subscribe_project" else "sinceAlertId": "x"
                        * 1024
                        * t[1]
                    },
                ),
                True,
                "refused",
            )
        ),
        st.tuples(st.sampled_from(CONTRACT_EVENTS), st.sampled_from((50, 150, 300))).map(
            lambda t: SocketAction(
                "deeply_nested",
                t[0],
                (_nested(t[1], _KEYS[t[0]]),),
                True,
                "refused",
            )
        ),
        st.sampled_from(CONTRACT_EVENTS).map(
            lambda e: SocketAction(
                "invalid_json",
                e,
                ({_KEYS[e]: math.nan},),
                False,
                "any",
            )
        ),
        # A valid subscription followed by junk arguments: the extra ones are ignored.
        st.tuples(st.sampled_from(list(own_projects) or [1]), event_args).map(
            lambda t: SocketAction(
                "extra_arguments", "subscribe_project", ({"projectId": t[0]}, *t[1]), False, "any"
            )
        ),
    ]
    return st.one_of(actions)


def draw_actions(
    strategy: st.SearchStrategy[SocketAction], count: int, seed_value: int
) -> list[SocketAction]:
    """``count`` actions drawn from ``strategy`` by Hypothesis, seeded
    (the same seed gives the same actions). Blocking: generation only, no I/O."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    drawn: list[SocketAction] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @seed(seed_value)
    @given(action=strategy)
    def collect(action: SocketAction) -> None:
        if len(drawn) < count:
            drawn.append(action)

    collect()
    return drawn


# -- the attacker -------------------------------------------------------------


@dataclass
class SocketFuzzTally:
    """What the attacker sent and what it got back."""

    sent: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    #: Acks the contract requires that did not come within 5 s.
    missing_acks: Counter[str] = field(default_factory=Counter)
    #: Acks that said ``ok: true`` where the contract says refuse, outside
    #: authorization (a malformed payload accepted).
    accepted_malformed: list[dict[str, Any]] = field(default_factory=list)
    #: Joins of a room of a project the attacker is not a member of.
    foreign_joins: list[dict[str, Any]] = field(default_factory=list)
    #: ``sync`` answers holding an alert of another user.
    sync_leaks: list[dict[str, Any]] = field(default_factory=list)
    #: Contract calls with a valid payload that were refused.
    valid_refused: list[dict[str, Any]] = field(default_factory=list)
    #: Connections the server closed, by the kind of the action before.
    drops: Counter[str] = field(default_factory=Counter)
    drop_examples: list[dict[str, Any]] = field(default_factory=list)
    missing_ack_examples: list[dict[str, Any]] = field(default_factory=list)
    #: Server events the attacker received (by name).
    received: Counter[str] = field(default_factory=Counter)
    #: Connection attempts with bad credentials, and those the server accepted.
    bad_connects: Counter[str] = field(default_factory=Counter)
    bad_connects_accepted: list[str] = field(default_factory=list)
    reconnect_failures: int = 0
    #: Actions the client library itself could not encode (never sent).
    unsendable: int = 0
    #: The attacker could not connect again after a drop (its valid token
    #: refused, or the server gone): the rest of the actions were not sent.
    gave_up: bool = False

    def forbidden_drops(self) -> int:
        return sum(n for kind, n in self.drops.items() if kind not in ALLOWED_DROP_KINDS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_sent_by_kind": dict(sorted(self.sent.items())),
            "events_sent": sum(self.sent.values()),
            "acked_by_kind": dict(sorted(self.acked.items())),
            "missing_acks_by_kind": dict(sorted(self.missing_acks.items())),
            "dropped_after_kind": dict(sorted(self.drops.items())),
            "received_events": dict(sorted(self.received.items())),
            "bad_connects_by_kind": dict(sorted(self.bad_connects.items())),
            "bad_connects_accepted": list(self.bad_connects_accepted),
            "foreign_joins": self.foreign_joins[:10],
            "sync_leaks": self.sync_leaks[:10],
            "accepted_malformed": self.accepted_malformed[:10],
            "valid_refused": self.valid_refused[:10],
            "drop_examples": self.drop_examples[:10],
            "missing_ack_examples": self.missing_ack_examples[:10],
            "reconnect_failures": self.reconnect_failures,
            "unsendable": self.unsendable,
            "gave_up": self.gave_up,
        }


def _as_id(value: Any) -> int | None:
    """The integer a lenient server could read in ``value`` (``12``, ``"12"``,
    ``12.0``): a malformed payload that names one of the attacker's own
    projects is a robustness fault, not a foreign join."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value.strip())
    return None


OnEvent = Callable[[int, str, dict[str, Any], str], None]
"""``(user_id, event, payload, via)``: a server event (or a ``sync`` alert) the attacker got."""


async def try_connect(url: str, auth: Any, *, timeout_s: float = ACK_TIMEOUT_S) -> bool:
    """Whether the server accepts a Socket.IO connection with ``auth``
    (disconnected again at once)."""
    client = socketio.AsyncClient(
        reconnection=False, logger=False, engineio_logger=False, handle_sigint=False
    )
    try:
        await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=timeout_s)
    except (socketio.exceptions.ConnectionError, OSError, TimeoutError):
        return False
    with contextlib.suppress(Exception):
        await client.disconnect()
    return True


class Attacker:
    """One authenticated attacker connection: sends actions, judges answers.

    ``member_of``: the projects it may join (its own). Every server event it
    receives, and every alert a ``sync`` returns, goes to ``on_event`` (so the
    history's ``no_leaks`` judges them too); a ``sync`` alert not assigned to
    the attacker is a leak here as well.
    """

    def __init__(
        self,
        url: str,
        token: str,
        user_id: int,
        *,
        member_of: Sequence[int],
        tally: SocketFuzzTally,
        on_event: OnEvent,
        reconnect_attempts: int = 5,
    ) -> None:
        self.url = url
        self.user_id = user_id
        self.member_of = frozenset(member_of)
        self._token = token
        self._tally = tally
        self._on_event = on_event
        self._reconnect_attempts = reconnect_attempts
        self._dropped = asyncio.Event()
        self._sio = self._new_client()
        self.disconnects = 0

    def _new_client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(
            reconnection=False, logger=False, engineio_logger=False, handle_sigint=False
        )
        for name in ("new_alert", "alerts_refresh", "workflow_updated"):
            sio.on(name, self._forwarder(name))

        async def on_disconnect(reason: object = None) -> None:
            # Only the current connection's drop counts: an old client's late
            # handler must not mark its successor as dropped.
            if sio is self._sio:
                self.disconnects += 1
                self._dropped.set()

        sio.on("disconnect", on_disconnect)
        return sio

    def _forwarder(self, name: str) -> Callable[[object], Awaitable[None]]:
        async def forward(data: object = None) -> None:
            self._tally.received[name] += 1
            self._on_event(self.user_id, name, data if isinstance(data, dict) else {}, "live")

        return forward

    @property
    def connected(self) -> bool:
        return bool(self._sio.connected)

    async def connect(self) -> None:
        self._dropped.clear()
        await self._sio.connect(
            self.url,
            auth={"token": self._token},
            transports=["websocket"],
            wait_timeout=ACK_TIMEOUT_S,
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._sio.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._sio.wait(), timeout=2.0)

    async def _ensure_connected(self) -> bool:
        if self._sio.connected:
            return True
        # After a drop (allowed or not), a fresh connection: a few attempts in a
        # row; a server that refuses them all has stopped serving valid users.
        for _attempt in range(self._reconnect_attempts):
            old, self._sio = self._sio, self._new_client()
            with contextlib.suppress(Exception):
                await old.disconnect()
            try:
                await self.connect()
                return True
            except (socketio.exceptions.ConnectionError, OSError, TimeoutError) as exc:
                logger.debug("attacker %d could not reconnect: %r", self.user_id, exc)
                self._tally.reconnect_failures += 1
        return False

    async def send(self, action: SocketAction) -> Any:
        """Send one action; judge and tally its answer; return the ack (or None)."""
        tally = self._tally
        if not await self._ensure_connected():
            tally.gave_up = True
            return None
        tally.sent[action.kind] += 1
        drops_before = self.disconnects
        data: Any = (
            None if not action.args else action.args[0] if len(action.args) == 1 else action.args
        )
        ack: Any = None
        answered = False
        try:
            if action.ack:
                answered, ack = await self._call(action.event, data)
            else:
                await self._sio.emit(action.event, data)
                # A cheap acked call behind it: packets are handled in order, so
                # a connection the action broke shows here, blamed on the action.
                pinged, _ = await self._call("sync", {"sinceAlertId": MAX_ID})
                if not pinged and self._sio.connected and not self._dropped.is_set():
                    # Connected, yet the server answers nothing any more.
                    tally.missing_acks[f"sync_after_{action.kind}"] += 1
                    if len(tally.missing_ack_examples) < 10:
                        tally.missing_ack_examples.append(action.describe())
        except socketio.exceptions.SocketIOError as exc:  # e.g. the connection went away
            logger.debug("attacker %d: %s failed: %r", self.user_id, action.kind, exc)
        except (RecursionError, TypeError, ValueError) as exc:
            # The client library could not encode it: nothing reached the server.
            logger.warning("attacker %d could not send %s: %r", self.user_id, action.kind, exc)
            tally.sent[action.kind] -= 1
            tally.unsendable += 1
            return None
        if answered:
            tally.acked[action.kind] += 1
            self._judge(action, ack)
        elif action.ack and action.kind not in ALLOWED_DROP_KINDS:
            tally.missing_acks[action.kind] += 1
            if len(tally.missing_ack_examples) < 10:
                tally.missing_ack_examples.append(action.describe())
        if self.disconnects > drops_before or not self._sio.connected:
            tally.drops[action.kind] += 1
            if len(tally.drop_examples) < 10:
                tally.drop_examples.append(action.describe())
        return ack

    async def _call(self, event: str, data: Any) -> tuple[bool, Any]:
        """Emit with an ack; wait for the ack, a drop of the connection, or
        5 s, whichever comes first. ``(answered, ack)``."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def on_ack(*args: Any) -> None:
            if not answer.done():
                answer.set_result(args[0] if len(args) == 1 else (args or None))

        if self._dropped.is_set() or not self._sio.connected:
            return False, None  # already gone: no ack can come
        await self._sio.emit(event, data, callback=on_ack)
        dropped = asyncio.ensure_future(self._dropped.wait())
        try:
            await asyncio.wait(
                {answer, dropped}, timeout=ACK_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            dropped.cancel()
        if answer.done():
            return True, answer.result()
        answer.cancel()
        return False, None

    def _judge(self, action: SocketAction, ack: Any) -> None:
        tally = self._tally
        ok = isinstance(ack, dict) and ack.get("ok") is True
        if action.event == "subscribe_project" and ok:
            payload = action.args[0] if action.args else None
            project = payload.get("projectId") if isinstance(payload, dict) else None
            if _as_id(project) not in self.member_of:
                tally.foreign_joins.append({**action.describe(), "ack": repr(ack)[:200]})
                return
        if action.expect == "refused" and ok:
            tally.accepted_malformed.append({**action.describe(), "ack": repr(ack)[:200]})
        elif action.expect == "ok" and not ok:
            tally.valid_refused.append({**action.describe(), "ack": repr(ack)[:200]})
        if action.event == "sync" and ok and isinstance(ack, dict):
            for alert in ack.get("alerts") or ():
                if not isinstance(alert, dict):
                    continue
                self._on_event(self.user_id, "new_alert", alert, "sync")
                owner = alert.get("assignedToId")
                if owner is not None and owner != self.user_id:
                    tally.sync_leaks.append({"alert": alert.get("id"), "assignedToId": owner})

    async def run(
        self,
        actions: Sequence[SocketAction],
        *,
        every: int = 0,
        between: Callable[[], Awaitable[object]] | None = None,
        budget_s: float = 120.0,
    ) -> int:
        """Send ``actions`` in order (at most ``budget_s``); every ``every``
        actions await ``between()`` (the victims' traffic). Returns how many
        were sent."""
        deadline = time.monotonic() + budget_s
        sent = 0
        for i, action in enumerate(actions):
            if time.monotonic() > deadline:
                break
            await self.send(action)
            if self._tally.gave_up:
                break
            sent += 1
            if between is not None and every and (i + 1) % every == 0:
                await between()
        return sent

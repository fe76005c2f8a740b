"""Per-client timelines rebuilt from ``Session`` events (shared by several checkers)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.history import Event, Id, Session

__all__ = ["ClientTimeline", "client_timelines", "same_id"]


def same_id(a: Id | None, b: Id | None) -> bool:
    """Ids compare by text, so ``7`` (from the database) equals ``"7"`` (from a JSON payload)."""
    return a is not None and b is not None and str(a) == str(b)


@dataclass
class ClientTimeline:
    """One client: who it is, when it was connected, which rooms it was in."""

    client: str
    user_id: Id
    connected_at: float | None = None
    closed_at: float | None = None
    outages: list[tuple[float, float | None]] = field(default_factory=list)
    """``(disconnected_at, reconnected_at or None)`` in order."""
    caught_up: list[float] = field(default_factory=list)
    rooms: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Project id (as text) -> ``[(subscribed_at, unsubscribed_at or inf)]``."""

    def entitled_at(self, t: float) -> bool:
        """Whether an alert committed at ``t`` is owed to this client."""
        if self.connected_at is None or self.connected_at > t:
            return False
        return self.closed_at is None or self.closed_at > t

    def outage_at(self, t: float) -> tuple[float, float | None] | None:
        """The outage covering ``t``, if the client was disconnected then."""
        for down, up in self.outages:
            if down <= t and (up is None or t < up):
                return down, up
        return None

    def subscribed_at(self, project_id: Id, t: float) -> bool:
        """Whether the client was in ``project_id``'s room at ``t``."""
        return any(a <= t < b for a, b in self.rooms.get(str(project_id), ()))


def client_timelines(events: Iterable[Event]) -> dict[str, ClientTimeline]:
    """Rebuild each client's timeline from its ``Session`` events. O(n)."""
    out: dict[str, ClientTimeline] = {}
    for e in events:
        if not isinstance(e, Session):
            continue
        tl = out.setdefault(e.process, ClientTimeline(e.process, e.user_id))
        if e.type == "connect":
            if tl.connected_at is None:
                tl.connected_at = e.mono_s
        elif e.type == "close":
            tl.closed_at = e.mono_s
            _leave_all(tl, e.mono_s)
        elif e.type == "disconnect":
            if not tl.outages or tl.outages[-1][1] is not None:
                tl.outages.append((e.mono_s, None))
        elif e.type == "reconnect":
            if tl.outages and tl.outages[-1][1] is None:
                tl.outages[-1] = (tl.outages[-1][0], e.mono_s)
            if tl.connected_at is None:
                tl.connected_at = e.mono_s
        elif e.type == "caught_up":
            tl.caught_up.append(e.mono_s)
        elif e.type == "subscribe" and e.project_id is not None:
            spans = tl.rooms.setdefault(str(e.project_id), [])
            if not spans or spans[-1][1] != math.inf:
                spans.append((e.mono_s, math.inf))
        elif e.type == "unsubscribe" and e.project_id is not None:
            spans = tl.rooms.get(str(e.project_id), [])
            if spans and spans[-1][1] == math.inf:
                spans[-1] = (spans[-1][0], e.mono_s)
    return out


def _leave_all(tl: ClientTimeline, t: float) -> None:
    for spans in tl.rooms.values():
        if spans and spans[-1][1] == math.inf:
            spans[-1] = (spans[-1][0], t)

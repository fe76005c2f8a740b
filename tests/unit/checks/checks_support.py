"""What the checker tests share: a hand-driven clock and a history on it."""

from __future__ import annotations

from harness.history import History


class Clock:
    """A hand-driven monotonic clock: every test event happens at a chosen time."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def at(self, t: float) -> Clock:
        self.t = t
        return self


def new_history() -> tuple[History, Clock]:
    clock = Clock()
    return History(mono_clock=clock, wall_clock=lambda: 0.0), clock


def fleet_history(clients: int) -> History:
    """A history the size of a big fleet: ``clients`` users with a client
    each, subscribed to their own project.

    Each user gets one alert committed while connected (received live) and
    one committed while its client was away (received by the reconnect's
    sync, then caught up): ``2 * clients`` commits, every one delivered."""
    h, clock = new_history()
    for u in range(clients):
        clock.at(u * 1e-4)
        h.session(f"c{u}", "connect", user_id=u)
        h.session(f"c{u}", "subscribe", user_id=u, project_id=u)
    for u in range(clients):
        base = 1.0 + u * 1e-3
        clock.at(base)
        h.commit(alert_id=2 * u, project_id=u, assignee_id=u)
        clock.at(base + 1e-4)
        h.receive(f"c{u}", user_id=u, event="new_alert", alert_id=2 * u, project_id=u)
        clock.at(base + 2e-4)
        h.session(f"c{u}", "disconnect", user_id=u)
        clock.at(base + 3e-4)
        h.commit(alert_id=2 * u + 1, project_id=u, assignee_id=u)
        clock.at(base + 4e-4)
        h.session(f"c{u}", "reconnect", user_id=u)
        clock.at(base + 5e-4)
        h.receive(
            f"c{u}", user_id=u, event="new_alert", alert_id=2 * u + 1, project_id=u, via="sync"
        )
        clock.at(base + 6e-4)
        h.session(f"c{u}", "caught_up", user_id=u)
    return h

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

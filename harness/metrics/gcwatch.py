"""The harness's own garbage-collector pauses during a run, and fewer of them.

A collection stops the harness's event loop: every request in flight and
every event arriving then is timed late by the pause, so a long one shows as
a latency tail that is the harness's, not the target's. ``GcWatch`` times
each collection of this process (``gc.callbacks``); the runner stores the
figures beside the app's (``extra.harness_gc_pauses``), so a report's tail
can be told apart.

With ``tune=True`` it also makes full collections rare while the scenario
runs, as the reference app does: what exists at the start is frozen out of
the collector, and a full collection waits for 1,000 middle ones instead of
10. The history only grows during a run (every event is kept until the
checkers have read it), so each full collection walked all of it: at 10,000
projects and 100 completions/s, 16 full collections stopped the harness for
8.4 s in all, the longest for 1.3 s, and the generation latency's tail was
those pauses (the generator's loop lagged 410-518 ms; tuned: 127-129 ms).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TUNED_THRESHOLDS", "GcWatch", "freeze", "release"]

#: ``gc.set_threshold`` while a scenario runs (Python's default: 700, 10, 10):
#: a full collection after 1,000 middle ones. Young collections stay at 700
#: new objects: nearly every object the harness makes during a run is a
#: history event it keeps, so a larger young generation only makes each
#: pause longer (at 10,000 projects, with 20,000: young pauses up to 177 ms,
#: middle ones up to 382 ms; with 700: 70 and 130 ms).
TUNED_THRESHOLDS = (700, 10, 1000)


_holders = 0


def freeze() -> None:
    """Collect, then move every object that exists out of the collector's
    reach (:func:`gc.freeze`) until the last holder calls :func:`release`.

    Several parts freeze for a while (a subscriber fleet once connected,
    :class:`GcWatch` while a scenario runs) and their spans overlap in any
    order; :func:`gc.unfreeze` gives everything back at once, so a bare call
    from the first to finish would undo the others' too."""
    global _holders
    gc.collect()
    gc.freeze()
    _holders += 1


def release() -> None:
    """One :func:`freeze` is over; the last gives the frozen objects back."""
    global _holders
    if _holders == 0:
        return
    _holders -= 1
    if _holders == 0:
        gc.unfreeze()


@dataclass
class _Generation:
    collections: int = 0
    pause_s_total: float = 0.0
    longest_s: float = 0.0


@dataclass
class GcWatch:
    """Times every collection between ``start()`` and ``stop()``."""

    #: Freeze what exists and raise the thresholds between start() and stop().
    tune: bool = False
    generations: dict[int, _Generation] = field(default_factory=dict)
    _started: list[float] = field(default_factory=list)
    _thresholds: tuple[int, int, int] | None = None

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started.append(time.perf_counter())
        elif self._started:
            pause = time.perf_counter() - self._started.pop()
            entry = self.generations.setdefault(int(info.get("generation", -1)), _Generation())
            entry.collections += 1
            entry.pause_s_total += pause
            entry.longest_s = max(entry.longest_s, pause)

    def start(self) -> None:
        if self.tune and self._thresholds is None:
            self._thresholds = gc.get_threshold()
            freeze()
            gc.set_threshold(*TUNED_THRESHOLDS)
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def stop(self) -> None:
        """Stop timing; with ``tune``, give the collector back what was frozen."""
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        self._started.clear()
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
            release()

    def to_dict(self) -> dict[str, dict[str, float | int]]:
        """Per generation: collections, total and longest pause (ms)."""
        return {
            str(g): {
                "collections": e.collections,
                "pause_ms_total": round(e.pause_s_total * 1000, 1),
                "longest_ms": round(e.longest_s * 1000, 1),
            }
            for g, e in sorted(self.generations.items())
        }

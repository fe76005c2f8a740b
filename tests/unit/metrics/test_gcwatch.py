"""The harness's own collections are timed between start() and stop() only."""

from __future__ import annotations

import gc

from harness.metrics import gcwatch
from harness.metrics.gcwatch import TUNED_THRESHOLDS, GcWatch


def test_collections_while_watching_are_counted_per_generation() -> None:
    watch = GcWatch()
    watch.start()
    try:
        gc.collect(1)
        gc.collect(2)
    finally:
        watch.stop()
    figures = watch.to_dict()
    assert figures["1"]["collections"] >= 1
    assert figures["2"]["collections"] >= 1
    assert figures["2"]["longest_ms"] <= figures["2"]["pause_ms_total"]
    before = figures["2"]["collections"]
    gc.collect(2)
    assert watch.to_dict()["2"]["collections"] == before
    assert watch._callback not in gc.callbacks


def test_tuning_freezes_and_raises_thresholds_only_while_watching() -> None:
    before = gc.get_threshold()
    watch = GcWatch(tune=True)
    watch.start()
    try:
        assert gc.get_threshold() == TUNED_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        watch.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_overlapping_freezes_end_with_the_last_holder_in_either_order() -> None:
    # The runner's GcWatch and a fleet freeze over spans that overlap: a fleet
    # a scenario stops mid-run must not give back what GcWatch froze.
    for first_out in ("fleet", "watch"):
        watch = GcWatch(tune=True)
        watch.start()
        gcwatch.freeze()  # the fleet, once connected
        if first_out == "fleet":
            gcwatch.release()
            assert gc.get_freeze_count() > 0, first_out
            watch.stop()
        else:
            watch.stop()
            assert gc.get_freeze_count() > 0, first_out
            gcwatch.release()
        assert gc.get_freeze_count() == 0, first_out
    gcwatch.release()  # one release too many is harmless
    assert gc.get_freeze_count() == 0

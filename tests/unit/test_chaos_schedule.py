"""The chaos nemesis: every fault once, seeded, some overlapping."""

from __future__ import annotations

import itertools

from scenarios.chaos import FAULTS, nemesis_schedule


def test_the_schedule_has_every_fault_once_in_a_seeded_order() -> None:
    steps = nemesis_schedule(7)
    assert sorted(s.fault for s in steps) == sorted(FAULTS)
    assert steps == nemesis_schedule(7)
    assert [s.fault for s in steps] != [s.fault for s in nemesis_schedule(8)]


def test_some_faults_overlap_and_the_rest_are_apart() -> None:
    steps = nemesis_schedule(3, gap_s=1.0)
    overlapping = [
        (a.fault, b.fault) for a, b in itertools.pairwise(steps) if b.at_s < a.at_s + a.for_s
    ]
    assert len(overlapping) >= 2
    assert all(s.at_s >= 0 for s in steps)
    # Wider gaps stretch the schedule, never shrink it.
    assert nemesis_schedule(3, gap_s=3.0)[-1].at_s > steps[-1].at_s

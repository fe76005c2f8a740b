"""LatencyRecorder: percentiles, corrected recording, clipping, merge and encoding."""

from __future__ import annotations

import random

import pytest

from harness.metrics import Counters, LatencyRecorder, LatencySummary


def test_percentiles_mean_max_count_within_three_significant_digits() -> None:
    r = LatencyRecorder("api")
    r.record_many(float(v) for v in range(1, 1001))  # 1..1000 ms
    assert r.count == 1000
    assert r.percentile(50) == pytest.approx(500, rel=1e-3)
    assert r.percentile(99) == pytest.approx(990, rel=1e-3)
    assert r.max_ms == pytest.approx(1000, rel=1e-3)
    assert r.min_ms == pytest.approx(1, rel=1e-3)
    assert r.mean_ms == pytest.approx(500.5, rel=1e-3)
    assert set(r.percentiles([50, 99])) == {50, 99}


def test_sub_millisecond_values_keep_microsecond_resolution() -> None:
    r = LatencyRecorder()
    r.record(0.25)
    assert r.percentile(50) == pytest.approx(0.25, rel=1e-3)
    assert r.clipped == 0


def test_an_empty_recorder_answers_none_not_zero() -> None:
    r = LatencyRecorder()
    summary = r.summary()
    assert summary.count == 0
    assert summary.p99_ms is None
    assert summary.max_ms is None
    assert r.percentiles() == {}
    assert r.distribution() == []


def test_out_of_range_values_are_clamped_and_counted() -> None:
    r = LatencyRecorder()
    r.record(120_000.0)  # 2 minutes: over the 60 s ceiling
    r.record(-1.0)  # a clock went backwards
    r.record(0.0)  # under the resolution: recorded as 1 µs, not clipped
    assert r.clipped == 2
    assert r.min_ms == pytest.approx(0.001)
    assert r.max_ms == pytest.approx(60_000, rel=1e-3)
    with pytest.raises(ValueError, match="finite"):
        r.record(float("nan"))
    with pytest.raises(ValueError, match="percentile"):
        r.percentile(101)


def test_corrected_recording_adds_the_samples_a_stall_hid() -> None:
    raw, corrected = LatencyRecorder(), LatencyRecorder()
    for _ in range(99):
        raw.record(1.0)
        corrected.record_corrected(1.0, expected_interval_ms=10.0)
    raw.record(1000.0)
    corrected.record_corrected(1000.0, expected_interval_ms=10.0)
    # The 1 s stall hid 99 samples at 990, 980, ... 10 ms.
    assert corrected.count == raw.count + 99
    assert raw.percentile(90) == pytest.approx(1.0, rel=1e-3)
    assert corrected.percentile(90) > 500
    with pytest.raises(ValueError, match="expected_interval_ms"):
        corrected.record_corrected(1.0, expected_interval_ms=0)


def test_merge_adds_counts_and_clipped() -> None:
    a, b = LatencyRecorder(), LatencyRecorder()
    a.record_many([1.0, 2.0])
    b.record_many([3.0, 100_000.0])
    a.merge(b)
    assert a.count == 4
    assert a.clipped == 1
    assert a.max_ms == pytest.approx(60_000, rel=1e-3)


def test_encoding_round_trips_through_hdrhistogram_base64() -> None:
    rng = random.Random(7)
    r = LatencyRecorder()
    r.record_many(rng.expovariate(1 / 20) for _ in range(5000))
    encoded = r.encode()
    assert encoded.startswith("HISTF")
    back = LatencyRecorder.decode(encoded, name="x", clipped=3)
    assert back.summary() == LatencySummary.from_dict({**r.summary().to_dict(), "clipped": 3})
    assert back.count == 5000
    with pytest.raises(ValueError, match="not an encoded HdrHistogram"):
        LatencyRecorder.decode("garbage")


def test_distribution_is_monotonic_for_charts() -> None:
    r = LatencyRecorder()
    r.record_many(float(v) for v in range(1, 101))
    points = r.distribution()
    assert points[0][0] == 0.0
    assert points[-1][0] == 100.0
    assert [ms for _, ms in points] == sorted(ms for _, ms in points)


def test_counters_count_merge_and_read_missing_as_zero() -> None:
    c = Counters({"sent": 2})
    c.incr("sent")
    c.incr("errors.timeout", 3)
    assert c.get("never") == 0
    assert dict(c) == {"errors.timeout": 3, "sent": 3}
    c.merge(Counters({"sent": 10}))
    assert c["sent"] == 13
    with pytest.raises(KeyError):
        c["never"]
    with pytest.raises(ValueError, match="empty"):
        c.incr("")

"""Slopes of sampled series and the soak's verdict per series."""

from __future__ import annotations

import random

import pytest

from harness.metrics.growth import GrowthSample, judge_growth, slope_per_min


def test_the_slope_of_a_steady_rise_is_its_rate_per_minute() -> None:
    points = [(float(t), 100.0 + 0.5 * t) for t in range(30)]  # 0.5 per second
    assert slope_per_min(points) == pytest.approx(30.0)
    assert slope_per_min(points[:2]) is None
    assert slope_per_min([(1.0, 1.0)] * 5) is None  # no spread in time


def test_noise_around_a_level_is_flat_and_a_leak_is_not() -> None:
    rng = random.Random(3)
    flat = [
        GrowthSample(float(t), {"app_rss_mb": 100 + rng.uniform(-2, 2), "app_fds": 200.0})
        for t in range(60)
    ]
    judged = judge_growth(flat, start_s=15.0, bounds={"app_rss_mb": 16.0, "app_fds": 10.0})
    assert judged["app_rss_mb"]["held"] is True
    assert judged["app_fds"]["slope_per_min"] == 0.0
    leak = [GrowthSample(float(t), {"app_rss_mb": 100 + 1.3 * t}) for t in range(60)]  # 78/min
    judged = judge_growth(leak, start_s=15.0, bounds={"app_rss_mb": 16.0, "redis_used_mb": 8.0})
    assert judged["app_rss_mb"]["held"] is False
    assert judged["redis_used_mb"]["held"] is None  # never sampled: unmeasured, not passed


def test_the_warm_up_is_left_out_of_the_slope() -> None:
    # Fast growth while warming up, flat after: flat.
    samples = [GrowthSample(float(t), {"app_rss_mb": min(t, 10) * 10.0}) for t in range(40)]
    judged = judge_growth(samples, start_s=10.0, bounds={"app_rss_mb": 1.0})
    assert judged["app_rss_mb"]["held"] is True
    assert judged["app_rss_mb"]["first"] == 0.0

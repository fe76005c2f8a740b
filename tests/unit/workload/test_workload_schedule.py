"""Schedules: determinism, shapes and argument validation."""

from __future__ import annotations

import pytest

from harness.workload import InvalidScheduleError, constant_rate, poisson, ramp


def test_constant_rate_is_evenly_spaced_and_exact() -> None:
    s = constant_rate(100, 1.0)
    assert len(s) == 100
    assert s.offsets_s[:3] == (0.0, 0.01, 0.02)
    assert s.planned_rate_per_s == pytest.approx(100)
    assert len(constant_rate(2.5, 1.0)) == 3  # 0, 0.4, 0.8
    assert all(t < 1.0 for t in constant_rate(3, 1.0).offsets_s)


def test_poisson_same_seed_same_schedule_different_seed_different() -> None:
    a, b, c = poisson(200, 5, seed=1), poisson(200, 5, seed=1), poisson(200, 5, seed=2)
    assert a.offsets_s == b.offsets_s
    assert a.offsets_s != c.offsets_s
    assert list(a.offsets_s) == sorted(a.offsets_s)
    assert all(0 < t < 5 for t in a.offsets_s)
    # ~1000 arrivals expected; a seeded run is far inside 5 sigma.
    assert 850 < len(a) < 1150


def test_per_operation_random_streams_are_seeded() -> None:
    s1, s2, other = (
        constant_rate(10, 1, seed=3),
        constant_rate(10, 1, seed=3),
        constant_rate(10, 1, seed=4),
    )
    draws = [s1.rng(i).randrange(1000) for i in range(10)]
    assert draws == [s2.rng(i).randrange(1000) for i in range(10)]
    assert draws != [other.rng(i).randrange(1000) for i in range(10)]
    assert s1.rng(0).random() != s1.rng(1).random()


def test_ramp_holds_the_integral_of_its_rate_and_accelerates() -> None:
    up = ramp(0, 100, 10)
    assert len(up) == 500  # (0 + 100) / 2 * 10
    gaps = [b - a for a, b in zip(up.offsets_s, up.offsets_s[1:], strict=False)]
    assert gaps[0] > gaps[-1]  # arrivals get denser
    down = ramp(100, 0, 10)
    assert len(down) == 500
    assert down.offsets_s[1] == pytest.approx(0.01, rel=1e-2)
    flat = ramp(50, 50, 2)
    assert flat.offsets_s == constant_rate(50, 2).offsets_s
    assert ramp(0, 100, 10).offsets_s == up.offsets_s


def test_stages_shift_the_second_schedule() -> None:
    s = ramp(0, 10, 2).then(constant_rate(10, 1))
    assert s.kind == "stages"
    assert len(s) == 10 + 10
    assert s.offsets_s[10] == pytest.approx(2.0)
    assert s.duration_s == 3.0
    assert [stage["kind"] for stage in s.describe()["stages"]] == ["ramp", "constant"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: constant_rate(0, 1), "rate_per_s must be > 0, got 0"),
        (lambda: constant_rate(10, -1), "duration_s must be > 0"),
        (lambda: constant_rate(float("inf"), 1), "rate_per_s must be a finite number"),
        (lambda: constant_rate("10", 1), "rate_per_s must be a finite number"),
        (lambda: ramp(0, 0, 1), "must not both be 0"),
        (lambda: ramp(-1, 5, 1), "start_rate_per_s must be >= 0"),
        (lambda: poisson(10, 1, seed=1.5), "seed must be an integer"),
        (lambda: constant_rate(1e9, 3600), "more than 10000000"),
    ],
)
def test_bad_arguments_name_the_argument(make: object, message: str) -> None:
    with pytest.raises(InvalidScheduleError, match=message):
        make()  # type: ignore[operator]

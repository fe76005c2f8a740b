"""``retry_schedule`` on hand-written job histories (attempt times in epoch ms)."""

from __future__ import annotations

import random

import pytest

from harness.checks import retry_schedule
from harness.history import History

BASE_S = 0.05


def job(
    h: History, times_s: list[tuple[float, float]], *, ok: bool = True, error: str = ""
) -> None:
    op = h.invoke("q1", "complete_queued", {"project_id": 1, "line_item_id": 1})
    value = {
        "attempts": len(times_s),
        "result": {"outcome": "completed"},
        "attempt_times_ms": [[a * 1000, b * 1000] for a, b in times_s],
    }
    if ok:
        h.ok(op, value)
    else:
        h.fail(op, error or "job failed: ConnectionRefusedError", value)


def backed_off(
    rng: random.Random, attempts: int, *, scale: float = 1.0
) -> list[tuple[float, float]]:
    """Attempts of 10 ms each, with full-jitter delays (times ``scale``)."""
    t, out = 0.0, []
    for k in range(1, attempts + 1):
        out.append((t, t + 0.01))
        t += 0.01 + scale * rng.uniform(0, BASE_S * 2 ** (k - 1))
    return out


def test_full_jitter_delays_within_their_caps_pass() -> None:
    rng = random.Random(7)
    h = History()
    for _ in range(10):
        job(h, backed_off(rng, 10))
    result = retry_schedule(h, base_s=BASE_S, max_attempts=16)
    assert result.valid is True, result.counterexamples
    assert result.counts["jobs_retried"] == 10
    assert result.counts["late"] == 0


def test_retries_without_backoff_are_caught() -> None:
    rng = random.Random(7)
    h = History()
    for _ in range(4):
        job(h, backed_off(rng, 16, scale=0.001), ok=False)
    result = retry_schedule(h, base_s=BASE_S, max_attempts=16)
    assert result.valid is False
    assert {c["kind"] for c in result.counterexamples} == {"no_backoff"}


def test_late_retries_are_counted_and_fail_only_when_asked() -> None:
    h = History()
    job(h, [(0.0, 0.01), (2.0, 2.01)])  # a 2 s wait where the cap is 50 ms
    assert retry_schedule(h, base_s=BASE_S).counts["late"] == 1
    assert retry_schedule(h, base_s=BASE_S).valid is True
    strict = retry_schedule(h, base_s=BASE_S, fail_on_late=True)
    assert strict.valid is False
    assert strict.counterexamples[0]["kind"] == "late"


def test_a_fixed_schedule_catches_early_retries() -> None:
    h = History()
    job(h, [(0.0, 0.01), (0.011, 0.02)])  # no wait where 50 ms were due
    result = retry_schedule(h, base_s=BASE_S, jitter="none", tolerance_s=0.01)
    assert result.valid is False
    assert result.counterexamples[0]["kind"] == "too_early"


def test_dead_letters_before_the_last_attempt_and_extra_attempts_are_caught() -> None:
    rng = random.Random(1)
    h = History()
    job(h, backed_off(rng, 3), ok=False)  # gave up after 3 of 16
    job(
        h, backed_off(rng, 2), ok=False, error="job failed: 403 not a member"
    )  # rejections are final
    job(h, backed_off(rng, 17))
    result = retry_schedule(h, base_s=BASE_S, max_attempts=16)
    assert result.valid is False
    assert sorted(c["kind"] for c in result.counterexamples) == [
        "gave_up_early",
        "too_many_attempts",
    ]


def test_without_attempt_times_the_verdict_is_unknown_and_bad_options_are_refused() -> None:
    h = History()
    op = h.invoke("q1", "complete_queued", {"project_id": 1, "line_item_id": 1})
    h.ok(op, {"attempts": 2, "result": {"outcome": "completed"}})
    result = retry_schedule(h, base_s=BASE_S)
    assert result.valid == "unknown"
    assert "attemptTimesMs" in result.summary
    with pytest.raises(ValueError, match="jitter"):
        retry_schedule(h, base_s=BASE_S, jitter="half")

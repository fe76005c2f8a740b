"""``retry_schedule``: queued work retries on its backoff schedule, and ends once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Event, Op

__all__ = ["retry_schedule"]

NAME = "retry_schedule"
#: With full jitter each delay is uniform in [0, cap]: the mean of delay/cap
#: is 0.5. Below this mean over at least MIN_SAMPLES delays, the retries were
#: not backed off (the chance of it under full jitter is below 1e-12).
NO_BACKOFF_MEAN = 0.1
MIN_SAMPLES = 20
#: Delays with a smaller cap are left out of the backoff test: there a
#: worker's own pace (tens of ms per attempt) is as long as the cap.
MIN_CAP_S = 0.4


def retry_schedule(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    base_s: float,
    factor: float = 2.0,
    max_attempts: int | None = None,
    jitter: str = "full",
    tolerance_s: float = 0.25,
    tolerance_ratio: float = 0.25,
    fail_on_late: bool = False,
    ops: Sequence[str] = ("complete_queued",),
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies the gaps between a job's attempts and how each job ended. O(jobs x attempts).

    Jobs are the operations in ``ops``; their completions carry ``attempts``
    and ``attempt_times_ms`` (each attempt's ``[start, end]`` in epoch ms:
    the contract's ``attemptTimesMs``). The delay before attempt ``k + 1``
    is measured from the end of attempt ``k`` to the start of the next, and
    its cap is ``base_s * factor ** (k - 1)``:

    - ``late``: a delay above its cap by more than ``tolerance_ratio`` of it
      plus ``tolerance_s``: counted, and a violation only with
      ``fail_on_late`` (a busy worker starts retries late, which is a
      matter of capacity, not of the schedule);
    - with ``jitter="none"``, ``too_early``: a delay below its cap by as much;
    - with ``jitter="full"`` (uniform in [0, cap], SAQ's), ``no_backoff``: the
      mean of delay / cap over at least 20 delays whose cap is 0.4 s or more
      below 0.1 (retries fired far faster than the schedule: the expected
      mean is 0.5, and the chance of so low a mean is below 1e-12);
    - ``gave_up_early``: a dead-lettered job (``fail``) with fewer than
      ``max_attempts`` attempts that was not a rejection (403/404);
      ``too_many_attempts``: more than ``max_attempts``;
    - ``times_missing``: fewer attempt times than attempts.

    Each job ends exactly once (the history pairs every completion with its
    invoke); whether a completed job applied once is ``linearizable``'s.
    Unknown when no job reported its attempt times.
    """
    if jitter not in ("full", "none"):
        raise ValueError(f"jitter must be 'full' or 'none', got {jitter!r}")
    if not base_s > 0 or not factor >= 1:
        raise ValueError(f"base_s must be > 0 and factor >= 1, got {base_s}, {factor}")
    violations: list[dict[str, Any]] = []
    ratios: list[float] = []
    long_ratios: list[float] = []
    jobs = timed = retried = late = 0
    for op in history:
        if not isinstance(op, Op) or op.f not in ops or op.type not in ("ok", "fail"):
            continue
        jobs += 1
        value = op.value if isinstance(op.value, dict) else {}
        attempts = value.get("attempts")
        times = value.get("attempt_times_ms")
        base = {"op_id": op.op_id, "attempts": attempts}
        if isinstance(attempts, int) and max_attempts is not None:
            rejected = any(code in (op.error or "") for code in ("403", "404", "rejected"))
            if attempts > max_attempts:
                violations.append({**base, "kind": "too_many_attempts", "max": max_attempts})
            elif op.type == "fail" and attempts < max_attempts and not rejected:
                violations.append(
                    {**base, "kind": "gave_up_early", "max": max_attempts, "error": op.error}
                )
        if not isinstance(times, list) or not times:
            continue
        timed += 1
        if isinstance(attempts, int) and len(times) < attempts:
            violations.append({**base, "kind": "times_missing", "times": len(times)})
        retried += len(times) > 1
        for k in range(1, len(times)):
            delay = (float(times[k][0]) - float(times[k - 1][1])) / 1000.0
            cap = base_s * factor ** (k - 1)
            ratios.append(delay / cap)
            if cap >= MIN_CAP_S:
                long_ratios.append(delay / cap)
            slack = cap * tolerance_ratio + tolerance_s
            where = {**base, "before_attempt": k + 1, "delay_s": round(delay, 4), "cap_s": cap}
            if delay > cap + slack:
                late += 1
                if fail_on_late:
                    violations.append({**where, "kind": "late"})
            elif jitter == "none" and delay < cap - slack:
                violations.append({**where, "kind": "too_early"})
    if timed == 0:
        return CheckResult.unknown(
            NAME,
            f"{jobs} job(s), none with attempt times (the target reports no attemptTimesMs)"
            if jobs
            else "no queued job ended",
        )
    mean = sum(ratios) / len(ratios) if ratios else 0.0
    long_mean = sum(long_ratios) / len(long_ratios) if long_ratios else 0.0
    if jitter == "full" and len(long_ratios) >= MIN_SAMPLES and long_mean < NO_BACKOFF_MEAN:
        violations.append(
            {
                "kind": "no_backoff",
                "delays": len(long_ratios),
                "mean_delay_over_cap": round(long_mean, 4),
                "why": f"full jitter gives a mean of 0.5; below {NO_BACKOFF_MEAN} the retries"
                " were not backed off",
            }
        )
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{len(violations)} departure(s) from the retry schedule"
            if violations
            else f"{len(ratios)} retry delay(s) of {retried} job(s) backed off"
            f" (base {base_s:g} s x {factor:g}^k, {jitter} jitter; mean delay/cap"
            f" {long_mean:.2f} where the cap >= {MIN_CAP_S:g} s); {late} started late"
        ),
        counts={
            "jobs": jobs,
            "jobs_with_times": timed,
            "jobs_retried": retried,
            "delays": len(ratios),
            "late": late,
            "delays_cap_over_0_4_s": len(long_ratios),
            "mean_delay_over_cap": round(mean, 4),
            "mean_delay_over_cap_0_4_s": round(long_mean, 4),
            "max_delay_over_cap": round(max(ratios, default=0.0), 4),
        },
        max_counterexamples=max_counterexamples,
    )

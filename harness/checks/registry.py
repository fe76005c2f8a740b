"""Checkers by name, and running several on one history (Jepsen's ``compose``).

results = run_checks(["no_duplicates", "delivery"], history, final)
results = run_checks({"delivery": {"late_after_ms": 500}, "no_leaks": {}}, history, final)
verdict = merge_validity(r.valid for r in results)
measurements = collect_measurements(results)   # for harness.slo.evaluate
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from harness.checks.catch_up import catch_up
from harness.checks.delivery import delivery
from harness.checks.duplicates import no_duplicates
from harness.checks.exactly_once import exactly_once
from harness.checks.latency import delivery_latency, generation_latency, reconnection
from harness.checks.leaks import no_leaks
from harness.checks.monotonic import monotonic_reads
from harness.checks.phantoms import no_phantoms
from harness.checks.queries import queries_per_request
from harness.checks.result import CheckResult, FinalState
from harness.checks.retries import retry_schedule
from harness.checks.workflow import linearizable, right_alert
from harness.errors import ConfigError
from harness.history import Event

__all__ = ["CHECKERS", "Checker", "collect_measurements", "register", "run_checks"]

logger = logging.getLogger(__name__)


class Checker(Protocol):
    """A pure function of the history (and final reads) to a verdict; options are keywords."""

    def __call__(
        self, history: Iterable[Event], final: FinalState | None = None, /, **options: Any
    ) -> CheckResult: ...


CHECKERS: dict[str, Callable[..., CheckResult]] = {
    "no_duplicates": no_duplicates,
    "delivery": delivery,
    "no_phantoms": no_phantoms,
    "no_leaks": no_leaks,
    "queries_per_request": queries_per_request,
    "generation_latency": generation_latency,
    "delivery_latency": delivery_latency,
    "reconnection": reconnection,
    "linearizable": linearizable,
    "right_alert": right_alert,
    "exactly_once": exactly_once,
    "monotonic_reads": monotonic_reads,
    "catch_up": catch_up,
    "retry_schedule": retry_schedule,
}
"""The checkers by name. Each is ``(history, final=None, **options) -> CheckResult``."""


def register(name: str) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Decorator: make a checker available to :func:`run_checks` under ``name``."""

    def add(checker: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        if name in CHECKERS and CHECKERS[name] is not checker:
            raise ValueError(f"a checker named {name!r} is already registered")
        CHECKERS[name] = checker
        return checker

    return add


def run_checks(
    checks: Sequence[str] | Mapping[str, Mapping[str, Any]],
    history: Iterable[Event],
    final: FinalState | None = None,
) -> list[CheckResult]:
    """Run the named checkers (with options, if given a mapping) on one history.

    Unknown names and options that do not fit a checker's signature raise
    :class:`~harness.errors.ConfigError` before any checker runs. A checker
    that raises is reported as ``unknown`` with the error (and logged): one
    broken checker must not hide the others' verdicts.
    """
    specs: list[tuple[str, Mapping[str, Any]]] = (
        list(checks.items()) if isinstance(checks, Mapping) else [(name, {}) for name in checks]
    )
    events = list(history)
    for name, options in specs:
        if name not in CHECKERS:
            raise ConfigError(f"checks: {name!r}", f"unknown checker; known: {sorted(CHECKERS)}")
        try:
            inspect.signature(CHECKERS[name]).bind(events, final, **dict(options))
        except TypeError as exc:
            raise ConfigError(f"checks: {name!r}", f"bad options {dict(options)}: {exc}") from None
    results: list[CheckResult] = []
    for name, options in specs:
        try:
            result = CHECKERS[name](events, final, **dict(options))
        except Exception as exc:
            logger.exception("checker %s raised", name)
            result = CheckResult.unknown(name, f"checker raised {type(exc).__name__}: {exc}")
        if result.name != name:
            result = CheckResult.from_dict({**result.to_dict(), "name": name})
        results.append(result)
    return results


def collect_measurements(results: Iterable[CheckResult]) -> dict[str, float]:
    """All measurements of ``results`` in one dict (later results win on a clash)."""
    out: dict[str, float] = {}
    for result in results:
        out.update(result.measurements)
    return out

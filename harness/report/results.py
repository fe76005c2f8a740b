"""``results.json``: everything a run concluded, schema-versioned, and the overall verdict.

Exit codes (also the CLI's): ``0`` every check valid and every SLO met; ``1``
a check or an SLO failed; ``2`` the harness could not judge: it failed
(``errors``), the generator was the bottleneck (``invalid``), or a verdict
is ``unknown`` (unless ``unknown_fails=False``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from harness.checks import CheckResult
from harness.metrics import LatencyRecorder, LatencySummary
from harness.slo import SloVerdict

__all__ = [
    "SCHEMA_VERSION",
    "FaultSpan",
    "LatencyMetric",
    "ReceiptBucket",
    "ResultsFormatError",
    "RunResults",
    "SelfCheckCell",
    "TimelineBucket",
    "Verdict",
    "make_results",
    "overall_verdict",
    "read_results",
    "write_results",
]

SCHEMA_VERSION: Final = 1
"""Version of the results.json layout; readers refuse other versions."""

Verdict = Literal["pass", "fail", "invalid", "unknown", "error", "not_applicable", "interrupted"]


class ResultsFormatError(ValueError):
    """A results.json file is not one this version can read; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyMetric:
    """One latency histogram: its summary and HdrHistogram's encoded form."""

    summary: LatencySummary
    """The standard figures, ms."""
    encoded: str
    """HdrHistogram compressed base64 (``LatencyRecorder.decode`` reads it)."""

    @classmethod
    def from_recorder(cls, recorder: LatencyRecorder) -> LatencyMetric:
        """Summarise and encode ``recorder``."""
        return cls(summary=recorder.summary(), encoded=recorder.encode())

    def recorder(self) -> LatencyRecorder:
        """The histogram, decoded."""
        return LatencyRecorder.decode(self.encoded, clipped=self.summary.clipped)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"summary": self.summary.to_dict(), "encoded": self.encoded}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyMetric:
        """Inverse of :meth:`to_dict`."""
        return cls(summary=LatencySummary.from_dict(dict(data["summary"])), encoded=data["encoded"])


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpan:
    """A fault, from start to heal, in seconds since the start of the run."""

    label: str
    """Human label of the fault."""
    kind: str
    """Fault package (how it is shaded)."""
    target: str
    """The hop it acted on."""
    start_s: float
    """Seconds from the run's start."""
    end_s: float | None
    """Heal time, seconds from the run's start (``None``: never healed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineBucket:
    """Latency of the operations that completed in one time bucket."""

    t_s: float
    """Bucket start, seconds from the run's start."""
    count: int
    """Completions in the bucket."""
    errors: int
    """Of which ``fail`` or ``info``."""
    p50_ms: float | None
    """Median latency (from the intended start)."""
    p99_ms: float | None
    """99th percentile."""
    max_ms: float | None
    """Largest."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptBucket:
    """The live events of one type that clients received in one time bucket."""

    t_s: float
    """Bucket start, seconds from the run's start."""
    event: str
    """``new_alert``, ``alerts_refresh``, ``workflow_updated``."""
    count: int
    """Receipts in the bucket (per second when the bucket is 1 s)."""
    p50_ms: float | None
    """Median delivery latency: commit -> receipt where the target reports its
    commit time, else request start -> receipt."""
    p99_ms: float | None
    """99th percentile of the same."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfCheckCell:
    """One cell of the self-check matrix: a scenario run against a flawed pipeline."""

    scenario: str
    """The scenario."""
    flaw: str
    """The flaw enabled in the reference pipeline (``none`` for the sound one)."""
    expected: Literal["pass", "fail"]
    """What the scenario must answer."""
    actual: Verdict
    """What it answered."""
    reason: str = ""
    """Why (e.g. the failing checker's summary)."""
    runs: int = 1
    """Seeded runs of the cell (``alertbench selfcheck --repeat``)."""
    as_expected: int | None = None
    """How many of the runs answered as expected (None: one run, ``actual`` says)."""

    @property
    def matches(self) -> bool:
        """Whether the scenario answered as expected, in every run."""
        every = self.as_expected is None or self.as_expected == self.runs
        return self.expected == self.actual and every


def _span(data: Mapping[str, Any]) -> FaultSpan:
    return FaultSpan(**{k: data[k] for k in ("label", "kind", "target", "start_s", "end_s")})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResults:
    """The contents of ``results.json``."""

    run_id: str
    """Unique id, also the name of the run's directory (e.g. ``20260129T101500Z-load-3f2a``)."""
    scenario: str
    """Scenario name."""
    started_at: str
    """ISO 8601 wall time of the start."""
    finished_at: str
    """ISO 8601 wall time of the end."""
    seed: int | None
    """The seed everything random was derived from."""
    verdict: Verdict
    """Overall verdict (:func:`overall_verdict`)."""
    exit_code: int
    """0, 1 or 2 (see the module docstring)."""
    config: dict[str, Any] = field(default_factory=dict)
    """The scenario's configuration (rates, durations, flaws...)."""
    stack: dict[str, Any] = field(default_factory=dict)
    """What ran: providers, versions, endpoints."""
    generator: dict[str, Any] | None = None
    """``GeneratorReport.to_dict()`` of the load generator, if any."""
    latencies: dict[str, LatencyMetric] = field(default_factory=dict)
    """Latency histograms by name (``generation.corrected``, ``delivery``...)."""
    counters: dict[str, int] = field(default_factory=dict)
    """Named counters."""
    queries: dict[str, Any] | None = None
    """``PgStatDiff.to_dict()`` of the measured load, if taken."""
    resources: dict[str, Any] | None = None
    """``ResourceUsage.to_dict()``: CPU by process role over the measured load."""
    checks: tuple[CheckResult, ...] = ()
    """Checker verdicts."""
    slos: tuple[SloVerdict, ...] = ()
    """SLO verdicts."""
    faults: tuple[FaultSpan, ...] = ()
    """Fault timeline."""
    timeline: tuple[TimelineBucket, ...] = ()
    """Latency over time."""
    receipts: tuple[ReceiptBucket, ...] = ()
    """Received events and their delivery latency over time, per event type."""
    self_check: tuple[SelfCheckCell, ...] = ()
    """Self-check matrix cells, when this run is a self-check."""
    errors: tuple[str, ...] = ()
    """Harness failures (each makes the verdict ``error``)."""
    not_applicable: str | None = None
    """Why the scenario was not run on this target (a capability it lacks):
    verdict ``not_applicable``, exit code 0."""
    target: dict[str, Any] = field(default_factory=dict)
    """What was under test (``Target.describe()``)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Scenario-specific JSON data, shown in the report as is."""
    unknown_fails: bool = True
    """Whether ``unknown`` verdicts made the run exit 2."""
    schema_version: int = SCHEMA_VERSION
    """Layout version of this document."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "scenario": self.scenario,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seed": self.seed,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "unknown_fails": self.unknown_fails,
            "config": self.config,
            "stack": self.stack,
            "generator": self.generator,
            "latencies": {k: v.to_dict() for k, v in self.latencies.items()},
            "counters": self.counters,
            "queries": self.queries,
            "resources": self.resources,
            "checks": [c.to_dict() for c in self.checks],
            "slos": [s.to_dict() for s in self.slos],
            "faults": [_fields(f) for f in self.faults],
            "timeline": [_fields(b) for b in self.timeline],
            "receipts": [_fields(b) for b in self.receipts],
            "self_check": [_fields(c) for c in self.self_check],
            "errors": list(self.errors),
            "not_applicable": self.not_applicable,
            "target": self.target,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResults:
        """Inverse of :meth:`to_dict`; :class:`ResultsFormatError` on another schema."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsFormatError(
                f"results schema_version {version!r}; this alertbench reads {SCHEMA_VERSION}"
            )
        try:
            return cls(
                run_id=data["run_id"],
                scenario=data["scenario"],
                started_at=data["started_at"],
                finished_at=data["finished_at"],
                seed=data.get("seed"),
                verdict=data["verdict"],
                exit_code=int(data["exit_code"]),
                unknown_fails=bool(data.get("unknown_fails", True)),
                config=dict(data.get("config") or {}),
                stack=dict(data.get("stack") or {}),
                generator=data.get("generator"),
                latencies={
                    k: LatencyMetric.from_dict(v) for k, v in (data.get("latencies") or {}).items()
                },
                counters=dict(data.get("counters") or {}),
                queries=data.get("queries"),
                resources=data.get("resources"),
                checks=tuple(CheckResult.from_dict(c) for c in data.get("checks") or ()),
                slos=tuple(SloVerdict.from_dict(s) for s in data.get("slos") or ()),
                faults=tuple(_span(f) for f in data.get("faults") or ()),
                timeline=tuple(TimelineBucket(**b) for b in data.get("timeline") or ()),
                receipts=tuple(ReceiptBucket(**b) for b in data.get("receipts") or ()),
                self_check=tuple(SelfCheckCell(**c) for c in data.get("self_check") or ()),
                errors=tuple(data.get("errors") or ()),
                not_applicable=data.get("not_applicable"),
                target=dict(data.get("target") or {}),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsFormatError(f"malformed results: {type(exc).__name__}: {exc}") from None


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def overall_verdict(
    *,
    checks: Sequence[CheckResult] = (),
    slos: Sequence[SloVerdict] = (),
    generator_valid: bool | None = None,
    errors: Sequence[str] = (),
    unknown_fails: bool = True,
    not_applicable: str | None = None,
    interrupted: int | None = None,
) -> tuple[Verdict, int]:
    """The run's verdict and exit code.

    In order: a run stopped by signal ``interrupted`` -> ``interrupted``
    (128 + the signal: 130 for Ctrl-C); a scenario not run for want of a
    capability ->
    ``not_applicable`` (0: it says nothing about the target); harness
    ``errors`` -> ``error`` (2); a check ``False`` ->
    ``fail`` (1; correctness failures stand whatever the load); an invalid
    generator -> ``invalid`` (2; latencies are not trustworthy); an SLO
    ``fail`` -> ``fail`` (1); any ``unknown`` -> ``unknown`` (2, only with
    ``unknown_fails``); else ``pass`` (0).
    """
    if interrupted is not None:
        return "interrupted", 128 + interrupted
    if not_applicable is not None and not errors:
        return "not_applicable", 0
    if errors:
        return "error", 2
    if any(c.valid is False for c in checks):
        return "fail", 1
    if generator_valid is False:
        return "invalid", 2
    if any(s.status == "fail" for s in slos):
        return "fail", 1
    unknown = any(c.valid == "unknown" for c in checks) or any(s.status == "unknown" for s in slos)
    if unknown and unknown_fails:
        return "unknown", 2
    return "pass", 0


def make_results(
    *,
    run_id: str,
    scenario: str,
    started_at: str,
    finished_at: str,
    seed: int | None = None,
    config: Mapping[str, Any] | None = None,
    stack: Mapping[str, Any] | None = None,
    generator: Mapping[str, Any] | None = None,
    latencies: Mapping[str, LatencyRecorder | LatencyMetric] | None = None,
    counters: Mapping[str, int] | None = None,
    queries: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    checks: Sequence[CheckResult] = (),
    slos: Sequence[SloVerdict] = (),
    faults: Sequence[FaultSpan] = (),
    timeline: Sequence[TimelineBucket] = (),
    receipts: Sequence[ReceiptBucket] = (),
    self_check: Sequence[SelfCheckCell] = (),
    errors: Sequence[str] = (),
    unknown_fails: bool = True,
    not_applicable: str | None = None,
    interrupted: int | None = None,
    target: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunResults:
    """Assemble a :class:`RunResults`, computing the verdict and exit code."""
    gen = dict(generator) if generator is not None else None
    verdict, code = overall_verdict(
        checks=checks,
        slos=slos,
        generator_valid=None if gen is None else bool(gen.get("valid", True)),
        errors=errors,
        unknown_fails=unknown_fails,
        not_applicable=not_applicable,
        interrupted=interrupted,
    )
    metrics = {
        name: value if isinstance(value, LatencyMetric) else LatencyMetric.from_recorder(value)
        for name, value in (latencies or {}).items()
    }
    return RunResults(
        run_id=run_id,
        scenario=scenario,
        started_at=started_at,
        finished_at=finished_at,
        seed=seed,
        verdict=verdict,
        exit_code=code,
        unknown_fails=unknown_fails,
        config=dict(config or {}),
        stack=dict(stack or {}),
        generator=gen,
        latencies=metrics,
        counters=dict(counters or {}),
        queries=dict(queries) if queries is not None else None,
        resources=dict(resources) if resources is not None else None,
        checks=tuple(checks),
        slos=tuple(slos),
        faults=tuple(faults),
        timeline=tuple(timeline),
        receipts=tuple(receipts),
        self_check=tuple(self_check),
        errors=tuple(errors),
        not_applicable=not_applicable,
        target=dict(target or {}),
        extra=dict(extra or {}),
    )


def write_results(results: RunResults, path: str | os.PathLike[str]) -> Path:
    """Write ``results.json`` (indented, keys in a stable order)."""
    target = Path(path)
    target.write_text(json.dumps(results.to_dict(), indent=2, default=str) + "\n", "utf-8")
    return target


def read_results(path: str | os.PathLike[str]) -> RunResults:
    """Read a ``results.json``; :class:`ResultsFormatError` says what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsFormatError(f"{path}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ResultsFormatError(f"{path}: expected a JSON object")
    return RunResults.from_dict(data)

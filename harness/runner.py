"""Run scenarios end to end: stack, data, app, workload, checks, SLOs, report.

For each scenario, :func:`run_scenario`:

1. creates a database of its own on the stack's Postgres and loads the
   seeded data set (``--projects``, ``--seed``) with the reference schema;
2. starts the reference pipeline on it, with the requested flaws, behind the
   ``app`` proxy;
3. runs the scenario, which drives the workload and records the history;
4. heals and drains (the scenario's job), stops the app, reads the final
   state directly (not through the proxies);
5. runs the scenario's checkers on the history and the final state, judges
   the SLOs on their measurements, and writes ``reports/<run-id>/``.

Exit codes: 0 every check and SLO passed, 1 a check or SLO failed, 2 the
harness could not produce a trustworthy verdict (error, invalid generator,
unknown measurement).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.checks import CheckResult, FinalState, collect_measurements, run_checks
from harness.errors import AlertbenchError, ConfigError
from harness.history import Commit, History, Op, Receive
from harness.live import live_status
from harness.metrics import LatencyRecorder
from harness.metrics.resources import gc_pauses_from_metrics, usage_between
from harness.report import (
    RunResults,
    SelfCheckCell,
    Verdict,
    fault_spans,
    latency_timeline,
    make_results,
    new_run_id,
    write_run,
)
from harness.scenario import RunParams, Scenario, ScenarioContext, announced_alert
from harness.slo import evaluate, load_slos
from harness.stack import AppSpec, Stack, _sql
from harness.workload import GeneratorReport
from reference_impl.schema import migrate_dsn
from reference_impl.seed import ROLES, SeedResult, SeedSpec, seed_dsn

__all__ = [
    "RunOptions",
    "delivery_latencies",
    "run_scenario",
    "run_scenarios",
    "self_check",
    "sweep_rates",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What the CLI asked for, beyond the scenario parameters."""

    slo_file: Path | None = None
    slo_overrides: tuple[str, ...] = ()
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    #: Called with each scenario's live status line while it runs (a rich
    #: live display on a terminal, plain lines in CI); None: silent.
    live: Callable[[str], None] | None = None
    live_interval_s: float = 1.0


def delivery_latencies(history: History) -> dict[str, LatencyRecorder]:
    """Commit -> receipt (ms) per live event type, from the history.

    Alerts created by batch generation (a burst of one commit per project)
    are kept apart (``delivery.batch.<event>``) from those of the sustained
    workload (``delivery.<event>``).
    """
    kinds = {op.op_id: op.f for op in history.of_type(Op) if op.type == "invoke"}
    commits = {
        c.alert_id: (
            c.mono_s,
            "batch." if c.op_id is not None and kinds.get(c.op_id) == "generate" else "",
        )
        for c in history.of_type(Commit)
    }
    recorders: dict[str, LatencyRecorder] = {}
    for r in history.of_type(Receive):
        alert_id = announced_alert(r)
        if r.via != "live" or alert_id not in commits:
            continue
        committed, prefix = commits[alert_id]
        name = f"delivery.{prefix}{r.event}"
        if name not in recorders:
            recorders[name] = LatencyRecorder(name)
        # Clamp at 0: the commit time is the server's wall clock, the receipt
        # the client's monotonic one converted; they agree to well under 1 ms.
        recorders[name].record(max(0.0, (r.mono_s - committed) * 1000.0))
    return recorders


def _generator_dict(report: GeneratorReport | None) -> dict[str, Any] | None:
    return report.to_dict() if report is not None else None


def seed_spec(scenario: Scenario, params: RunParams) -> SeedSpec:
    """The data a scenario runs on: ``params.projects`` projects, and with a
    scenario's ``user_pool`` a pool of as many users as projects, each user a
    member of about four projects (1,000 projects, 1,000 subscribers)."""
    pooled = bool(getattr(scenario, "user_pool", False))
    users = max(params.projects, len(ROLES)) if pooled else None
    return SeedSpec(projects=params.projects, users=users, seed=params.seed)


async def _prepare_database(stack: Stack, database: str, spec: SeedSpec) -> SeedResult:
    direct = stack.postgres_direct
    await asyncio.to_thread(
        _sql.execute,
        direct.dsn,
        [f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'CREATE DATABASE "{database}"'],
    )
    dsn = direct.dsn_for(database)
    await migrate_dsn(dsn)
    return await seed_dsn(dsn, spec)


async def _final_state(stack: Stack, database: str) -> FinalState:
    dsn = stack.postgres_direct.dsn_for(database)
    alerts = await asyncio.to_thread(
        _sql.fetch,
        dsn,
        "SELECT id, project_id, step_id, status, assigned_to_id FROM workflow_alerts",
    )
    members = await asyncio.to_thread(
        _sql.fetch, dsn, "SELECT project_id, user_id, role FROM project_members"
    )
    return FinalState(alerts=alerts, memberships=members)


async def run_scenario(
    scenario: Scenario,
    stack: Stack,
    params: RunParams,
    *,
    options: RunOptions,
    run_id: str,
    progress: Callable[[str], None] = lambda line: None,
) -> RunResults:
    """Run one scenario on a running stack and write its report."""
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    # Validate the SLO layers before spending time on the run.
    slos = load_slos(
        options.slo_file, scenario=scenario.slos, overrides=list(options.slo_overrides)
    )
    history = History()
    database = f"alertbench_{scenario.name}"
    errors: list[str] = []
    checks: list[CheckResult] = []
    ctx: ScenarioContext | None = None
    t0 = time.perf_counter()
    try:
        # A scenario may need fewer projects than the run's --projects.
        wanted: int | None = getattr(scenario, "max_projects", None)
        if wanted is not None and wanted < params.projects:
            params = dataclasses.replace(params, projects=wanted)
        # ... or at least some (a race needs enough work to overlap).
        least: int | None = getattr(scenario, "min_projects", None)
        if least is not None and least > params.projects:
            params = dataclasses.replace(params, projects=least)
        data = seed_spec(scenario, params)
        users = f", a pool of {data.users} users" if data.users is not None else ""
        progress(f"{scenario.name}: seeding {params.projects} projects{users}")
        seeded = await _prepare_database(stack, database, data)
        progress(f"{scenario.name}: starting the app (flaws: {sorted(params.flaws) or 'none'})")
        # A scenario may ask for app options (e.g. fault injection inside the app).
        app_args: tuple[str, ...] = tuple(getattr(scenario, "app_args", ()))
        spec = AppSpec(
            flaws=params.flaws,
            processes=params.app_processes,
            fanout=params.fanout,
            database=database,
            extra_args=(*app_args, "--inject-seed", str(params.seed)) if app_args else (),
        )
        await asyncio.to_thread(stack.start_app, spec)
        ctx = ScenarioContext(
            name=scenario.name,
            params=params,
            stack=stack,
            history=history,
            database=database,
            seeded=seeded,
            token_secret=spec.token_secret,
        )
        progress(f"{scenario.name}: running")
        show = options.live
        try:
            async with live_status(
                history,
                (lambda status: show(status.line(scenario.name))) if show else None,
                interval_s=options.live_interval_s,
            ):
                await scenario.run(ctx)
        finally:
            await ctx.close_fleets()
            ctx.extra["app_gc_pauses"] = await asyncio.to_thread(_app_gc_pauses, stack)
            await asyncio.to_thread(stack.stop_app)
        final = await _final_state(stack, database)
        progress(f"{scenario.name}: checking {len(history)} history events")
        checks = run_checks(scenario.checks, history, final) + ctx.own_checks
    except AlertbenchError:
        raise
    except Exception as exc:
        logger.exception("scenario %s failed", scenario.name)
        errors.append(f"{type(exc).__name__}: {exc}")
    measurements = collect_measurements(checks)
    verdicts = evaluate(slos, measurements)
    latencies: dict[str, LatencyRecorder] = {}
    generator = ctx.generator if ctx else None
    if generator is not None:
        latencies["request.corrected"] = generator.latency.corrected
        latencies["request.raw"] = generator.latency.raw
    latencies.update(delivery_latencies(history))
    results = make_results(
        run_id=f"{run_id}-{scenario.name}",
        scenario=scenario.name,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seed=params.seed,
        config={**params.to_dict(), "elapsed_s": round(time.perf_counter() - t0, 2)},
        extra=dict(ctx.extra) if ctx else {},
        stack=stack.describe(),
        generator=_generator_dict(generator),
        resources=_resources(ctx, generator),
        latencies=latencies,
        checks=checks,
        slos=verdicts,
        faults=fault_spans(history),
        timeline=latency_timeline(history, requests=("complete",)),
        errors=errors,
    )
    write_run(results, options.reports_dir, history=history)
    return results


def _app_gc_pauses(stack: Stack) -> dict[str, Any]:
    """Each app process's garbage-collector pauses over its life (from /metrics)."""
    found: dict[str, Any] = {}
    if stack.app is None:
        return found
    for proc, url in zip(stack.app.processes, stack.app.direct_urls, strict=True):
        name = proc.name
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5.0) as response:
                found[name] = gc_pauses_from_metrics(response.read().decode())
        except (OSError, ValueError) as exc:
            found[name] = {"error": f"could not read {url}/metrics: {exc}"}
    return found


def _resources(
    ctx: ScenarioContext | None, generator: GeneratorReport | None
) -> dict[str, Any] | None:
    if ctx is None or ctx.cpu_window is None:
        return None
    operations = generator.completed if generator is not None else None
    return usage_between(*ctx.cpu_window, operations=operations).to_dict()


async def run_scenarios(
    scenarios: Sequence[Scenario],
    stack: Stack,
    params: RunParams,
    *,
    options: RunOptions,
    progress: Callable[[str], None] = lambda line: None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RunResults]:
    """Run scenarios one after another on one stack."""
    if not scenarios:
        raise ConfigError("scenarios", "name at least one (see `alertbench list`)")
    run_id = options.run_id or new_run_id("suite")
    results = []
    for scenario in scenarios:
        results.append(
            await run_scenario(
                scenario, stack, params, options=options, run_id=run_id, progress=progress
            )
        )
    return results


async def sweep_rates(
    scenario: Scenario,
    stack: Stack,
    params: RunParams,
    rates: Sequence[float],
    *,
    options: RunOptions,
    progress: Callable[[str], None] = lambda line: None,
) -> list[RunResults]:
    """Run ``scenario`` at each rate in turn, stopping after the first that fails.

    The last passing rate is the highest sustainable one found (within the
    SLOs, with a valid generator). Every step writes its own report.
    """
    run_id = options.run_id or new_run_id("sweep")
    results: list[RunResults] = []
    for rate in rates:
        step = dataclasses.replace(params, rate_per_s=rate)
        progress(f"sweep: {scenario.name} at {rate:g}/s")
        result = await run_scenario(
            scenario, stack, step, options=options, run_id=f"{run_id}-{rate:g}", progress=progress
        )
        results.append(result)
        if result.exit_code != 0:
            break
    return results


def _why(result: RunResults) -> str:
    """What failed in a run, in a line: its failing checks and SLOs, or its error."""
    failing = [c.summary for c in result.checks if c.valid is False]
    failing += [f"SLO {v.name}: {v.measured} {v.unit}" for v in result.slos if v.status == "fail"]
    return "; ".join(failing[:3]) or "; ".join(result.errors[:1]) or f"verdict {result.verdict}"


async def self_check(
    stack: Stack,
    params: RunParams,
    matrix: Mapping[str, Sequence[str]],
    scenarios: Mapping[str, Scenario],
    *,
    options: RunOptions,
    repeat: int = 1,
    progress: Callable[[str], None] = lambda line: None,
) -> RunResults:
    """Prove the harness has teeth: each scenario passes on the sound pipeline
    and fails under each flaw it is meant to catch (``matrix``: flaw ->
    scenario names). Returns one result whose ``self_check`` holds the cells;
    it passes only when every cell answered as expected.

    With ``repeat`` > 1 each cell runs that many times, with seeds
    ``params.seed``, ``params.seed + 1``, ...: a cell that catches its flaw
    only sometimes shows as e.g. 17/20 and fails the matrix."""
    if repeat < 1:
        raise ConfigError("--repeat", f"must be at least 1, got {repeat}")
    run_id = options.run_id or new_run_id("selfcheck")
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    cells: list[SelfCheckCell] = []
    plan = [(name, "none") for name in sorted({n for names in matrix.values() for n in names})]
    plan += [(name, flaw) for flaw, names in sorted(matrix.items()) for name in names]
    for name, flaw in plan:
        expected: Literal["pass", "fail"] = "pass" if flaw == "none" else "fail"
        verdicts: list[Verdict] = []
        reasons: list[str] = []
        for attempt in range(repeat):
            step = dataclasses.replace(
                params,
                flaws=frozenset() if flaw == "none" else frozenset({flaw}),
                seed=params.seed + attempt,
            )
            progress(
                f"self-check: {name} with {flaw if flaw != 'none' else 'no flaw'}"
                + (f" (run {attempt + 1} of {repeat}, seed {step.seed})" if repeat > 1 else "")
            )
            result = await run_scenario(
                scenarios[name],
                stack,
                step,
                options=options,
                run_id=f"{run_id}-{flaw}" + (f"-s{step.seed}" if repeat > 1 else ""),
                progress=progress,
            )
            verdicts.append(result.verdict)
            if result.verdict != expected or (expected == "fail" and not reasons):
                # Every surprise, and the first catch (which explains the cell).
                why = _why(result)
                reasons.append(f"seed {step.seed}: {why}" if repeat > 1 else why)
        surprises = [v for v in verdicts if v != expected]
        cells.append(
            SelfCheckCell(
                scenario=name,
                flaw=flaw,
                expected=expected,
                actual=surprises[0] if surprises else expected,
                reason="; ".join(reasons[-3:] if surprises else reasons[:1]),
                runs=repeat,
                as_expected=len(verdicts) - len(surprises),
            )
        )
    wrong = [c for c in cells if not c.matches]
    errors = [f"{c.scenario} with {c.flaw}: expected {c.expected}, got {c.actual}" for c in wrong]
    summary = make_results(
        run_id=f"{run_id}-matrix",
        scenario="self-check",
        started_at=started_at,
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seed=params.seed,
        config=params.to_dict(),
        stack=stack.describe(),
        self_check=cells,
        checks=[
            CheckResult(
                name="self_check",
                valid=not wrong,
                summary=f"{len(cells) - len(wrong)} of {len(cells)} cells as expected",
                counts={"cells": len(cells), "unexpected": len(wrong)},
                counterexamples=tuple({"cell": e} for e in errors),
            )
        ],
    )
    write_run(summary, options.reports_dir)
    return summary

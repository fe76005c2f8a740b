"""Run scenarios end to end: stack, data, app, workload, checks, SLOs, report.

For each scenario, :func:`run_scenario`:

1. gives it a database with the contract's tables (the target's own
   migration, or the contract's DDL) and loads the seeded data set
   (``--projects``, ``--seed``) with SQL, in the target's role names;
2. starts the target on it (the reference, a command, or the ``app`` proxy in
   front of a URL), with the requested flaws, behind the ``app`` proxy;
3. runs the scenario, which drives the workload and records the history;
4. heals and drains (the scenario's job), stops the app, reads the final
   state directly (not through the proxies);
5. runs the scenario's checkers on the history and the final state, judges
   the SLOs on their measurements, and writes ``reports/<run-id>/``.

A scenario that needs a capability the target does not declare is not run:
its verdict is ``not_applicable``, with the reason, and it fails nothing.

Exit codes: 0 every check and SLO passed, 1 a check or SLO failed, 2 the
harness could not produce a trustworthy verdict (error, invalid generator,
unknown measurement).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import re
import signal
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.checks import CheckResult, FinalState, collect_measurements, run_checks
from harness.contract import ROLES, SeedResult, SeedSpec, seed_dsn
from harness.errors import AlertbenchError, ConfigError
from harness.history import Commit, History, Op, Receive
from harness.live import live_status
from harness.loop import received_signal
from harness.metrics import LatencyRecorder
from harness.metrics.gcwatch import GcWatch
from harness.metrics.resources import gc_pauses_from_metrics, usage_between
from harness.report import (
    RunResults,
    SelfCheckCell,
    Verdict,
    fault_spans,
    latency_timeline,
    make_results,
    new_run_id,
    receipt_timeline,
    reconnections,
    write_run,
)
from harness.report.run_dir import log_file
from harness.scenario import (
    RunParams,
    Scenario,
    ScenarioContext,
    announced_alert,
    check_proxy_faults,
)
from harness.slo import SloVerdict, evaluate, load_slos
from harness.stack import Stack, _sql
from harness.targets import Target, load_target
from harness.targets.launch import prepare_database, start_target
from harness.workload import GeneratorReport

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
    #: With it, each scenario's report goes into ``reports_dir/<folder_prefix>
    #: <scenario>/`` (a run's own folder; see harness.report.suite) instead of
    #: ``reports_dir/<run id>-<scenario>/``.
    nested: bool = False
    folder_prefix: str = ""
    #: Called with each scenario's live status line while it runs (a rich
    #: live display on a terminal, plain lines in CI); None: silent.
    live: Callable[[str], None] | None = None
    live_interval_s: float = 1.0


def delivery_latencies(history: History) -> dict[str, LatencyRecorder]:
    """Latencies (ms) to each live event's receipt, per event type, from the history.

    - ``delivery.<event>``: commit -> receipt, where the target reported its
      commit time (the ``commit_timestamp`` capability);
    - ``receipt_after_request.<event>``: the causing request's start ->
      receipt, for every target;
    - ``receipt_after_response.<event>``: its response -> receipt, for every
      target (clamped at 0: an event may beat the response).

    Alerts created by batch generation (a burst of one commit per project)
    are kept apart (``<name>.batch.<event>``) from those of the sustained
    workload.
    """
    kinds = {op.op_id: op.f for op in history.of_type(Op) if op.type == "invoke"}
    commits = {c.alert_id: c for c in history.of_type(Commit)}
    recorders: dict[str, LatencyRecorder] = {}

    def record(name: str, ms: float) -> None:
        if name not in recorders:
            recorders[name] = LatencyRecorder(name)
        # Clamp at 0: the commit time is the server's wall clock, the receipt
        # the client's monotonic one converted; they agree to well under 1 ms.
        recorders[name].record(max(0.0, ms))

    for r in history.of_type(Receive):
        alert_id = announced_alert(r)
        commit = commits.get(alert_id) if alert_id is not None else None
        if r.via != "live" or r.repeat or commit is None:
            continue
        batch = commit.op_id is not None and kinds.get(commit.op_id) == "generate"
        kind = f"batch.{r.event}" if batch else r.event
        if commit.server_time:
            record(f"delivery.{kind}", (r.mono_s - commit.mono_s) * 1000.0)
        if commit.requested_mono_s is not None:
            record(f"receipt_after_request.{kind}", (r.mono_s - commit.requested_mono_s) * 1000.0)
        if commit.responded_mono_s is not None:
            record(f"receipt_after_response.{kind}", (r.mono_s - commit.responded_mono_s) * 1000.0)
    return recorders


def _generator_dict(report: GeneratorReport | None) -> dict[str, Any] | None:
    return report.to_dict() if report is not None else None


def seed_spec(
    scenario: Scenario, params: RunParams, roles: Mapping[str, str] | None = None
) -> SeedSpec:
    """The data a scenario runs on: ``params.projects`` projects, and with a
    scenario's ``user_pool`` a pool of as many users as projects, each user a
    member of about four projects (1,000 projects, 1,000 subscribers)."""
    pooled = bool(getattr(scenario, "user_pool", False))
    users = max(params.projects, len(ROLES)) if pooled else None
    return SeedSpec(projects=params.projects, users=users, seed=params.seed, roles=roles)


async def _final_state(dsn: str, seeded: SeedResult) -> FinalState:
    """The alerts, memberships and trackers of the scenario's own projects (a
    url target's database may hold other data too), with the seeded workflow,
    members and start positions that the workflow checkers judge them by."""
    projects = seeded.project_ids
    alerts = await asyncio.to_thread(
        _sql.fetch,
        dsn,
        "SELECT id, project_id, step_id, status, assigned_to_id FROM workflow_alerts"
        " WHERE project_id = ANY($1::bigint[])",
        list(projects),
    )
    members = await asyncio.to_thread(
        _sql.fetch,
        dsn,
        "SELECT project_id, user_id, role FROM project_members"
        " WHERE project_id = ANY($1::bigint[])",
        list(projects),
    )
    trackers = await asyncio.to_thread(
        _sql.fetch,
        dsn,
        "SELECT project_id, current_line_item_id FROM project_workflow_trackers"
        " WHERE project_id = ANY($1::bigint[])",
        list(projects),
    )
    first = seeded.active_line_items[0].id if seeded.active_line_items else None
    return FinalState(
        alerts=alerts,
        memberships=members,
        trackers=trackers,
        workflow=[
            {"id": li.id, "role": li.responsible_role, "active": li.is_active}
            for li in seeded.line_items
        ],
        seeded_members={str(p): dict(roles) for p, roles in seeded.members.items()},
        start_trackers={str(p): first for p in projects},
    )


async def run_scenario(
    scenario: Scenario,
    stack: Stack,
    params: RunParams,
    *,
    options: RunOptions,
    run_id: str,
    target: Target | None = None,
    folder: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> RunResults:
    """Run one scenario against ``target`` (default: the reference) on a
    running stack, and write its report (into ``reports_dir/folder`` when
    given: a run's own folder)."""
    target = target or load_target("reference")
    check_proxy_faults([scenario], bypassed=stack.proxy_bypassed)
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    # Validate the SLO layers and the flaws before spending time on the run.
    slos = load_slos(
        options.slo_file, scenario=scenario.slos, overrides=list(options.slo_overrides)
    )
    target.check_flaws(params.flaws)
    history = History()
    database = f"alertbench_{scenario.name}"
    errors: list[str] = []
    checks: list[CheckResult] = []
    ctx: ScenarioContext | None = None
    t0 = time.perf_counter()
    lacking = target.missing(getattr(scenario, "needs", ()))
    if params.app_processes > 1 and "processes" not in target.capabilities:
        lacking.append("processes")
    not_applicable = (
        f"target {target.name!r} does not declare {', '.join(lacking)}" if lacking else None
    )
    interrupted: int | None = None
    try:
        if not_applicable is not None:
            progress(f"{scenario.name}: not applicable: {not_applicable}")
        else:
            ctx = await _run(scenario, stack, params, target, database, history, options, progress)
            final = await _final_state(ctx.direct_dsn, ctx.seeded)
            progress(f"{scenario.name}: checking {len(history)} history events")
            checks = run_checks(scenario.checks, history, final) + ctx.own_checks
    except AlertbenchError:
        raise
    except asyncio.CancelledError:
        # Ctrl-C or SIGTERM (harness.loop): the target is already stopped by
        # _run's finally; write what was recorded, marked INTERRUPTED.
        interrupted = received_signal() or signal.SIGINT
        errors.append("interrupted before the scenario finished: the figures are partial")
    except Exception as exc:
        logger.exception("scenario %s failed", scenario.name)
        errors.append(f"{type(exc).__name__}: {exc}")
    logs = stack.take_app_logs()
    measurements = collect_measurements(checks)
    generator = ctx.generator if ctx else None
    resources = _resources(ctx, generator)
    verdicts = evaluate(slos, measurements) if not_applicable is None else []
    verdicts = _few_samples(_saturation_unknown(verdicts, resources), checks)
    latencies: dict[str, LatencyRecorder] = {}
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
        extra={**(ctx.extra if ctx else {}), **_reconnections(history), **_target_logs(logs)},
        stack=stack.describe(),
        generator=_generator_dict(generator),
        resources=resources,
        latencies=latencies,
        checks=checks,
        slos=verdicts,
        faults=fault_spans(history),
        timeline=latency_timeline(history, requests=("complete",)),
        receipts=receipt_timeline(history),
        errors=errors,
        not_applicable=not_applicable,
        interrupted=interrupted,
        target=target.describe(),
    )
    write_run(
        results,
        options.reports_dir,
        history=history,
        name=folder,
        latest=folder is None,
        logs=logs,
    )
    if interrupted is not None:
        raise asyncio.CancelledError
    return results


async def _run(
    scenario: Scenario,
    stack: Stack,
    params: RunParams,
    target: Target,
    database: str,
    history: History,
    options: RunOptions,
    progress: Callable[[str], None],
) -> ScenarioContext:
    """Database, seed, target, scenario; the target is stopped on the way out."""
    # A scenario may need fewer projects than the run's --projects.
    wanted: int | None = getattr(scenario, "max_projects", None)
    if wanted is not None and wanted < params.projects:
        params = dataclasses.replace(params, projects=wanted)
    # ... or at least some.
    least: int | None = getattr(scenario, "min_projects", None)
    if least is not None and least > params.projects:
        params = dataclasses.replace(params, projects=least)
    data = seed_spec(scenario, params, target.roles)
    users = f", a pool of {data.users} users" if data.users is not None else ""
    progress(f"{scenario.name}: preparing the database of target {target.name!r}")
    dsn = await prepare_database(target, stack, database, params.flaws)
    progress(f"{scenario.name}: seeding {params.projects} projects{users}")
    seeded = await seed_dsn(dsn, data)
    progress(
        f"{scenario.name}: starting target {target.name!r}"
        f" (flaws: {sorted(params.flaws) or 'none'})"
    )
    secret = target.new_secret()
    await asyncio.to_thread(
        start_target,
        target,
        stack,
        database=database,
        flaws=params.flaws,
        secret=secret,
        processes=params.app_processes,
        fanout=params.fanout,
        inject=getattr(scenario, "inject", None),
        seed=params.seed,
        queue_workers=int(getattr(scenario, "queue_workers", 0)),
    )
    ctx = ScenarioContext(
        name=scenario.name,
        params=params,
        stack=stack,
        history=history,
        database=database,
        seeded=seeded,
        target=target,
        tokens=target.tokens(secret),
        direct_dsn=dsn,
    )
    progress(f"{scenario.name}: running")
    show = options.live
    gc_watch = GcWatch(tune=True)
    gc_watch.start()
    try:
        async with live_status(
            history,
            (lambda status: show(status.line(scenario.name))) if show else None,
            interval_s=options.live_interval_s,
        ):
            await scenario.run(ctx)
    finally:
        gc_watch.stop()
        ctx.extra["harness_gc_pauses"] = gc_watch.to_dict()
        await ctx.close_fleets()
        if "metrics" in target.capabilities:
            ctx.extra["app_gc_pauses"] = await asyncio.to_thread(_app_gc_pauses, stack)
        await asyncio.to_thread(stack.stop_app)
    return ctx


def _target_logs(logs: Mapping[str, bytes]) -> dict[str, Any]:
    """Where the report keeps what each target process wrote, and its size."""
    if not logs:
        return {}
    return {
        "target_logs": {
            name: {"file": log_file(name), "bytes": len(data)}
            for name, data in sorted(logs.items())
        }
    }


def _reconnections(history: History) -> dict[str, Any]:
    """Every client outage of the run (for the report), where there was one."""
    rows = reconnections(history)
    return {"reconnections": rows} if rows else {}


def _saturation_unknown(
    verdicts: list[SloVerdict], resources: Mapping[str, Any] | None
) -> list[SloVerdict]:
    """A latency SLO that failed while the machine was SATURATED is ``unknown``:
    the figure is the machine's, not the pipeline's (exit 2, not 1)."""
    if not resources or not resources.get("saturated"):
        return verdicts
    busy = resources.get("machine_busy_pct")
    note = (
        f"unknown: the machine was SATURATED ({busy:.0f} % busy), so this latency is the"
        " machine's, not the pipeline's; measure on an idle machine"
        if isinstance(busy, int | float)
        else "unknown: the machine was SATURATED"
    )
    return [
        dataclasses.replace(v, status="unknown", note=note)
        if v.status == "fail" and v.unit == "ms"
        else v
        for v in verdicts
    ]


_PERCENTILE = re.compile(r"_p(\d+)_ms$")


def _percentile(metric: str) -> float | None:
    """99 for ``generation_p99_ms``, 99.9 for ``..._p999_ms`` (the checkers'
    names drop the point); None for a metric that is not a percentile."""
    found = _PERCENTILE.search(metric)
    if found is None:
        return None
    digits = found.group(1)
    return float(digits if len(digits) <= 2 else f"{digits[:2]}.{digits[2:]}")


def _few_samples(verdicts: list[SloVerdict], checks: Sequence[CheckResult]) -> list[SloVerdict]:
    """A percentile SLO judged from too few samples says so: HdrHistogram's
    p99 of fewer than 150 samples is their slowest or second slowest one, so
    one or two slow requests decide the verdict (its status stands; the note
    tells the reader how far to trust it and what gives a sturdier figure)."""
    samples = {
        metric: int(check.counts["samples"])
        for check in checks
        if isinstance(check.counts.get("samples"), int | float)
        for metric in check.measurements
    }
    judged = []
    for verdict in verdicts:
        q = _percentile(verdict.metric)
        n = samples.get(verdict.metric, 0)
        if verdict.measured is None or q is None or n <= 0 or q == 100:
            judged.append(verdict)
            continue
        # HdrHistogram's rank of a percentile (get_value_at_percentile).
        rank = max(1, int(q / 100 * n + 0.5))
        kth = n - rank + 1
        if kth <= 2:
            which = "slowest one" if kth == 1 else "second slowest"
            decides = "one slow request decides" if kth == 1 else "two slow requests decide"
            note = (
                f"from {n} samples: the p{q:g} is their {which}, so {decides} it;"
                " a longer run (--duration) gives a sturdier figure"
            )
            verdict = dataclasses.replace(
                verdict, note=f"{verdict.note}; {note}" if verdict.note else note
            )
        judged.append(verdict)
    return judged


def _folder(options: RunOptions, name: str) -> str | None:
    """A scenario report's folder inside a run's own folder (None: not nested)."""
    return f"{options.folder_prefix}{name}" if options.nested else None


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
    start, end = ctx.cpu_window
    usage = usage_between(start, end, operations=operations).to_dict()
    # The harness's CPU follows the events its clients received in the window
    # as much as the requests: a target that delivers late (after the window)
    # makes the harness look cheaper per operation. Counted, so runs compare.
    usage["receipts"] = sum(
        1 for r in ctx.history.of_type(Receive) if start.mono_s <= r.mono_s <= end.mono_s
    )
    return usage


async def run_scenarios(
    scenarios: Sequence[Scenario],
    stack: Stack,
    params: RunParams,
    *,
    options: RunOptions,
    target: Target | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[RunResults]:
    """Run scenarios one after another on one stack, against ``target``."""
    if not scenarios:
        raise ConfigError("scenarios", "name at least one (see `alertbench list`)")
    run_id = options.run_id or new_run_id("suite")
    results = []
    for scenario in scenarios:
        results.append(
            await run_scenario(
                scenario,
                stack,
                params,
                options=options,
                run_id=run_id,
                target=target,
                folder=_folder(options, scenario.name),
                progress=progress,
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
    target: Target | None = None,
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
            scenario,
            stack,
            step,
            options=options,
            run_id=f"{run_id}-{rate:g}",
            target=target,
            folder=_folder(options, f"{scenario.name}-{rate:g}"),
            progress=progress,
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
    target: Target | None = None,
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
                target=target,
                folder=_folder(
                    options, f"{name}-{flaw}" + (f"-s{step.seed}" if repeat > 1 else "")
                ),
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
    write_run(
        summary, options.reports_dir, name=_folder(options, "matrix"), latest=not options.nested
    )
    return summary

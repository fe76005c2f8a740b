"""The ``alertbench`` command.

Exit codes: 0 success, 1 a check or SLO failed, 2 the harness itself failed
(bad flags or configuration, a stack that could not start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness import __version__
from harness import loop as event_loop
from harness.errors import AlertbenchError, ConfigError
from harness.report.html import proxy_summary, resources_summary
from harness.scenario import SUBSCRIBERS
from harness.stack import PROVIDERS, AppSpec, Stack, StackConfig, reap_leftovers, start_stack
from harness.stack.app import FANOUTS
from harness.targets import Target, load_target

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_HARNESS = 2

#: Relative change of a figure treated as noise when comparing runs: short
#: runs on a shared machine move a p99 by tens of percent on their own.
DEFAULT_TOLERANCE = 0.25

_log = logging.getLogger("alertbench")


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that exits with the harness-failure code on bad flags."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_HARNESS, f"{self.prog}: error: {message}\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="alertbench",
        description="Benchmark and break real-time alert pipelines, and judge them against SLOs.",
    )
    parser.add_argument("--version", action="version", version=f"alertbench {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (repeatable)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    stack = commands.add_parser("stack", help="start, check or clean up Postgres and Redis")
    stack_commands = stack.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    up = stack_commands.add_parser(
        "up",
        help="start the stack, print its addresses, hold until Ctrl-C",
        description="Start Postgres and Redis, print their DSN/URL, and hold until Ctrl-C "
        "or SIGTERM; then stop everything and remove every file.",
    )
    _add_stack_flags(up)
    up.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    up.add_argument(
        "--check",
        action="store_true",
        help="start, run a real query and a Redis command, print, stop, and exit",
    )
    up.add_argument(
        "--app",
        action="store_true",
        help="also run the reference pipeline (API, Socket.IO, worker, relay) behind the app proxy",
    )
    up.add_argument(
        "--flaw",
        action="append",
        default=[],
        metavar="NAME",
        help="with --app: switch a named flaw on (repeatable)",
    )
    up.add_argument(
        "--app-processes",
        type=_positive_int,
        default=1,
        metavar="N",
        help="with --app: server processes (Socket.IO emits cross them through Redis)",
    )
    stack_commands.add_parser(
        "reap", help="stop and remove what killed alertbench processes left behind"
    )

    run = commands.add_parser(
        "run",
        help="run scenarios against a target (default: the reference) and judge them (exit 0/1/2)",
        description="Start the stack, run each scenario (default: the main suite), check the "
        "history, judge the SLOs and write reports/<run-id>/ (results.json, history.jsonl, "
        "report.html, junit.xml). Exit 0: all checks and SLOs pass; 1: a breach; 2: the "
        "harness could not give a trustworthy verdict.",
    )
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="see `alertbench list`")
    run.add_argument(
        "--projects", type=_positive_int, default=None, help="projects to seed (default 1000)"
    )
    run.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        metavar="PER_S",
        help="operations per second (default 100)",
    )
    run.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="measured load duration (default 10)",
    )
    run.add_argument("--seed", type=_seed, default=1, help="seed of data, schedule and faults")
    _add_target_flag(run, many=True)
    run.add_argument("--slo", type=Path, default=None, metavar="FILE", help="SLO file (TOML)")
    run.add_argument(
        "--slo-override",
        action="append",
        default=[],
        metavar="NAME=TARGET",
        help="override one SLO target, e.g. generation_p99_ms=50 (repeatable)",
    )
    run.add_argument(
        "--flaw", action="append", default=[], metavar="NAME", help="switch a flaw on (repeatable)"
    )
    run.add_argument(
        "--app-processes",
        type=_positive_int,
        default=1,
        metavar="N",
        help="server processes of the app; HTTP requests and clients take turns over them"
        " (default 1)",
    )
    run.add_argument(
        "--fanout",
        choices=FANOUTS,
        default="redis",
        help="with --app-processes > 1, how an alert reaches every process: redis (one relay,"
        " emits through python-socketio's Redis manager) or listen (every process runs the"
        " LISTEN/NOTIFY relay for its own clients) (default redis)",
    )
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=0,
        metavar="N",
        help="load only: shard the subscribers and the generator over N worker processes"
        " (each a slice of the projects; histories merged and judged as one)",
    )
    _add_subscribers_flag(run)
    run.add_argument(
        "--sweep",
        nargs="?",
        const="",
        default=None,
        metavar="RATES",
        help="run one scenario at rising rates (comma-separated, default: --rate doubled "
        "six times) and report the highest at which every check and SLO held",
    )
    run.add_argument(
        "--reports-dir", type=Path, default=Path("reports"), help="where reports go (./reports)"
    )
    run.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="PATH",
        help="compare the run with an earlier one (a run's folder, e.g. reports/latest, read"
        " before the run starts): exit 1 on a regression beyond --tolerance",
    )
    run.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="SHARE",
        help=f"with --baseline: relative change treated as noise (default {DEFAULT_TOLERANCE:g})",
    )
    _add_stack_flags(run)
    _add_no_proxy_flag(run)

    compare = commands.add_parser(
        "compare",
        help="compare two runs' figures; exit 1 on a regression beyond the tolerance",
        description="Compare NEW with BASE, scenario by scenario (each a run's folder, a "
        "scenario's folder or a results.json): latencies, SLO measurements and the achieved "
        "rate. A judged figure (an SLO's, a latency p50 or p99, the rate) worse than the "
        "baseline by more than the tolerance is a regression: exit 1. Writes the comparison "
        "as HTML into NEW's folder.",
    )
    compare.add_argument("base", type=Path, metavar="BASE")
    compare.add_argument("new", type=Path, metavar="NEW")
    compare.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="SHARE",
        help=f"relative change treated as noise (default {DEFAULT_TOLERANCE:g} = "
        f"{DEFAULT_TOLERANCE:.0%})",
    )

    locust = commands.add_parser(
        "locust",
        help="the load scenario through Locust's master and workers (headless or web UI)",
        description="Start the stack, a Locust master and --local-workers workers; each worker"
        " runs the load scenario's subscribers and completers for a slice of the projects and"
        " reports requests and pushed events (with their real latency) to Locust's statistics."
        " The workers' histories are merged and judged like `run load`'s (same report).",
    )
    locust.add_argument("--projects", type=_positive_int, default=None)
    locust.add_argument("--rate", type=_positive_float, default=None, metavar="PER_S")
    locust.add_argument("--duration", type=_positive_float, default=None, metavar="SECONDS")
    locust.add_argument("--seed", type=_seed, default=1)
    _add_target_flag(locust, many=True)
    locust.add_argument("--slo", type=Path, default=None, metavar="FILE")
    locust.add_argument("--slo-override", action="append", default=[], metavar="NAME=TARGET")
    locust.add_argument("--flaw", action="append", default=[], metavar="NAME")
    locust.add_argument("--app-processes", type=_positive_int, default=1, metavar="N")
    locust.add_argument("--fanout", choices=FANOUTS, default="redis")
    locust.add_argument("--reports-dir", type=Path, default=Path("reports"))
    locust.add_argument(
        "--workers", type=_positive_int, default=2, metavar="N", help="Locust workers in all"
    )
    locust.add_argument(
        "--local-workers",
        type=int,
        default=None,
        metavar="N",
        help="workers started on this machine (default: all); the others connect with"
        " `locust -f harness/scale/locustfile.py --worker --master-host HOST`",
    )
    locust.add_argument(
        "--headless", action="store_true", help="no web UI: start at once, end by itself"
    )
    locust.add_argument("--master-bind-host", default="127.0.0.1")
    locust.add_argument(
        "--master-bind-port", type=int, default=0, help="default: a free port (all workers local)"
    )
    locust.add_argument("--web-host", default="127.0.0.1")
    locust.add_argument("--web-port", type=int, default=8089)
    _add_subscribers_flag(locust)
    _add_stack_flags(locust)
    _add_no_proxy_flag(locust)

    listing = commands.add_parser("list", help="list the scenarios and the flaws")
    _add_target_flag(listing, many=True)
    listing.add_argument(
        "--checks",
        action="store_true",
        help="list every invariant the checks judge, and the scenarios that judge it",
    )

    selfcheck = commands.add_parser(
        "selfcheck",
        help="prove the harness has teeth: every scenario passes on the sound pipeline and "
        "fails under each flaw it is meant to catch",
    )
    selfcheck.add_argument("--projects", type=_positive_int, default=60)
    selfcheck.add_argument("--rate", type=_positive_float, default=20.0, metavar="PER_S")
    selfcheck.add_argument("--duration", type=_positive_float, default=3.0, metavar="SECONDS")
    selfcheck.add_argument("--seed", type=_seed, default=1)
    selfcheck.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run every cell N times, with seeds --seed, --seed+1, ...: a cell counts as"
        " expected only if all N runs answer as expected (finds a flaky catch)",
    )
    selfcheck.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="only the cells of this scenario (repeatable)",
    )
    selfcheck.add_argument(
        "--flaw",
        action="append",
        default=[],
        metavar="NAME",
        help="only the cells of this flaw, plus the sound pipeline (repeatable)",
    )
    selfcheck.add_argument("--reports-dir", type=Path, default=Path("reports"))
    _add_target_flag(selfcheck, many=False)
    _add_stack_flags(selfcheck)

    serve = commands.add_parser(
        "serve",
        help="run the reference pipeline against a stack (python -m reference_impl)",
        description="Run the reference pipeline (API, Socket.IO, queue worker, relay). "
        "Every argument after 'serve' goes to python -m reference_impl; see 'serve --help'.",
        add_help=False,
    )
    serve.add_argument("app_args", nargs=argparse.REMAINDER)

    faults = commands.add_parser("faults", help="the embedded Toxiproxy-compatible fault proxy")
    faults_commands = faults.add_subparsers(dest="faults_command", metavar="ACTION", required=True)
    faults_serve = faults_commands.add_parser(
        "serve",
        help="run the embedded Toxiproxy-compatible server until Ctrl-C",
        description="Serve Toxiproxy's v2 HTTP API on 127.0.0.1, so Toxiproxy's own CLI, "
        "toxiproxy-python or any Toxiproxy client can drive it.",
    )
    faults_serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)"
    )
    faults_serve.add_argument(
        "--port", type=_port, default=8474, help="API port (default 8474, 0 = any)"
    )
    faults_serve.add_argument(
        "--seed", type=_seed, default=None, help="seed of toxicity rolls and jitter (reproducible)"
    )
    return parser


def _add_target_flag(parser: argparse.ArgumentParser, *, many: bool) -> None:
    parser.add_argument(
        "--target",
        action="append" if many else "store",
        default=None,
        metavar="FILE|reference",
        help="what is under test: a target file (TOML, docs/targets.md) or 'reference' (the"
        " default; env ALERTBENCH_TARGET)"
        + (
            "; repeat it to run the same scenarios on each, one after another, and compare"
            if many
            else ""
        ),
    )


def _targets(chosen: Sequence[str] | str | None) -> list[Target]:
    """The targets named by --target (or ALERTBENCH_TARGET), validated now."""
    if chosen is None or not chosen:
        names = [os.environ.get("ALERTBENCH_TARGET") or "reference"]
    else:
        names = [chosen] if isinstance(chosen, str) else list(chosen)
    targets = [load_target(name) for name in names]
    seen = [t.name for t in targets]
    if len(set(seen)) != len(seen):
        raise ConfigError("--target", f"two targets share a name: {', '.join(seen)}")
    return targets


def _add_subscribers_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subscribers",
        choices=SUBSCRIBERS,
        default="assignees",
        help="load only: which users connect: the assignees of the run's completions"
        " (default), or all: every member of a project, idle ones too (10,000 projects"
        " connect about 10,000 clients)",
    )


def _add_no_proxy_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-proxy",
        action="store_true",
        help="run without Toxiproxy: clients and the app connect directly to Postgres, Redis"
        " and the app (saves the proxy's CPU; scenarios that inject faults through it are"
        " refused; the report says the proxy was bypassed)",
    )


def _add_stack_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        choices=PROVIDERS,
        help="force a provider for every service (default: external, then docker, then embedded; "
        "env ALERTBENCH_STACK)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="how long a service may take to become ready (default 30)",
    )


def _stack_table(stack: Stack, checked: dict[str, str] | None) -> Table:
    table = Table(title="alertbench stack", show_header=True)
    table.add_column("service")
    table.add_column("provider")
    table.add_column("address", overflow="fold")
    table.add_column("ready in")
    table.add_row(
        "postgres",
        stack.providers["postgres"],
        stack.postgres.dsn,
        f"{stack.startup_s.get('postgres', 0.0):.2f} s",
    )
    table.add_row(
        "redis",
        stack.providers["redis"],
        stack.redis.url,
        f"{stack.startup_s.get('redis', 0.0):.2f} s",
    )
    for index, url in enumerate(stack.app_urls):
        flaws = ", ".join(sorted(stack.app.spec.flaws)) if stack.app else ""
        table.add_row(f"app{index or ''}", "reference", url, flaws or "no flaw")
    table.caption = f"ready in {stack.startup_s['total']:.2f} s"
    if checked:
        table.caption += " · checked: " + checked["postgres"].split(" on ")[0] + ", redis PONG"
    return table


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """Make SIGTERM behave like Ctrl-C, so ``with`` blocks tear down in order."""
    raise KeyboardInterrupt(f"signal {signum}")


def _print_stack(stack: Stack, checked: dict[str, str] | None, as_json: bool, out: Console) -> None:
    if as_json:
        payload = stack.describe()
        if checked is not None:
            payload["check"] = checked
        out.file.write(json.dumps(payload) + "\n")
        out.file.flush()
    else:
        out.print(_stack_table(stack, checked))
        if checked is None:
            out.print("Press Ctrl-C to stop.")


def _cmd_stack_up(args: argparse.Namespace, out: Console) -> int:
    config = StackConfig.from_env(provider=args.stack, startup_timeout_s=args.startup_timeout)
    if (args.flaw or args.app_processes != 1) and not args.app:
        raise ConfigError("--flaw/--app-processes", "only make sense with --app")
    _check_flaws(args.flaw)
    spec = AppSpec(flaws=frozenset(args.flaw), processes=args.app_processes) if args.app else None
    with start_stack(config) as stack:
        try:
            if spec is not None:
                stack.start_app(spec)
            checked = stack.check() if args.check else None
            _print_stack(stack, checked, args.json, out)
            # Hold until SIGINT or SIGTERM, which both arrive as
            # KeyboardInterrupt (possibly while printing, hence the wide try).
            while not args.check:
                signal.pause()
        except KeyboardInterrupt:
            if args.check:
                raise
    return EXIT_OK


def _cmd_stack_reap(args: argparse.Namespace, out: Console) -> int:
    config = StackConfig.from_env()
    reaped = reap_leftovers(config.tmp_root)
    for run in reaped:
        out.print(f"removed {run.path} (owner {run.owner_pid}, stopped {list(run.killed_pids)})")
    if not reaped:
        out.print("nothing to reap")
    return EXIT_OK


def _check_flaws(names: Sequence[str], targets: Sequence[Target] | None = None) -> None:
    """Reject unknown flaw names before anything starts, listing the valid ones."""
    for target in targets or [load_target("reference")]:
        target.check_flaws(names)


def _cmd_selfcheck(args: argparse.Namespace, out: Console) -> int:
    import scenarios as suite
    from harness.report import new_run_id
    from harness.runner import RunOptions, self_check
    from harness.scenario import RunParams

    (target,) = _targets(args.target)
    params = RunParams(
        projects=args.projects,
        rate_per_s=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        drain_s=10.0,
    )
    suite.get(list(args.scenario))  # unknown names fail here, listing the known ones
    _check_flaws(args.flaw, [target])
    matrix = {
        flaw: tuple(n for n in names if not args.scenario or n in args.scenario)
        for flaw, names in suite.CATCHES.items()
        if (not args.flaw or flaw in args.flaw) and flaw in target.all_flaws
    }
    matrix = {flaw: names for flaw, names in matrix.items() if names}
    if not matrix:
        raise ConfigError(
            "--scenario/--flaw", "no cell of the self-check matrix matches (see README's matrix)"
        )
    run_id = new_run_id("selfcheck")
    run_dir = args.reports_dir / run_id
    options = RunOptions(reports_dir=run_dir, run_id=run_id, nested=True)
    config = StackConfig.from_env(
        provider=args.stack, startup_timeout_s=args.startup_timeout, seed=args.seed
    )
    with _run_folder(out, args.reports_dir, run_id, show=False), start_stack(config) as stack:
        result = event_loop.run(
            self_check(
                stack,
                params,
                matrix,
                suite.SCENARIOS,
                options=options,
                target=target,
                repeat=args.repeat,
                progress=lambda line: out.print(escape(line), highlight=False),
            )
        )
    table = Table(title=f"self-check: {result.verdict.upper()}")
    for column in ("scenario", "flaw", "expected", "actual", "runs as expected", "why"):
        table.add_column(column, overflow="fold")
    for cell in result.self_check:
        table.add_row(
            cell.scenario,
            cell.flaw,
            cell.expected,
            cell.actual,
            f"{cell.as_expected}/{cell.runs}",
            escape(cell.reason),
        )
    uncaught = sorted(f for f in target.all_flaws if f not in suite.CATCHES)
    table.caption = (
        f"target {target.name}; its flaws not caught by any scenario yet:"
        f" {', '.join(uncaught) or 'none'}"
    )
    out.print(table)
    out.print(f"report: {run_dir / 'matrix' / 'report.html'}")
    return result.exit_code


@contextlib.contextmanager
def _run_folder(out: Console, reports_dir: Path, run_id: str, *, show: bool) -> Iterator[None]:
    """However the run ends (an interruption too), its folder gets its index and
    ``reports/latest``; with ``show``, the run's summary is the last line."""
    from harness.report.suite import finish_run

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    command = shlex.join(["alertbench", *sys.argv[1:]])
    try:
        yield
    finally:
        run_dir = reports_dir / run_id
        if run_dir.exists():
            line = finish_run(reports_dir, run_id, started_at=started_at, command=command)
            if show:
                out.print(f"run: {run_dir / 'index.html'}")
                out.print(escape(line), highlight=False)


def _cmd_compare(args: argparse.Namespace, out: Console) -> int:
    from harness.report.compare import compare_runs, load_side

    base, new = load_side(args.base), load_side(args.new)
    comparison = compare_runs(
        base,
        new,
        tolerance=args.tolerance,
        base_name=args.base.resolve().name,
        new_name=args.new.resolve().name,
    )
    out.print(escape(comparison.text()), highlight=False)
    folder = args.new.resolve()
    folder = folder if folder.is_dir() else folder.parent
    html = comparison.write_html(folder / f"compare-{args.base.resolve().name}.html")
    out.print(f"comparison: {html}")
    worse = comparison.regressions
    if worse:
        out.print(
            "regressions beyond the tolerance: "
            + "; ".join(f"{name}: {', '.join(figures)}" for name, figures in worse.items()),
            highlight=False,
        )
        return EXIT_FAILED
    out.print(f"no regression beyond {args.tolerance:.0%}")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace, out: Console) -> int:
    from scenarios import CATCHES, MAIN_SUITE, SCENARIOS, judged_by

    if args.checks:
        from harness.checks.catalog import INVARIANTS

        checks = Table(title="what the checks judge (--checks)")
        checks.add_column("check", no_wrap=True)  # names are copied into commands
        checks.add_column("invariant")
        checks.add_column("judged in")
        for check, scenarios in judged_by().items():
            checks.add_row(check, INVARIANTS.get(check, ""), ", ".join(scenarios) or "-")
        out.print(checks)
        return EXIT_OK
    table = Table(title="alertbench scenarios")
    table.add_column("scenario")
    table.add_column("main suite")
    table.add_column("what it does")
    for name, scenario in SCENARIOS.items():
        table.add_row(name, "yes" if name in MAIN_SUITE else "", scenario.summary)
    out.print(table)
    for target in _targets(args.target):
        flaws = Table(title=f"flaws (--flaw NAME) of target {target.name}")
        flaws.add_column("flaw")
        flaws.add_column("what it breaks")
        flaws.add_column("caught by")
        for flaw, description in target.all_flaws.items():
            flaws.add_row(flaw, description, ", ".join(CATCHES.get(flaw, ())) or "-")
        out.print(flaws)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace, out: Console) -> int:
    import scenarios as suite
    from harness.report import RunResults, new_run_id
    from harness.report.compare import compare_runs, load_side
    from harness.report.side_by_side import write_side_by_side
    from harness.runner import RunOptions, run_scenarios, sweep_rates
    from harness.scenario import RunParams, check_proxy_faults

    chosen = suite.get(list(args.scenarios) or list(suite.MAIN_SUITE))
    # Before anything starts: a fault scenario cannot run without the proxy.
    check_proxy_faults(chosen, bypassed=args.no_proxy)
    targets = _targets(args.target)
    _check_flaws(args.flaw, targets)
    # Read the baseline now: a bad path fails before anything starts (and
    # `reports/latest` is resolved before this run moves it).
    baseline = load_side(args.baseline) if args.baseline is not None else None
    baseline_name = args.baseline.resolve().name if args.baseline is not None else ""
    defaults = RunParams()
    params = RunParams(
        projects=args.projects or defaults.projects,
        rate_per_s=args.rate or defaults.rate_per_s,
        duration_s=args.duration or defaults.duration_s,
        seed=args.seed,
        flaws=frozenset(args.flaw),
        app_processes=args.app_processes,
        fanout=args.fanout,
        workers=args.workers,
        locust=getattr(args, "locust_options", None),
        subscribers=args.subscribers,
    )
    if params.workers and any(s.name != "load" for s in chosen):
        raise ConfigError("--workers", "only the load scenario is sharded (`run load --workers N`)")
    if params.subscribers != "assignees" and any(s.name != "load" for s in chosen):
        raise ConfigError(
            "--subscribers",
            "only the load scenario chooses its clients (`run load --subscribers all`)",
        )
    display, show, interval_s = _live_display(out)
    run_id = new_run_id("run")  # a random tail: two runs in one second differ
    run_dir = args.reports_dir / run_id
    options = RunOptions(
        slo_file=args.slo,
        slo_overrides=tuple(args.slo_override),
        reports_dir=run_dir,
        run_id=run_id,
        nested=True,
        live=show,
        live_interval_s=interval_s,
    )
    # Fail on a bad SLO file or override before starting anything.
    from harness.slo import load_slos

    for scenario in chosen:
        load_slos(args.slo, scenario=scenario.slos, overrides=list(args.slo_override))
    config = StackConfig.from_env(
        provider=args.stack,
        startup_timeout_s=args.startup_timeout,
        seed=args.seed,
        proxy=not args.no_proxy,
    )

    def progress(line: str) -> None:
        out.print(f"[dim]{datetime.now():%H:%M:%S}[/] {escape(line)}", highlight=False)

    rates = _sweep_rates(args.sweep, params.rate_per_s) if args.sweep is not None else None
    if rates is not None and len(chosen) != 1:
        raise ConfigError("--sweep", "sweeps one scenario at a time (e.g. `run load --sweep`)")
    names = ", ".join(t.name for t in targets)
    progress(f"run {run_id}: {', '.join(s.name for s in chosen)} on {names}")
    per_target: dict[str, list[RunResults]] = {}
    with _run_folder(out, args.reports_dir, run_id, show=True):
        with start_stack(config) as stack, display:
            bypassed = ", Toxiproxy bypassed (--no-proxy)" if stack.proxy_bypassed else ""
            progress(
                f"stack ready in {stack.startup_s['total']:.2f} s"
                f" ({stack.providers['postgres']}{bypassed})"
            )
            for target in targets:
                # One run id per target when several are compared; same seed and schedule.
                step = options
                if len(targets) > 1:
                    step = dataclasses.replace(
                        options,
                        run_id=f"{options.run_id}-{target.name}",
                        folder_prefix=f"{target.name}-",
                    )
                if rates is not None:
                    per_target[target.name] = event_loop.run(
                        sweep_rates(
                            chosen[0],
                            stack,
                            params,
                            rates,
                            options=step,
                            target=target,
                            progress=progress,
                        )
                    )
                else:
                    per_target[target.name] = event_loop.run(
                        run_scenarios(
                            chosen, stack, params, options=step, target=target, progress=progress
                        )
                    )
        codes: list[int] = []
        for target in targets:
            results = per_target[target.name]
            if rates is not None:
                out.print(_sweep_table(results, title=f"rate sweep: {target.name}"))
                codes.append(EXIT_OK if results and results[0].exit_code == 0 else EXIT_FAILED)
                continue
            for result in results:
                out.print(_results_table(result, target=target.name if len(targets) > 1 else None))
            codes.append(max(r.exit_code for r in results))
        if len(targets) > 1:
            html = write_side_by_side(
                per_target, options.reports_dir / "compare", sweep=rates is not None
            )
            out.print(f"side by side: {html}")
        code = max(codes)
        if baseline is not None:
            new = load_side(run_dir)
            comparison = compare_runs(
                baseline, new, tolerance=args.tolerance, base_name=baseline_name, new_name=run_id
            )
            out.print(escape(comparison.text()), highlight=False)
            out.print(
                f"compared with the baseline: {comparison.write_html(run_dir / 'baseline.html')}"
            )
            if comparison.regressions and code == EXIT_OK:
                code = EXIT_FAILED
    return code


def _cmd_locust(args: argparse.Namespace, out: Console) -> int:
    import importlib.util

    from harness.scenario import LocustOptions

    # Found, not imported: Locust monkey-patches the standard library with gevent.
    if importlib.util.find_spec("locust") is None:
        raise ConfigError("locust", "is not installed: pip install 'alertbench[locust]'")

    local = args.workers if args.local_workers is None else args.local_workers
    if args.master_bind_port == 0 and local < args.workers:
        raise ConfigError("--master-bind-port", "give one when workers come from other machines")
    args.locust_options = LocustOptions(
        headless=args.headless,
        local_workers=local,
        master_host=args.master_bind_host,
        master_port=args.master_bind_port,
        web_host=args.web_host,
        web_port=args.web_port,
    )
    args.scenarios, args.sweep, args.baseline = ["load"], None, None
    return _cmd_run(args, out)


def _sweep_rates(text: str, start: float) -> list[float]:
    if not text:
        return [start * 2**i for i in range(7)]
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError("--sweep", f"expected comma-separated rates, got {text!r}") from None
    if not rates or any(r <= 0 for r in rates) or rates != sorted(rates):
        raise ConfigError("--sweep", f"rates must be positive and rising, got {text!r}")
    return rates


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


#: Seconds between plain status lines when the output is not a terminal (CI).
PLAIN_STATUS_INTERVAL_S = 10.0


def _live_display(
    out: Console,
) -> tuple[contextlib.AbstractContextManager[Any], Callable[[str], None], float]:
    """(context, sink, interval): a rich live line on a terminal, else plain lines."""
    if out.is_terminal:
        display = Live(Text(""), console=out, refresh_per_second=4, transient=True)
        return display, lambda line: display.update(Text(line)), 1.0

    def plain(line: str) -> None:
        out.print(f"[dim]{datetime.now():%H:%M:%S}[/] {escape(line)}", highlight=False)

    return contextlib.nullcontext(), plain, PLAIN_STATUS_INTERVAL_S


def _sweep_table(results: Sequence[Any], *, title: str = "rate sweep") -> Table:
    table = Table(title=title)
    for column in (
        "rate/s",
        "achieved/s",
        "generator",
        "request p99 ms",
        "delivery p99 ms",
        "CPU ms/op",
        "machine busy",
        "verdict",
    ):
        table.add_column(column)
    best = None
    for result in results:
        gen = result.generator or {}
        request = result.latencies.get("request.corrected")
        delivery = result.latencies.get("delivery.new_alert")
        res = result.resources or {}
        table.add_row(
            f"{result.config.get('rate_per_s', 0):g}",
            f"{gen.get('achieved_rate_per_s', 0):.0f}",
            "valid" if gen.get("valid") else "INVALID",
            _ms(request.summary.p99_ms if request else None),
            _ms(delivery.summary.p99_ms if delivery else None),
            _ms(res.get("total_cpu_ms_per_op")),
            "n/a" if res.get("machine_busy_pct") is None else f"{res['machine_busy_pct']:.0f} %",
            result.verdict,
        )
        if result.exit_code == 0:
            best = result.config.get("rate_per_s")
    table.caption = (
        f"highest rate within every check and SLO: {best:g}/s" if best else "no rate passed"
    )
    return table


def _results_table(result: Any, *, target: str | None = None) -> Table:
    colour = {"pass": "green", "fail": "red"}.get(result.verdict, "yellow")
    on = f" on {escape(target)}" if target else ""
    table = Table(title=f"{result.scenario}{on}: [{colour}]{result.verdict.upper()}[/]")
    table.add_column("check / SLO")
    table.add_column("verdict")
    table.add_column("detail", overflow="fold")
    for check in result.checks:
        mark = {True: "pass", False: "FAIL"}.get(check.valid, "unknown")
        table.add_row(check.name, mark, escape(check.summary))
    for slo in result.slos:
        measured = "n/a" if slo.measured is None else f"{slo.measured:.4g}"
        table.add_row(
            f"SLO {slo.name}",
            slo.status if slo.status != "fail" else "FAIL",
            f"{measured} {slo.unit} ({slo.op} {slo.target:g})"
            + (f"; {escape(slo.note)}" if slo.note else ""),
        )
    if result.generator is not None:
        gen = result.generator
        table.add_row(
            "generator",
            "valid" if gen.get("valid") else "INVALID",
            escape(str(gen.get("invalid_reason") or "")),
        )
    if result.resources and result.resources.get("roles"):
        res = result.resources
        table.add_row(
            "CPU",
            "SATURATED" if res.get("saturated") else "",
            escape(resources_summary(res)),
        )
    proxy = proxy_summary(result.stack)
    if proxy is not None and result.stack.get("proxy_bypassed"):
        table.add_row("proxy", "BYPASSED", escape(proxy))
    for error in result.errors:
        table.add_row("error", "ERROR", escape(error))
    logs = (result.extra or {}).get("target_logs") or {}
    if logs and result.verdict != "pass":
        # Where to look first when a target misbehaved.
        files = ", ".join(
            f"{log['file']} ({log['bytes'] / 1024:,.1f} KB)"
            for log in logs.values()
            if isinstance(log, dict) and "file" in log and "bytes" in log
        )
        table.add_row("target logs", "", escape(f"{files}, beside the scenario's report.html"))
    if result.not_applicable:
        table.add_row("scenario", "not applicable", escape(result.not_applicable))
    return table


def _cmd_faults_serve(args: argparse.Namespace, out: Console) -> int:
    from harness.faults import EmbeddedToxiproxy

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError("--host", f"must be a loopback address, got {args.host!r}")

    async def run() -> None:
        async with EmbeddedToxiproxy(args.host, args.port, seed=args.seed) as server:
            out.print(
                f"Toxiproxy-compatible API on {server.url} (seed {server.seed}); Ctrl-C stops"
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(run())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alertbench`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        # Everything after 'serve' belongs to the app's own parser (--help too).
        # A process, not an import: the harness never imports the reference.
        with contextlib.suppress(KeyboardInterrupt):
            return subprocess.call([sys.executable, "-m", "reference_impl", *argv[1:]])
        return 130
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    handlers = {
        ("stack", "up"): _cmd_stack_up,
        ("stack", "reap"): _cmd_stack_reap,
        ("faults", "serve"): _cmd_faults_serve,
        ("run", ""): _cmd_run,
        ("locust", ""): _cmd_locust,
        ("list", ""): _cmd_list,
        ("compare", ""): _cmd_compare,
        ("selfcheck", ""): _cmd_selfcheck,
    }
    action = getattr(args, f"{args.command}_command", "")
    handler = handlers[(args.command, action)]
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return handler(args, out)
    except AlertbenchError as exc:
        err.print(f"[bold red]alertbench: error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_HARNESS
    except event_loop.Interrupted as exc:
        err.print(
            f"alertbench: {exc}; everything it started is stopped, and the scenario that was"
            " running has a partial report marked INTERRUPTED",
            highlight=False,
        )
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("alertbench: interrupted")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

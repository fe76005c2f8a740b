"""A run of several scenarios, and the list of every run.

::

    reports/
      index.html                    every run, newest first, with key figures and trends
      latest -> 20261201T132858Z-run-3f2a1b
      20261201T132858Z-run-3f2a1b/
        index.html  summary.json  junit.xml     the run: every scenario's verdict and figures
        load/  delivery/  ...                   each scenario's own report (report.html, ...)

:func:`summary_line` is the one line the CLI ends a run with, e.g.
``8 scenarios: 7 passed, 1 failed (load: SLO generation_p99_ms 125 ms > 100)``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.report._svg import Series, line_chart
from harness.report.html import page
from harness.report.junit import to_junit_xml
from harness.report.results import ResultsFormatError, RunResults, read_results
from harness.report.run_dir import point_latest

__all__ = [
    "KEY_FIGURES",
    "finish_run",
    "summary_line",
    "update_reports_index",
    "write_suite",
]

SUMMARY = "summary.json"

#: (label, how to read it from a scenario's results) of the figures a run lists.
KEY_FIGURES: tuple[tuple[str, str], ...] = (
    ("request p99 ms", "latency:request.corrected"),
    ("commit -> receipt p99 ms", "latency:delivery.new_alert"),
    ("request -> receipt p99 ms", "latency:receipt_after_request.new_alert"),
    ("delivery rate %", "slo:delivery_rate"),
    ("duplication rate %", "slo:duplication_rate"),
    ("queries per request", "slo:queries_per_request"),
    ("reconnection p99 ms", "slo:reconnection_p99_ms"),
)


def _figure(result: RunResults, source: str) -> float | None:
    kind, _, name = source.partition(":")
    if kind == "latency":
        metric = result.latencies.get(name)
        return metric.summary.p99_ms if metric is not None and metric.summary.count else None
    for slo in result.slos:
        if slo.name == name and slo.measured is not None:
            return float(slo.measured)
    return None


def _why(result: RunResults) -> str:
    """The first reason a scenario did not pass, in a few words."""
    for slo in result.slos:
        if slo.status == "fail" and slo.measured is not None:
            return f"SLO {slo.name} {slo.measured:.4g} {slo.unit}, target {slo.op} {slo.target:g}"
    for check in result.checks:
        if check.valid is False:
            return f"{check.name}: {check.summary}"
    if result.not_applicable:
        return result.not_applicable
    if result.errors:
        return result.errors[0].splitlines()[0]
    for check in result.checks:
        if check.valid == "unknown":
            return f"{check.name} unknown: {check.summary}"
    return ""


def summary_line(results: Sequence[RunResults]) -> str:
    """``N scenarios: a passed, b failed, ... (first failure: why)``."""
    order = ("pass", "fail", "unknown", "invalid", "error", "not_applicable", "interrupted")
    words = {"pass": "passed", "fail": "failed", "not_applicable": "not applicable"}
    counts = {v: sum(r.verdict == v for r in results) for v in order}
    parts = [f"{n} {words.get(v, v)}" for v, n in counts.items() if n]
    worst = next((r for r in results if r.verdict not in ("pass", "not_applicable")), None)
    noun = "scenario" if len(results) == 1 else "scenarios"
    line = f"{len(results)} {noun}: " + ", ".join(parts)
    if worst is not None:
        label = str(worst.target.get("name", "")) if worst.target else ""
        where = f"{worst.scenario} on {label}" if label and label != "reference" else worst.scenario
        line += f" ({where}: {_why(worst)})"
    return line


def _entry(result: RunResults, folder: str) -> dict[str, Any]:
    return {
        "scenario": result.scenario,
        "target": (result.target or {}).get("name", "reference"),
        "folder": folder,
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "why": _why(result) if result.verdict != "pass" else "",
        "figures": {label: _figure(result, source) for label, source in KEY_FIGURES},
    }


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="muted">n/a</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:,.4g}</td>'
    return f"<td>{escape(str(value))}</td>"


def write_suite(
    run_dir: Path,
    run_id: str,
    results: Sequence[tuple[str, RunResults]],
    *,
    started_at: str,
    command: str = "",
) -> dict[str, Any]:
    """Write the run's ``index.html``, ``summary.json`` and combined ``junit.xml``.

    ``results`` are ``(folder, results)`` pairs: each scenario's report sits
    in ``run_dir/folder/``. Returns the summary."""
    entries = [_entry(r, folder) for folder, r in results]
    line = summary_line([r for _, r in results])
    summary = {
        "run_id": run_id,
        "started_at": started_at,
        "command": command,
        "line": line,
        "exit_code": max((r.exit_code for _, r in results), default=0),
        "scenarios": entries,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    labels = [label for label, _ in KEY_FIGURES]
    rows = []
    for e in entries:
        link = f'<a href="{escape(e["folder"])}/report.html">{escape(e["scenario"])}</a>'
        rows.append(
            f"<tr><td>{link}</td><td>{escape(e['target'])}</td>"
            f'<td class="{escape(e["verdict"])}">{escape(e["verdict"])}</td>'
            + "".join(_cell(e["figures"][label]) for label in labels)
            + f"<td>{escape(e['why'])}</td></tr>"
        )
    head = "".join(
        f"<th>{escape(h)}</th>" for h in ("scenario", "target", "verdict", *labels, "why")
    )
    body = (
        f"<h1>alertbench run {escape(run_id)}</h1>"
        f"<p>{escape(line)}</p>"
        + (f"<p class='muted'>{escape(command)}</p>" if command else "")
        + f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        + '<p><a href="../index.html">every run</a> · <a href="junit.xml">JUnit XML</a></p>'
    )
    (run_dir / "index.html").write_text(page(f"alertbench {run_id}", body), encoding="utf-8")
    (run_dir / "junit.xml").write_text(_combined_junit([r for _, r in results]), encoding="utf-8")
    return summary


def _combined_junit(results: Sequence[RunResults]) -> str:
    root = ET.Element("testsuites", name="alertbench")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in results:
        suites = ET.fromstring(to_junit_xml(result).split("?>", 1)[-1])
        for suite in suites:
            root.append(suite)
            for key in totals:
                totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def update_reports_index(reports_dir: Path, *, limit: int = 200) -> Path:
    """Rewrite ``reports_dir/index.html``: every run (newest first, at most
    ``limit``) with its verdict line, and a trend of each key figure per
    scenario across the runs."""
    summaries: list[dict[str, Any]] = []
    runs = [p for p in reports_dir.glob(f"*/{SUMMARY}") if not p.parent.is_symlink()]  # latest
    for path in sorted(runs, reverse=True)[:limit]:
        try:
            summaries.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a run being written, or not ours: skip it, never fail
    rows = "".join(
        f'<tr><td><a href="{escape(s["run_id"])}/index.html">{escape(s["run_id"])}</a></td>'
        f'<td class="{"pass" if s.get("exit_code") == 0 else "fail"}">'
        f"{escape(str(s.get('exit_code')))}</td><td>{escape(s.get('line', ''))}</td></tr>"
        for s in summaries
    )
    charts = []
    oldest_first = list(reversed(summaries))
    for label, _ in KEY_FIGURES:
        series: dict[str, list[tuple[float, float]]] = {}
        for x, summary in enumerate(oldest_first):
            for e in summary.get("scenarios", []):
                value = (e.get("figures") or {}).get(label)
                if isinstance(value, int | float):
                    name = f"{e['scenario']} ({e.get('target', 'reference')})"
                    series.setdefault(name, []).append((float(x), float(value)))
        if any(len(points) > 1 for points in series.values()):
            charts.append(
                line_chart(
                    [Series(name, points, dots=True) for name, points in sorted(series.items())],
                    title=label,
                    x_label="run (oldest to newest)",
                    y_label=label,
                )
            )
    body = (
        "<h1>alertbench runs</h1>"
        f"<table><tr><th>run</th><th>exit</th><th>verdicts</th></tr>{rows}</table>"
        + ("<h2>Trends</h2>" + "".join(charts) if charts else "")
    )
    index = reports_dir / "index.html"
    reports_dir.mkdir(parents=True, exist_ok=True)
    index.write_text(page("alertbench runs", body), encoding="utf-8")
    return index


def finish_run(reports_dir: Path, run_id: str, *, started_at: str, command: str = "") -> str:
    """Index a run's folder from what is on disk (so an interrupted run gets one
    too), point ``reports_dir/latest`` at it, refresh ``reports_dir/index.html``;
    return the summary line."""
    run_dir = reports_dir / run_id
    found: list[tuple[str, RunResults]] = []
    for path in sorted(run_dir.glob("*/results.json")):
        try:
            found.append((path.parent.name, read_results(path)))
        except (OSError, ValueError, ResultsFormatError):
            continue
    found.sort(key=lambda pair: (pair[1].started_at, pair[1].run_id))
    summary = write_suite(run_dir, run_id, found, started_at=started_at, command=command)
    point_latest(reports_dir, run_id)
    update_reports_index(reports_dir)
    return str(summary["line"])

"""Targets side by side: the same scenarios, seed and schedule on each target.

``alertbench run load --target reference --target other.toml`` runs every
scenario on each target in turn and then writes ``<run-id>-compare/``
(``compare.json`` and a self-contained ``compare.html``): per scenario and
target the verdict, the rate achieved (and for a sweep, the highest rate
that held every check and SLO), request and receipt latencies, and the CPU
per completion of each process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.report.html import page
from harness.report.results import RunResults

__all__ = ["side_by_side", "write_side_by_side"]

#: (label, latency name) of the figures compared, p50 and p99 of each.
LATENCIES: tuple[tuple[str, str], ...] = (
    ("request", "request.corrected"),
    ("commit -> receipt", "delivery.new_alert"),
    ("request start -> receipt", "receipt_after_request.new_alert"),
    ("response -> receipt", "receipt_after_response.new_alert"),
)


def _figures(result: RunResults) -> dict[str, Any]:
    gen = result.generator or {}
    row: dict[str, Any] = {
        "verdict": result.verdict,
        "rate_per_s": result.config.get("rate_per_s"),
        "achieved_rate_per_s": gen.get("achieved_rate_per_s"),
        "not_applicable": result.not_applicable,
    }
    for label, name in LATENCIES:
        metric = result.latencies.get(name)
        row[f"{label} p50 ms"] = metric.summary.p50_ms if metric else None
        row[f"{label} p99 ms"] = metric.summary.p99_ms if metric else None
    roles = (result.resources or {}).get("roles") or {}
    row["cpu_ms_per_completion"] = {
        role: figures.get("cpu_ms_per_op") for role, figures in sorted(roles.items())
    }
    row["machine_busy_pct"] = (result.resources or {}).get("machine_busy_pct")
    row["failing"] = [c.name for c in result.checks if c.valid is False] + [
        f"slo:{s.name}" for s in result.slos if s.status == "fail"
    ]
    return row


def side_by_side(per_target: Mapping[str, Sequence[RunResults]], *, sweep: bool) -> dict[str, Any]:
    """Per scenario, per target: the key figures of its run(s).

    With ``sweep`` each target's results are the steps of one rate sweep:
    every step is kept and ``highest_rate_held`` is the last rate that passed.
    """
    scenarios: dict[str, dict[str, Any]] = {}
    for target, results in per_target.items():
        for result in results:
            entry = scenarios.setdefault(result.scenario, {}).setdefault(target, {"runs": []})
            entry["runs"].append({"run_id": result.run_id, **_figures(result)})
        if sweep and results:
            entry = scenarios[results[0].scenario][target]
            held = [run["rate_per_s"] for run in entry["runs"] if run["verdict"] == "pass"]
            entry["highest_rate_held"] = max(held) if held else None
    return {"targets": list(per_target), "sweep": sweep, "scenarios": scenarios}


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="muted">n/a</span>'
    if isinstance(value, float):
        return f"{value:,.1f}"
    return escape(str(value))


def _html(data: Mapping[str, Any]) -> str:
    targets: list[str] = list(data["targets"])
    parts = [
        f"<h1>Targets side by side: {escape(', '.join(targets))}</h1>",
        "<p>The same scenarios, seed and schedule on each target, one after another on the"
        " same machine. Latencies in ms; CPU in ms per completion.</p>",
    ]
    for scenario, by_target in data["scenarios"].items():
        parts.append(f"<h2>{escape(scenario)}</h2>")
        steps = max(len(by_target.get(t, {}).get("runs", [])) for t in targets)
        labels = ["verdict", "rate_per_s", "achieved_rate_per_s"]
        labels += [f"{label} {p} ms" for label, _ in LATENCIES for p in ("p50", "p99")]
        labels += ["machine_busy_pct", "failing", "not_applicable"]
        roles = sorted(
            {
                role
                for t in targets
                for run in by_target.get(t, {}).get("runs", [])
                for role in run["cpu_ms_per_completion"]
            }
        )
        head = "".join(f"<th>{escape(t)}</th>" for t in targets)
        for step in range(steps):
            rows = []
            if data["sweep"] and step == 0:
                held = "".join(
                    f"<td>{_cell(by_target.get(t, {}).get('highest_rate_held'))}</td>"
                    for t in targets
                )
                rows.append(f"<tr><th>highest rate held /s</th>{held}</tr>")
            for label in labels + [f"CPU {role}" for role in roles]:
                cells = []
                for t in targets:
                    runs = by_target.get(t, {}).get("runs", [])
                    run = runs[step] if step < len(runs) else None
                    if run is None:
                        value = None
                    elif label.startswith("CPU "):
                        value = run["cpu_ms_per_completion"].get(label[4:])
                    else:
                        value = run.get(label)
                        if isinstance(value, list):
                            value = ", ".join(value) or "-"
                    cls = ""
                    if label == "verdict" and value in ("pass", "fail"):
                        cls = f' class="{value}"'
                    cells.append(f"<td{cls}>{_cell(value)}</td>")
                rows.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
            caption = f"<p>step {step + 1}</p>" if steps > 1 else ""
            parts.append(f"{caption}<table><tr><th></th>{head}</tr>{''.join(rows)}</table>")
    return page("alertbench targets side by side", "".join(parts))


def write_side_by_side(
    per_target: Mapping[str, Sequence[RunResults]], folder: Path, *, sweep: bool
) -> Path:
    """Write ``compare.json`` and ``compare.html`` into ``folder``; return the HTML's path."""
    data = side_by_side(per_target, sweep=sweep)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compare.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    html = folder / "compare.html"
    html.write_text(_html(data), encoding="utf-8")
    return html

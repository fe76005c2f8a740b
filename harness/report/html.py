"""The self-contained HTML report: one file, inline CSS and SVG, no scripts, no external assets."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any, Final

from harness.metrics import STANDARD_PERCENTILES
from harness.report._svg import Series, Shade, line_chart
from harness.report.baseline import Comparison
from harness.report.results import RunResults, SelfCheckCell

__all__ = ["comparison_html", "latency_words", "page", "render_html"]

_CSS: Final = " ".join(
    [
        "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;",
        "color:#1f2937;padding:0 1rem}",
        "h1{font-size:1.5rem;margin-bottom:.2rem}",
        "h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}",
        "table{border-collapse:collapse;margin:.5rem 0;width:100%}",
        "th,td{padding:.3rem .6rem;border:1px solid #e5e7eb;text-align:left;vertical-align:top}",
        "th{background:#f9fafb}td.num{text-align:right;font-variant-numeric:tabular-nums}",
        ".pass,.match{background:#dcfce7;color:#14532d}",
        ".fail,.mismatch{background:#fee2e2;color:#7f1d1d}",
        ".unknown,.invalid,.error{background:#fef9c3;color:#713f12}",
        ".not_applicable,.interrupted{background:#e5e7eb;color:#374151}",
        ".badge{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;font-weight:600}",
        ".muted{color:#6b7280}",
        "pre{background:#f3f4f6;padding:.5rem;overflow:auto;max-height:20rem}",
        "svg.chart{max-width:100%;height:auto;background:#fff}",
        "svg .grid{stroke:#e5e7eb}svg .axis{stroke:#9ca3af}",
        "svg .tick,svg .legend,svg .label{font-size:11px;fill:#4b5563}",
        "svg .fault{fill:#f97316;fill-opacity:.18}",
    ]
)

# Percentile p maps to log10(1 / (1 - p)): 90 % -> 1, 99 % -> 2, 99.9 % -> 3 (HdrHistogram style).
_PCT_TICKS: Final = [(0.0, "0%"), (1.0, "90%"), (2.0, "99%"), (3.0, "99.9%"), (4.0, "99.99%")]
_PCT_CAP: Final = 5.0


def _pct_x(percentile: float) -> float:
    rest = 1.0 - percentile / 100.0
    return _PCT_CAP if rest <= 10**-_PCT_CAP else min(_PCT_CAP, math.log10(1.0 / rest))


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    else:
        text = str(value)
    return escape(f"{text} {unit}".strip())


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


PROXY_BYPASSED = (
    "BYPASSED (--no-proxy): the harness's clients and the app connected directly to"
    " Postgres, Redis and the app, without Toxiproxy; no fault could be injected on a hop"
)


def proxy_summary(stack: Mapping[str, Any]) -> str | None:
    """How the run's hops were proxied, for the report and the CLI summary
    (None for results written before this was recorded)."""
    if stack.get("proxy_bypassed"):
        return PROXY_BYPASSED
    toxiproxy = stack.get("toxiproxy")
    if isinstance(toxiproxy, Mapping):
        return f"Toxiproxy ({toxiproxy.get('kind', '?')}) in front of every hop"
    return None


def _header(r: RunResults) -> str:
    target = r.target.get("name", "reference") if r.target else "reference"
    if r.target.get("kind"):
        target += f" ({r.target['kind']}, contract {r.target.get('contract', 'v1')})"
    facts = [
        ("run", r.run_id),
        ("scenario", r.scenario),
        ("target", target),
        ("seed", str(r.seed)),
        ("started", r.started_at),
        ("finished", r.finished_at),
        ("exit code", str(r.exit_code)),
    ]
    proxy = proxy_summary(r.stack)
    if proxy is not None:
        facts.insert(3, ("proxy", proxy))
    items = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    logs = _target_logs(r)
    if logs:
        items += f"<tr><th>target logs</th><td>{logs}</td></tr>"
    errors = "".join(f"<pre class='error'>{escape(e)}</pre>" for e in r.errors)
    if r.not_applicable is not None:
        errors += f"<p class='unknown'>Not applicable: {escape(r.not_applicable)}.</p>"
    config = escape(
        json.dumps({"config": r.config, "stack": r.stack}, indent=2, default=str), quote=False
    )
    extra = ""
    if r.extra:
        text = escape(json.dumps(r.extra, indent=2, default=str), quote=False)
        extra = f"<details><summary>scenario data</summary><pre>{text}</pre></details>"
    return (
        f"<h1>alertbench: {escape(r.scenario)} "
        f'<span class="badge {escape(r.verdict)}">{escape(r.verdict.upper())}</span></h1>'
        f"<table>{items}</table>{errors}"
        f"<details><summary>configuration and stack</summary><pre>{config}</pre></details>" + extra
    )


def _target_logs(r: RunResults) -> str:
    """Links to what each target process wrote (files beside the report)."""
    logs = (r.extra or {}).get("target_logs") or {}
    links = []
    for name, log in logs.items():
        if not isinstance(log, dict) or not isinstance(log.get("file"), str):
            continue
        size = log.get("bytes")
        kb = f" ({size / 1024:,.1f} KB)" if isinstance(size, int | float) else ""
        links.append(f"<a href='{escape(log['file'])}'>{escape(str(name))}</a>{escape(kb)}")
    return ", ".join(links)


def _generator(r: RunResults) -> str:
    g = r.generator
    if g is None:
        return ""
    valid = bool(g.get("valid", True))
    status = "valid" if valid else f"INVALID: {g.get('invalid_reason')}"
    keys = [
        ("planned", ""), ("launched", ""), ("completed", ""), ("planned_rate_per_s", "/s"),
        ("achieved_rate_per_s", "/s"), ("p99_lag_ms", "ms"), ("max_lag_ms", "ms"),
        ("late_starts", ""), ("cap_hits", ""), ("peak_in_flight", ""),
    ]  # fmt: skip
    rows = [[_td(escape(k)), _td(_num(g.get(k), unit), "num")] for k, unit in keys if k in g]
    return (
        "<h2>Load generator</h2>"
        f'<p><span class="badge {"pass" if valid else "invalid"}">{escape(status)}</span></p>'
        + _table(["figure", "value"], rows)
    )


def _slos(r: RunResults) -> str:
    if not r.slos:
        return ""
    rows = [
        [
            _td(f"<b>{escape(v.name)}</b><br><span class='muted'>{escape(v.description)}</span>"),
            _td(_num(v.measured, v.unit), "num"),
            _td(escape(f"{v.op} ") + _num(v.target, v.unit), "num"),
            _td(
                _num(v.margin, v.unit)
                + ("" if v.margin_pct is None else f" ({v.margin_pct:+.1f} %)"),
                "num",
            ),
            _td(
                escape(v.status.upper())
                + (f"<br><span class='note'>{escape(v.note)}</span>" if v.note else ""),
                v.status,
            ),
        ]
        for v in r.slos
    ]
    return "<h2>Service-level objectives</h2>" + _table(
        ["SLO", "measured", "target", "margin", "verdict"], rows
    )


def _checks(r: RunResults) -> str:
    if not r.checks:
        return ""
    rows = []
    for c in r.checks:
        label, cls = (
            ("VALID", "pass")
            if c.valid is True
            else ("INVALID", "fail")
            if c.valid is False
            else ("UNKNOWN", "unknown")
        )
        details = ""
        if c.counterexamples:
            more = c.counterexample_total - len(c.counterexamples)
            text = json.dumps(list(c.counterexamples), indent=2, default=str)
            details = (
                f"<details><summary>{c.counterexample_total} counterexample(s)"
                f"{f', {more} not shown' if more > 0 else ''}</summary>"
                f"<pre>{escape(text, quote=False)}</pre></details>"
            )
        counts = ", ".join(f"{k}={_num(v)}" for k, v in c.counts.items())
        rows.append(
            [
                _td(f"<b>{escape(c.name)}</b>"),
                _td(escape(label), cls),
                _td(escape(c.summary) + f"<br><span class='muted'>{counts}</span>" + details),
            ]
        )
    return "<h2>Checkers</h2>" + _table(["checker", "verdict", "details"], rows)


#: Latency name prefixes, in words (from -> to), for the report.
_LATENCY_WORDS: Final = {
    "request.corrected": "request: intended start -> response (corrected for coordinated omission)",
    "request.raw": "request: sent -> response",
    "delivery.": "commit (the target's clock) -> receipt of {event}",
    "receipt_after_request.": "request start -> receipt of {event}",
    "receipt_after_response.": "response -> receipt of {event}",
}


def latency_words(name: str) -> str:
    """What a latency histogram measures, from -> to, e.g. ``request start ->
    receipt of new_alert (batch generation)``."""
    for prefix, words in _LATENCY_WORDS.items():
        if name == prefix or (prefix.endswith(".") and name.startswith(prefix)):
            event = name[len(prefix) :]
            batch = event.startswith("batch.")
            text = words.format(event=event.removeprefix("batch."))
            return text + (" (batch generation)" if batch else "")
    return name


def _latency(r: RunResults) -> str:
    if not r.latencies:
        return ""
    pcts = [p for p in STANDARD_PERCENTILES if p < 100]
    headers = ["histogram", "measures", "count", *(f"p{p:g}" for p in pcts), "max", "mean"]
    rows = []
    series = []
    for name, metric in sorted(r.latencies.items()):
        s = metric.summary
        values = {50.0: s.p50_ms, 90.0: s.p90_ms, 95.0: s.p95_ms, 99.0: s.p99_ms, 99.9: s.p999_ms}
        rows.append(
            [_td(escape(name)), _td(escape(latency_words(name))), _td(_num(s.count), "num")]
            + [_td(_num(values.get(p), "ms"), "num") for p in pcts]
            + [_td(_num(s.max_ms, "ms"), "num"), _td(_num(s.mean_ms, "ms"), "num")]
        )
        try:
            points = [(_pct_x(p), ms) for p, ms in metric.recorder().distribution()]
        except ValueError:
            points = []
        if points:
            series.append(Series(name, points))
    chart = line_chart(
        series,
        title="Latency by percentile",
        x_label="percentile",
        y_label="latency (ms)",
        x_ticks=_PCT_TICKS,
    )
    return "<h2>Latency</h2>" + _table(headers, rows) + chart


def _shades(r: RunResults, end_s: float) -> list[Shade]:
    return [
        Shade(f.start_s, f.end_s if f.end_s is not None else end_s, f.label, f.kind)
        for f in r.faults
    ]


def _timeline(r: RunResults) -> str:
    if not r.timeline and not r.faults and not r.receipts:
        return ""
    ends = [b.t_s for b in r.timeline] + [b.t_s for b in r.receipts]
    end_s = max(ends + [f.end_s or f.start_s for f in r.faults] + [0.0])
    shades = _shades(r, end_s)
    # The max first, thin and dashed, so that the p99 and p50 stay visible on top.
    series = [
        Series(
            label,
            [(b.t_s, v) for b in r.timeline if (v := getattr(b, attr)) is not None],
            dashed=label == "max",
        )
        for label, attr in (("max", "max_ms"), ("p99", "p99_ms"), ("p50", "p50_ms"))
    ]
    chart = line_chart(
        [s for s in series if s.points],
        title="Request latency over time (faults shaded)",
        x_label="seconds since start",
        y_label="latency (ms)",
        shades=shades,
    )
    chart += _receipt_charts(r, shades)
    faults = ""
    if r.faults:
        rows = [
            [
                _td(escape(f.label)),
                _td(escape(f.kind)),
                _td(escape(f.target)),
                _td(_num(f.start_s, "s"), "num"),
                _td(_num(f.end_s, "s") if f.end_s is not None else "never healed", "num"),
            ]
            for f in r.faults
        ]
        faults = _table(["fault", "kind", "target", "start", "heal"], rows)
    return "<h2>Timeline</h2>" + chart + faults


def _receipt_charts(r: RunResults, shades: list[Shade]) -> str:
    """Received events per second, and their delivery p50/p99, per event type."""
    if not r.receipts:
        return ""
    events = sorted({b.event for b in r.receipts})
    rate = [
        Series(e, [(b.t_s, float(b.count)) for b in r.receipts if b.event == e]) for e in events
    ]
    latency = [
        Series(
            f"{e} {label}",
            [
                (b.t_s, v)
                for b in r.receipts
                if b.event == e and (v := getattr(b, attr)) is not None
            ],
            dashed=label == "p50",
        )
        for e in events
        for label, attr in (("p99", "p99_ms"), ("p50", "p50_ms"))
    ]
    return line_chart(
        rate,
        title="Events received per second, by type (faults shaded)",
        x_label="seconds since start",
        y_label="events per second",
        shades=shades,
    ) + line_chart(
        [s for s in latency if s.points],
        title="Delivery latency over time, by type (commit, else request start -> receipt)",
        x_label="seconds since start",
        y_label="latency (ms)",
        shades=shades,
    )


def _reconnections(r: RunResults) -> str:
    """Each client's outages: time to reconnect and to be caught up."""
    rows = r.extra.get("reconnections")
    if not isinstance(rows, list) or not rows:
        return ""

    def pct(values: list[float], p: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    back = [float(x["reconnected_ms"]) for x in rows if x.get("reconnected_ms") is not None]
    caught = [float(x["caught_up_ms"]) for x in rows if x.get("caught_up_ms") is not None]
    summary = _table(
        ["", "clients", "p50", "p99", "max", "never"],
        [
            [
                _td(label),
                _td(_num(len(values)), "num"),
                _td(_num(pct(values, 50), "ms"), "num"),
                _td(_num(pct(values, 99), "ms"), "num"),
                _td(_num(max(values, default=None), "ms"), "num"),
                _td(_num(len(rows) - len(values)), "num"),
            ]
            for label, values in (("drop -> reconnected", back), ("drop -> caught up", caught))
        ],
    )
    slowest = sorted(rows, key=lambda x: -(x.get("caught_up_ms") or float("inf")))[:25]
    detail = _table(
        ["client", "dropped at", "reconnected after", "caught up after", "why it dropped"],
        [
            [
                _td(escape(str(x["client"]))),
                _td(_num(x["dropped_at_s"], "s"), "num"),
                _td(_num(x["reconnected_ms"], "ms"), "num"),
                _td(_num(x["caught_up_ms"], "ms"), "num"),
                _td(escape(str(x.get("reason", "")))),
            ]
            for x in slowest
        ],
    )
    return (
        f"<h2>Reconnections ({len(rows)} client outages)</h2>{summary}"
        f"<details><summary>the {len(slowest)} slowest to catch up</summary>{detail}</details>"
    )


def _indexes(r: RunResults) -> str:
    """The ``indexes`` scenario's plans and timings as a table."""
    data = r.extra.get("indexes")
    if not isinstance(data, dict) or not data.get("queries"):
        return ""
    rows = [
        [
            _td(
                f"<b>{escape(q['query'])}</b><br><span class='muted'>{escape(q['purpose'])}</span>"
            ),
            _td(escape(", ".join(q.get("indexes_used") or []) or "none")),
            _td(escape(", ".join(q.get("seq_scans") or []) or "none")),
            _td(_num(q.get("with_indexes_ms"), "ms"), "num"),
            _td(_num(q.get("without_indexes_ms"), "ms"), "num"),
            _td("n/a" if q.get("speedup") is None else f"{q['speedup']:g}x", "num"),
            _td("yes" if q.get("judged") else "reported only"),
        ]
        for q in data["queries"]
    ]
    return f"<h2>Hot queries over {_num(data.get('alerts'))} alerts</h2>" + _table(
        [
            "query",
            "indexes used",
            "sequential scans",
            "with indexes",
            "without",
            "speed-up",
            "judged",
        ],
        rows,
    )


def _self_check(cells: Sequence[SelfCheckCell]) -> str:
    if not cells:
        return ""
    scenarios = sorted({c.scenario for c in cells})
    flaws = sorted({c.flaw for c in cells}, key=lambda f: (f != "none", f))
    by = {(c.scenario, c.flaw): c for c in cells}
    rows = []
    for scenario in scenarios:
        row = [_td(f"<b>{escape(scenario)}</b>")]
        for flaw in flaws:
            cell = by.get((scenario, flaw))
            if cell is None:
                row.append(_td("—"))
                continue
            title = escape(cell.reason, quote=True)
            text = f"expected {escape(cell.expected)}<br>actual {escape(cell.actual)}"
            if cell.runs > 1:
                text += f"<br>{cell.as_expected}/{cell.runs} runs as expected"
            cls = "match" if cell.matches else "mismatch"
            row.append(f'<td class="{cls}" title="{title}">{text}</td>')
        rows.append(row)
    matched = sum(c.matches for c in cells)
    return (
        "<h2>Self-check matrix (scenario x flaw)</h2>"
        f"<p>{matched}/{len(cells)} cells as expected.</p>" + _table(["scenario", *flaws], rows)
    )


def resources_summary(res: dict[str, Any]) -> str:
    """One line: CPU per operation by role, and how busy the machine was."""
    roles = res.get("roles") or {}
    per_op = [
        f"{role} {_num(v.get('cpu_ms_per_op'), 'ms')}"
        for role, v in roles.items()
        if v.get("cpu_ms_per_op") is not None
    ]
    parts = [f"CPU per operation: {', '.join(per_op)}"] if per_op else []
    unmeasured = [f"{role} ({v['unmeasured']})" for role, v in roles.items() if v.get("unmeasured")]
    if unmeasured:
        parts.append(f"unmeasured: {', '.join(unmeasured)}")
    parts.append(f"machine {_num(res.get('machine_busy_pct'), '%')} busy")
    if res.get("saturated"):
        parts.append("SATURATED: the figures are this machine's limit, not the pipeline's")
    return "; ".join(parts)


def _resources(r: RunResults) -> str:
    res = r.resources
    if not res or not res.get("roles"):
        return ""
    rows = [
        (
            [
                _td(escape(role)),
                _td(_num(v.get("cpu_pct"), "%"), "num"),
                _td(_num(v.get("cpu_ms_per_op"), "ms"), "num"),
            ]
            if not v.get("unmeasured")
            else [_td(escape(role)), f'<td colspan="2">unmeasured: {escape(v["unmeasured"])}</td>']
        )
        for role, v in res["roles"].items()
    ]
    rows.append(
        [
            _td("<b>all measured processes</b>"),
            _td(_num(res.get("total_cpu_pct"), "%"), "num"),
            _td(_num(res.get("total_cpu_ms_per_op"), "ms"), "num"),
        ]
    )
    note = (
        f"<p>Over the measured load ({_num(res.get('window_s'), 's')}, "
        f"{_num(res.get('operations'))} operations) on {_num(res.get('cores'))} cores; "
        "100 % is one core. "
        f"{escape(resources_summary(res))}.</p>"
    )
    return (
        "<h2>CPU by process</h2>"
        + note
        + _table(["process", "CPU (share of one core)", "CPU per operation"], rows)
    )


_GENERATIONS = {"0": "0 (young)", "1": "1", "2": "2 (full)"}


def _chaos(r: RunResults) -> str:
    """Per fault of a chaos run: requests, reconnection and catch-up, time to consistency."""
    chaos = r.extra.get("chaos") if r.extra else None
    if not chaos or not chaos.get("faults"):
        return ""
    rows = []
    for f in chaos["faults"]:
        req = f.get("requests", {})
        rec, cau = f.get("reconnect_ms", {}), f.get("caught_up_ms", {})
        rows.append(
            [
                _td(escape(str(f.get("label", f.get("fault", ""))))),
                _td(_num(f.get("seconds"), "s"), "num"),
                _td(_num(req.get("ok")), "num"),
                _td(_num(req.get("fail")), "num"),
                _td(_num(req.get("info")), "num"),
                _td(_num(rec.get("count")), "num"),
                _td(_num(rec.get("p50"), "ms") + " / " + _num(rec.get("p99"), "ms"), "num"),
                _td(_num(cau.get("p50"), "ms") + " / " + _num(cau.get("p99"), "ms"), "num"),
                _td(_num(f.get("committed_during")), "num"),
                _td(
                    _num(f.get("time_to_consistency_ms"), "ms")
                    if f.get("all_delivered")
                    else "not all delivered",
                    "num",
                ),
            ]
        )
    skipped = chaos.get("skipped") or []
    reasons = chaos.get("skip_reasons") or {}
    note = (
        '<p class="muted">Not applied: '
        + "; ".join(escape(f"{f} ({reasons[f]})" if f in reasons else str(f)) for f in skipped)
        + "</p>"
        if skipped
        else ""
    )
    head = [
        "fault",
        "lasted",
        "requests ok",
        "failed",
        "indeterminate",
        "clients dropped",
        "reconnect p50 / p99",
        "caught up p50 / p99",
        "alerts committed",
        "heal -> all delivered",
    ]
    return (
        "<h2>Faults</h2><p>Per fault of the nemesis: the requests sent while it lasted "
        "(indeterminate: the outcome could not be known, resolved against the final read), "
        "the clients it dropped, from the heal to reconnected and to caught up, and from the "
        "heal until every alert committed during it had reached its connected assignee.</p>"
        + _table(head, rows)
        + note
    )


def _soak(r: RunResults) -> str:
    """The soak's resource series over time, and each one's slope against its bound."""
    soak = r.extra.get("soak") if r.extra else None
    if not soak:
        return ""
    samples = soak.get("samples") or []
    series = soak.get("series") or {}
    warmup = float(soak.get("warmup_s") or 0.0)
    charts = []
    rows = []
    for name, judged in series.items():
        points = [(float(s["t_s"]), float(s[name])) for s in samples if name in s]
        unit = str(judged.get("unit", ""))
        charts.append(
            line_chart(
                [Series(name, points)],
                title=f"{name} ({unit}) over the soak; the warm-up is shaded",
                x_label="seconds since the load started",
                y_label=unit,
                shades=[Shade(0.0, warmup, "warm-up (left out of the slope)")] if warmup else [],
            )
        )
        held = judged.get("held")
        verdict = "unmeasured" if held is None else ("held" if held else "GREW")
        rows.append(
            [
                _td(escape(name)),
                _td(_num(judged.get("first")), "num"),
                _td(_num(judged.get("last")), "num"),
                _td(_num(judged.get("slope_per_min")), "num"),
                _td(_num(judged.get("bound_per_min")), "num"),
                _td(escape(f"{unit}/min")),
                _td(verdict),
            ]
        )
    unmeasured = soak.get("unmeasured") or {}
    note = (
        '<p class="muted">Unmeasured: '
        + escape("; ".join(f"{k} ({v})" for k, v in sorted(unmeasured.items())))
        + "</p>"
        if unmeasured
        else ""
    )
    table = _table(["series", "first", "last", "slope", "bound", "unit", "verdict"], rows)
    return (
        "<h2>Resources over the soak</h2><p>Sampled every "
        f"{_num(soak.get('interval_s'))} s; the slope is a least-squares fit after the "
        "warm-up, per minute.</p>" + table + note + "".join(charts)
    )


def _gc_pauses(r: RunResults) -> str:
    extra = r.extra or {}
    found = extra.get("app_gc_pauses") or {}
    harness = {"harness (while the scenario ran)": extra.get("harness_gc_pauses") or {}}
    for shard in extra.get("shards") or ():
        if isinstance(shard, dict) and shard.get("gc_pauses"):
            harness[f"harness shard {shard.get('shard')}"] = shard["gc_pauses"]
    if not found and not any(harness.values()):
        return ""
    rows = []

    def row(who: str, generation: str, g: Mapping[str, Any], longest: str) -> list[str]:
        return [
            _td(escape(who)),
            _td(escape(_GENERATIONS.get(generation, generation))),
            _td(_num(g.get("collections")), "num"),
            _td(_num(g.get("pause_ms_total"), "ms"), "num"),
            _td(longest, "num"),
        ]

    for process, generations in found.items():
        if "error" in generations:
            rows.append([_td(escape(process)), _td(escape(str(generations["error"]))), "", "", ""])
            continue
        for generation, g in generations.items():
            # The app's histogram gives the bucket of the longest pause.
            at_most = "&le; " + _num(g.get("longest_ms_at_most"), "ms")
            rows.append(row(process, generation, g, at_most))
    for who, generations in harness.items():
        for generation, g in generations.items():
            rows.append(row(who, generation, g, _num(g.get("longest_ms"), "ms")))
    return (
        "<h2>Garbage-collector pauses</h2><p>A collection stops the whole process. The "
        "app's, over each app process's life, from its <code>alertbench_gc_pause_seconds</code> "
        "(every request and every Socket.IO session waits); the harness's own, while the "
        "scenario ran (every request in flight and every event arriving is timed late by "
        "the pause: a latency tail that is the harness's, not the target's).</p>"
        + _table(["process", "generation", "collections", "total pause", "longest"], rows)
    )


def _queries(r: RunResults) -> str:
    q = r.queries
    if not q or not q.get("deltas"):
        return ""
    rows = [
        [
            _td(f"<code>{escape(str(d.get('query', '')))}</code>"),
            _td(_num(d.get("calls")), "num"),
            _td(_num(d.get("total_exec_time_ms"), "ms"), "num"),
        ]
        for d in q["deltas"][:25]
    ]
    return "<h2>Server-side statements</h2>" + _table(["statement", "calls", "time"], rows)


def comparison_html(c: Comparison | None) -> str:
    """A comparison with a baseline run as an HTML section (empty without one)."""
    if c is None:
        return ""
    rows = [
        [
            _td(escape(row.figure)),
            _td(_num(row.baseline), "num"),
            _td(_num(row.current), "num"),
            _td("—" if row.ratio is None else f"{row.ratio:.2f}x", "num"),
            _td(escape(row.change), {"better": "pass", "worse": "fail"}.get(row.change, "")),
        ]
        for row in c.rows
    ]
    return f"<h2>Compared with {escape(c.baseline_run_id)}</h2>" + _table(
        ["figure", "baseline", "current", "ratio", "change"], rows
    )


def render_html(results: RunResults, *, baseline: Comparison | None = None) -> str:
    """The report as one HTML document (no JavaScript, no external references)."""
    body = "".join(
        [
            _header(results),
            _slos(results),
            _checks(results),
            _generator(results),
            _resources(results),
            _gc_pauses(results),
            _soak(results),
            _chaos(results),
            _latency(results),
            _timeline(results),
            _reconnections(results),
            _indexes(results),
            _queries(results),
            _self_check(results.self_check),
            comparison_html(baseline),
        ]
    )
    return page(f"alertbench {results.scenario} {results.run_id}", body)


def page(title: str, body: str) -> str:
    """A self-contained HTML document: the reports' style, ``body`` as is."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )

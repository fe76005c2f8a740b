"""Baseline comparison: the key figures of two runs side by side, with ratios."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.report.results import RunResults

__all__ = ["Comparison", "FigureComparison", "compare_results", "render_comparison_text"]

_LATENCY_FIGURES = ("mean_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms")


@dataclass(frozen=True, slots=True, kw_only=True)
class FigureComparison:
    """One key figure in both runs."""

    figure: str
    """What it is, e.g. ``latency generation.corrected p99_ms`` or ``slo delivery_rate``."""
    baseline: float | None
    """Its value in the baseline run (``None``: absent)."""
    current: float | None
    """Its value in the current run (``None``: absent)."""
    better: Literal["lower", "higher"]
    """Which direction is an improvement."""
    tolerance: float
    """Relative change treated as noise (``0.05`` = 5 %)."""

    @property
    def ratio(self) -> float | None:
        """``current / baseline`` (``None`` when either is absent or the baseline is 0)."""
        if self.baseline is None or self.current is None or self.baseline == 0:
            return None
        return self.current / self.baseline

    @property
    def change(self) -> Literal["better", "worse", "same", "n/a"]:
        """Whether the current run is better, worse or the same, beyond ``tolerance``."""
        ratio = self.ratio
        if ratio is None:
            if self.baseline is not None and self.baseline == self.current:
                return "same"
            return "n/a"
        if abs(ratio - 1) <= self.tolerance:
            return "same"
        lower = ratio < 1
        return "better" if lower == (self.better == "lower") else "worse"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "figure": self.figure,
            "baseline": self.baseline,
            "current": self.current,
            "ratio": self.ratio,
            "better": self.better,
            "change": self.change,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Two runs' key figures."""

    baseline_run_id: str
    """The reference run."""
    current_run_id: str
    """The run compared with it."""
    rows: tuple[FigureComparison, ...]
    """One row per figure present in either run."""

    @property
    def worse(self) -> list[FigureComparison]:
        """Figures that got worse beyond their tolerance."""
        return [r for r in self.rows if r.change == "worse"]

    @property
    def regressions(self) -> list[FigureComparison]:
        """The judged figures that got worse: SLO measurements, latency p50 and
        p99, the achieved rate (a maximum or a p99.9 of a short run is noise)."""
        judged = ("slo ", "generator achieved_rate_per_s")
        return [
            r
            for r in self.worse
            if r.figure.startswith(judged) or r.figure.endswith((" p50_ms", " p99_ms"))
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "baseline_run_id": self.baseline_run_id,
            "current_run_id": self.current_run_id,
            "rows": [r.to_dict() for r in self.rows],
        }


def _figures(results: RunResults) -> dict[str, tuple[float | None, Literal["lower", "higher"]]]:
    out: dict[str, tuple[float | None, Literal["lower", "higher"]]] = {}
    for name, metric in sorted(results.latencies.items()):
        summary = metric.summary.to_dict()
        for figure in _LATENCY_FIGURES:
            out[f"latency {name} {figure}"] = (summary.get(figure), "lower")
    for slo in results.slos:
        out[f"slo {slo.name}"] = (slo.measured, "lower" if slo.op in ("<", "<=") else "higher")
    gen = results.generator or {}
    if gen:
        out["generator achieved_rate_per_s"] = (gen.get("achieved_rate_per_s"), "higher")
        out["generator p99_lag_ms"] = (gen.get("p99_lag_ms"), "lower")
    return out


def compare_results(
    baseline: RunResults, current: RunResults, *, tolerance: float = 0.05
) -> Comparison:
    """Compare the key figures of ``current`` with ``baseline`` (latencies, SLO measurements,
    generator rate and lag); changes within ``tolerance`` count as the same."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    before, after = _figures(baseline), _figures(current)
    rows = []
    for figure in sorted(before.keys() | after.keys()):
        b, direction = before.get(figure, (None, after.get(figure, (None, "lower"))[1]))
        c = after.get(figure, (None, direction))[0]
        rows.append(
            FigureComparison(
                figure=figure,
                baseline=None if b is None else float(b),
                current=None if c is None else float(c),
                better=direction,
                tolerance=tolerance,
            )
        )
    return Comparison(
        baseline_run_id=baseline.run_id, current_run_id=current.run_id, rows=tuple(rows)
    )


def render_comparison_text(comparison: Comparison) -> str:
    """A plain-text table (for the CLI or a log)."""

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.4g}"

    lines = [f"{comparison.current_run_id} vs baseline {comparison.baseline_run_id}"]
    width = max((len(r.figure) for r in comparison.rows), default=6)
    lines.append(f"{'figure':<{width}}  {'baseline':>10}  {'current':>10}  {'ratio':>7}  change")
    for r in comparison.rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        values = f"{num(r.baseline):>10}  {num(r.current):>10}  {ratio:>7}"
        lines.append(f"{r.figure:<{width}}  {values}  {r.change}")
    return "\n".join(lines) + "\n"

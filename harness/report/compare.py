"""Compare two runs: ``alertbench compare BASE NEW`` and ``alertbench run --baseline``.

A side is a run's folder (``reports/<run-id>/``, every scenario in it), one
scenario's folder, or its ``results.json``. Scenarios are paired by folder
name (``load``, ``delivery``, ``seed-node-load``...); each pair's key
figures are compared with a tolerance, and a judged figure that got worse
beyond it is a regression (exit 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path

from harness.errors import ConfigError
from harness.report.baseline import Comparison, compare_results, render_comparison_text
from harness.report.html import comparison_html, page
from harness.report.results import ResultsFormatError, RunResults, read_results

__all__ = ["RunComparison", "compare_runs", "load_side"]


def load_side(path: Path) -> dict[str, RunResults]:
    """Folder name -> results of a run folder, a scenario folder or a results.json."""
    path = path.resolve()  # `latest` is a link to the run
    try:
        if path.is_file():
            return {path.parent.name: read_results(path)}
        if (path / "results.json").is_file():
            return {path.name: read_results(path / "results.json")}
        found = {p.parent.name: read_results(p) for p in sorted(path.glob("*/results.json"))}
    except (OSError, ResultsFormatError) as exc:
        raise ConfigError(str(path), f"cannot read its results: {exc}") from None
    if not found:
        raise ConfigError(
            str(path), "no results.json there (give a run's folder, a scenario's, or the file)"
        )
    return found


@dataclass(frozen=True)
class RunComparison:
    """Every scenario the two sides share, compared."""

    base: str
    new: str
    pairs: dict[str, Comparison]
    only_base: list[str]
    only_new: list[str]
    #: Scenario -> (baseline verdict, new verdict).
    verdicts: dict[str, tuple[str, str]]

    @property
    def regressions(self) -> dict[str, list[str]]:
        """Scenario -> what got worse: a verdict that passed and no longer
        does, and the judged figures beyond the tolerance."""
        found: dict[str, list[str]] = {}
        for name, c in self.pairs.items():
            before, after = self.verdicts[name]
            worse = [f"verdict {before} -> {after}"] if before == "pass" != after else []
            worse += [r.figure for r in c.regressions]
            if worse:
                found[name] = worse
        return found

    def text(self) -> str:
        parts = [render_comparison_text(c) for c in self.pairs.values()]
        if self.only_base or self.only_new:
            parts.append(
                f"not compared: only in the baseline {self.only_base or '-'},"
                f" only in the new run {self.only_new or '-'}\n"
            )
        return "\n".join(parts)

    def write_html(self, path: Path) -> Path:
        worse = self.regressions
        verdict = (
            "no regression beyond the tolerance"
            if not worse
            else "regressions: "
            + "; ".join(f"{name}: {', '.join(figures)}" for name, figures in worse.items())
        )
        body = (
            f"<h1>{escape(self.new)} compared with {escape(self.base)}</h1>"
            f"<p class='{'pass' if not worse else 'fail'}'>{escape(verdict)}</p>"
            + "".join(
                f"<h2>{escape(name)}</h2>{comparison_html(c)}" for name, c in self.pairs.items()
            )
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page(f"alertbench compare {self.new}", body), encoding="utf-8")
        return path


def compare_runs(
    base: Mapping[str, RunResults],
    new: Mapping[str, RunResults],
    *,
    tolerance: float,
    base_name: str = "baseline",
    new_name: str = "new",
) -> RunComparison:
    """Pair the scenarios by name and compare each pair's figures."""
    if not 0 <= tolerance < 10:
        raise ConfigError("--tolerance", f"must be in [0, 10), got {tolerance}")
    shared = [name for name in new if name in base]
    if not shared:
        raise ConfigError(
            "compare",
            f"the runs share no scenario (baseline: {', '.join(base)}; new: {', '.join(new)})",
        )
    return RunComparison(
        base=base_name,
        new=new_name,
        pairs={n: compare_results(base[n], new[n], tolerance=tolerance) for n in shared},
        only_base=[n for n in base if n not in new],
        only_new=[n for n in new if n not in base],
        verdicts={n: (base[n].verdict, new[n].verdict) for n in shared},
    )

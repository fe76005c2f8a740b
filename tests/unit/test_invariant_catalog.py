"""Every check is described, judged by the scenarios that say so, and listed
alike by ``alertbench list --checks`` and the README."""

from __future__ import annotations

import re
from pathlib import Path

import scenarios
from harness.checks import CHECKERS
from harness.checks.catalog import INVARIANTS, SCENARIO_CHECKS
from harness.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_history_checker_and_every_scenario_check_is_described() -> None:
    assert set(CHECKERS) <= set(INVARIANTS)
    own = {c for checks in SCENARIO_CHECKS.values() for c in checks}
    assert set(INVARIANTS) == set(CHECKERS) | own
    assert set(SCENARIO_CHECKS) <= set(scenarios.SCENARIOS)
    for name, scenario in scenarios.SCENARIOS.items():
        assert set(scenario.checks) <= set(CHECKERS), name


def test_every_invariant_is_judged_somewhere() -> None:
    unjudged = [check for check, where in scenarios.judged_by().items() if not where]
    assert unjudged == []


def test_the_readme_lists_what_each_scenario_judges_and_the_invariants_table() -> None:
    text = README.read_text(encoding="utf-8")
    for name in scenarios.SCENARIOS:
        row = re.search(rf"^\| `{name}` \| .* \| (.*) \|$", text, re.MULTILINE)
        assert row is not None, f"README has no row for scenario {name}"
        named = set(re.findall(r"`([a-z_]+)`", row.group(1)))
        assert set(scenarios.checks_of(name)) <= named, name
    for check, where in scenarios.judged_by().items():
        line = f"| `{check}` | {INVARIANTS[check]} | {', '.join(where)} |"
        assert line in text, f"README's invariants table is out of date for {check}"


def test_list_checks_prints_every_check(capsys: object) -> None:
    assert main(["list", "--checks"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    for check in INVARIANTS:
        assert check in out

"""JUnit XML: one testcase per checker, SLO, generator and self-check cell, for CI systems.

Mapping: a check ``False`` or an SLO ``fail`` is a ``<failure>``; ``unknown``
is an ``<error>`` (or ``<skipped>`` when the run did not count unknowns), as
are an invalid generator and harness errors; self-check cells that did not
answer as expected are failures.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from harness.report.results import RunResults
from harness.slo import SloVerdict

__all__ = ["to_junit_xml"]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.6g}{' ' + unit if unit else ''}"


def slo_message(v: SloVerdict) -> str:
    """``measured 120 ms, target < 100 ms, margin -20 ms``."""
    return (
        f"measured {_fmt(v.measured, v.unit)}, target {v.op} {_fmt(v.target, v.unit)}, "
        f"margin {_fmt(v.margin, v.unit)}"
    )


def to_junit_xml(results: RunResults) -> str:
    """The run as a JUnit XML document (``<testsuites>`` with one ``<testsuite>``)."""
    suite_name = f"alertbench.{results.scenario}"
    suite = ET.Element("testsuite", name=suite_name, timestamp=results.started_at)
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", results.run_id),
        ("seed", results.seed),
        ("verdict", results.verdict),
        ("exit_code", results.exit_code),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(group: str, name: str) -> ET.Element:
        counts["tests"] += 1
        return ET.SubElement(suite, "testcase", classname=f"{suite_name}.{group}", name=name)

    def mark(el: ET.Element, tag: str, message: str, kind: str, body: str = "") -> None:
        key = {"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]
        counts[key] += 1
        child = ET.SubElement(el, tag, message=message, type=kind)
        child.text = body or None

    unknown_tag = "error" if results.unknown_fails else "skipped"
    for check in results.checks:
        el = case("checks", check.name)
        body = json.dumps(list(check.counterexamples), indent=2, default=str)
        if check.valid is False:
            more = check.counterexample_total - len(check.counterexamples)
            if more > 0:
                body += f"\n... and {more} more"
            mark(el, "failure", check.summary, "CheckFailed", body)
        elif check.valid == "unknown":
            mark(el, unknown_tag, check.summary, "Unknown")
    for slo in results.slos:
        el = case("slo", slo.name)
        if slo.status == "fail":
            mark(el, "failure", slo_message(slo), "SloFailed")
        elif slo.status == "unknown":
            mark(el, unknown_tag, f"{slo.metric}: not measured in this run", "Unknown")
    if results.generator is not None:
        el = case("generator", "validity")
        if not results.generator.get("valid", True):
            reason = str(results.generator.get("invalid_reason") or "invalid")
            mark(el, "error", reason, "GeneratorBottleneck")
    for cell in results.self_check:
        el = case("self_check", f"{cell.scenario} x {cell.flaw}")
        if not cell.matches:
            message = f"expected {cell.expected}, got {cell.actual}"
            mark(el, "failure", message + (f": {cell.reason}" if cell.reason else ""), "SelfCheck")
    if results.not_applicable is not None:
        el = case("scenario", "applicable")
        mark(el, "skipped", f"not applicable: {results.not_applicable}", "NotApplicable")
    for n, error in enumerate(results.errors):
        mark(
            case("harness", f"error {n + 1}"), "error", error.splitlines()[0], "HarnessError", error
        )

    for key, value in counts.items():
        suite.set(key, str(value))
    root = ET.Element(
        "testsuites", {"name": "alertbench", **{k: str(v) for k, v in counts.items()}}
    )
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

"""What a checker answers: valid true / false / unknown, figures, counterexamples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = ["CheckResult", "FinalState", "Validity", "merge_validity"]

Validity: TypeAlias = bool | Literal["unknown"]
"""``True`` (holds), ``False`` (violated: see the counterexamples) or ``"unknown"``
(the history lacks what the checker needs)."""

DEFAULT_MAX_COUNTEREXAMPLES = 20


def merge_validity(values: Iterable[Validity]) -> Validity:
    """Jepsen's composition: any ``False`` wins, then any ``"unknown"``, else ``True``."""
    seen_unknown = False
    for value in values:
        if value is False:
            return False
        if value != True:  # noqa: E712 - "unknown" is truthy, so compare explicitly
            seen_unknown = True
    return "unknown" if seen_unknown else True


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalState:
    """Final reads of the database after heal and drain, as plain rows (a checker input)."""

    alerts: Sequence[dict[str, Any]] | None = None
    """``workflow_alerts`` rows with ``id``, ``project_id``, ``step_id``, ``status``,
    ``assigned_to_id`` (``None``: not read)."""
    memberships: Sequence[dict[str, Any]] | None = None
    """``project_members`` rows with ``project_id``, ``user_id`` (``role`` optional)."""
    trackers: Sequence[dict[str, Any]] | None = None
    """``project_workflow_trackers`` rows with ``project_id``, ``current_line_item_id``
    (``None``: the workflow is complete)."""
    workflow: Sequence[dict[str, Any]] | None = None
    """The *seeded* template's line items in workflow order (phase, section and
    item position, then id): ``id``, ``role`` (the harness's logical role
    name), ``active``. Seeded data, not a read: the checkers judge the
    target against it, never against its own answers."""
    seeded_members: Mapping[str, Mapping[str, Any]] | None = None
    """Seeded data: project id (as text) -> logical role -> user id."""
    start_trackers: Mapping[str, Any] | None = None
    """Seeded data: project id (as text) -> its tracker's line item before the run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The verdict of one checker on one history."""

    name: str
    """The checker's registered name (``delivery``, ``no_duplicates``...)."""
    valid: Validity
    """``True``, ``False`` or ``"unknown"``."""
    summary: str
    """One line for humans: what was checked and what was found."""
    counts: dict[str, float] = field(default_factory=dict)
    """Figures behind the verdict (``lost``, ``duplicated``, ``checked``...)."""
    measurements: dict[str, float] = field(default_factory=dict)
    """Values for SLO evaluation, keyed by SLO metric (``delivery_rate``...)."""
    counterexamples: tuple[dict[str, Any], ...] = ()
    """Evidence of violations (JSON objects), at most ``max_counterexamples`` of them."""
    counterexample_total: int = 0
    """How many violations there were in all (``counterexamples`` may be truncated)."""

    @classmethod
    def unknown(cls, name: str, reason: str) -> CheckResult:
        """The history lacks what ``name`` needs; ``reason`` says what."""
        return cls(name=name, valid="unknown", summary=reason)

    @classmethod
    def build(
        cls,
        name: str,
        *,
        violations: Sequence[dict[str, Any]],
        summary: str,
        counts: dict[str, float] | None = None,
        measurements: dict[str, float] | None = None,
        max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
        valid: Validity | None = None,
    ) -> CheckResult:
        """A result that is valid when there are no ``violations`` (unless ``valid`` says)."""
        return cls(
            name=name,
            valid=(not violations) if valid is None else valid,
            summary=summary,
            counts=dict(counts or {}),
            measurements=dict(measurements or {}),
            counterexamples=tuple(violations[: max(0, max_counterexamples)]),
            counterexample_total=len(violations),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "valid": self.valid,
            "summary": self.summary,
            "counts": dict(self.counts),
            "measurements": dict(self.measurements),
            "counterexamples": list(self.counterexamples),
            "counterexample_total": self.counterexample_total,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Inverse of :meth:`to_dict`."""
        valid = data["valid"]
        if valid not in (True, False, "unknown"):
            raise ValueError(f"check {data.get('name')!r}: valid must be true/false/unknown")
        return cls(
            name=str(data["name"]),
            valid=valid,
            summary=str(data.get("summary", "")),
            counts=dict(data.get("counts", {})),
            measurements=dict(data.get("measurements", {})),
            counterexamples=tuple(data.get("counterexamples", ())),
            counterexample_total=int(data.get("counterexample_total", 0)),
        )

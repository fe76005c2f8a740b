"""The workflow itself, judged against the seeded data: ``linearizable`` and ``right_alert``.

Both read the seeded template (``FinalState.workflow``, in workflow order),
the seeded members and start positions, and the final trackers and alerts.
They never trust the target's own answers about what should have happened:
the next step and its assignee come from the seed.

Completions are the operations named in ``ops`` whose invoke value names a
``project_id`` and a ``line_item_id``. Their outcomes:

- ``advanced``: ``ok`` (for ``complete_queued``: a job that ended ``complete``
  with ``result.outcome == "completed"``);
- ``refused``: ``fail`` with a 409 (stale), or a queued job whose outcome was
  ``stale``; a refusal may name the item that was current
  (``value.current_line_item_id``, the contract's ``currentLineItemId``);
- ``failed``: any other ``fail`` (403, an injected rollback): it did not happen;
- ``unknown``: ``info``, or never completed: it may have happened. As in
  Jepsen, these are resolved against the final read: a step the final tracker
  has passed with no successful completion is credited to an indeterminate
  completion of that step, if there is one.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from harness.checks._ops import operations
from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Commit, Event, Op

__all__ = ["COMPLETION_OPS", "linearizable", "right_alert"]

COMPLETION_OPS: Final = ("complete", "complete_warmup", "complete_queued")
"""Operations that complete a project's current step."""

Outcome = Literal["advanced", "refused", "failed", "unknown"]
_UNNAMED: Final = object()
_QUEUED_OUTCOMES: Final[dict[str, Outcome]] = {"completed": "advanced", "stale": "refused"}


@dataclass
class _Completion:
    op_id: int
    process: str
    project: str
    item: str
    invoked: float
    ended: float | None
    outcome: Outcome
    named: object = _UNNAMED
    """The current item a refusal named (text, ``None`` = workflow complete), or _UNNAMED."""


class _Order:
    """The seeded workflow: active items in order, and each item's role."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.active = [str(r["id"]) for r in rows if r.get("active", True)]
        self.pos = {item: i for i, item in enumerate(self.active)}
        self.role = {str(r["id"]): str(r.get("role")) for r in rows}
        self.known = {str(r["id"]) for r in rows}

    def tracker_pos(self, item: Any) -> int | None:
        """Position of a tracker value: ``None`` (complete) is past the last item."""
        if item is None:
            return len(self.active)
        return self.pos.get(str(item))


def _completions(events: Iterable[Event], ops: Sequence[str]) -> dict[str, list[_Completion]]:
    out: dict[str, list[_Completion]] = defaultdict(list)
    for inv, end in operations(events, ops, needs=("project_id", "line_item_id")):
        outcome: Outcome = "unknown"
        named: object = _UNNAMED
        if end is not None and inv.f == "complete_queued":
            outcome = _queued_outcome(end)
        elif end is not None and end.type == "ok":
            outcome = "advanced"
        elif end is not None and end.type == "fail":
            outcome = "refused" if (end.error or "").startswith("409") else "failed"
            if isinstance(end.value, dict) and "current_line_item_id" in end.value:
                current = end.value["current_line_item_id"]
                named = None if current is None else str(current)
        project = str(inv.value["project_id"])
        out[project].append(
            _Completion(
                op_id=inv.op_id,
                process=inv.process,
                project=project,
                item=str(inv.value["line_item_id"]),
                invoked=inv.mono_s,
                ended=end.mono_s if end is not None and end.type != "info" else None,
                outcome=outcome,
                named=named,
            )
        )
    return out


def _queued_outcome(end: Op) -> Outcome:
    """A queued job's outcome. A job retries after any error, including one
    raised after its attempt committed (a dropped connection): a later
    attempt then finds the step done and ends ``stale``, and a job that
    fails all its attempts may still have committed in one of them. So
    only a first-attempt ``stale`` is a definite refusal, only a rejection
    (403/404) a definite failure; the rest is resolved by the final read."""
    value = end.value if isinstance(end.value, dict) else {}
    attempts = value.get("attempts")
    first = attempts == 1
    if end.type == "fail":
        rejected = any(code in (end.error or "") for code in ("403", "404"))
        return "failed" if rejected else "unknown"
    if end.type != "ok":
        return "unknown"
    result = value.get("result")
    kind = _QUEUED_OUTCOMES.get(str(result.get("outcome")) if isinstance(result, dict) else "")
    if kind == "refused" and not first:
        return "unknown"
    return kind or "unknown"


def _seeded(
    final: FinalState | None, name: str
) -> tuple[_Order, dict[str, int | None], dict[str, Any]] | CheckResult:
    """The order, start positions and final tracker values, or an unknown result."""
    if final is None or final.workflow is None or final.start_trackers is None:
        return CheckResult.unknown(name, "the seeded workflow and start positions are not known")
    if final.trackers is None:
        return CheckResult.unknown(name, "the final trackers were not read")
    order = _Order(final.workflow)
    start = {str(p): order.tracker_pos(item) for p, item in final.start_trackers.items()}
    trackers = {str(r["project_id"]): r.get("current_line_item_id") for r in final.trackers}
    return order, start, trackers


@dataclass
class _Chain:
    """One project's resolved chain: position -> the completion that left it."""

    start: int
    final: int
    left_by: dict[int, _Completion]


def _chain(
    order: _Order,
    start: int,
    final: int,
    done: list[_Completion],
    base: dict[str, Any],
    violations: list[dict[str, Any]],
    tally: dict[str, int],
) -> _Chain:
    advanced: dict[int, list[_Completion]] = defaultdict(list)
    for c in done:
        if c.outcome != "advanced":
            continue
        pos = order.pos.get(c.item)
        if pos is None:
            kind = "inactive" if c.item in order.known else "unknown"
            violations.append(
                {
                    **base,
                    "kind": "completed_step_not_in_workflow",
                    "line_item_id": c.item,
                    "why": f"a successful completion of an {kind} line item",
                    "op_id": c.op_id,
                }
            )
            continue
        advanced[pos].append(c)
    left_by: dict[int, _Completion] = {}
    for pos, cs in sorted(advanced.items()):
        if len(cs) > 1:
            violations.append(
                {
                    **base,
                    "kind": "several_successes",
                    "line_item_id": cs[0].item,
                    "op_ids": [c.op_id for c in cs],
                }
            )
        if not start <= pos < final:
            violations.append(
                {
                    **base,
                    "kind": "success_not_in_final_state",
                    "line_item_id": cs[0].item,
                    "op_id": cs[0].op_id,
                    "why": "the final tracker "
                    + ("had not reached" if pos >= final else "was past")
                    + " this step though its completion succeeded",
                }
            )
            continue
        left_by[pos] = min(cs, key=lambda c: c.invoked)
    for pos in range(start, final):
        if pos in left_by:
            continue
        maybe = [c for c in done if c.outcome == "unknown" and c.item == order.active[pos]]
        if maybe:
            tally["resolved_indeterminate"] += 1
            left_by[pos] = min(maybe, key=lambda c: c.invoked)
        else:
            violations.append(
                {
                    **base,
                    "kind": "advanced_without_success",
                    "line_item_id": order.active[pos],
                    "why": "the tracker moved past this step, but no completion of it succeeded"
                    " or may have",
                }
            )
    # Real time: a later step's success cannot be answered before an earlier
    # step's completion was even sent.
    chain = [left_by[p] for p in sorted(left_by)]
    for earlier, later in itertools.pairwise(chain):
        if (
            later.outcome == "advanced"
            and later.ended is not None
            and later.ended < earlier.invoked
        ):
            violations.append(
                {
                    **base,
                    "kind": "not_linearizable",
                    "op_ids": [earlier.op_id, later.op_id],
                    "why": f"step {later.item} completed before step {earlier.item}'s completion"
                    " was sent",
                }
            )
    return _Chain(start, final, left_by)


def _check_refusal(
    order: _Order,
    chain: _Chain,
    r: _Completion,
    base: dict[str, Any],
    violations: list[dict[str, Any]],
    tally: dict[str, int],
) -> None:
    """A 409 is right only if its step was not current throughout the request,
    and the item it names was current at some moment of it."""
    a, b = r.invoked, r.ended if r.ended is not None else math.inf

    def window(j: int) -> tuple[float, float, float, float]:
        # (entered at the earliest, entered at the latest, left at the earliest, at the latest)
        into = chain.left_by.get(j - 1) if j > chain.start else None
        out = chain.left_by.get(j) if j < chain.final else None
        enter_min = into.invoked if into else -math.inf
        enter_max = (
            (into.ended if into and into.ended is not None else math.inf) if into else -math.inf
        )
        leave_min = out.invoked if out else math.inf
        leave_max = (out.ended if out.ended is not None else math.inf) if out else math.inf
        return enter_min, enter_max, leave_min, leave_max

    pos = order.pos.get(r.item)
    if pos is not None and chain.start <= pos <= chain.final and pos < len(order.active):
        _, enter_max, leave_min, _ = window(pos)
        if enter_max <= a and leave_min >= b:
            violations.append(
                {
                    **base,
                    "kind": "refused_current",
                    "line_item_id": r.item,
                    "op_id": r.op_id,
                    "why": "409 although this step was current for the whole request",
                }
            )
    if r.named is _UNNAMED:
        tally["refusals_unnamed"] += 1
        return
    tally["refusals_named"] += 1
    named = order.tracker_pos(r.named)
    possible = (
        named is not None
        and chain.start <= named <= chain.final
        and window(named)[0] < b
        and window(named)[3] > a
    )
    if not possible:
        violations.append(
            {
                **base,
                "kind": "wrong_current_named",
                "line_item_id": r.item,
                "op_id": r.op_id,
                "named_current": r.named,
                "why": "the 409 named an item that was not current at any moment of the request",
            }
        )


def linearizable(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    ops: Sequence[str] = COMPLETION_OPS,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies that each project's completions form one chain in workflow order. O(ops).

    Per project: the successful completions are exactly the steps from the
    seeded start to the final tracker, each at most once, in an order real
    time allows; a step the tracker passed needs a success (or an
    indeterminate completion, then counted as resolved); a 409 is never given
    while its step was current for the whole request, and the item a 409
    names was current at some moment of it. Unknown without the seeded
    workflow, the final trackers, or any completion.
    """
    seeded = _seeded(final, "linearizable")
    if isinstance(seeded, CheckResult):
        return seeded
    order, start, trackers = seeded
    completions = _completions(history, ops)
    if not completions:
        return CheckResult.unknown("linearizable", "no completion in the history")
    violations: list[dict[str, Any]] = []
    tally: dict[str, int] = defaultdict(int)
    for project, done in sorted(completions.items()):
        base = {"project_id": project}
        s = start.get(project)
        if s is None or project not in trackers:
            tally["projects_unknown"] += 1
            continue
        f = order.tracker_pos(trackers[project])
        if f is None:
            violations.append(
                {
                    **base,
                    "kind": "tracker_off_workflow",
                    "line_item_id": trackers[project],
                    "why": "the final tracker is on an item that is not an active step",
                }
            )
            continue
        tally["projects"] += 1
        chain = _chain(order, s, f, done, base, violations, tally)
        for c in done:
            tally[c.outcome] += 1
            if c.outcome == "refused":
                _check_refusal(order, chain, c, base, violations, tally)
    if tally["projects"] == 0:
        return CheckResult.unknown("linearizable", "no completed project has a known start and end")
    return CheckResult.build(
        "linearizable",
        violations=violations,
        summary=(
            f"{len(violations)} violation(s) of the per-project completion chain"
            if violations
            else f"{tally['advanced']} successful completion(s) of {tally['projects']} project(s)"
            f" form one chain each; {tally['refused']} refusal(s) were stale"
        ),
        counts={k: float(v) for k, v in sorted(tally.items())},
        max_counterexamples=max_counterexamples,
    )


def right_alert(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies each alert is for a step the project reached, assigned by the seed's roles. O(n).

    Per project, from the seeded start to the final tracker: every step
    entered by a completion has exactly one alert; no step has more than one;
    no alert is for a step the project never reached, or an inactive one;
    each alert (in the final read, and as announced in ``Commit`` events) is
    assigned to the project's member whose role is the step's responsible
    role; steps already completed have no ``ACTIVE`` alert and the current
    step's alerts are ``ACTIVE``. Unknown without seeded workflow and members,
    final trackers or final alerts.
    """
    seeded = _seeded(final, "right_alert")
    if isinstance(seeded, CheckResult):
        return seeded
    order, start, trackers = seeded
    assert final is not None  # _seeded returned data
    if final.alerts is None or final.seeded_members is None:
        return CheckResult.unknown("right_alert", "the final alerts or seeded members are unknown")
    members = {str(p): roles for p, roles in final.seeded_members.items()}

    def expected(project: str, step: str) -> str | None:
        user = members.get(project, {}).get(order.role.get(step, ""))
        return None if user is None else str(user)

    violations: list[dict[str, Any]] = []
    tally: dict[str, int] = defaultdict(int)
    rows: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for alert in final.alerts:
        rows[str(alert.get("project_id"))].append(alert)
    for project, s in sorted(start.items()):
        if s is None or project not in trackers:
            continue
        f = order.tracker_pos(trackers[project])
        if f is None:
            continue  # linearizable reports a tracker off the workflow
        tally["projects"] += 1
        by_step: dict[str, int] = defaultdict(int)
        for row in rows.get(project, ()):
            tally["alerts"] += 1
            step = str(row.get("step_id"))
            by_step[step] += 1
            base = {"project_id": project, "alert_id": row.get("id"), "step_id": step}
            pos = order.pos.get(step)
            status = str(row.get("status", "")).upper()
            if pos is None:
                violations.append({**base, "kind": "alert_for_step_outside_workflow"})
                continue
            if not s <= pos <= f:
                violations.append(
                    {
                        **base,
                        "kind": "alert_for_unreached_step",
                        "why": "the project's tracker never stood on this step",
                    }
                )
                continue
            want = expected(project, step)
            got = row.get("assigned_to_id")
            if want != (None if got is None else str(got)):
                violations.append(
                    {**base, "kind": "wrong_assignee", "assigned_to_id": got, "expected": want}
                )
            if pos < f and status == "ACTIVE":
                violations.append({**base, "kind": "active_alert_for_completed_step"})
            elif pos == f and status != "ACTIVE":
                violations.append(
                    {**base, "kind": "current_step_alert_not_active", "status": status}
                )
        for pos in range(s, min(f, len(order.active) - 1) + 1):
            step = order.active[pos]
            base = {"project_id": project, "step_id": step}
            if by_step[step] > 1:
                violations.append(
                    {**base, "kind": "several_alerts_for_step", "count": by_step[step]}
                )
            elif pos > s and by_step[step] == 0:
                violations.append(
                    {
                        **base,
                        "kind": "no_alert_for_next_step",
                        "why": "a completion moved the project onto this step, and no alert exists",
                    }
                )
    for e in history:
        if not isinstance(e, Commit) or e.step_id is None:
            continue
        want = expected(str(e.project_id), str(e.step_id))
        if want is None:
            continue
        tally["announced"] += 1
        if want != (None if e.assignee_id is None else str(e.assignee_id)):
            violations.append(
                {
                    "kind": "announced_wrong_assignee",
                    "project_id": e.project_id,
                    "alert_id": e.alert_id,
                    "step_id": e.step_id,
                    "assignee_id": e.assignee_id,
                    "expected": want,
                }
            )
    if tally["projects"] == 0:
        return CheckResult.unknown("right_alert", "no project with a known start and end")
    return CheckResult.build(
        "right_alert",
        violations=violations,
        summary=(
            f"{len(violations)} alert(s) wrong for the seeded workflow and roles"
            if violations
            else f"{tally['alerts']} alert(s) of {tally['projects']} project(s): each for a"
            " reached step, one per step, assigned to the responsible role's member"
        ),
        counts={k: float(v) for k, v in sorted(tally.items())},
        max_counterexamples=max_counterexamples,
    )

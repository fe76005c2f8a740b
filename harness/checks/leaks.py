"""``no_leaks``: no client received another user's alert or a foreign project's event."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.checks._ops import list_reads
from harness.checks.result import DEFAULT_MAX_COUNTEREXAMPLES, CheckResult, FinalState
from harness.history import Commit, Event, Id, Receive

__all__ = ["no_leaks"]

NAME = "no_leaks"


def no_leaks(
    history: Iterable[Event],
    final: FinalState | None = None,
    *,
    read_ops: Sequence[str] = ("read_alerts",),
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES,
) -> CheckResult:
    """Verifies that every receipt and every alert read was meant for its user. O(n).

    Every path counts: pushed events, ``sync`` answers (receipts ``via
    sync``) and HTTP reads of a user's list (operations in ``read_ops``
    whose result lists the ``items`` read). Two rules, each applied when
    its facts are known:

    - an alert goes only to its assignee (from ``Commit`` events and
      ``final.alerts[].assigned_to_id``);
    - an event or alert about a project goes only to members of that
      project (``final.memberships``).

    Unknown when neither assignees nor memberships are known, or nothing was
    received or read.
    """
    events = list(history)
    assignee: dict[str, str] = {}
    for e in events:
        if isinstance(e, Commit) and e.assignee_id is not None:
            assignee.setdefault(str(e.alert_id), str(e.assignee_id))
    if final is not None and final.alerts is not None:
        for row in final.alerts:
            if row.get("assigned_to_id") is not None:
                assignee.setdefault(str(row.get("id")), str(row["assigned_to_id"]))
    members: set[tuple[str, str]] | None = None
    if final is not None and final.memberships is not None:
        members = {(str(m.get("project_id")), str(m.get("user_id"))) for m in final.memberships}
    if not assignee and members is None:
        return CheckResult.unknown(NAME, "neither alert assignees nor project memberships known")
    received = [e for e in events if isinstance(e, Receive)]
    reads = [
        (str(inv.value["user_id"]), ok, items) for inv, ok, items in list_reads(events, read_ops)
    ]
    if not received and not reads:
        return CheckResult.unknown(NAME, "no client received anything and no list was read")

    violations: list[dict[str, Any]] = []
    checked = 0
    for r in received:
        base: dict[str, Any] = {
            "client": r.process,
            "user_id": r.user_id,
            "event": r.event,
            "mono_s": r.mono_s,
        }
        owner = assignee.get(str(r.alert_id)) if r.alert_id is not None else None
        foreign = _foreign(members, r.project_id, r.user_id)
        if owner is not None or foreign is not None:
            checked += 1
        if owner is not None and owner != str(r.user_id):
            violations.append(
                {"kind": "other_user", **base, "alert_id": r.alert_id, "assignee_id": owner}
            )
        elif foreign:
            violations.append({"kind": "foreign_project", **base, "project_id": r.project_id})
    read_checked = 0
    for reader, op, alerts in reads:
        for item in alerts:
            alert_id, project_id = item.get("id"), item.get("projectId")
            owner = assignee.get(str(alert_id))
            foreign = _foreign(members, project_id, reader)
            if owner is None and foreign is None:
                continue
            read_checked += 1
            base = {"reader": reader, "op_id": op.op_id, "f": op.f, "mono_s": op.mono_s}
            if owner is not None and owner != str(reader):
                violations.append(
                    {"kind": "read_other_user", **base, "alert_id": alert_id, "assignee_id": owner}
                )
            elif foreign:
                violations.append(
                    {"kind": "read_foreign_project", **base, "project_id": project_id}
                )
    if checked == 0 and read_checked == 0:
        return CheckResult.unknown(NAME, "no receipt or read concerned a known alert or project")
    paths = {r.via for r in received} | ({"http"} if reads else set())
    return CheckResult.build(
        NAME,
        violations=violations,
        summary=(
            f"{len(violations)} receipt(s) or read alert(s) reached a user they were not meant for"
            if violations
            else f"all {checked} checked receipt(s) and {read_checked} alert(s) read over HTTP"
            f" reached their own user (paths: {', '.join(sorted(paths))})"
        ),
        counts={
            "receipts": len(received),
            "checked": checked,
            "sync_receipts": sum(1 for r in received if r.via == "sync"),
            "reads": len(reads),
            "read_alerts_checked": read_checked,
            "leaks": len(violations),
        },
        max_counterexamples=max_counterexamples,
    )


def _foreign(
    members: set[tuple[str, str]] | None, project_id: Id | None, user_id: Id
) -> bool | None:
    if members is None or project_id is None:
        return None
    return (str(project_id), str(user_id)) not in members

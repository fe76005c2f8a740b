"""A model of the contract's workflow: what a conforming target must do next.

Pure Python, no I/O: given what the harness seeded (:class:`SeedResult`), it
says which step follows which (``docs/contract.md`` 3.4), who an alert goes to
(3.5, invariant 2), and, step by step, where every project's tracker stands
and which alerts exist (6.2, 6.3). Tests and checkers drive a target and
compare what it did with what this model expects; the model never learns
anything from the target's own answers except the ids of the alerts it
created.

- :class:`Workflow`: the template in workflow order and the members per
  role; :meth:`Workflow.next_step` and :meth:`Workflow.assignee`.
- :class:`Trackers`: each project's current line item and alerts, advanced
  by completions and batch generations.

``SeedResult.line_items`` is already in workflow order (phase position,
section position, item position, id), read back from the database; the
model relies on that order and never on the ids, which need not follow it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Literal

from harness.contract.seed import LineItem, SeedResult

__all__ = [
    "Completion",
    "ModelAlert",
    "ModelError",
    "Trackers",
    "Workflow",
]

Status = Literal["ACTIVE", "COMPLETED"]


class ModelError(ValueError):
    """The model was asked about something the seeded data does not have, or
    told of an outcome a conforming target cannot produce."""


class Workflow:
    """The seeded template in workflow order, and who holds which role."""

    def __init__(self, seeded: SeedResult) -> None:
        self.items: tuple[LineItem, ...] = tuple(seeded.line_items)
        self._index: dict[int, int] = {}
        for n, item in enumerate(self.items):
            if item.id in self._index:
                raise ModelError(f"line item {item.id} appears twice in the seeded template")
            self._index[item.id] = n
        self._members: dict[int, dict[str, int]] = {
            project: dict(roles) for project, roles in seeded.members.items()
        }

    @property
    def project_ids(self) -> list[int]:
        return sorted(self._members)

    def item(self, line_item_id: int) -> LineItem:
        """The line item with this id (ModelError if the template has none)."""
        try:
            return self.items[self._index[line_item_id]]
        except KeyError:
            raise ModelError(f"line item {line_item_id} is not in the seeded template") from None

    def first_step(self) -> LineItem | None:
        """Where every seeded tracker starts: the first active line item."""
        return next((li for li in self.items if li.is_active), None)

    def next_step(self, current_line_item_id: int) -> LineItem | None:
        """The first active line item after this one in workflow order; None
        when it is the last active one (the workflow is then complete)."""
        start = self._index.get(current_line_item_id)
        if start is None:
            raise ModelError(f"line item {current_line_item_id} is not in the seeded template")
        return next((li for li in self.items[start + 1 :] if li.is_active), None)

    def active_steps(self) -> list[LineItem]:
        """Every step a project walks through, in order."""
        return [li for li in self.items if li.is_active]

    def assignee(self, project_id: int, line_item: LineItem) -> int | None:
        """The member holding the line item's responsible role (None: nobody)."""
        return self.roles(project_id).get(line_item.responsible_role)

    def roles(self, project_id: int) -> Mapping[str, int]:
        """Logical role -> user id of the project's members."""
        try:
            return self._members[project_id]
        except KeyError:
            raise ModelError(f"project {project_id} was not seeded") from None

    def members(self, project_id: int) -> frozenset[int]:
        """The users who may complete the project's steps and hear its room events."""
        return frozenset(self.roles(project_id).values())

    def users(self) -> frozenset[int]:
        """Every member of every seeded project."""
        return frozenset(u for roles in self._members.values() for u in roles.values())


@dataclasses.dataclass(frozen=True)
class ModelAlert:
    """An alert as the model knows it."""

    id: int
    project_id: int
    step_id: int
    assigned_to_id: int | None
    status: Status = "ACTIVE"


@dataclasses.dataclass(frozen=True)
class Completion:
    """What a completion must answer, before it is sent."""

    status: int
    """200, 403 (not a member), 404 (unknown project) or 409 (stale)."""
    next_step: LineItem | None = None
    """On 200: the project's next current line item (None: the workflow ends)."""
    alert_due: bool = False
    """On 200: the completion must insert an alert for ``next_step``."""
    assignee: int | None = None
    """On 200 with an alert: whom it goes to."""


class Trackers:
    """Each project's current step and alerts, as a conforming target keeps them."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        first = workflow.first_step()
        self.current: dict[int, int | None] = {
            p: (first.id if first is not None else None) for p in workflow.project_ids
        }
        self.alerts: dict[int, ModelAlert] = {}

    # -- reads ----------------------------------------------------------------

    def current_step(self, project_id: int) -> LineItem | None:
        step = self._current(project_id)
        return None if step is None else self.workflow.item(step)

    def active_alerts(self, project_id: int | None = None) -> list[ModelAlert]:
        """ACTIVE alerts, of one project or of all, by id."""
        return sorted(
            (
                a
                for a in self.alerts.values()
                if a.status == "ACTIVE" and project_id in (None, a.project_id)
            ),
            key=lambda a: a.id,
        )

    def active_alerts_of(self, user_id: int) -> list[ModelAlert]:
        """What ``GET /api/users/{user_id}/alerts`` must list (any order)."""
        return [a for a in self.active_alerts() if a.assigned_to_id == user_id]

    def completed_steps(self, project_id: int) -> list[LineItem]:
        """The steps the project has already passed, in order."""
        current = self._current(project_id)
        done: list[LineItem] = []
        for item in self.workflow.active_steps():
            if item.id == current:
                break
            done.append(item)
        return done

    # -- expectations ---------------------------------------------------------

    def expect_completion(self, project_id: int, line_item_id: int, user_id: int) -> Completion:
        """The answer a completion must get now (contract 6.2, in its order)."""
        if project_id not in self.current:
            return Completion(status=404)
        if user_id not in self.workflow.members(project_id):
            return Completion(status=403)
        current = self.current[project_id]
        if current is None or current != line_item_id:
            return Completion(status=409)
        nxt = self.workflow.next_step(current)
        due = nxt is not None and not any(
            a.step_id == nxt.id for a in self.active_alerts(project_id)
        )
        return Completion(
            status=200,
            next_step=nxt,
            alert_due=due,
            assignee=self.workflow.assignee(project_id, nxt) if due and nxt else None,
        )

    def due_alerts(self, project_ids: Iterable[int]) -> dict[int, tuple[LineItem, int | None]]:
        """Project -> (step, assignee) of each alert a batch generation of
        ``project_ids`` must create now; unknown and finished projects are skipped."""
        due: dict[int, tuple[LineItem, int | None]] = {}
        for project in dict.fromkeys(project_ids):
            step = self.current.get(project)
            if step is None or self.active_alerts_at(project, step):
                continue
            item = self.workflow.item(step)
            if item.is_active:
                due[project] = (item, self.workflow.assignee(project, item))
        return due

    def active_alerts_at(self, project_id: int, step_id: int) -> list[ModelAlert]:
        return [a for a in self.active_alerts(project_id) if a.step_id == step_id]

    # -- changes --------------------------------------------------------------

    def complete(
        self, project_id: int, line_item_id: int, alert_id: int | None
    ) -> ModelAlert | None:
        """A completion of the current step committed, inserting ``alert_id``
        (None: it inserted none). Returns the new alert."""
        current = self._current(project_id)
        if current != line_item_id:
            raise ModelError(
                f"project {project_id}: line item {line_item_id} committed, but the"
                f" current one is {current}"
            )
        nxt = self.workflow.next_step(line_item_id)
        for alert in self.active_alerts_at(project_id, line_item_id):
            self.alerts[alert.id] = dataclasses.replace(alert, status="COMPLETED")
        self.current[project_id] = None if nxt is None else nxt.id
        if alert_id is None:
            return None
        if nxt is None:
            raise ModelError(f"project {project_id}: an alert {alert_id} after the last step")
        return self._add(alert_id, project_id, nxt)

    def generated(self, project_id: int, alert_id: int) -> ModelAlert:
        """A batch generation created ``alert_id`` for the project's current step."""
        step = self._current(project_id)
        if step is None:
            raise ModelError(f"project {project_id}: an alert {alert_id} after the last step")
        return self._add(alert_id, project_id, self.workflow.item(step))

    def _add(self, alert_id: int, project_id: int, step: LineItem) -> ModelAlert:
        if alert_id in self.alerts:
            raise ModelError(f"alert {alert_id} was created twice")
        if self.active_alerts_at(project_id, step.id):
            raise ModelError(f"project {project_id}: a second ACTIVE alert for step {step.id}")
        alert = ModelAlert(
            id=alert_id,
            project_id=project_id,
            step_id=step.id,
            assigned_to_id=self.workflow.assignee(project_id, step),
        )
        self.alerts[alert_id] = alert
        return alert

    def _current(self, project_id: int) -> int | None:
        try:
            return self.current[project_id]
        except KeyError:
            raise ModelError(f"project {project_id} was not seeded") from None

"""The state machine of the workflow model test (``test_workflow_model.py``).

:class:`WorkflowMachine` drives a running target (a :class:`ModelApp`) with
Hypothesis rules and checks, after every step, the answers, the database,
every user's alert list and every Socket.IO event against
:mod:`harness.model.workflow`; :func:`run_model` runs it within a budget.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from model_support import ORDER, WALK, Budget, Inbox, ModelApp

from harness.clients import AlertClient, HttpResponse, ReconnectPolicy
from harness.contract import ROLES, SeedSpec
from harness.contract import seed as seed_projects
from harness.model import ModelAlert, Trackers, Workflow

#: How long any one event may take to reach its subscriber.
DELIVERY_TIMEOUT_S = 10.0
#: How long a queued completion may take to end.
JOB_TIMEOUT_S = 20.0
#: A project id nobody seeded (far beyond any a run seeds; small enough for an
#: ``integer`` column and for a JavaScript number).
UNKNOWN_PROJECT = 2**31 - 1
POLICY = ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2, max_attempts=20)
ENDED = ("complete", "failed", "aborted")
#: An index into the example's projects (1 to 3 of them). Every draw has
#: bounds fixed in advance and is mapped onto the model's state (modulo):
#: the target's races make that state differ between runs of one example,
#: and Hypothesis requires the same draws for the same choices.
PROJECT = st.integers(0, 2)


def _diff_alerts(found: dict[int, ModelAlert], expected: dict[int, ModelAlert]) -> list[str]:
    lines: list[str] = []
    for alert_id in sorted(found.keys() | expected.keys()):
        db, model = found.get(alert_id), expected.get(alert_id)
        if db == model:
            continue
        if model is None:
            lines.append(f"alert {alert_id}: in the database only: {db}")
        elif db is None:
            lines.append(f"alert {alert_id}: in the model only: {model}")
        else:
            lines.append(f"alert {alert_id}: the database has {db}, the model {model}")
    return lines


#: Every rule of the machine (a sound run must fire each).
RULES = (
    "complete_current",
    "repeat_completion",
    "complete_wrong",
    "generate",
    "read_alerts",
    "queue_complete",
    "concurrent_batch",
)


class WorkflowMachine(RuleBasedStateMachine):
    """One example: a few freshly seeded projects, their members subscribed."""

    app: ClassVar[ModelApp]

    def __init__(self) -> None:
        super().__init__()
        self.projects: list[int] = []
        self.users: list[int] = []
        self.workflow: Workflow
        self.trackers: Trackers
        self.clients: dict[int, tuple[AlertClient, Inbox]] = {}
        #: The alert ids each user's list last showed, as checked.
        self.verified_lists: dict[int, list[int]] = {}

    # -- set-up and tear-down -------------------------------------------------

    # Hypothesis favours small draws: they mean the most projects and users
    # (users who are members of some projects and not others).
    @initialize(fewer=st.integers(0, 2), smaller_pool=st.integers(0, 3), data=st.integers(0, 9999))
    def seed_and_subscribe(self, fewer: int, smaller_pool: int, data: int) -> None:
        app = self.app
        app.stats.examples += 1
        spec = SeedSpec(
            projects=3 - fewer, users=7 - smaller_pool, seed=data, roles=app.target.roles
        )
        seeded = app.run(seed_projects(app.db, spec))
        # The model must be fed the template in workflow order (the seeder's job).
        assert [li.id for li in seeded.line_items] == list(ORDER)
        self.workflow = Workflow(seeded)
        assert [li.id for li in self.workflow.active_steps()] == list(WALK)
        self.trackers = Trackers(self.workflow)
        self.projects = list(seeded.project_ids)
        self.users = sorted(self.workflow.users())
        app.run(self._subscribe())
        for user, (client, _) in self.clients.items():
            outside = [p for p in self.projects if user not in self.workflow.members(p)]
            assert sorted(client.forbidden) == outside, (
                f"user {user} subscribed to projects {self.projects}: refused"
                f" {sorted(client.forbidden)}, but it is not a member of {outside}"
                " (subscribe_project must accept members only)"
            )
        self._check()

    async def _subscribe(self) -> None:
        for user in self.users:
            inbox = Inbox()
            client = AlertClient(
                self.app.url,
                self.app.token(user),
                projects=self.projects,
                policy=POLICY,
                rng=random.Random(user),
                on_event=inbox,
            )
            self.clients[user] = (client, inbox)
        await asyncio.gather(*(client.start() for client, _ in self.clients.values()))

    def teardown(self) -> None:
        # The next example's users are new: these clients may finish closing
        # (python-socketio lingers a second) while it runs.
        for client, _ in self.clients.values():
            self.app.later(client.stop())

    # -- helpers --------------------------------------------------------------

    def _fired(self, name: str) -> None:
        self.app.stats.rules[name] += 1
        self.app.stats.steps += 1

    def _outcome(self, name: str) -> None:
        self.app.stats.outcomes[name] += 1

    def _project(self, index: int) -> int:
        return self.projects[index % len(self.projects)]

    async def _post_complete(
        self, project: int, item: int, user: int, *, queue: bool = False
    ) -> HttpResponse:
        query = "?mode=queue" if queue else ""
        return await self.app.http.post(
            f"/api/projects/{project}/line-items/{item}/complete{query}",
            headers=self.app.auth(user),
        )

    async def _post_generate(self, projects: list[int], user: int) -> HttpResponse:
        return await self.app.http.post(
            "/api/alerts/generate", json={"project_ids": projects}, headers=self.app.auth(user)
        )

    async def _alert_rows(self, alert_ids: list[int]) -> dict[int, ModelAlert]:
        rows = await self.app.db.fetch(
            "SELECT id, project_id, step_id, status, assigned_to_id FROM workflow_alerts"
            " WHERE id = ANY($1::bigint[])",
            alert_ids,
        )
        return {
            r["id"]: ModelAlert(
                r["id"], r["project_id"], r["step_id"], r["assigned_to_id"], r["status"]
            )
            for r in rows
        }

    def _check_completion_answer(
        self, what: str, project: int, item: int, user: int, response: HttpResponse
    ) -> None:
        """A direct completion's answer against the model; on 200, advance the model."""
        expected = self.trackers.expect_completion(project, item, user)
        if response.status == 503 and expected.status == 200 and self.app.rollback_rate:
            self._outcome("complete:503")  # rolled back by fault injection: nothing changed
            return
        assert response.status == expected.status, (
            f"{what}: completing line item {item} of project {project} as user {user}"
            f" answered {response.status} ({response.detail()}); the model expects"
            f" {expected.status} (current step: {self.trackers.current[project]})"
        )
        self._outcome(f"complete:{response.status}")
        if response.status != 200:
            return
        body = response.body if isinstance(response.body, dict) else {}
        alert = body.get("alert")
        alert_id: int | None = None
        if expected.alert_due:
            assert expected.next_step is not None
            assert isinstance(alert, dict), f"{what}: 200 without the next step's alert: {body}"
            got = (alert.get("projectId"), alert.get("stepId"), alert.get("assignedToId"))
            want = (project, expected.next_step.id, expected.assignee)
            assert got == want, (
                f"{what}: completing {item} of project {project} created an alert for"
                f" (project, step, assignee) {got}; the model expects {want}"
            )
            assert isinstance(alert.get("id"), int), f"{what}: alert id is not an integer: {alert}"
            alert_id = alert["id"]
        else:
            assert alert is None, f"{what}: the last step's completion created an alert: {alert}"
        self.trackers.complete(project, item, alert_id)
        if self.trackers.current[project] is None:
            self._outcome("workflow_finished")

    # -- checks after every step ----------------------------------------------

    def _check(self) -> None:
        self.app.run(self._check_database())
        self.app.run(self._check_alert_lists())
        self.app.run(self._check_deliveries(), timeout_s=DELIVERY_TIMEOUT_S + 10.0)

    async def _alert_list_problem(self, user: int) -> str | None:
        """What is wrong with ``GET /api/users/{user}/alerts`` now (None: nothing)."""
        response = await self.app.http.get(f"/api/users/{user}/alerts", headers=self.app.auth(user))
        listed = response.body.get("alerts") if isinstance(response.body, dict) else None
        if response.status != 200 or not isinstance(listed, list):
            return f"user {user}'s alert list: {response.status} {response.text[:200]}"
        got = sorted((a.get("id"), a.get("projectId"), a.get("stepId")) for a in listed)
        want = sorted((a.id, a.project_id, a.step_id) for a in self.trackers.active_alerts_of(user))
        if got != want:
            return (
                f"user {user}'s alert list (id, project, step) is {got}; the model's ACTIVE"
                f" alerts of this user are {want}"
            )
        return None

    async def _check_alert_lists(self) -> None:
        """The list of every user whose ACTIVE alerts changed, right after the
        change (read-your-writes: a cached list must have been invalidated)."""
        lists = {u: [a.id for a in self.trackers.active_alerts_of(u)] for u in self.users}
        changed = [u for u in self.users if lists[u] != self.verified_lists.get(u, [])]
        problems = await asyncio.gather(*(self._alert_list_problem(u) for u in changed))
        found = [p for p in problems if p is not None]
        assert not found, "alert lists differ from the model's:\n" + "\n".join(found)
        self.verified_lists.update({u: lists[u] for u in changed})

    async def _check_database(self) -> None:
        rows = await self.app.db.fetch(
            "SELECT id FROM workflow_alerts WHERE project_id = ANY($1::bigint[])", self.projects
        )
        found = await self._alert_rows([r["id"] for r in rows])
        diff = _diff_alerts(found, self.trackers.alerts)
        assert not diff, "the database's alerts differ from the model's:\n" + "\n".join(diff[:10])
        trackers = await self.app.db.fetch(
            "SELECT project_id, current_line_item_id FROM project_workflow_trackers"
            " WHERE project_id = ANY($1::bigint[])",
            self.projects,
        )
        current = {r["project_id"]: r["current_line_item_id"] for r in trackers}
        assert current == self.trackers.current, (
            f"trackers (project: current line item): the database has {current},"
            f" the model {self.trackers.current}"
        )

    async def _check_deliveries(self) -> None:
        alerts = list(self.trackers.alerts.values())
        owed: dict[int, tuple[set[int], set[int]]] = {
            user: (
                {a.id for a in alerts if a.assigned_to_id == user},
                {a.id for a in alerts if user in self.workflow.members(a.project_id)},
            )
            for user in self.clients
        }

        def arrived(user: int) -> Callable[[], bool]:
            inbox = self.clients[user][1]
            mine, rooms = owed[user]
            return lambda: (
                mine <= inbox.new_alerts().keys()
                and rooms <= inbox.room_events("alerts_refresh").keys()
                and rooms <= inbox.room_events("workflow_updated").keys()
            )

        await asyncio.gather(
            *(
                inbox.wait_until(arrived(user), DELIVERY_TIMEOUT_S)
                for user, (_, inbox) in self.clients.items()
            )
        )
        problems: list[str] = []
        for user, (client, inbox) in self.clients.items():
            mine, rooms = owed[user]
            received = inbox.new_alerts()
            if missing := sorted(mine - received.keys()):
                problems.append(
                    f"user {user} did not get new_alert {missing} within {DELIVERY_TIMEOUT_S} s"
                )
            if foreign := sorted(received.keys() - mine):
                problems.append(
                    f"user {user} got new_alert {foreign}, which the model does not owe them"
                    " (another user's, or never committed)"
                )
            for alert in (self.trackers.alerts[i] for i in sorted(mine & received.keys())):
                event = received[alert.id]
                got = (event.data.get("projectId"), event.data.get("stepId"), event.via)
                if got != (alert.project_id, alert.step_id, "live"):
                    problems.append(
                        f"user {user}: new_alert {alert.id} said (project, step, via) {got};"
                        f" the alert is ({alert.project_id}, {alert.step_id}, 'live')"
                    )
            if client.duplicates_dropped:
                problems.append(f"user {user} got {client.duplicates_dropped} new_alert twice")
            for name in ("alerts_refresh", "workflow_updated"):
                counts = inbox.room_events(name)
                if counts != Counter(dict.fromkeys(rooms, 1)):
                    problems.append(
                        f"user {user} (member of"
                        f" {[p for p in self.projects if user in self.workflow.members(p)]})"
                        f" got {name} for alerts {dict(counts)}; owed once each: {sorted(rooms)}"
                    )
        assert not problems, "Socket.IO deliveries differ from the model's:\n" + "\n".join(
            problems[:10]
        )

    # -- rules ----------------------------------------------------------------

    @rule(p=PROJECT, how=st.tuples(st.sampled_from(ROLES), st.integers(1, len(WALK) + 1)))
    def complete_current(self, p: int, how: tuple[str, int]) -> None:
        """Complete the project's current step as the member in ``role``,
        ``times`` steps in a row (409 once the workflow is finished)."""
        self._fired("complete_current")
        role, times = how
        project = self._project(p)
        user = self.workflow.roles(project)[role]
        for _ in range(times):
            step = self.trackers.current_step(project)
            item = step.id if step is not None else WALK[-1]
            response = self.app.run(self._post_complete(project, item, user))
            self._check_completion_answer("complete_current", project, item, user, response)
            self._check()

    @rule(n=st.integers(0, 63), role=st.sampled_from(ROLES))
    def repeat_completion(self, n: int, role: str) -> None:
        """Complete again a step some project has already passed: stale, 409
        (before any project moved: its next step, stale too)."""
        self._fired("repeat_completion")
        done = [(p, li.id) for p in self.projects for li in self.trackers.completed_steps(p)]
        if done:
            project, item = done[n % len(done)]
        else:
            project, item = self._project(n), WALK[1]
            self._outcome("repeat:nothing_done_yet")
        user = self.workflow.roles(project)[role]
        response = self.app.run(self._post_complete(project, item, user))
        self._check_completion_answer("repeat_completion", project, item, user, response)
        self._check()

    @rule(
        p=PROJECT,
        how=st.tuples(
            st.sampled_from(["step", "user", "project"]),
            st.integers(0, len(ORDER) - 1),
            st.sampled_from(ROLES),
        ),
    )
    def complete_wrong(self, p: int, how: tuple[str, int, str]) -> None:
        """A completion that must be refused (``wrong``, ``n``, ``role``): a
        line item that is not current (past, future or inactive: 409), by a
        user who is not a member (403; on a wrong step when every user is
        one), of an unknown project (404)."""
        self._fired("complete_wrong")
        wrong, n, role = how
        project = self._project(p)
        user = self.workflow.roles(project)[role]
        outsiders = [u for u in self.users if u not in self.workflow.members(project)]
        if wrong == "project":
            response = self.app.run(self._post_complete(UNKNOWN_PROJECT, WALK[0], user))
            assert response.status == 404, (
                f"completing a step of unknown project {UNKNOWN_PROJECT} answered"
                f" {response.status} ({response.detail()}); the contract says 404"
            )
            self._outcome("complete:404")
            self._check()
            return
        if wrong == "user" and outsiders:
            user = outsiders[n % len(outsiders)]
            item = self.trackers.current[project] or WALK[-1]
        else:
            others = [i for i in ORDER if i != self.trackers.current[project]]
            item = others[n % len(others)]
        response = self.app.run(self._post_complete(project, item, user))
        self._check_completion_answer(f"complete_wrong {wrong}", project, item, user, response)
        self._check()

    @rule(ps=st.lists(PROJECT, max_size=4), unknown=st.booleans())
    def generate(self, ps: list[int], unknown: bool) -> None:
        """Batch generation of ``ps`` (empty: of every project): exactly the
        missing current-step alerts; an unknown project is skipped."""
        self._fired("generate")
        ids = [self._project(i) for i in ps] if ps else list(self.projects)
        ids += [UNKNOWN_PROJECT] if unknown else []
        caller = self.workflow.roles(ids[0])["project_manager"]
        due = self.trackers.due_alerts(ids)
        response = self.app.run(self._post_generate(ids, caller))
        assert response.status == 200, f"generate {ids}: {response.status} {response.detail()}"
        body = response.body
        assert isinstance(body, dict), f"generate {ids}: not a JSON object: {response.text[:200]}"
        assert body.get("requested") == len(set(ids)), f"generate {ids}: requested in {body}"
        created = body.get("alertIds")
        assert isinstance(created, list), f"generate {ids}: no alertIds in {body}"
        assert body.get("created") == len(created), f"generate {ids}: created != alertIds {body}"
        self._outcome(f"generate:created_{len(created)}")
        rows = self.app.run(self._alert_rows(created))
        got = sorted((a.project_id, a.step_id, a.assigned_to_id) for a in rows.values())
        want = sorted((p, step.id, user) for p, (step, user) in due.items())
        assert len(rows) == len(created), f"generate {ids}: alerts {created}, found {rows}"
        assert got == want, (
            f"generate {ids} created (project, step, assignee) {got} (alerts {created});"
            f" the model expects {want}"
        )
        for alert in rows.values():
            self.trackers.generated(alert.project_id, alert.id)
        self._check()

    @rule(u=st.integers(0, 7), as_other=st.booleans())
    def read_alerts(self, u: int, as_other: bool) -> None:
        """A user's ACTIVE alerts, right after the last change; 403 for someone else's."""
        self._fired("read_alerts")
        # Users with alerts first: Hypothesis favours small indices.
        users = sorted(self.users, key=lambda v: (not self.trackers.active_alerts_of(v), v))
        user = users[u % len(users)]
        reader = users[(u + 1) % len(users)] if as_other else user
        if reader != user:
            response = self.app.run(
                self.app.http.get(f"/api/users/{user}/alerts", headers=self.app.auth(reader))
            )
            assert response.status == 403, (
                f"user {reader} reading user {user}'s alerts got {response.status}; contract: 403"
            )
            self._outcome("read_alerts:403")
        else:
            problem = self.app.run(self._alert_list_problem(user))
            assert problem is None, problem
            empty = not self.trackers.active_alerts_of(user)
            self._outcome(f"read_alerts:{'empty' if empty else 'some'}")
        self._check()

    def _queue(self) -> bool:
        return "queue" in self.app.target.capabilities

    @precondition(_queue)
    @rule(p=PROJECT, which=st.sampled_from(["current", "past", "future"]))
    def queue_complete(self, p: int, which: str) -> None:
        """A queued completion (``?mode=queue``): it ends ``complete`` and does
        what a direct one does; a stale one changes nothing."""
        self._fired("queue_complete")
        project = self._project(p)
        current = self.trackers.current[project]
        walk = list(WALK)
        position = walk.index(current) if current is not None else len(walk)
        choices = {
            "current": walk[position : position + 1],
            "past": walk[:position][-1:],
            "future": walk[position + 1 :][:1],
        }[which] or [current if current is not None else walk[-1]]
        item = choices[0]
        user = self.workflow.roles(project)["project_manager"]
        expected = self.trackers.expect_completion(project, item, user)
        response = self.app.run(self._post_complete(project, item, user, queue=True))
        assert response.status == 202, f"queue {project}/{item}: {response.status}"
        job_id = response.body.get("jobId") if isinstance(response.body, dict) else None
        assert isinstance(job_id, str), f"queue {project}/{item}: no jobId in {response.text}"
        job = self.app.run(self._wait_job(job_id, user), timeout_s=JOB_TIMEOUT_S + 10)
        assert job.get("status") == "complete", (
            f"queued completion {job_id} of {project}/{item} ({which}) ended {job}; a queued"
            " completion must end complete, a stale one with nothing changed"
        )
        self._outcome(f"queue:{'completed' if expected.status == 200 else 'stale'}")
        if expected.status == 200:
            rows = self.app.run(self._new_alerts(project))
            alert_id: int | None = None
            if expected.alert_due:
                assert expected.next_step is not None
                got = [(a.step_id, a.assigned_to_id, a.status) for a in rows]
                want = [(expected.next_step.id, expected.assignee, "ACTIVE")]
                assert got == want, (
                    f"queued completion of {project}/{item} created (step, assignee, status)"
                    f" {got}; the model expects {want}"
                )
                alert_id = rows[0].id
            self.trackers.complete(project, item, alert_id)
        self._check()

    async def _new_alerts(self, project: int) -> list[ModelAlert]:
        rows = await self.app.db.fetch(
            "SELECT id FROM workflow_alerts WHERE project_id = $1 ORDER BY id", project
        )
        fresh = [r["id"] for r in rows if r["id"] not in self.trackers.alerts]
        found = await self._alert_rows(fresh)
        return [found[i] for i in fresh]

    async def _wait_job(self, job_id: str, user: int) -> dict[str, Any]:
        """Poll the job until it ended (bounded in time and count)."""
        deadline = time.monotonic() + JOB_TIMEOUT_S
        body: dict[str, Any] = {}
        for _ in range(2000):
            response = await self.app.http.get(
                f"/api/queue/jobs/{job_id}", headers=self.app.auth(user)
            )
            body = response.body if isinstance(response.body, dict) else {}
            if body.get("status") in ENDED or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)  # a polling interval, bounded by the deadline
        return body

    @rule(p=PROJECT, race=st.tuples(st.integers(2, 4), st.integers(0, 2), st.booleans()))
    def concurrent_batch(self, p: int, race: tuple[int, int, bool]) -> None:
        """Several completions of the current step and generations of the same
        project at once: one completion wins, the rest are 409; a generation
        that ran first made an alert that the completion then closed.
        ``race``: (completions, 2 - generations, whether the generations
        also list the example's other projects)."""
        self._fired("concurrent_batch")
        completions, fewer_generations, with_others = race
        generations = 2 - fewer_generations  # small draws: the most racing
        project = self._project(p)
        step = self.trackers.current_step(project)
        item = step.id if step is not None else WALK[-1]
        members = [self.workflow.roles(project)[r] for r in ROLES]
        others = [q for q in self.projects if q != project] if with_others else []
        may_generate = step is not None and not self.trackers.active_alerts_at(project, item)
        due_others = self.trackers.due_alerts(others) if generations else {}
        expected = self.trackers.expect_completion(project, item, members[0])

        async def run_race() -> list[HttpResponse]:
            calls = [
                self._post_complete(project, item, members[k % len(members)])
                for k in range(completions)
            ] + [self._post_generate([project, *others], members[0]) for _ in range(generations)]
            return await asyncio.gather(*calls)

        responses = self.app.run(run_race())
        done, gens = responses[:completions], responses[completions:]
        statuses = sorted(r.status for r in done)
        want = [200] + [409] * (completions - 1) if expected.status == 200 else [409] * completions
        if expected.status == 200 and self.app.rollback_rate and 503 in statuses:
            # Rolled-back attempts (503) leave the step current for the next
            # racer: at most one commits, and only after a commit is one stale.
            won, failed = min(statuses.count(200), 1), statuses.count(503)
            want = [200] * won + [409] * ((completions - 1 - failed) if won else 0)
            want += [503] * failed
        assert statuses == want, (
            f"{completions} racing completions of {project}/{item} answered {statuses}"
            f" ({[r.detail() for r in done if r.status != 200]}); the model expects {want}"
        )
        created: list[int] = []
        for response in gens:
            assert response.status == 200, f"racing generate: {response.status}"
            ids = response.body.get("alertIds") if isinstance(response.body, dict) else None
            assert isinstance(ids, list), f"racing generate: no alertIds in {response.text}"
            created += ids
        rows = self.app.run(self._alert_rows(created))
        assert len(rows) == len(created) == len(set(created)), (
            f"racing generations returned alerts {created}; the database has {sorted(rows)}"
        )
        mine = [a for a in rows.values() if a.project_id == project]
        theirs = sorted(
            (a.project_id, a.step_id, a.assigned_to_id)
            for a in rows.values()
            if a.project_id != project
        )
        want_theirs = sorted((q, s.id, u) for q, (s, u) in due_others.items())
        assert theirs == want_theirs, (
            f"racing generations created (project, step, assignee) {theirs} for the"
            f" other projects; the model expects {want_theirs}"
        )
        allowed = (project, item, self.workflow.assignee(project, step)) if step else None
        assert len(mine) <= (1 if may_generate else 0), (
            f"racing generations created {mine} for project {project}; the model allows"
            f" {'one alert ' + str(allowed) if may_generate else 'none'}"
        )
        assert all((a.project_id, a.step_id, a.assigned_to_id) == allowed for a in mine), (
            f"racing generations created {mine} for project {project}; the model allows"
            f" {'one alert ' + str(allowed) if may_generate else 'none'}"
        )
        for alert in sorted(rows.values(), key=lambda a: a.id):
            self.trackers.generated(alert.project_id, alert.id)
        self._outcome(f"batch:generation_{'first' if mine else 'not_first'}")
        winner = next((r for r in done if r.status == 200), done[0])
        self._check_completion_answer("concurrent_batch", project, item, members[0], winner)
        self._check()


def run_model(app: ModelApp, budget: Budget) -> None:
    """Run the state machine against ``app`` within ``budget``."""
    machine = type("WorkflowMachine", (WorkflowMachine,), {"app": app})
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if budget.shrink else [])
    config = settings(
        max_examples=budget.examples,
        stateful_step_count=budget.steps,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=False,
    )
    with app.measure():
        run_state_machine_as_test(seed(budget.seed)(machine), settings=config)

"""A model of the workflow, checked against a real target over HTTP and Socket.IO.

A Hypothesis ``RuleBasedStateMachine`` drives a running target (the
reference, or the seed's Node system) through its HTTP API while every
member of the seeded projects listens over Socket.IO, and compares each
answer, the database and every event with :mod:`harness.model.workflow`,
whose expectations come from the seeded data only:

- the right step comes next (workflow order, inactive items skipped: a
  template whose ids follow neither the order nor each other);
- each alert goes to the member holding the step's responsible role, and
  that member's subscriber gets ``new_alert`` for it live, once; nobody
  else does; the project's members (and only they) get its room events;
- 409 exactly when a completion is stale (repeated, wrong step, finished
  workflow), 403 for a non-member, 404 for an unknown project;
- batch generation creates exactly the missing current-step alerts;
- queued completions (``queue`` capability) do what direct ones do, and a
  stale one changes nothing;
- racing completions and generations of one project (``asyncio.gather``):
  exactly one completion wins, and no alert is left ACTIVE on a passed step.

Each Hypothesis example seeds fresh projects (and a fresh pool of users) in
the same database, so examples do not see each other's state.

Budget: 15 examples of at most 20 steps, seeded (``ALERTBENCH_MODEL_SEED``,
default 20261201), no shrinking. A bigger run::

    ALERTBENCH_MODEL_EXAMPLES=200 pytest tests/integration/model -k follows

(more examples also mean 50 steps each, ``ALERTBENCH_MODEL_STEPS``, and
shrinking of a failure; ``ALERTBENCH_MODEL_SHRINK=1`` shrinks at any size).
``-s`` shows what the run exercised: examples, steps, rules fired, outcomes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from model_support import Budget, ModelApp
from workflow_machine import RULES, run_model

from harness.stack import Stack
from harness.targets import Target, load_target

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEED_NODE = Path(__file__).resolve().parents[3] / "examples" / "seed-node"


def _node_missing() -> str | None:
    if not (SEED_NODE / "node_modules" / "socket.io").is_dir():
        return "its npm packages are not installed: run `npm ci --prefix examples/seed-node`"
    return None


TARGETS: dict[str, tuple[Callable[[], Target], str | None]] = {
    "reference": (lambda: load_target("reference"), None),
    "seed-node": (lambda: load_target(SEED_NODE / "target.toml"), _node_missing()),
}


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest) -> Target:
    make, missing = TARGETS[request.param]
    if missing is not None:
        pytest.skip(missing)
    return make()


@pytest.fixture
def budget() -> Budget:
    try:
        return Budget.from_env()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(params=[0.0, 0.2], ids=["plain", "rollbacks"])
def sound_app(
    alertbench_stack: Stack, target: Target, budget: Budget, request: pytest.FixtureRequest
) -> Iterator[ModelApp]:
    """The target without flaws; with ``rollbacks``, a fifth of its completion
    attempts fail before COMMIT (503, or a retry when queued)."""
    rate = float(request.param)
    if rate and "fault_injection" not in target.capabilities:
        pytest.skip(f"target {target.name!r} does not declare fault_injection")
    with ModelApp(
        alertbench_stack,
        target,
        flaws=frozenset(),
        database="alertbench_model",
        rollback_rate=rate,
        seed=budget.seed,
    ) as app:
        yield app


def test_the_target_follows_the_model(
    sound_app: ModelApp, budget: Budget, record_property: Callable[[str, object], None]
) -> None:
    run_model(sound_app, budget)
    stats = sound_app.stats
    print(f"\n[{sound_app.target.name}] {stats.summary()}")
    record_property("model_stats", stats.summary())
    assert stats.examples >= budget.examples
    # Every rule ran, and the interesting outcomes happened, or the run proved little.
    assert set(stats.rules) == set(RULES), stats.summary()
    for outcome in ("complete:200", "complete:409", "complete:403", "generate:created_1"):
        assert stats.outcomes[outcome] > 0, stats.summary()


@pytest.mark.parametrize("target", ["reference"], indirect=True)
@pytest.mark.parametrize(
    ("flaw", "rollback_rate", "symptom"),
    [
        # Another project's ACTIVE alert for the same step is closed.
        ("unscoped_complete", 0.0, "'COMPLETED'"),
        # A user's cached alert list is not invalidated by a change.
        ("stale_cache", 0.0, "alert list"),
        # A non-member joins a project's room.
        ("no_room_auth", 0.0, "must accept members only"),
        # An alert is emitted inside its transaction: a rolled-back one reaches
        # its assignee anyway, a committed one is announced again after commit.
        ("emit_before_commit", 0.3, "does not owe them|twice|owed once each"),
    ],
)
def test_the_model_catches_a_flaw(
    alertbench_stack: Stack,
    target: Target,
    budget: Budget,
    flaw: str,
    rollback_rate: float,
    symptom: str,
) -> None:
    if flaw not in target.flaws:
        pytest.skip(f"target {target.name!r} has no flaw {flaw!r}")
    with ModelApp(
        alertbench_stack,
        target,
        flaws=frozenset({flaw}),
        database=f"alertbench_model_{flaw}",
        rollback_rate=rollback_rate,
        seed=budget.seed,
    ) as app:
        with pytest.raises(AssertionError) as caught:
            run_model(app, Budget(examples=budget.examples, steps=budget.steps, seed=budget.seed))
        first_line = str(caught.value).strip().splitlines()[:3]
        print(f"\n[{target.name} --flaw {flaw}] caught after {app.stats.summary()}: {first_line}")
    assert re.search(symptom, str(caught.value)), str(caught.value)


def test_the_budget_comes_from_the_environment_and_bad_values_are_named() -> None:
    assert Budget.from_env({}) == Budget(examples=15, steps=20, seed=20261201, shrink=False)
    bigger = Budget.from_env({"ALERTBENCH_MODEL_EXAMPLES": "200"})
    assert (bigger.examples, bigger.steps, bigger.shrink) == (200, 50, True)
    steps = Budget.from_env({"ALERTBENCH_MODEL_STEPS": "5", "ALERTBENCH_MODEL_SHRINK": "1"})
    assert (steps.examples, steps.steps, steps.shrink) == (15, 5, True)
    with pytest.raises(ValueError, match="ALERTBENCH_MODEL_EXAMPLES: must be an integer"):
        Budget.from_env({"ALERTBENCH_MODEL_EXAMPLES": "lots"})
    with pytest.raises(ValueError, match="ALERTBENCH_MODEL_STEPS: must be >= 1, got 0"):
        Budget.from_env({"ALERTBENCH_MODEL_STEPS": "0"})

"""The Socket.IO attack strategies generate what they claim, reproducibly."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings

from harness.fuzz.realtime import (
    ALLOWED_DROP_KINDS,
    JSON_SAFE_MAX,
    MAX_ID,
    RESERVED_EVENT_NAMES,
    SocketAction,
    draw_actions,
    malformed_ids,
    socket_actions,
)
from scenarios.security import DEFAULT_EXAMPLES, FUZZ_EXAMPLES_ENV, fuzz_examples

OWN = [5]
FOREIGN = [1, 2, 3, 4]
KINDS = {
    "subscribe_malformed",
    "subscribe_foreign",
    "sync_malformed",
    "sync_valid",
    "unknown_event",
    "reserved_event",
    "tricky_event",
    "oversized",
    "deeply_nested",
    "invalid_json",
    "extra_arguments",
}


def contract_id(args: tuple[Any, ...], key: str, *, allow_zero: bool) -> int | None:
    """The id a contract-following server reads from an event's arguments
    (contract 7.3 / 7.4), or None: a JSON round trip first, as on the wire."""
    if len(args) < 1 or not isinstance(args[0], dict):
        return None
    try:
        payload = json.loads(json.dumps(args[0], allow_nan=False))
    except (TypeError, ValueError):  # bytes, NaN: not a JSON object at all
        return None
    value = payload.get(key)
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if lowest <= value <= MAX_ID else None


STRATEGY = socket_actions(OWN, FOREIGN)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(action=STRATEGY)
def test_each_action_is_what_its_kind_says(action: SocketAction) -> None:
    assert action.kind in KINDS
    if action.kind == "subscribe_malformed":
        assert action.event == "subscribe_project"
        assert contract_id(action.args, "projectId", allow_zero=False) is None
        assert action.expect == "refused"
    elif action.kind == "sync_malformed":
        assert action.event == "sync"
        assert contract_id(action.args, "sinceAlertId", allow_zero=True) is None
        assert action.expect == "refused"
    elif action.kind == "subscribe_foreign":
        project = contract_id(action.args, "projectId", allow_zero=False)
        assert project is not None
        assert project not in OWN
        assert action.expect == "refused"
    elif action.kind == "sync_valid":
        since = contract_id(action.args, "sinceAlertId", allow_zero=True)
        assert since is not None
        assert since <= JSON_SAFE_MAX  # exact in every JSON parser
        assert action.expect == "ok"
    elif action.kind in ("unknown_event", "tricky_event"):
        assert action.event not in ("subscribe_project", "sync")
        assert action.event not in RESERVED_EVENT_NAMES
    elif action.kind == "reserved_event":
        assert action.event in RESERVED_EVENT_NAMES
    elif action.kind == "oversized":
        assert len(json.dumps(action.args)) > 16 * 1024
    elif action.kind == "invalid_json":
        assert math.isnan(next(iter(action.args[0].values())))


def test_a_seed_draws_the_same_actions_and_another_seed_others() -> None:
    first = draw_actions(STRATEGY, 60, 3)
    assert len(first) == 60
    assert draw_actions(STRATEGY, 60, 3) == first
    assert draw_actions(STRATEGY, 60, 4) != first


def test_a_batch_covers_every_kind_of_attack() -> None:
    kinds = Counter(a.kind for a in draw_actions(STRATEGY, 200, 1))
    assert set(kinds) == KINDS
    # Only protocol-level abuse may cost the attacker its connection.
    assert ALLOWED_DROP_KINDS <= KINDS
    assert {"subscribe_malformed", "sync_malformed", "tricky_event"}.isdisjoint(ALLOWED_DROP_KINDS)


def test_known_foreign_projects_are_tried() -> None:
    foreign = {
        a.args[0]["projectId"]
        for a in draw_actions(STRATEGY, 200, 1)
        if a.kind == "subscribe_foreign"
    }
    assert foreign & set(FOREIGN)


def test_a_project_cannot_be_both_own_and_foreign() -> None:
    with pytest.raises(ValueError, match="both"):
        socket_actions([1], [1, 2])


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(value=malformed_ids(allow_zero=False))
def test_malformed_ids_are_never_a_positive_64_bit_integer(value: Any) -> None:
    assert contract_id(({"projectId": value},), "projectId", allow_zero=False) is None


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(value=malformed_ids(allow_zero=True, too_large=False))
def test_malformed_since_ids_stay_below_the_range_when_asked(value: Any) -> None:
    assert not (isinstance(value, int) and not isinstance(value, bool) and value > MAX_ID)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", DEFAULT_EXAMPLES), ("40", 40), (" 7 ", 7)],
)
def test_the_example_budget_comes_from_the_environment(raw: str, expected: int) -> None:
    assert fuzz_examples({FUZZ_EXAMPLES_ENV: raw}) == expected
    assert fuzz_examples({}) == DEFAULT_EXAMPLES


@pytest.mark.parametrize(
    ("raw", "message"),
    [("many", "must be an integer, got 'many'"), ("0", "must be in 1..100000, got 0")],
)
def test_a_bad_example_budget_is_refused_by_name(raw: str, message: str) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=FUZZ_EXAMPLES_ENV) as caught:
        fuzz_examples({FUZZ_EXAMPLES_ENV: raw})
    assert message in str(caught.value)

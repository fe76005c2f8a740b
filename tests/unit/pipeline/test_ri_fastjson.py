"""The reference's hot-path JSON means what the standard library's would."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.fastjson import SocketIOJson, dumps, loads_own

_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_VALUES)
def test_dumps_reads_back_as_the_same_value_with_json(value: object) -> None:
    encoded = dumps(value)
    assert json.loads(encoded) == value
    assert SocketIOJson.loads(SocketIOJson.dumps(value, separators=(",", ":"))) == value


def test_dumps_is_compact_utf8_and_keeps_integers_beyond_64_bits() -> None:
    assert dumps({"a": [1, 2.5, None], "b": "é"}) == '{"a":[1,2.5,null],"b":"é"}'.encode()
    assert dumps({"input": 99999999999999999999999}) == b'{"input":99999999999999999999999}'


def test_socketio_json_follows_other_options_with_the_standard_library() -> None:
    assert SocketIOJson.dumps({"a": 1}, indent=1) == json.dumps({"a": 1}, indent=1)
    # Clients' payloads are read by json: a huge id stays an integer (refused
    # with an error ack), it does not turn into a float.
    assert SocketIOJson.loads('{"projectId": 99999999999999999999999}') == {
        "projectId": 99999999999999999999999
    }


def test_loads_own_reads_what_dumps_wrote() -> None:
    value = {"alertId": 2**63 - 1, "title": "Order permit (1.1.2)", "createdAt": "2025-01-01"}
    assert loads_own(dumps(value)) == value

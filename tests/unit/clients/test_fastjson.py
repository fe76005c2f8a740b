"""The clients' fast JSON reads exactly what the standard library reads."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import engineio.json
import pytest

from harness.clients.fastjson import SocketIOJson, dumps, loads, socketio_loads

#: Texts where orjson and the standard library could part ways.
TEXTS = [
    '["new_alert",{"id":123,"title":"Step 5","projectId":7,"assignedToId":null}]',
    '{"committedAtMs": 1764600000123.456, "alert": {"id": 9223372036854775807}}',
    '{"id": 9223372036854775808}',  # one past int64: orjson alone gives a float
    '{"id": 18446744073709551616}',  # past uint64
    '{"id": -9223372036854775809}',
    "[" + "1" * 40 + "]",
    '{"note": "a run of digits 12345678901234567890 inside a string"}',
    "[NaN, Infinity, -Infinity]",  # not JSON; Python's parser takes it
    "[1e400, -0, -0.0, 0.1, 5e-324]",
    '"\\ud800 lone surrogate escape"',
    '{"a": 1, "a": 2}',
    '"caf\\u00e9 \u00e9\u4e2d\ud83d\ude00"',
    "  [1, 2]  ",
    "[[[[[[[[[[]]]]]]]]]]",
]


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types (1 is not 1.0) and NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.parametrize("text", TEXTS)
def test_loads_reads_what_the_standard_library_reads(text: str) -> None:
    assert _same(loads(text), json.loads(text))
    assert _same(loads(text.encode("utf-8", "surrogatepass")), json.loads(text))


@pytest.mark.parametrize("text", TEXTS)
def test_socketio_loads_reads_what_engineio_reads(text: str) -> None:
    assert _same(socketio_loads(text), engineio.json.loads(text))


def test_integers_beyond_64_bits_stay_exact() -> None:
    big = 2**70 + 1
    assert loads(f'{{"id": {big}}}') == {"id": big}
    assert isinstance(loads(f"[{big}]")[0], int)


def test_socketio_loads_refuses_what_engineio_refuses() -> None:
    huge = "[" + "7" * 101 + "]"
    with pytest.raises(ValueError, match="too large"):
        engineio.json.loads(huge)
    with pytest.raises(ValueError, match="too large"):
        socketio_loads(huge)
    assert loads(huge) == [int("7" * 101)]  # the plain reader has no such limit


@pytest.mark.parametrize("text", ["", "{", '{"a": }', "[1,]", "nul", "\x00"])
def test_bad_json_raises_the_standard_librarys_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        loads(text)
    assert (got.value.msg, got.value.pos) == (expected.value.msg, expected.value.pos)


def test_random_documents_read_the_same() -> None:
    rng = random.Random(13)

    def value(depth: int) -> Any:
        kind = rng.randrange(7 if depth < 3 else 4)
        if kind == 0:
            return rng.randrange(-(2**80), 2**80) >> rng.randrange(80)
        if kind == 1:
            return rng.uniform(-1e6, 1e6)
        if kind == 2:
            return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(12)))
        if kind == 3:
            return rng.choice([None, True, False])
        if kind == 4:
            return [value(depth + 1) for _ in range(rng.randrange(5))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randrange(5))}

    for _ in range(500):
        text = json.dumps(value(0), ensure_ascii=rng.random() < 0.5)
        assert _same(loads(text), json.loads(text)), text


def test_socketio_packets_encode_with_the_standard_library() -> None:
    # orjson would write NaN as null; the clients keep Python's encoding.
    data = {"x": math.nan, "y": [1, 2.5, "é"]}
    assert dumps(data, separators=(",", ":")) == json.dumps(data, separators=(",", ":"))
    assert SocketIOJson.dumps(data) == json.dumps(data)
    assert SocketIOJson.loads('{"a": [1]}') == {"a": [1]}

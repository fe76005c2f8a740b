"""Bad API input never crashes the server; seeded toxicity rolls are reproducible."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.faults import EmbeddedToxiproxy, ToxiproxyClient, ToxiproxyThread
from harness.faults.testing import EchoServer

IO_TIMEOUT_S = 5.0

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
toxic_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "type": st.sampled_from(["latency", "bandwidth", "slicer", "timeout", "x"]) | json_values,
        "stream": st.sampled_from(["upstream", "downstream", "UPSTREAM", ""]) | json_values,
        "toxicity": json_values,
        "attributes": st.dictionaries(
            st.sampled_from(["latency", "jitter", "rate", "average_size", "delay", "zz"]),
            json_values,
        )
        | json_values,
    },
)


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with ToxiproxyThread(seed=1) as thread, httpx.Client(base_url=thread.url, timeout=5) as client:
        assert (
            client.post("/proxies", json={"name": "p", "upstream": "127.0.0.1:9"}).status_code
            == 201
        )
        yield client


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=toxic_bodies | json_values)
def test_any_toxic_body_gets_a_clean_answer(api: httpx.Client, body: object) -> None:
    response = api.post("/proxies/p/toxics", json=body)
    assert response.status_code in (200, 400, 409), response.text
    if response.status_code != 200:
        assert set(response.json()) == {"error", "status"}
    api.post("/reset")


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=json_values)
def test_any_proxy_body_gets_a_clean_answer(api: httpx.Client, body: object) -> None:
    for method, path in [("POST", "/proxies"), ("PATCH", "/proxies/p"), ("POST", "/populate")]:
        response = api.request(method, path, json=body)
        assert response.status_code in (200, 201, 400, 409, 500), response.text
        assert response.status_code != 500 or "listen" in response.json()["error"]
    for name in api.get("/proxies").json():
        if name != "p":
            api.delete(f"/proxies/{name}")
    api.post("/reset")


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"nul", b"[1,", b"\xff\xfe", b'{"name": NaN}', b"Infinity", b'"text"'],
)
def test_broken_json_is_400(api: httpx.Client, raw: bytes) -> None:
    for path in ["/proxies", "/proxies/p/toxics", "/populate"]:
        response = api.post(path, content=raw)
        assert response.status_code == 400, (path, raw, response.text)
        assert response.json()["status"] == 400
    assert api.get("/version").status_code == 200


def test_unknown_fields_are_ignored(api: httpx.Client) -> None:
    body = {"name": "u", "upstream": "127.0.0.1:9", "colour": "red", "toxics": [1, 2]}
    response = api.post("/proxies", json=body)
    assert response.status_code == 201
    assert "colour" not in response.json()
    toxic = {"type": "latency", "extra": {"a": 1}, "attributes": {"latency": 3, "bogus": 1}}
    response = api.post("/proxies/u/toxics", json=toxic)
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 3, "jitter": 0}
    api.delete("/proxies/u")


def test_oversized_body_is_refused_cleanly(api: httpx.Client) -> None:
    response = api.post("/proxies", content=json.dumps({"name": "x" * (2 << 20)}))
    assert response.status_code == 413
    assert api.get("/version").status_code == 200


async def _toxicity_pattern(seed: int, connections: int) -> list[bool]:
    """Which of ``connections`` sequential connections a 50 % timeout toxic hit."""
    hits = []
    async with (
        EchoServer() as echo,
        EmbeddedToxiproxy(seed=seed) as server,
        ToxiproxyClient(server.url) as tp,
    ):
        proxy = await tp.create_proxy("p", upstream=echo.address)
        await tp.add_toxic("p", "timeout", toxicity=0.5, attributes={"timeout": 1})
        for _ in range(connections):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            writer.write(b"x")
            async with asyncio.timeout(IO_TIMEOUT_S):
                hits.append(await reader.read(1) == b"")  # closed by the toxic
            writer.close()
    return hits


async def test_seed_makes_toxicity_rolls_reproducible() -> None:
    first = await _toxicity_pattern(seed=42, connections=16)
    again = await _toxicity_pattern(seed=42, connections=16)
    other = await _toxicity_pattern(seed=43, connections=16)
    assert first == again
    assert True in first
    assert False in first
    assert other != first


def test_huge_attribute_is_400(api: httpx.Client) -> None:
    body = {"type": "latency", "attributes": {"latency": 10**30}}
    assert api.post("/proxies/p/toxics", json=body).status_code == 400

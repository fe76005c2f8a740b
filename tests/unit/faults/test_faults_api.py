"""Toxiproxy v2 HTTP API conformance of the embedded server: routes, codes, shapes, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from harness.faults import VERSION, EmbeddedToxiproxy
from harness.faults.testing import EchoServer


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        EmbeddedToxiproxy(seed=1) as server,
        httpx.AsyncClient(base_url=server.url, timeout=5) as client,
    ):
        yield client


async def _proxy(api: httpx.AsyncClient, echo: EchoServer, name: str = "app") -> dict[str, object]:
    response = await api.post("/proxies", json={"name": name, "upstream": echo.address})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def _assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message, "status": status}


async def test_version(api: httpx.AsyncClient) -> None:
    response = await api.get("/version")
    assert response.status_code == 200
    assert response.json() == {"version": VERSION}


async def test_create_proxy_shape_and_defaults(api: httpx.AsyncClient, echo: EchoServer) -> None:
    body = await _proxy(api, echo)
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert body["enabled"] is True
    assert body["toxics"] == []
    host, _, port = str(body["listen"]).rpartition(":")
    assert host == "127.0.0.1"
    assert int(port) > 0  # an ephemeral port was bound and reported


async def test_create_disabled_proxy(api: httpx.AsyncClient, echo: EchoServer) -> None:
    response = await api.post(
        "/proxies", json={"name": "off", "upstream": echo.address, "enabled": False}
    )
    assert response.status_code == 201
    assert response.json()["enabled"] is False


async def test_create_existing_proxy_is_409(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    response = await api.post("/proxies", json={"name": "app", "upstream": echo.address})
    _assert_error(response, 409, "proxy already exists")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "x"}, "missing required field: upstream"),
        ({"name": "", "upstream": "127.0.0.1:1"}, "missing required field: name"),
    ],
)
async def test_create_missing_field_is_400(
    api: httpx.AsyncClient, body: dict[str, str], message: str
) -> None:
    _assert_error(await api.post("/proxies", json=body), 400, message)


async def test_listen_beyond_loopback_is_400(api: httpx.AsyncClient, echo: EchoServer) -> None:
    body = {"name": "x", "upstream": echo.address, "listen": "0.0.0.0:0"}
    response = await api.post("/proxies", json=body)
    assert response.status_code == 400
    assert "loopback" in response.json()["error"]


async def test_listen_on_taken_port_is_500(api: httpx.AsyncClient, echo: EchoServer) -> None:
    body = {"name": "x", "upstream": echo.address, "listen": echo.address}
    response = await api.post("/proxies", json=body)
    assert response.status_code == 500
    assert response.json()["status"] == 500
    assert (await api.get("/proxies")).json() == {}


async def test_proxy_index_and_show(api: httpx.AsyncClient, echo: EchoServer) -> None:
    created = await _proxy(api, echo)
    index = (await api.get("/proxies")).json()
    assert index == {"app": created}
    assert (await api.get("/proxies/app")).json() == created
    _assert_error(await api.get("/proxies/nope"), 404, "proxy not found")


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_update_proxy(api: httpx.AsyncClient, echo: EchoServer, method: str) -> None:
    created = await _proxy(api, echo)
    response = await api.request(method, "/proxies/app", json={"enabled": False})
    assert response.status_code == 200
    assert response.json() == {**created, "enabled": False}
    response = await api.request(method, "/proxies/app", json={"enabled": True})
    assert response.json()["enabled"] is True
    assert response.json()["listen"] == created["listen"]  # re-bound to the same port
    _assert_error(await api.patch("/proxies/nope", json={}), 404, "proxy not found")


async def test_update_upstream_keeps_listen(api: httpx.AsyncClient, echo: EchoServer) -> None:
    created = await _proxy(api, echo)
    response = await api.patch("/proxies/app", json={"upstream": "127.0.0.1:9"})
    assert response.json()["upstream"] == "127.0.0.1:9"
    assert response.json()["listen"] == created["listen"]
    assert response.json()["enabled"] is True


async def test_delete_proxy(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    response = await api.delete("/proxies/app")
    assert response.status_code == 204
    assert response.content == b""
    _assert_error(await api.delete("/proxies/app"), 404, "proxy not found")


async def test_populate_creates_and_keeps(api: httpx.AsyncClient, echo: EchoServer) -> None:
    created = await _proxy(api, echo, "a")
    body = [
        {"name": "a", "upstream": echo.address, "listen": created["listen"]},
        {"name": "b", "upstream": echo.address, "enabled": False},
    ]
    response = await api.post("/populate", json=body)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["a", "b"]
    assert proxies[0] == created  # same listen and upstream: left alone
    assert proxies[1]["enabled"] is False


async def test_populate_replaces_changed_proxy(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo, "a")
    response = await api.post("/populate", json=[{"name": "a", "upstream": "127.0.0.1:9"}])
    assert response.status_code == 201
    assert response.json()["proxies"][0]["upstream"] == "127.0.0.1:9"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"upstream": "127.0.0.1:1"}], "missing required field: name at proxy 1"),
        (
            [{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "b"}],
            "missing required field: upstream at proxy 2",
        ),
    ],
)
async def test_populate_validates_everything_first(
    api: httpx.AsyncClient, body: list[dict[str, str]], message: str
) -> None:
    _assert_error(await api.post("/populate", json=body), 400, message)
    assert (await api.get("/proxies")).json() == {}


async def test_populate_rejects_non_array(api: httpx.AsyncClient) -> None:
    response = await api.post("/populate", json={"name": "a"})
    assert response.status_code == 400


async def test_toxic_create_shape_and_defaults(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    response = await api.post("/proxies/app/toxics", json={"type": "latency"})
    assert response.status_code == 200
    assert response.json() == {
        "attributes": {"latency": 0, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }


@pytest.mark.parametrize(
    ("type_", "attributes"),
    [
        ("latency", {"latency": 0, "jitter": 0}),
        ("bandwidth", {"rate": 0}),
        ("slow_close", {"delay": 0}),
        ("timeout", {"timeout": 0}),
        ("reset_peer", {"timeout": 0}),
        ("limit_data", {"bytes": 0}),
        ("noop", {}),
    ],
)
async def test_toxic_attribute_names_and_defaults(
    api: httpx.AsyncClient, echo: EchoServer, type_: str, attributes: dict[str, int]
) -> None:
    await _proxy(api, echo)
    response = await api.post("/proxies/app/toxics", json={"type": type_, "stream": "upstream"})
    assert response.status_code == 200, response.text
    assert response.json()["attributes"] == attributes
    assert response.json()["name"] == f"{type_}_upstream"


async def test_toxic_index_show_update_delete(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    body = {
        "name": "slow",
        "type": "latency",
        "stream": "upstream",
        "toxicity": 0.5,
        "attributes": {"latency": 100, "jitter": 10},
    }
    created = (await api.post("/proxies/app/toxics", json=body)).json()
    assert created["toxicity"] == 0.5
    assert (await api.get("/proxies/app/toxics")).json() == [created]
    assert (await api.get("/proxies/app/toxics/slow")).json() == created
    assert (await api.get("/proxies/app")).json()["toxics"] == [created]

    response = await api.patch("/proxies/app/toxics/slow", json={"attributes": {"jitter": 20}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 100, "jitter": 20}  # merged
    response = await api.post("/proxies/app/toxics/slow", json={"toxicity": 1})
    assert response.json()["toxicity"] == 1.0
    assert response.json()["stream"] == "upstream"

    assert (await api.delete("/proxies/app/toxics/slow")).status_code == 204
    assert (await api.get("/proxies/app/toxics")).json() == []


async def test_toxic_errors(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    post = "/proxies/app/toxics"
    _assert_error(
        await api.post("/proxies/nope/toxics", json={"type": "latency"}), 404, "proxy not found"
    )
    _assert_error(await api.get("/proxies/nope/toxics"), 404, "proxy not found")
    _assert_error(await api.get("/proxies/app/toxics/nope"), 404, "toxic not found")
    _assert_error(await api.patch("/proxies/app/toxics/nope", json={}), 404, "toxic not found")
    _assert_error(await api.delete("/proxies/app/toxics/nope"), 404, "toxic not found")
    _assert_error(await api.post(post, json={"type": "nope"}), 400, "invalid toxic type")
    _assert_error(
        await api.post(post, json={"type": "latency", "stream": "sideways"}),
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    assert (await api.post(post, json={"type": "latency"})).status_code == 200
    _assert_error(await api.post(post, json={"type": "latency"}), 409, "toxic already exists")
    # Names are unique per proxy across both streams.
    body = {"type": "latency", "name": "latency_downstream", "stream": "upstream"}
    _assert_error(await api.post(post, json=body), 409, "toxic already exists")


@pytest.mark.parametrize(
    "attributes",
    [
        {"rate": -1},
        {"rate": 1.5},
        {"rate": "fast"},
        {"rate": True},
    ],
)
async def test_invalid_attribute_is_400(
    api: httpx.AsyncClient, echo: EchoServer, attributes: dict[str, object]
) -> None:
    await _proxy(api, echo)
    body = {"type": "bandwidth", "attributes": attributes}
    response = await api.post("/proxies/app/toxics", json=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body: rate must be")
    assert (await api.get("/proxies/app/toxics")).json() == []


async def test_invalid_attribute_on_update_is_400(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    await api.post("/proxies/app/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    response = await api.patch(
        "/proxies/app/toxics/latency_downstream", json={"attributes": {"latency": -5}}
    )
    assert response.status_code == 400
    toxic = (await api.get("/proxies/app/toxics/latency_downstream")).json()
    assert toxic["attributes"]["latency"] == 5  # unchanged


async def test_slicer_average_size_zero_is_400(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    response = await api.post("/proxies/app/toxics", json={"type": "slicer"})
    assert response.status_code == 400


async def test_reset_enables_and_clears(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await _proxy(api, echo)
    await api.post("/proxies/app/toxics", json={"type": "latency"})
    await api.patch("/proxies/app", json={"enabled": False})
    response = await api.post("/reset")
    assert response.status_code == 204
    proxy = (await api.get("/proxies/app")).json()
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []


async def test_unknown_route_and_method(api: httpx.AsyncClient) -> None:
    response = await api.get("/nope")
    assert response.status_code == 404
    assert response.json()["status"] == 404
    response = await api.put("/proxies")
    assert response.status_code == 405
    assert response.json()["status"] == 405


async def test_browsers_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403

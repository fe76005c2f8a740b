"""AppHttp against a local aiohttp server: what a response reads as, what a path is sent as."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.clients import AppHttp

BIG = 2**70 + 3


def _app() -> web.Application:
    async def echo_path(request: web.Request) -> web.Response:
        return web.json_response({"raw_path": request.raw_path, "path": request.path})

    async def big(request: web.Request) -> web.Response:
        return web.Response(text=f'{{"id": {BIG}}}', content_type="application/json")

    async def latin1(request: web.Request) -> web.Response:
        return web.Response(
            body='{"name": "café"}'.encode("latin-1"),
            headers={"Content-Type": "application/json; charset=latin-1"},
        )

    async def no_charset(request: web.Request) -> web.Response:
        return web.Response(
            body='{"name": "café"}'.encode(), headers={"Content-Type": "application/json"}
        )

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="not json: {")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(text="{oops", content_type="application/json")

    async def empty(request: web.Request) -> web.Response:
        return web.Response(text="  ", content_type="application/json")

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/latin1", latin1)
    app.router.add_get("/no-charset", no_charset)
    app.router.add_get("/plain", plain)
    app.router.add_get("/broken", broken)
    app.router.add_get("/empty", empty)
    app.router.add_route("*", "/{tail:.*}", echo_path)
    return app


def _with_server(body: Callable[[AppHttp], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with TestServer(_app(), host="127.0.0.1") as server:
            http = AppHttp(str(server.make_url("")))
            async with http:
                return await asyncio.wait_for(body(http), timeout=30)

    return asyncio.run(main())


def test_json_bodies_are_parsed_whatever_their_charset() -> None:
    async def body(http: AppHttp) -> list[Any]:
        return [
            (await http.get(p)).body for p in ("/big", "/latin1", "/no-charset", "/plain", "/empty")
        ]

    big, latin1, no_charset, plain, empty = _with_server(body)
    assert big == {"id": BIG}
    assert isinstance(big["id"], int)
    assert latin1 == no_charset == {"name": "café"}
    assert plain is None
    assert empty is None


def test_text_is_kept_and_broken_json_raises() -> None:
    async def body(http: AppHttp) -> str:
        response = await http.get("/plain")
        assert response.status == 200
        assert response.detail() == "not json: {"
        with pytest.raises(json.JSONDecodeError):
            await http.get("/broken")
        return (await http.post("/api/projects/1/line-items/2/complete")).text

    assert json.loads(_with_server(body))["path"] == "/api/projects/1/line-items/2/complete"


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/projects/12/line-items/345/complete", "/api/projects/12/line-items/345/complete"),
        ("/api/alerts?userId=3&x=a b", "/api/alerts?userId=3&x=a+b"),  # yarl's query rule
        ("/api/café", "/api/caf%C3%A9"),
        ("/api/a%20b", "/api/a%20b"),
    ],
)
def test_paths_reach_the_server_encoded_once(path: str, raw: str) -> None:
    async def body(http: AppHttp) -> Any:
        return (await http.get(path)).body

    assert _with_server(body)["raw_path"] == raw

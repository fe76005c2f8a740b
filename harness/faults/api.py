"""The Toxiproxy v2 HTTP API over aiohttp.web.

Routes, methods, status codes and JSON shapes follow Toxiproxy's api.go:
201 for a created proxy or a populate, 204 for deletes and reset, 200 for
everything else; errors are ``{"error": ..., "status": ...}``. Updates accept
PATCH and the deprecated POST (toxiproxy-python still uses POST).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.faults.collection import TOXIPROXY_API_VERSION, ApiError, ProxyCollection, bad_body

__all__ = ["VERSION", "build_app"]

logger = logging.getLogger(__name__)

VERSION = f"{TOXIPROXY_API_VERSION}+alertbench"
"""Reported by GET /version: the Toxiproxy API level, tagged as the embedded server."""

_COLLECTION: web.AppKey[ProxyCollection] = web.AppKey("collection", ProxyCollection)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_body(str(exc) if raw else "EOF") from None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message, "status": status}, status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Toxiproxy refuses browsers so a web page cannot drive the API (CSRF).
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        return web.Response(status=403, text="User agent not allowed\n")
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.message, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.reason.lower(), exc.status)
    except Exception:
        logger.exception("API %s %s failed", request.method, request.path)
        return _error("internal server error", 500)


def _c(request: web.Request) -> ProxyCollection:
    return request.app[_COLLECTION]


async def _proxy_index(request: web.Request) -> web.Response:
    return _json({name: p.to_json() for name, p in _c(request).proxies.items()})


async def _proxy_create(request: web.Request) -> web.Response:
    return _json(await _c(request).create(await _body(request)), 201)


async def _populate(request: web.Request) -> web.Response:
    return _json({"proxies": await _c(request).populate(await _body(request))}, 201)


async def _proxy_show(request: web.Request) -> web.Response:
    return _json(_c(request).get(request.match_info["proxy"]).to_json())


async def _proxy_update(request: web.Request) -> web.Response:
    if request.method == "POST":
        logger.debug("POST to update a proxy is deprecated in Toxiproxy; use PATCH")
    _c(request).get(request.match_info["proxy"])  # 404 before 400
    body = await _body(request)
    return _json(await _c(request).update(request.match_info["proxy"], body))


async def _proxy_delete(request: web.Request) -> web.Response:
    await _c(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def _toxic_index(request: web.Request) -> web.Response:
    return _json(_c(request).get(request.match_info["proxy"]).toxic_json())


async def _toxic_create(request: web.Request) -> web.Response:
    proxy = request.match_info["proxy"]
    _c(request).get(proxy)  # 404 before 400, as in Toxiproxy
    return _json(await _c(request).add_toxic(proxy, await _body(request)))


async def _toxic_show(request: web.Request) -> web.Response:
    info = request.match_info
    return _json(_c(request).get_toxic(info["proxy"], info["toxic"]))


async def _toxic_update(request: web.Request) -> web.Response:
    info = request.match_info
    _c(request).get_toxic(info["proxy"], info["toxic"])  # 404 before 400
    body = await _body(request)
    return _json(await _c(request).update_toxic(info["proxy"], info["toxic"], body))


async def _toxic_delete(request: web.Request) -> web.Response:
    info = request.match_info
    await _c(request).remove_toxic(info["proxy"], info["toxic"])
    return web.Response(status=204)


async def _reset(request: web.Request) -> web.Response:
    await _c(request).reset()
    return web.Response(status=204)


async def _version(_request: web.Request) -> web.Response:
    return web.json_response({"version": VERSION}, content_type="application/json")


def build_app(collection: ProxyCollection) -> web.Application:
    """The aiohttp application serving ``collection``."""
    app = web.Application(middlewares=[_errors], client_max_size=1 << 20)
    app[_COLLECTION] = collection
    r = app.router
    r.add_post("/reset", _reset)
    r.add_get("/proxies", _proxy_index, allow_head=False)
    r.add_post("/proxies", _proxy_create)
    r.add_post("/populate", _populate)
    r.add_get("/proxies/{proxy}", _proxy_show, allow_head=False)
    r.add_post("/proxies/{proxy}", _proxy_update)
    r.add_patch("/proxies/{proxy}", _proxy_update)
    r.add_delete("/proxies/{proxy}", _proxy_delete)
    r.add_get("/proxies/{proxy}/toxics", _toxic_index, allow_head=False)
    r.add_post("/proxies/{proxy}/toxics", _toxic_create)
    r.add_get("/proxies/{proxy}/toxics/{toxic}", _toxic_show, allow_head=False)
    r.add_post("/proxies/{proxy}/toxics/{toxic}", _toxic_update)
    r.add_patch("/proxies/{proxy}/toxics/{toxic}", _toxic_update)
    r.add_delete("/proxies/{proxy}/toxics/{toxic}", _toxic_delete)
    r.add_get("/version", _version, allow_head=False)
    return app

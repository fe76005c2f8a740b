"""The HTTP API, as a plain ASGI app: generation, completion, per-user alerts, health, metrics.

``create_app(config)`` builds the app; its lifespan starts a Runtime (pool,
cache, queue, worker) and the relay, and closes them on shutdown.

No web framework: the API is seven routes, and under load the FastAPI/Starlette
stack (six middleware layers, dependency resolution, pydantic models) was a
fifth of the app's CPU per completion (py-spy, 300 completions/s). Routing,
validation and JSON are done here directly; the answers are the same
(docs/contract.md: status codes, bodies, headers; 422 with a list of
``{type, loc, msg, input}`` for malformed input). The OpenAPI document FastAPI
generated is kept as a static file (``openapi.json``, served at
``/openapi.json``, with Swagger UI at ``/docs``).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import logging
import re
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from reference_impl import db, fastjson
from reference_impl.alerts import AlertEmitter
from reference_impl.auth import AuthError, TokenVerifier
from reference_impl.completion import (
    CompletionError,
    CompletionHooks,
    InjectedRollback,
    StaleCompletion,
)
from reference_impl.config import AppConfig
from reference_impl.flaws import Flaw
from reference_impl.metrics import CONTENT_TYPE_LATEST
from reference_impl.queue import ATTEMPT_TIMES_META
from reference_impl.realtime import RealtimeEmitter, RealtimeServer
from reference_impl.relay import Relay
from reference_impl.runtime import Runtime

__all__ = ["MAX_BATCH", "ROUTES", "Api", "HttpError", "create_app", "create_asgi_app"]

logger = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
MAX_BATCH = 100_000
_MAX_JOB_ID = 200
_MAX_BODY = 16 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_JSON = b"application/json"
_BEARER = [(b"www-authenticate", b"Bearer")]


class HttpError(Exception):
    """An answer other than 2xx: ``status`` and the JSON body ``{"detail": ...}``."""

    def __init__(
        self,
        status: int,
        detail: object,
        *,
        headers: Headers | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


def _invalid(kind: str, loc: Iterable[str | int], msg: str, value: object) -> HttpError:
    """422 with one validation error, in the shape FastAPI answered with."""
    return HttpError(422, [{"type": kind, "loc": list(loc), "msg": msg, "input": value}])


def _path_id(value: str, name: str) -> int:
    """A path id (1 .. 2^63-1); 422 otherwise."""
    if not value.isascii() or not value.isdigit():
        raise _invalid(
            "int_parsing",
            ("path", name),
            "Input should be a valid integer, unable to parse string as an integer",
            value,
        )
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise _invalid("value_error", ("path", name), f"Input should be in 1..{MAX_ID}", value)
    return number


def _project_ids(body: object) -> list[int]:
    """The ``project_ids`` of a generate body (strict: no extra key, ints only); 422 otherwise."""
    if not isinstance(body, dict):
        raise _invalid("model_type", ("body",), "Input should be an object", body)
    for key in body:
        if key != "project_ids":
            raise _invalid("extra_forbidden", ("body", key), "Extra inputs are not permitted", body)
    if "project_ids" not in body:
        raise _invalid("missing", ("body", "project_ids"), "Field required", body)
    ids = body["project_ids"]
    if not isinstance(ids, list):
        raise _invalid("list_type", ("body", "project_ids"), "Input should be a valid list", ids)
    if len(ids) > MAX_BATCH:
        raise _invalid(
            "too_long",
            ("body", "project_ids"),
            f"List should have at most {MAX_BATCH} items after validation, not {len(ids)}",
            len(ids),
        )
    for index, value in enumerate(ids):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(
                "int_type", ("body", "project_ids", index), "Input should be a valid integer", value
            )
        if not 1 <= value <= MAX_ID:
            raise _invalid(
                "value_error",
                ("body", "project_ids", index),
                f"Input should be in 1..{MAX_ID}",
                value,
            )
    return ids


def _last_line(text: str | None) -> str | None:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else None


class Request:
    """What a route handler gets: path parameters, query, headers, body."""

    __slots__ = ("_body", "_receive", "headers", "params", "query", "scope")

    def __init__(self, scope: Scope, receive: Receive, params: dict[str, str]) -> None:
        self.scope = scope
        self._receive = receive
        self.params = params
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self.query: dict[str, str] = (
            dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            if scope.get("query_string")
            else {}
        )
        self._body: bytes | None = None

    async def body(self) -> bytes:
        if self._body is None:
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    raise HttpError(400, "client disconnected before sending the body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > _MAX_BODY:
                    raise HttpError(413, f"request body larger than {_MAX_BODY} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> object:
        """The body parsed as JSON; 422 for a body that is not (or not sent as) JSON."""
        content_type = self.headers.get(b"content-type", _JSON).split(b";")[0].strip().lower()
        raw = await self.body()
        if content_type != _JSON and not content_type.endswith(b"+json"):
            raise _invalid(
                "model_attributes_type",
                ("body",),
                "Input should be a JSON object (send Content-Type: application/json)",
                raw.decode("utf-8", "replace")[:200],
            )
        if not raw:
            raise _invalid("missing", ("body",), "Field required", None)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise _invalid("json_invalid", ("body", 0), f"JSON decode error: {exc}", None) from None
        except RecursionError:
            # A body nested deeper than the parser's stack (found by the
            # security scenario: 100,000 levels) is malformed input, not a 500.
            raise _invalid("json_invalid", ("body", 0), "JSON nested too deeply", None) from None


class Response:
    """A response to send: status, body bytes, content type and extra headers."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: bytes = _JSON,
        headers: Headers | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers: Headers = [(b"content-type", content_type), *(headers or [])]

    @classmethod
    def json(cls, value: object, *, status: int = 200, headers: Headers | None = None) -> Response:
        return cls(fastjson.dumps(value), status=status, headers=headers)


Handler = Callable[[Request], Awaitable[Response]]


class Api:
    """The HTTP API of one pipeline process (an ASGI app, lifespan included).

    ``state`` carries ``realtime`` (the Socket.IO server), and once started
    ``runtime`` and ``relay``.
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        hooks: CompletionHooks | None = None,
        emitter: AlertEmitter | None = None,
    ) -> None:
        self.config = config
        self._hooks = hooks
        self._emitter = emitter
        self._verify = TokenVerifier(config.token_secret)
        self.state = types.SimpleNamespace()
        self.state.realtime = RealtimeServer(
            token_secret=config.token_secret,
            pool_getter=lambda: self.runtime.pool,
            flaws=config.flaws,
            redis_url=config.redis_url if config.socketio_redis else None,
        )
        self.state.runtime = None
        self.state.relay = None
        # (method, compiled path, handler); path parameters are named groups.
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (method, re.compile(_pattern(path)), getattr(self, name))
            for method, path, name in ROUTES
        ]

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime | None = self.state.runtime
        if runtime is None:
            raise RuntimeError("the app is not started (its lifespan has not run)")
        return runtime

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Start the runtime (and, if ``config.run_relay``, the relay); close them after."""
        config = self.config
        realtime: RealtimeServer = self.state.realtime
        runtime = await Runtime.start(
            config, hooks=self._hooks, emitter=self._emitter or RealtimeEmitter(realtime)
        )
        self.state.runtime = runtime
        relay: Relay | None = None
        try:
            if config.run_relay:
                relay = Relay(
                    config.relay_pg_dsn or config.pg_dsn,
                    realtime.emit_alert,
                    replay_margin_s=config.relay_replay_margin_s,
                    on_emit=runtime.metrics.observe_relay,
                    replay=not config.has(Flaw.NO_REPLAY),
                )
                await relay.start()
            self.state.relay = relay
            yield
        finally:
            if relay is not None:
                await relay.stop()
            await runtime.close()

    # -- ASGI ---------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # Socket.IO is mounted in front (create_asgi_app); nothing else speaks WebSocket.
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.lifespan())
            except BaseException as exc:
                logger.exception("start-up failed")
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        head = method == "HEAD"
        try:
            response = await self._dispatch(scope, receive, "GET" if head else method)
        except HttpError as exc:
            response = Response.json(exc.body(), status=exc.status, headers=exc.headers)
        except InjectedRollback as exc:
            response = Response.json({"detail": f"{exc} (rolled back)"}, status=503)
        except CompletionError as exc:
            body: dict[str, Any] = {"detail": str(exc)}
            if isinstance(exc, StaleCompletion):
                body["currentLineItemId"] = exc.current_line_item_id
            response = Response.json(body, status=exc.status)
        except db.UNAVAILABLE as exc:
            logger.warning("database unavailable: %r", exc)
            response = Response.json({"detail": "database unavailable"}, status=503)
        except Exception:
            logger.exception("%s %s failed", method, scope["path"])
            response = Response.json({"detail": "Internal Server Error"}, status=500)
        headers = response.headers
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else response.body})

    async def _dispatch(self, scope: Scope, receive: Receive, method: str) -> Response:
        path: str = scope["path"]
        allowed: list[str] = []
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            return await handler(Request(scope, receive, match.groupdict()))
        if allowed:
            raise HttpError(
                405, "Method Not Allowed", headers=[(b"allow", ", ".join(allowed).encode())]
            )
        raise HttpError(404, "Not Found")

    def _user(self, request: Request) -> int:
        """The token's user; 401 (with ``WWW-Authenticate: Bearer``) otherwise."""
        value = request.headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "missing bearer token", headers=list(_BEARER))
        try:
            return self._verify(token)
        except AuthError as exc:
            raise HttpError(401, str(exc), headers=list(_BEARER)) from None

    # -- routes -------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        ok = await self.runtime.healthy()
        return Response.json(
            {"status": "ok" if ok else "degraded", "postgres": ok}, status=200 if ok else 503
        )

    async def metrics(self, request: Request) -> Response:
        return Response(self.runtime.metrics.render(), content_type=CONTENT_TYPE_LATEST.encode())

    async def openapi(self, request: Request) -> Response:
        return Response(_static("openapi.json"))

    async def docs(self, request: Request) -> Response:
        return Response(_static("docs.html"), content_type=b"text/html; charset=utf-8")

    async def generate(self, request: Request) -> Response:
        self._user(request)
        project_ids = _project_ids(await request.json())
        result = await self.runtime.generate(project_ids)
        return Response.json(
            {
                "requested": result.requested,
                "candidates": result.candidates,
                "created": len(result.created),
                "duplicatesPrevented": result.duplicates_prevented,
                "alertIds": [a.id for a in result.created],
            }
        )

    async def complete(self, request: Request) -> Response:
        user_id = self._user(request)
        project_id = _path_id(request.params["project_id"], "project_id")
        line_item_id = _path_id(request.params["line_item_id"], "line_item_id")
        mode = request.query.get("mode", "sync")
        if mode not in ("sync", "queue"):
            raise _invalid(
                "literal_error", ("query", "mode"), "Input should be 'sync' or 'queue'", mode
            )
        runtime = self.runtime
        if mode == "queue":
            key = await runtime.queue.enqueue_completion(
                project_id=project_id, line_item_id=line_item_id, user_id=user_id
            )
            return Response.json({"jobId": key, "status": "queued"}, status=202)
        result = await runtime.complete(project_id, line_item_id, user_id)
        return Response.json(
            {
                "projectId": result.project_id,
                "completedLineItemId": result.completed_line_item_id,
                "nextLineItemId": result.next_line_item_id,
                "workflowComplete": result.workflow_complete,
                "alert": result.alert.to_json() if result.alert else None,
                "committedAtMs": round(result.committed_at * 1000, 3),
            }
        )

    async def user_alerts(self, request: Request) -> Response:
        token_user = self._user(request)
        user_id = _path_id(request.params["user_id"], "user_id")
        if token_user != user_id:
            raise HttpError(403, "a user can only read their own alerts")
        alerts, source = await self.runtime.user_alerts(user_id)
        return Response.json(
            {"userId": user_id, "alerts": alerts}, headers=[(b"x-cache", source.encode())]
        )

    async def queue_job(self, request: Request) -> Response:
        self._user(request)
        job_id = request.params["job_id"]
        if len(job_id) > _MAX_JOB_ID:
            raise _invalid(
                "string_too_long",
                ("path", "job_id"),
                f"String should have at most {_MAX_JOB_ID} characters",
                job_id,
            )
        job = await self.runtime.queue.job(job_id)
        if job is None:
            raise HttpError(404, f"no job {job_id!r}")
        return Response.json(
            {
                "jobId": job.key,
                "status": job.status.value,
                "attempts": job.attempts,
                "result": job.result,
                "error": _last_line(job.error),
                "attemptTimesMs": (job.meta or {}).get(ATTEMPT_TIMES_META, []),
            }
        )

    async def dead_letters(self, request: Request) -> Response:
        self._user(request)
        raw = request.query.get("limit", "100")
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise _invalid(
                "value_error", ("query", "limit"), "Input should be an integer in 1..1000", raw
            )
        letters = await self.runtime.queue.dead_letters(limit=int(raw))
        return Response.json(
            {
                "deadLetters": [
                    {
                        "jobId": d.key,
                        "status": d.status,
                        "attempts": d.attempts,
                        "kwargs": d.kwargs,
                        "error": d.error,
                    }
                    for d in letters
                ]
            }
        )


#: (method, path, Api method): what the app serves; ``openapi.json`` documents
#: the same paths (a test checks that they agree).
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/api/projects/{project_id}/line-items/{line_item_id}/complete", "complete"),
    ("GET", "/api/users/{user_id}/alerts", "user_alerts"),
    ("POST", "/api/alerts/generate", "generate"),
    ("GET", "/healthz", "healthz"),
    ("GET", "/metrics", "metrics"),
    ("GET", "/api/queue/jobs/{job_id}", "queue_job"),
    ("GET", "/api/queue/dead-letters", "dead_letters"),
    ("GET", "/openapi.json", "openapi"),
    ("GET", "/docs", "docs"),
)


def _pattern(path: str) -> str:
    """A route path with ``{name}`` parameters as a regex (one path segment each)."""
    parts = re.split(r"\{(\w+)\}", path)
    return "".join(
        f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts)
    )


_STATIC: dict[str, bytes] = {}


def _static(name: str) -> bytes:
    """A file shipped with the package (read once)."""
    if name not in _STATIC:
        _STATIC[name] = importlib.resources.files("reference_impl").joinpath(name).read_bytes()
    return _STATIC[name]


def create_app(
    config: AppConfig,
    *,
    hooks: CompletionHooks | None = None,
    emitter: AlertEmitter | None = None,
) -> Api:
    """The API for ``config``; ``hooks``/``emitter`` are test seams of completion.

    ``app.state.realtime`` is the Socket.IO server; serve the pair with
    :func:`create_asgi_app`. The lifespan starts the runtime and, if
    ``config.run_relay``, the relay that emits committed alerts.
    """
    return Api(config, hooks=hooks, emitter=emitter)


def create_asgi_app(
    config: AppConfig,
    *,
    hooks: CompletionHooks | None = None,
    emitter: AlertEmitter | None = None,
) -> Any:
    """The HTTP API and Socket.IO (at ``/socket.io``) as one ASGI app."""
    app = create_app(config, hooks=hooks, emitter=emitter)
    realtime: RealtimeServer = app.state.realtime
    return realtime.asgi(app)

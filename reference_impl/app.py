"""The HTTP API (FastAPI): generation, completion, per-user alerts, health, metrics.

``create_app(config)`` builds the app; its lifespan starts a Runtime (pool,
cache, queue, worker) and closes it on shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from reference_impl import db
from reference_impl.alerts import AlertEmitter
from reference_impl.auth import AuthError, verify_token
from reference_impl.completion import (
    CompletionError,
    CompletionHooks,
    InjectedRollback,
    StaleCompletion,
)
from reference_impl.config import AppConfig
from reference_impl.metrics import CONTENT_TYPE_LATEST
from reference_impl.realtime import RealtimeEmitter, RealtimeServer
from reference_impl.relay import Relay
from reference_impl.runtime import Runtime

__all__ = ["MAX_BATCH", "create_app", "create_asgi_app"]

logger = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
MAX_BATCH = 100_000
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive 64-bit id.")]


class GenerateRequest(BaseModel):
    """Body of POST /api/alerts/generate."""

    model_config = ConfigDict(extra="forbid", strict=True)
    project_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        max_length=MAX_BATCH, description="Projects to generate alerts for (duplicates ignored)."
    )


class GenerateResponse(BaseModel):
    requested: int
    candidates: int
    created: int
    duplicatesPrevented: int
    alertIds: list[int]


class CompleteResponse(BaseModel):
    projectId: int
    completedLineItemId: int
    nextLineItemId: int | None
    workflowComplete: bool
    alert: dict[str, Any] | None
    committedAtMs: float = Field(
        description="Server wall clock (epoch ms) right after the commit: where end-to-end "
        "delivery latency starts."
    )


class QueuedResponse(BaseModel):
    jobId: str
    status: str


_bearer = HTTPBearer(auto_error=False, description="HS256 token from reference_impl.auth")

# Failures of the database connection (not of a statement): answer 503, not 500.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    db.InterfaceError,
    *db.CONNECTION_ERRORS,
)


def _last_line(text: str | None) -> str | None:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else None


# The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def``
# dependency in a worker thread, two thread hand-offs per request that cost
# more than the whole database transaction (measured with py-spy under load).
async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    if credentials is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        return verify_token(
            credentials.credentials, secret=request.app.state.runtime.config.token_secret
        )
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
UserDep = Annotated[int, Depends(_current_user)]


def create_app(
    config: AppConfig,
    *,
    hooks: CompletionHooks | None = None,
    emitter: AlertEmitter | None = None,
) -> FastAPI:
    """The API for ``config``; ``hooks``/``emitter`` are test seams of completion.

    ``app.state.realtime`` is the Socket.IO server; serve the pair with
    :func:`create_asgi_app`. The lifespan starts the runtime and, if
    ``config.run_relay``, the relay that emits committed alerts.
    """
    realtime = RealtimeServer(
        token_secret=config.token_secret,
        pool_getter=lambda: app.state.runtime.pool,
        flaws=config.flaws,
        redis_url=config.redis_url if config.socketio_redis else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(
            config, hooks=hooks, emitter=emitter or RealtimeEmitter(realtime)
        )
        app.state.runtime = runtime
        relay: Relay | None = None
        try:
            if config.run_relay:
                relay = Relay(
                    config.relay_pg_dsn or config.pg_dsn,
                    realtime.emit_alert,
                    replay_margin_s=config.relay_replay_margin_s,
                    on_emit=runtime.metrics.observe_relay,
                )
                await relay.start()
            app.state.relay = relay
            yield
        finally:
            if relay is not None:
                await relay.stop()
            await runtime.close()

    app = FastAPI(
        title="alertbench reference pipeline",
        version="0.1.0",
        description="The system under test of alertbench (its contract: docs/contract.md).",
        lifespan=lifespan,
    )
    app.state.realtime = realtime

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each error's input; a body holding NaN
        # or Infinity (Python's json reads them) made that echo unserialisable
        # and the malformed request a 500 (found by the security scenario).
        errors = jsonable_encoder(exc.errors())
        try:
            return JSONResponse({"detail": errors}, status_code=422)
        except ValueError:
            detail = [{k: v for k, v in e.items() if k != "input"} for e in errors]
            return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(InjectedRollback)
    async def injected(request: Request, exc: InjectedRollback) -> JSONResponse:
        return JSONResponse({"detail": f"{exc} (rolled back)"}, status_code=503)

    @app.exception_handler(CompletionError)
    async def completion_error(request: Request, exc: CompletionError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, StaleCompletion):
            body["currentLineItemId"] = exc.current_line_item_id
        return JSONResponse(body, status_code=exc.status)

    for exc_type in _UNAVAILABLE:

        @app.exception_handler(exc_type)
        async def unavailable(request: Request, exc: Exception) -> JSONResponse:
            logger.warning("database unavailable: %r", exc)
            return JSONResponse({"detail": "database unavailable"}, status_code=503)

    @app.get("/healthz", tags=["ops"])
    async def healthz(runtime: RuntimeDep) -> JSONResponse:
        ok = await runtime.healthy()
        return JSONResponse(
            {"status": "ok" if ok else "degraded", "postgres": ok}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics(runtime: RuntimeDep) -> Response:
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/api/alerts/generate", tags=["alerts"])
    async def generate(
        body: GenerateRequest, runtime: RuntimeDep, user_id: UserDep
    ) -> GenerateResponse:
        result = await runtime.generate(body.project_ids)
        return GenerateResponse(
            requested=result.requested,
            candidates=result.candidates,
            created=len(result.created),
            duplicatesPrevented=result.duplicates_prevented,
            alertIds=[a.id for a in result.created],
        )

    @app.post(
        "/api/projects/{project_id}/line-items/{line_item_id}/complete",
        tags=["workflow"],
        response_model=CompleteResponse,
        responses={
            202: {"model": QueuedResponse, "description": "queued (mode=queue)"},
            403: {"description": "not a member of the project"},
            404: {"description": "no such project"},
            409: {"description": "stale or repeated completion"},
        },
    )
    async def complete(
        project_id: Id,
        line_item_id: Id,
        runtime: RuntimeDep,
        user_id: UserDep,
        mode: Annotated[Literal["sync", "queue"], Query()] = "sync",
    ) -> CompleteResponse | JSONResponse:
        if mode == "queue":
            key = await runtime.queue.enqueue_completion(
                project_id=project_id, line_item_id=line_item_id, user_id=user_id
            )
            return JSONResponse({"jobId": key, "status": "queued"}, status_code=202)
        result = await runtime.complete(project_id, line_item_id, user_id)
        return CompleteResponse(
            projectId=result.project_id,
            completedLineItemId=result.completed_line_item_id,
            nextLineItemId=result.next_line_item_id,
            workflowComplete=result.workflow_complete,
            alert=result.alert.to_json() if result.alert else None,
            committedAtMs=round(result.committed_at * 1000, 3),
        )

    @app.get("/api/users/{user_id}/alerts", tags=["alerts"])
    async def user_alerts(
        user_id: Id, runtime: RuntimeDep, token_user: UserDep, response: Response
    ) -> dict[str, Any]:
        if token_user != user_id:
            raise HTTPException(403, "a user can only read their own alerts")
        alerts, source = await runtime.user_alerts(user_id)
        response.headers["X-Cache"] = source
        return {"userId": user_id, "alerts": alerts}

    @app.get("/api/queue/jobs/{job_id}", tags=["queue"])
    async def queue_job(
        job_id: Annotated[str, Path(max_length=200)], runtime: RuntimeDep, token_user: UserDep
    ) -> dict[str, Any]:
        job = await runtime.queue.job(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return {
            "jobId": job.key,
            "status": job.status.value,
            "attempts": job.attempts,
            "result": job.result,
            "error": _last_line(job.error),
        }

    @app.get("/api/queue/dead-letters", tags=["queue"])
    async def dead_letters(
        runtime: RuntimeDep,
        token_user: UserDep,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        letters = await runtime.queue.dead_letters(limit=limit)
        return {
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

    return app


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

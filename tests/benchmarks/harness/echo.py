"""A local echo of the contract: just enough of a target to measure the harness alone.

Run as a child process (``python echo.py --secret S``); it prints
``echo listening on http://127.0.0.1:<port>`` and serves, with as little work
as it can, what the harness's clients speak (``docs/contract.md``):

- Socket.IO (section 7): ``auth = {"token": <jwt-hs256>}`` checked; the
  socket joins its user; ``subscribe_project`` joins any project (ack
  ``{"ok": true, "projectId": p}``); ``sync`` acks the alerts pushed to the
  user with ``id > sinceAlertId``, by pages of 1,000.
- ``POST /api/projects/{p}/line-items/{li}/complete`` (section 6.2): 200 with
  an alert object (assigned to user ``p``) and ``committedAtMs``, then the
  alert's three events (``new_alert`` to the assignee, ``alerts_refresh`` and
  ``workflow_updated`` to the project's room) to whichever sockets are there.
- ``POST /_echo/push`` ``{"alerts": M, "rate_per_s": R, "users": [...]}``
  (not in the contract; the benchmark's trigger): M alerts at R per second,
  alert ``k`` for ``users[k % len(users)]`` in project ``users[k % ...]``,
  each with its three events as above. Answers at once; the events follow.

It is no model of a pipeline: no database, no membership, no workflow. Its
CPU is its own process's, so the harness process's CPU is the harness's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import Any

import jwt
import socketio
from aiohttp import web

SYNC_PAGE = 1000


class Echo:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", logger=False, engineio_logger=False, cors_allowed_origins=None
        )
        self.ids = itertools.count(1)
        #: Alerts pushed to each user, in id order (for ``sync``).
        self.sent: dict[int, list[dict[str, Any]]] = {}
        self.pushes: set[asyncio.Task[None]] = set()
        self.sio.on("connect", self.connect)
        self.sio.on("subscribe_project", self.subscribe_project)
        self.sio.on("sync", self.sync)

    def user_of(self, token: object) -> int | None:
        if not isinstance(token, str):
            return None
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
            user = int(claims["sub"])
        except (jwt.PyJWTError, KeyError, ValueError):
            return None
        return user if user > 0 else None

    async def connect(self, sid: str, environ: object, auth: object = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        user = self.user_of(token)
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("invalid token")
        await self.sio.save_session(sid, {"user": user})
        await self.sio.enter_room(sid, f"user_{user}")

    async def subscribe_project(self, sid: str, data: object) -> dict[str, Any]:
        project = data.get("projectId") if isinstance(data, dict) else None
        if not isinstance(project, int) or isinstance(project, bool) or project < 1:
            return {"ok": False, "error": f"projectId must be a positive integer, got {project!r}"}
        await self.sio.enter_room(sid, f"project_{project}")
        return {"ok": True, "projectId": project}

    async def sync(self, sid: str, data: object) -> dict[str, Any]:
        since = data.get("sinceAlertId") if isinstance(data, dict) else None
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            error = f"sinceAlertId must be a non-negative integer, got {since!r}"
            return {"ok": False, "error": error}
        user = (await self.sio.get_session(sid))["user"]
        page = [a for a in self.sent.get(user, ()) if a["id"] > since][:SYNC_PAGE]
        return {"ok": True, "alerts": page, "more": len(page) == SYNC_PAGE}

    def alert(self, project: int, line_item: int) -> dict[str, Any]:
        return {
            "id": next(self.ids),
            "type": "Work Flow Line Item",
            "priority": "MEDIUM",
            "status": "ACTIVE",
            "title": f"Step {line_item}",
            "message": f"Step {line_item} of project {project}: due in 7 days",
            "projectId": project,
            "workflowId": project,
            "stepId": line_item + 1,
            "lineItemId": line_item + 1,
            "assignedToId": project,
            "createdAt": "2025-01-01T12:00:00.123456+00:00",
            "completedAt": None,
        }

    async def announce(self, alert: dict[str, Any]) -> None:
        """The three events of a committed alert (contract 7.5)."""
        user, project = alert["assignedToId"], alert["projectId"]
        self.sent.setdefault(user, []).append(alert)
        await self.sio.emit(
            "new_alert",
            {k: alert[k] for k in ("id", "title", "message", "priority", "projectId", "stepId")}
            | {"assignedToId": user, "createdAt": alert["createdAt"]},
            room=f"user_{user}",
        )
        room = f"project_{project}"
        await self.sio.emit(
            "alerts_refresh",
            {"projectId": project, "type": "workflow_progression", "alertId": alert["id"]},
            room=room,
        )
        await self.sio.emit(
            "workflow_updated",
            {"projectId": project, "lineItemId": alert["stepId"], "alertId": alert["id"]},
            room=room,
        )

    async def complete(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or self.user_of(auth[7:]) is None:
            return web.json_response({"detail": "invalid token"}, status=401)
        try:
            project = int(request.match_info["project"])
            line_item = int(request.match_info["line_item"])
        except ValueError:
            return web.json_response({"detail": "ids must be integers"}, status=422)
        alert = self.alert(project, line_item)
        body = {
            "projectId": project,
            "completedLineItemId": line_item,
            "nextLineItemId": alert["stepId"],
            "workflowComplete": False,
            "alert": alert,
            "committedAtMs": time.time() * 1000,
        }
        await self.announce(alert)
        return web.json_response(body)

    async def push(self, request: web.Request) -> web.Response:
        spec = await request.json()
        count, rate, users = int(spec["alerts"]), float(spec["rate_per_s"]), list(spec["users"])
        task = asyncio.create_task(self._push(count, rate, users))
        self.pushes.add(task)
        task.add_done_callback(self.pushes.discard)
        return web.json_response({"ok": True, "alerts": count})

    async def _push(self, count: int, rate: float, users: list[int]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for k in range(count):
            due = start + k / rate
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            user = users[k % len(users)]
            await self.announce(self.alert(user, k))

    def app(self) -> web.Application:
        app = web.Application()
        self.sio.attach(app)
        app.router.add_post(
            "/api/projects/{project}/line-items/{line_item}/complete", self.complete
        )
        app.router.add_post("/_echo/push", self.push)
        return app


async def serve(secret: str) -> None:
    runner = web.AppRunner(Echo(secret).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"echo listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.secret))
    else:
        uvloop.run(serve(args.secret))


if __name__ == "__main__":
    main()

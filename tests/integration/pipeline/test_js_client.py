"""A real JavaScript client (the socket.io-client npm package, v4) works too.

Needs Node and ``npm install --prefix tests/js`` (.ci/run does it where npm
exists); skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from ri_support import StartLive, first_step

from harness.contract.seed import SeedResult
from reference_impl import issue_token

JS = Path(__file__).resolve().parents[2] / "js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "socket.io-client").is_dir(),
        reason="socket.io-client is not installed: run `npm install --prefix tests/js`",
    ),
]


async def test_socket_io_client_v4_connects_subscribes_and_receives(
    start_live: StartLive, seeded: SeedResult
) -> None:
    assert NODE is not None
    live = await start_live()
    p = seeded.project_ids[0]
    item, completer, assignee = first_step(seeded, p)
    token = issue_token(assignee, secret=live.config.token_secret)
    node = await asyncio.create_subprocess_exec(
        NODE,
        str(JS / "client.mjs"),
        live.url,
        token,
        str(p),
        "20000",
        stdout=asyncio.subprocess.PIPE,
        cwd=JS,
    )
    assert node.stdout is not None
    events: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(30):
            first = json.loads(await node.stdout.readline())
            assert first["event"] == "subscribed", first
            response = await live.complete(p, item, completer)
            assert response.status_code == 200, response.text
            alert_id = response.json()["alert"]["id"]
            async for line in node.stdout:
                events.append(json.loads(line))
            assert await node.wait() == 0, events
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    by_name = {e["event"]: e["data"] for e in events}
    assert by_name["new_alert"]["id"] == alert_id  # type: ignore[index]
    assert by_name["alerts_refresh"] == {
        "projectId": p,
        "type": "workflow_progression",
        "alertId": alert_id,
    }

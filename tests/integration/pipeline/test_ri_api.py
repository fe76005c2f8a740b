"""The HTTP API: auth, validation (4xx, never 500), health, metrics, OpenAPI."""

from __future__ import annotations

import pytest
from ri_support import Api

from harness.contract.seed import SeedResult
from reference_impl import issue_token


def _pm(seeded: SeedResult, index: int = 0) -> int:
    return seeded.members[seeded.project_ids[index]]["project_manager"]


async def test_generate_then_complete_over_http(api: Api, seeded: SeedResult) -> None:
    user = _pm(seeded)
    pid, first, second = seeded.project_ids[0], *seeded.active_line_items[:2]
    generated = await api.http.post(
        "/api/alerts/generate", json={"project_ids": seeded.project_ids}, headers=api.auth(user)
    )
    assert generated.status_code == 200
    assert generated.json()["created"] == len(seeded.project_ids)
    done = await api.http.post(
        f"/api/projects/{pid}/line-items/{first.id}/complete", headers=api.auth(user)
    )
    assert done.status_code == 200
    body = done.json()
    assert body["nextLineItemId"] == second.id
    assert body["alert"]["stepId"] == second.id
    assert body["alert"]["projectId"] == pid
    again = await api.http.post(
        f"/api/projects/{pid}/line-items/{first.id}/complete", headers=api.auth(user)
    )
    assert again.status_code == 409
    assert again.json()["currentLineItemId"] == second.id
    assert "stale or repeated" in again.json()["detail"]


async def test_tokens_are_required_and_checked(api: Api, seeded: SeedResult) -> None:
    user = _pm(seeded)
    url = f"/api/users/{user}/alerts"
    assert (await api.http.get(url)).status_code == 401
    bad = issue_token(user, secret="another-secret-of-at-least-32-chars!!")
    response = await api.http.get(url, headers={"Authorization": f"Bearer {bad}"})
    assert response.status_code == 401
    assert "invalid token" in response.json()["detail"]
    expired = issue_token(user, secret=api.config.token_secret, ttl_s=1, now_s=1_000_000)
    response = await api.http.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"


async def test_a_user_reads_only_their_own_alerts(api: Api, seeded: SeedResult) -> None:
    me, other = _pm(seeded, 0), _pm(seeded, 1)
    assert (await api.http.get(f"/api/users/{me}/alerts", headers=api.auth(me))).status_code == 200
    forbidden = await api.http.get(f"/api/users/{other}/alerts", headers=api.auth(me))
    assert forbidden.status_code == 403
    assert "own alerts" in forbidden.json()["detail"]


async def test_a_non_member_cannot_complete(api: Api, seeded: SeedResult) -> None:
    pid, first = seeded.project_ids[0], seeded.active_line_items[0]
    response = await api.http.post(
        f"/api/projects/{pid}/line-items/{first.id}/complete", headers=api.auth(_pm(seeded, 1))
    )
    assert response.status_code == 403
    missing = await api.http.post(
        f"/api/projects/{10**12}/line-items/{first.id}/complete", headers=api.auth(_pm(seeded))
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/alerts/generate", b"{not json"),
        ("post", "/api/alerts/generate", b'{"project_ids": "1,2"}'),
        ("post", "/api/alerts/generate", b'{"project_ids": [1, "x"]}'),
        ("post", "/api/alerts/generate", b'{"project_ids": [-1]}'),
        ("post", "/api/alerts/generate", b'{"project_ids": [1e30]}'),
        ("post", "/api/alerts/generate", b'{"project_ids": [99999999999999999999999]}'),
        # Not JSON, but Python reads them: the 422 must not echo them (was a 500).
        ("post", "/api/alerts/generate", b'{"project_ids": [NaN]}'),
        ("post", "/api/alerts/generate", b'{"project_ids": [1, -Infinity]}'),
        # Deeper than the parser's stack (was a 500 on the plain ASGI app).
        (
            "post",
            "/api/alerts/generate",
            b'{"project_ids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        ),
        ("post", "/api/alerts/generate", b'{"projectIds": [1]}'),
        ("post", "/api/alerts/generate", b"[]"),
        ("post", "/api/projects/abc/line-items/1/complete", None),
        ("post", "/api/projects/0/line-items/1/complete", None),
        ("post", "/api/projects/1/line-items/99999999999999999999/complete", None),
        ("post", "/api/projects/1/line-items/1/complete?mode=later", None),
        ("get", "/api/users/-5/alerts", None),
        ("get", "/api/users/1.5/alerts", None),
    ],
)
async def test_malformed_input_answers_4xx_with_a_message(
    api: Api, seeded: SeedResult, method: str, path: str, body: bytes | None
) -> None:
    headers = {**api.auth(_pm(seeded)), "Content-Type": "application/json"}
    response = await api.http.request(method.upper(), path, content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


async def test_healthz_metrics_and_openapi(api: Api, seeded: SeedResult) -> None:
    user = _pm(seeded)
    for _ in range(2):
        await api.http.post(
            "/api/alerts/generate", json={"project_ids": seeded.project_ids}, headers=api.auth(user)
        )
    health = await api.http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    metrics = (await api.http.get("/metrics")).text
    assert f"alertbench_alert_duplicates_prevented_total {len(seeded.project_ids)}.0" in metrics
    assert 'alertbench_alert_generation_seconds_count{operation="generate"} 2.0' in metrics
    assert 'alertbench_db_queries_per_request_bucket{le="10.0",operation="generate"} 2.0' in metrics
    for name in ("alertbench_queue_retries_total", "alertbench_queue_dead_letters_total"):
        assert name in metrics
    paths = (await api.http.get("/openapi.json")).json()["paths"]
    assert "/api/projects/{project_id}/line-items/{line_item_id}/complete" in paths
    assert "/api/alerts/generate" in paths
    assert "/api/users/{user_id}/alerts" in paths

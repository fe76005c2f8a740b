"""The HTTP fuzzer finds what it must find: a small WSGI server on 127.0.0.1,
right by the contract or wrong in one way, explored with the contract's document."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from harness.contract.openapi import openapi_document
from harness.fuzz.api import ApiFuzzConfig, ApiFuzzReport, fuzz_api

MAX_ID = 2**63 - 1
TOKEN = "Bearer good"
ALERT = {
    "id": 11,
    "projectId": 5,
    "stepId": 3,
    "assignedToId": 7,
    "title": "t",
    "message": "m",
    "priority": "MEDIUM",
    "createdAt": "2025-01-01T00:00:00+00:00",
    "status": "ACTIVE",
}
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _id(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]{1,19}", text) and 1 <= int(text) <= MAX_ID else None


def contract_app(
    *, flaw: str | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A tiny target of contract section 6 (no queue), with at most one ``flaw``."""

    def respond(start: StartResponse, status: int, body: Any) -> list[bytes]:
        data = json.dumps(body).encode()
        start(f"{status} X", [("Content-Type", "application/json")])
        return [data]

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/healthz" and method == "GET":
            return respond(start, 200, {"status": "ok"})
        if environ.get("HTTP_AUTHORIZATION") != TOKEN:
            return respond(start, 401, {"detail": "missing bearer token"})
        if m := re.fullmatch(r"/api/users/([^/]*)/alerts", path):
            user = _id(m.group(1))
            lenient = flaw == "accepts_any_integer" and re.fullmatch(r"-?[0-9]+", m.group(1))
            if user is None and not lenient:
                return respond(start, 422, {"detail": "bad id"})
            if user not in (7, None):
                return respond(start, 403, {"detail": "not yours"})
            alert = {**ALERT, "id": "11"} if flaw == "string_ids" else ALERT
            return respond(start, 200, {"userId": 7, "alerts": [alert]})
        if m := re.fullmatch(r"/api/projects/([^/]*)/line-items/([^/]*)/complete", path):
            if method != "POST":
                return respond(start, 405, {"detail": "method"})
            project, item = _id(m.group(1)), _id(m.group(2))
            query = environ.get("QUERY_STRING", "")
            if project is None or item is None or (query and query != "mode=queue"):
                return respond(start, 422, {"detail": "malformed"})
            if query:
                return respond(start, 400, {"detail": "no queue here"})
            return respond(start, 404 if project != 5 else 409, {"detail": "no"})
        if path == "/api/alerts/generate" and method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                body = json.loads(environ["wsgi.input"].read(size) or b"null")
            except ValueError:
                return respond(start, 422, {"detail": "not json"})
            ids = body.get("project_ids") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not all(
                type(i) is int and 1 <= i <= MAX_ID for i in ids
            ):
                return respond(start, 422, {"detail": "project_ids"})
            if flaw == "crash_on_empty" and not ids:
                start("500 X", [("Content-Type", "text/plain")])
                return [b"Internal Server Error"]
            return respond(start, 200, {"requested": len(set(ids)), "created": 0, "alertIds": []})
        return respond(start, 404, {"detail": "no route"})

    return app


@pytest.fixture
def serve() -> Iterator[Callable[[str | None], str]]:
    servers: list[Any] = []
    threads: list[threading.Thread] = []
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)  # one line per request otherwise

    def start(flaw: str | None) -> str:
        server = make_server("127.0.0.1", 0, contract_app(flaw=flaw), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)
    access_log.setLevel(level)


def _fuzz(url: str, seed: int = 1, examples: int = 10) -> ApiFuzzReport:
    return fuzz_api(
        openapi_document(capabilities=set()),
        ApiFuzzConfig(
            base_url=url,
            headers={"Authorization": TOKEN},
            examples=examples,
            seed=seed,
            fixed_paths={"GET /api/users/{user_id}/alerts": {"user_id": 7}},
        ),
    )


def test_a_conforming_server_passes_every_check(serve: Callable[[str | None], str]) -> None:
    report = _fuzz(serve(None))
    assert report.requests > 60
    assert report.transport_errors == 0
    assert dict(report.failures) == {}, report.counterexamples
    # Both sides of the contract were exercised: answered and refused.
    assert {200, 422} <= set(report.statuses)
    assert report.passes["GET /api/users/{user_id}/alerts real-ids"] > 0
    assert report.empty_passes.keys() == {"GET /healthz negative"}  # nothing to negate


@pytest.mark.parametrize(
    ("flaw", "verdicts"),
    [
        # A 500 is also a status the contract does not document.
        ("crash_on_empty", {"server_error", "schema"}),
        ("string_ids", {"schema"}),
        ("accepts_any_integer", {"malformed_accepted"}),
    ],
)
def test_each_kind_of_fault_is_found(
    serve: Callable[[str | None], str], flaw: str, verdicts: set[str]
) -> None:
    report = _fuzz(serve(flaw))
    assert set(report.failures) == verdicts, report.to_dict()
    verdict = sorted(verdicts)[0]
    example = report.counterexamples[verdict][0]
    assert example["request"].startswith(("GET ", "POST "))
    assert example["failure"]


def test_the_same_seed_sends_the_same_requests(serve: Callable[[str | None], str]) -> None:
    url = serve(None)
    first, again = _fuzz(url, seed=5, examples=4), _fuzz(url, seed=5, examples=4)
    assert first.statuses == again.statuses
    assert first.passes == again.passes

"""The contract's OpenAPI document is valid OpenAPI 3.1 and says what docs/contract.md says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis

from harness.contract.openapi import CAPABILITY_KEY, HTTP_METHODS, openapi_document
from harness.fuzz.api import without_security

CONTRACT = (Path(__file__).resolve().parents[3] / "docs" / "contract.md").read_text()


def _section(number: str) -> str:
    """The text of ``### <number> …`` up to the next heading of any level."""
    match = re.search(rf"^### {re.escape(number)} .*?(?=^##)", CONTRACT, re.M | re.S)
    assert match, f"section {number} not found in docs/contract.md"
    return match.group(0)


def _json_blocks(text: str) -> list[Any]:
    return [json.loads(b) for b in re.findall(r"^\s*```json\n(.*?)^\s*```", text, re.M | re.S)]


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in HTTP_METHODS
        if method in item
    }


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    return jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})


def _response_schema(doc: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path][method]["responses"][status]["content"][
        "application/json"
    ]["schema"]
    return schema


def test_the_document_is_valid_openapi_3_1() -> None:
    schemathesis.openapi.from_dict(openapi_document()).validate()


def test_a_broken_document_is_caught_by_the_same_validation() -> None:
    doc = openapi_document()
    doc["paths"]["/healthz"]["get"]["parameters"] = [{"name": "verbose"}]  # no "in"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(doc).validate()


def test_its_operations_are_the_contracts_http_endpoints() -> None:
    headings = set(re.findall(r"^### 6\.\d+ `(GET|POST) ([^`?]+)`", CONTRACT, re.M))
    queue = set(re.findall(r"`(GET|POST) (/api/queue/[^`?]+)", _section("8.1")))
    assert len(headings) == 4
    assert len(queue) == 2
    assert _operations(openapi_document()) == headings | queue


def test_capability_operations_are_left_out_for_a_target_without_the_capability() -> None:
    full = _operations(openapi_document())
    without = _operations(openapi_document(capabilities=set()))
    assert full - without == {
        ("GET", "/api/queue/jobs/{job_id}"),
        ("GET", "/api/queue/dead-letters"),
    }
    assert _operations(openapi_document(capabilities={"queue"})) == full
    marked = [
        op
        for item in openapi_document()["paths"].values()
        for m, op in item.items()
        if CAPABILITY_KEY in op
    ]
    assert [op[CAPABILITY_KEY] for op in marked] == ["queue", "queue"]


@pytest.mark.parametrize(
    ("section", "method", "path"),
    [
        ("6.2", "post", "/api/projects/{project_id}/line-items/{line_item_id}/complete"),
        ("6.3", "post", "/api/alerts/generate"),
        ("6.4", "get", "/api/users/{user_id}/alerts"),
        ("6.5", "get", "/healthz"),
    ],
)
def test_every_status_the_contract_names_is_documented(
    section: str, method: str, path: str
) -> None:
    text = _section(section)
    named = set(re.findall(r"^\| (\d{3}) \|", text, re.M)) | set(re.findall(r"\*\*(\d{3})\b", text))
    named |= {"401"} if section != "6.5" else set()  # section 6: 401 on every endpoint but healthz
    assert named, f"no status found in section {section}"
    responses = openapi_document()["paths"][path][method]["responses"]
    assert named <= set(responses), f"{section}: {sorted(named - set(responses))} undocumented"
    if section != "6.5":
        assert "4XX" in responses  # malformed input: any 4xx (contract 6)


def test_healthz_alone_needs_no_token() -> None:
    doc = openapi_document()
    assert doc["security"] == [{"bearer": []}]
    open_ops = {
        (m, p) for p, item in doc["paths"].items() for m, op in item.items() if "security" in op
    }
    assert open_ops == {("get", "/healthz")}
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def test_the_alert_schema_requires_exactly_the_contracts_required_fields() -> None:
    rows = re.findall(r"^\| `([^|]+)` \| [^|]+ \| (yes|no) \|", _section("6.1"), re.M)
    required: set[str] = set()
    for names, needed in rows:
        if needed == "yes":
            required |= {n.strip(" `") for n in names.split(",")}
    assert required == {
        "id",
        "projectId",
        "stepId",
        "assignedToId",
        "title",
        "message",
        "priority",
        "createdAt",
        "status",
    }
    assert set(openapi_document()["components"]["schemas"]["Alert"]["required"]) == required


@pytest.mark.parametrize(
    ("section", "index", "schema_of"),
    [
        ("6.1", 0, ("component", "Alert")),
        (
            "6.2",
            0,
            (
                "response",
                "post",
                "/api/projects/{project_id}/line-items/{line_item_id}/complete",
                "200",
            ),
        ),
        ("6.3", 0, ("component", "GenerateRequest")),
        ("6.3", 1, ("response", "post", "/api/alerts/generate", "200")),
        ("6.4", 0, ("response", "get", "/api/users/{user_id}/alerts", "200")),
        (
            "8.1",
            0,
            (
                "response",
                "post",
                "/api/projects/{project_id}/line-items/{line_item_id}/complete",
                "202",
            ),
        ),
        ("8.1", 1, ("response", "get", "/api/queue/jobs/{job_id}", "200")),
        ("8.1", 2, ("response", "get", "/api/queue/dead-letters", "200")),
    ],
)
def test_the_contracts_examples_fit_the_document(
    section: str, index: int, schema_of: tuple[str, ...]
) -> None:
    doc = openapi_document()
    example = _json_blocks(_section(section))[index]
    if schema_of[0] == "component":
        schema: dict[str, Any] = {"$ref": f"#/components/schemas/{schema_of[1]}"}
    else:
        schema = _response_schema(doc, *schema_of[1:])
    validator = _validator(doc, schema)
    assert validator.is_valid(example), [str(e) for e in validator.iter_errors(example)]


def test_bodies_off_the_contract_do_not_fit() -> None:
    doc = openapi_document()
    alerts = _validator(doc, _response_schema(doc, "get", "/api/users/{user_id}/alerts", "200"))
    alert = _json_blocks(_section("6.1"))[0]
    assert alerts.is_valid({"alerts": [alert]})
    assert not alerts.is_valid({"alerts": [{**alert, "status": "COMPLETED"}]})  # ACTIVE only
    assert not alerts.is_valid({"alerts": [{**alert, "id": "4711"}]})  # ids are numbers
    assert not alerts.is_valid({"alerts": [{k: v for k, v in alert.items() if k != "stepId"}]})
    generate = _validator(doc, _response_schema(doc, "post", "/api/alerts/generate", "200"))
    assert not generate.is_valid({"requested": 1, "created": 1})  # alertIds missing
    request = _validator(doc, {"$ref": "#/components/schemas/GenerateRequest"})
    assert not request.is_valid({"project_ids": [0]})
    assert not request.is_valid({"project_ids": [2**63]})
    assert not request.is_valid({"project_ids": [True]})


def test_the_fuzzed_copy_has_no_security_requirement_and_the_original_keeps_it() -> None:
    doc = openapi_document()
    fuzzed = without_security(doc)
    assert "security" not in fuzzed
    assert all("security" not in op for item in fuzzed["paths"].values() for op in item.values())
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []

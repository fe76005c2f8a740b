"""Schemathesis over the contract's OpenAPI document, against any target.

Every operation of :func:`harness.contract.openapi.openapi_document` (the
contract's, never the target's own) is explored with data that fits its
schema (*positive*) and data that does not (*negative*), a fixed number of
examples each, seeded; optionally once more with path parameters fixed to
real ids (so that 200 answers, not only 404s, are checked). Every response is
judged by schemathesis's checks, grouped into three verdicts:

- ``server_error``: any 5xx (``not_a_server_error``): contract 6 says malformed
  input MUST get a 4xx and never a 5xx;
- ``schema``: the status code is one the contract documents for the
  operation, the media type too, and the body fits the schema
  (``status_code_conformance``, ``content_type_conformance``,
  ``response_schema_conformance``);
- ``malformed_accepted``: negative data answered 2xx
  (``negative_data_rejection``).

Blocking (schemathesis sends with ``requests``): run it in a thread.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup
from schemathesis.generation.case import Case as _Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

Case = _Case[APIOperation[Any, Any, Any, Any]]

__all__ = ["VERDICTS", "ApiFuzzConfig", "ApiFuzzReport", "fuzz_api", "without_security"]

logger = logging.getLogger(__name__)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: Our verdict for each schemathesis check.
VERDICTS: dict[str, str] = {
    "not_a_server_error": "server_error",
    "status_code_conformance": "schema",
    "content_type_conformance": "schema",
    "response_schema_conformance": "schema",
    "response_headers_conformance": "schema",
    "negative_data_rejection": "malformed_accepted",
}
MAX_COUNTEREXAMPLES = 10


@dataclass(frozen=True, kw_only=True)
class ApiFuzzConfig:
    """Where and how much to fuzz."""

    base_url: str
    #: Sent with every request (the valid ``Authorization`` of a seeded user).
    headers: Mapping[str, str]
    #: Examples per operation and generation mode.
    examples: int
    seed: int
    #: Operation label (``"GET /api/users/{user_id}/alerts"``) -> path
    #: parameters for one more positive pass with real ids.
    fixed_paths: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    timeout_s: float = 10.0
    #: Wall-clock budget of the whole exploration; examples past it are skipped
    #: (and counted).
    budget_s: float = 120.0

    def __post_init__(self) -> None:
        if self.examples < 1:
            raise ValueError(f"examples must be >= 1, got {self.examples}")


@dataclass
class ApiFuzzReport:
    """What was sent and what came back."""

    examples: int = 0
    requests: int = 0
    #: Requests that got no answer (connection error, timeout).
    transport_errors: int = 0
    skipped_for_time: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    #: ``"POST /api/alerts/generate positive"`` -> requests.
    passes: dict[str, int] = field(default_factory=dict)
    #: Passes that generated nothing, with the reason (e.g. nothing to negate).
    empty_passes: dict[str, str] = field(default_factory=dict)
    #: Verdict -> failing responses.
    failures: Counter[str] = field(default_factory=Counter)
    counterexamples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add_failure(self, verdict: str, example: dict[str, Any]) -> None:
        self.failures[verdict] += 1
        kept = self.counterexamples.setdefault(verdict, [])
        if len(kept) < MAX_COUNTEREXAMPLES:
            kept.append(example)

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "requests": self.requests,
            "transport_errors": self.transport_errors,
            "skipped_for_time": self.skipped_for_time,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "passes": dict(self.passes),
            "empty_passes": dict(self.empty_passes),
            "failures": dict(self.failures),
            "counterexamples": self.counterexamples,
        }


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def _describe(case: Case, status: int | None, text: str) -> dict[str, Any]:
    described: dict[str, Any] = {
        "request": f"{case.method} {case.formatted_path}",
        "query": _short(case.query or {}),
        "status": status,
        "response": _short(text),
    }
    meta = case.meta
    if meta is not None:
        described["mode"] = str(meta.generation.mode)
    if not isinstance(case.body, NotSet):
        described["body"] = _short(
            case.body if isinstance(case.body, str | dict | list) else repr(case.body)
        )
    return described


def without_security(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` without its security requirements.

    The fuzzer always sends the valid credential it is given: left in, the
    requirement makes schemathesis "negate" the ``Authorization`` header,
    which the given one then overrides, and a request that is valid but for
    an ignored extra query parameter would count as malformed data accepted.
    Bad credentials are the scenario's own probes (every one must get 401)."""
    doc = copy.deepcopy(dict(document))
    doc.pop("security", None)
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    return doc


def fuzz_api(document: Mapping[str, Any], config: ApiFuzzConfig) -> ApiFuzzReport:
    """Explore every operation of ``document`` against ``config.base_url``."""
    schema = schemathesis.openapi.from_dict(without_security(document))
    report = ApiFuzzReport()
    deadline = time.monotonic() + config.budget_s
    plans: list[tuple[str, st.SearchStrategy[Case]]] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise ValueError(f"the OpenAPI document has an invalid operation: {result.err()}")
        operation = result.ok()
        label = operation.label
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            plans.append((f"{label} {mode}", operation.as_strategy(generation_mode=mode)))
        fixed = config.fixed_paths.get(label)
        if fixed:
            plans.append((f"{label} real-ids", operation.as_strategy(path_parameters=dict(fixed))))
    with requests.Session() as session:
        for name, strategy in plans:
            report.passes[name] = 0
            try:
                _explore(name, strategy, config, session, report, deadline)
            except Exception as exc:  # e.g. nothing to negate in an operation without input
                logger.info("api fuzz pass %s generated nothing: %r", name, exc)
                report.empty_passes[name] = f"{type(exc).__name__}: {_short(str(exc), 200)}"
    return report


def _explore(
    name: str,
    strategy: st.SearchStrategy[Case],
    config: ApiFuzzConfig,
    session: requests.Session,
    report: ApiFuzzReport,
    deadline: float,
) -> None:
    headers = dict(config.headers)

    @settings(
        max_examples=config.examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        report_multiple_bugs=False,
    )
    @seed(config.seed)
    @given(case=strategy)
    def one(case: Case) -> None:
        report.examples += 1
        if time.monotonic() > deadline:
            report.skipped_for_time += 1
            return
        report.requests += 1
        report.passes[name] += 1
        try:
            response = case.call(
                base_url=config.base_url,
                session=session,
                headers=headers,
                timeout=config.timeout_s,
            )
        except requests.RequestException as exc:
            report.transport_errors += 1
            report.add_failure("transport", _describe(case, None, f"{type(exc).__name__}: {exc}"))
            return
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            seen: set[str] = set()
            for failure in group.exceptions:
                verdicts = {VERDICTS.get(c, "other") for c in failure.checks} or {"other"}
                for verdict in verdicts - seen:
                    seen.add(verdict)
                    example = _describe(case, response.status_code, response.text_lossy())
                    example["failure"] = _short(f"{failure.title}: {failure.message}", 400)
                    report.add_failure(verdict, example)

    one()

"""The contract's HTTP API as an OpenAPI 3.1 document (``openapi.json`` beside this file).

Written from ``docs/contract.md`` (sections 5, 6 and 8.1), never from a
target's own document: the harness judges any target's HTTP answers by it.
Operations that exist only with an optional capability carry
``x-alertbench-capability``; :func:`openapi_document` leaves out those the
target does not declare.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["CAPABILITY_KEY", "HTTP_METHODS", "openapi_document"]

#: The extension naming the capability an operation needs.
CAPABILITY_KEY = "x-alertbench-capability"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@cache
def _raw() -> str:
    return files("harness.contract").joinpath("openapi.json").read_text(encoding="utf-8")


def openapi_document(capabilities: Collection[str] | None = None) -> dict[str, Any]:
    """A fresh copy of the contract's document.

    With ``capabilities``, only the operations a target declaring exactly
    those capabilities must serve; ``None`` keeps every operation.
    """
    doc: dict[str, Any] = copy.deepcopy(json.loads(_raw()))
    if capabilities is None:
        return doc
    for path in list(doc["paths"]):
        item = doc["paths"][path]
        for method in [m for m in HTTP_METHODS if m in item]:
            needed = item[method].get(CAPABILITY_KEY)
            if needed is not None and needed not in capabilities:
                del item[method]
        if not any(m in item for m in HTTP_METHODS):
            del doc["paths"][path]
    return doc

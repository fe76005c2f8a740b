"""The load generator's HTTP client: aiohttp, one session, a bounded pool.

httpx was the harness's own bottleneck: profiled at 150 requests/s, 77 % of
the generator process went to httpx/httpcore, mostly its connection pool
scanning every connection on every request. aiohttp's connector does not.
Responses are read whole and parsed as JSON when they are JSON.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from harness.clients.fastjson import loads

__all__ = ["AppHttp", "HttpResponse", "HttpStatusError"]

#: Paths made of unreserved characters and slashes (``/api/projects/3/...``),
#: and base URLs made of those and a host: nothing in them to percent-encode.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/_.~-]*")
_UTF8 = frozenset({"utf-8", "utf8"})
_PLAIN_BASE = re.compile(r"https?://[A-Za-z0-9.:\[\]_~-]+(/[A-Za-z0-9/_.~-]*)?")


@dataclass(frozen=True)
class HttpResponse:
    """A response, read whole."""

    status: int
    #: The parsed JSON body, or ``None`` when the body is not JSON.
    body: Any
    text: str
    #: Response headers (case as sent; first value of a repeated header).
    headers: Mapping[str, str] = field(default_factory=dict)

    def detail(self) -> str:
        """The API's error message (``detail``), or the start of the body."""
        if isinstance(self.body, dict) and "detail" in self.body:
            return str(self.body["detail"])
        return self.text[:200]


class HttpStatusError(Exception):
    """A response with an unexpected status."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status}: {response.detail()}")


class AppHttp:
    """``async with AppHttp(url) as http: await http.post(path, ...)``.

    Given several base URLs (one per app process), requests take turns over
    them, as behind a round-robin load balancer."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        max_connections: int = 256,
        timeout_s: float = 10.0,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("base_url: at least one URL is needed")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.base_url = self.base_urls[0]
        self._turn = itertools.cycle(self.base_urls)
        self._plain_bases = all(_PLAIN_BASE.fullmatch(u) for u in self.base_urls)
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AppHttp:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            timeout=self._timeout,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        if self._session is None:
            raise RuntimeError("AppHttp is not open: use it with 'async with'")
        url = f"{next(self._turn)}{path}"
        async with self._session.request(
            method,
            # A path of plain characters needs no percent-encoding: yarl is
            # told so, and skips re-encoding it (a few % of a request's CPU).
            URL(url, encoded=True) if self._plain_bases and _PLAIN_PATH.fullmatch(path) else url,
            json=json,
            headers=headers,
        ) as response:
            body = None
            is_json = response.content_type == "application/json"
            if is_json and (response.charset or "utf-8").lower() in _UTF8:
                # JSON is UTF-8 (RFC 8259): decoded once, parsed once
                # (aiohttp's text() then json() decodes twice).
                text = (await response.read()).decode("utf-8")
            else:
                text = await response.text()
            if is_json and text.strip():
                body = loads(text)
            return HttpResponse(response.status, body, text, dict(response.headers))

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> HttpResponse:
        return await self.request("GET", path, headers=headers)

    async def post(
        self, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        return await self.request("POST", path, json=json, headers=headers)

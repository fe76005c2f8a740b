"""A small async client for the Toxiproxy HTTP API (real Toxiproxy or the embedded one).

    async with ToxiproxyClient("http://127.0.0.1:8474") as tp:
        proxy = await tp.create_proxy("postgres", upstream="127.0.0.1:5432")
        await tp.add_toxic("postgres", "latency", attributes={"latency": 200})

Every request is bounded by ``timeout_s``. API errors raise ``ToxiproxyError``
(``NotFoundError`` for 404, ``ConflictError`` for 409, ``BadRequestError``
for 400) carrying the server's message and status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx

__all__ = [
    "BadRequestError",
    "ConflictError",
    "NotFoundError",
    "ProxyInfo",
    "ToxicInfo",
    "ToxiproxyClient",
    "ToxiproxyError",
]

Stream = Literal["upstream", "downstream"]


class ToxiproxyError(Exception):
    """The Toxiproxy API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class BadRequestError(ToxiproxyError):
    """400: malformed body, invalid stream, toxic type or attribute."""


class NotFoundError(ToxiproxyError):
    """404: no such proxy or toxic."""


class ConflictError(ToxiproxyError):
    """409: the proxy or toxic already exists."""


_ERRORS: dict[int, type[ToxiproxyError]] = {
    400: BadRequestError,
    404: NotFoundError,
    409: ConflictError,
}


@dataclass(frozen=True, slots=True)
class ToxicInfo:
    """A toxic as reported by the API."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data["stream"],
            toxicity=float(data["toxicity"]),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """A proxy as reported by the API."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = ()

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """The bound port (concrete even when the proxy was created with port 0)."""
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=bool(data["enabled"]),
            toxics=tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()),
        )


class ToxiproxyClient:
    """Async client for one Toxiproxy server at ``url``."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout_s,
            headers={"User-Agent": "alertbench-toxiproxy-client"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ToxiproxyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error", response.text))
            except ValueError:
                message = response.text.strip()
            raise _ERRORS.get(response.status_code, ToxiproxyError)(response.status_code, message)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- server ---------------------------------------------------------------
    async def version(self) -> str:
        """The server's version string."""
        data = await self._request("GET", "/version")
        return str(data["version"]) if isinstance(data, dict) else str(data)

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        await self._request("POST", "/reset")

    # -- proxies --------------------------------------------------------------
    async def proxies(self) -> dict[str, ProxyInfo]:
        data = await self._request("GET", "/proxies")
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    async def create_proxy(
        self, name: str, *, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> ProxyInfo:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return ProxyInfo.from_json(await self._request("POST", "/proxies", body))

    async def populate(self, proxies: Iterable[Mapping[str, Any]]) -> list[ProxyInfo]:
        """Create or replace proxies (``name``, ``upstream``, optional ``listen``/``enabled``)."""
        data = await self._request("POST", "/populate", [dict(p) for p in proxies])
        return [ProxyInfo.from_json(p) for p in data["proxies"]]

    async def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(await self._request("GET", f"/proxies/{name}"))

    async def update_proxy(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        listen: str | None = None,
        upstream: str | None = None,
    ) -> ProxyInfo:
        body = {
            k: v
            for k, v in {"enabled": enabled, "listen": listen, "upstream": upstream}.items()
            if v is not None
        }
        return ProxyInfo.from_json(await self._request("PATCH", f"/proxies/{name}", body))

    async def enable(self, name: str) -> ProxyInfo:
        return await self.update_proxy(name, enabled=True)

    async def disable(self, name: str) -> ProxyInfo:
        """Stop listening and drop the proxy's connections."""
        return await self.update_proxy(name, enabled=False)

    async def delete_proxy(self, name: str) -> None:
        await self._request("DELETE", f"/proxies/{name}")

    # -- toxics ---------------------------------------------------------------
    async def toxics(self, proxy: str) -> list[ToxicInfo]:
        data = await self._request("GET", f"/proxies/{proxy}/toxics")
        return [ToxicInfo.from_json(t) for t in data]

    async def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        return ToxicInfo.from_json(await self._request("POST", f"/proxies/{proxy}/toxics", body))

    async def get_toxic(self, proxy: str, name: str) -> ToxicInfo:
        return ToxicInfo.from_json(await self._request("GET", f"/proxies/{proxy}/toxics/{name}"))

    async def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        path = f"/proxies/{proxy}/toxics/{name}"
        return ToxicInfo.from_json(await self._request("PATCH", path, body))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")

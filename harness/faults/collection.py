"""The proxy registry behind the HTTP API, with Toxiproxy's rules and error messages.

Every method takes decoded JSON and either returns the JSON answer or raises
``ApiError`` carrying Toxiproxy's message and status code. Mutations are
serialised with one lock, as Toxiproxy serialises them with mutexes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.faults.proxy import STREAMS, AddressError, Proxy, parse_address
from harness.faults.toxics import TOXIC_TYPES, InvalidAttributeError, Toxic

__all__ = ["ApiError", "ProxyCollection"]

TOXIPROXY_API_VERSION = "2.12.0"
"""The Toxiproxy release whose HTTP API the embedded server follows."""


class ApiError(Exception):
    """An API failure: ``{"error": message, "status": status}`` on the wire."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


def bad_body(reason: str) -> ApiError:
    return ApiError(f"bad request body: {reason}", 400)


def missing(field: str) -> ApiError:
    return ApiError(f"missing required field: {field}", 400)


PROXY_NOT_FOUND = "proxy not found"
TOXIC_NOT_FOUND = "toxic not found"

_PROXY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "listen": str,
    "upstream": str,
    "enabled": bool,
}
_TOXIC_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "type": str,
    "stream": str,
    "toxicity": (int, float),
    "attributes": dict,
}


def _fields(body: Any, schema: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """Typed known fields of a JSON object; unknown fields and nulls are ignored."""
    if not isinstance(body, dict):
        raise bad_body(f"expected a JSON object, got {type(body).__name__}")
    out: dict[str, Any] = {}
    for key, kind in schema.items():
        value = body.get(key)
        if value is None:
            continue
        # bool is an int in Python, not a number in JSON.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise bad_body(f"field {key!r} has the wrong type")
        out[key] = value
    return out


class ProxyCollection:
    """All proxies of one server, by name."""

    def __init__(self, *, seed: int) -> None:
        self.seed = seed
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ApiError(PROXY_NOT_FOUND, 404) from None

    def _validated_proxy(self, fields: dict[str, Any], where: str = "") -> Proxy:
        if not fields.get("name"):
            raise missing("name" + where)
        if not fields.get("upstream"):
            raise missing("upstream" + where)
        listen = fields.get("listen", "")
        try:
            parse_address(listen, field="listen", listen=True)
            parse_address(fields["upstream"], field="upstream", listen=False)
        except AddressError as exc:
            raise bad_body(str(exc)) from None
        return Proxy(fields["name"], listen or "127.0.0.1:0", fields["upstream"], seed=self.seed)

    @staticmethod
    async def _start(proxy: Proxy) -> None:
        try:
            await proxy.start()
        except OSError as exc:
            raise ApiError(f"listen {proxy.listen}: {exc.strerror or exc}", 500) from None

    async def create(self, body: Any) -> dict[str, Any]:
        fields = _fields(body, _PROXY_FIELDS)
        async with self.lock:
            proxy = self._validated_proxy(fields)
            if proxy.name in self.proxies:
                raise ApiError("proxy already exists", 409)
            if fields.get("enabled", True):
                await self._start(proxy)
            self.proxies[proxy.name] = proxy
            return proxy.to_json()

    async def populate(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise bad_body("expected a JSON array of proxies")
        async with self.lock:
            # Validate everything before touching any proxy, like Toxiproxy 2.12.
            staged: list[tuple[Proxy, bool]] = []
            for i, item in enumerate(body, start=1):
                fields = _fields(item, _PROXY_FIELDS)
                proxy = self._validated_proxy(fields, f" at proxy {i}")
                if any(p.name == proxy.name for p, _ in staged):
                    raise bad_body(f"duplicate proxy name {proxy.name!r}")
                staged.append((proxy, fields.get("enabled", True)))
            result = []
            for proxy, enabled in staged:
                existing = self.proxies.get(proxy.name)
                if existing is not None:
                    if (existing.listen, existing.upstream) == (proxy.listen, proxy.upstream):
                        result.append(existing.to_json())
                        continue
                    await existing.stop()
                    del self.proxies[proxy.name]
                if enabled:
                    await self._start(proxy)
                self.proxies[proxy.name] = proxy
                result.append(proxy.to_json())
            return result

    async def update(self, name: str, body: Any) -> dict[str, Any]:
        async with self.lock:
            proxy = self.get(name)
            fields = _fields(body, _PROXY_FIELDS)
            listen = fields.get("listen", proxy.listen)
            upstream = fields.get("upstream", proxy.upstream)
            try:
                parse_address(listen, field="listen", listen=True)
                parse_address(upstream, field="upstream", listen=False)
            except AddressError as exc:
                raise bad_body(str(exc)) from None
            try:
                await proxy.update(
                    listen=listen, upstream=upstream, enabled=fields.get("enabled", proxy.enabled)
                )
            except OSError as exc:
                raise ApiError(f"listen {proxy.listen}: {exc.strerror or exc}", 500) from None
            return proxy.to_json()

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            del self.proxies[name]

    async def reset(self) -> None:
        async with self.lock:
            for proxy in self.proxies.values():
                await self._start(proxy)
                await proxy.reset_toxics()

    async def close(self) -> None:
        async with self.lock:
            for proxy in self.proxies.values():
                await proxy.stop()

    # -- toxics -------------------------------------------------------------
    async def add_toxic(self, proxy_name: str, body: Any) -> dict[str, Any]:
        async with self.lock:
            proxy = self.get(proxy_name)
            fields = _fields(body, _TOXIC_FIELDS)
            stream = fields.get("stream", "downstream").lower()
            if stream not in STREAMS:
                raise ApiError("stream was invalid, can be either upstream or downstream", 400)
            kind = TOXIC_TYPES.get(fields.get("type", ""))
            name = fields.get("name") or f"{fields.get('type', '')}_{stream}"
            if kind is None:
                raise ApiError("invalid toxic type", 400)
            if proxy.find_toxic(name) is not None:
                raise ApiError("toxic already exists", 409)
            try:
                attributes = kind.parse(fields.get("attributes"))
            except InvalidAttributeError as exc:
                raise bad_body(str(exc)) from None
            toxic = Toxic(name, kind, stream, float(fields.get("toxicity", 1.0)), attributes)
            proxy.add_toxic(toxic)
            return toxic.to_json()

    async def update_toxic(self, proxy_name: str, name: str, body: Any) -> dict[str, Any]:
        async with self.lock:
            proxy = self.get(proxy_name)
            current = proxy.find_toxic(name)
            if current is None:
                raise ApiError(TOXIC_NOT_FOUND, 404)
            fields = _fields(body, {"toxicity": (int, float), "attributes": dict})
            try:
                attributes = current.kind.parse(fields.get("attributes"), current.attributes)
            except InvalidAttributeError as exc:
                raise bad_body(str(exc)) from None
            toxicity = float(fields.get("toxicity", current.toxicity))
            toxic = Toxic(name, current.kind, current.stream, toxicity, attributes)
            await proxy.update_toxic(toxic)
            return toxic.to_json()

    def get_toxic(self, proxy_name: str, name: str) -> dict[str, Any]:
        toxic = self.get(proxy_name).find_toxic(name)
        if toxic is None:
            raise ApiError(TOXIC_NOT_FOUND, 404)
        return toxic.to_json()

    async def remove_toxic(self, proxy_name: str, name: str) -> None:
        async with self.lock:
            proxy = self.get(proxy_name)
            if proxy.find_toxic(name) is None:
                raise ApiError(TOXIC_NOT_FOUND, 404)
            await proxy.remove_toxic(name)

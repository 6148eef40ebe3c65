"""Async REST client over aiohttp: typed errors from Status, watch streams as async iterators."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson

from kubeling.api.resources import Resource

from .config import ClientConfig
from .metrics import REST_CLIENT_REQUESTS


class ApiError(Exception):
    def __init__(self, code: int, status: dict | None = None, text: str = ""):
        self.code = code
        self.status = status or {}
        self.reason = self.status.get("reason", "")
        # code 0: the request never got an HTTP answer (connection refused, timeout, TLS)
        super().__init__(f"{code} {self.reason}: {self.status.get('message') or text}" if code else text)

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def already_exists(self) -> bool:
        return self.code == 409 and self.reason == "AlreadyExists"


class Client:
    def __init__(self, config: ClientConfig, user_agent: str = "kubeling", max_connections: int = 100) -> None:
        self.config = config
        self._host = urlsplit(config.server).netloc
        self.user_agent = user_agent
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
            self._session = aiohttp.ClientSession(
                headers=headers, json_serialize=lambda o: orjson.dumps(o).decode(),
                connector=aiohttp.TCPConnector(ssl=self.config.ssl_context(), limit=self.max_connections),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        token = self.config.bearer()     # a token file's rotation reaches the next request
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def url(self, r: Resource, namespace: str | None = None, name: str | None = None, sub: str | None = None,
            params: dict | None = None) -> str:
        path = r.base_path(namespace if r.namespaced else None)
        if name:
            path += f"/{name}"
            if sub:
                path += f"/{sub}"
        q = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        return self.config.server + path + ("?" + urlencode(q) if q else "")

    async def request(self, method: str, url: str, body: Any = None, content_type: str = "application/json",
                      timeout: float = 30) -> Any:
        data = orjson.dumps(body) if body is not None and not isinstance(body, bytes) else body
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with self.session().request(method, url, data=data, headers=headers,
                                              timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                self._count(resp.status, method)
                raw = await resp.read()
                if resp.status >= 400:
                    try:
                        status = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        status = None
                    raise ApiError(resp.status, status if isinstance(status, dict) else None, raw[:200].decode(errors="replace"))
                return orjson.loads(raw) if raw else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            self._count("<error>", method)
            raise ApiError(0, None, f"{method} {url}: {e or type(e).__name__}") from None

    def _count(self, code: int | str, method: str) -> None:
        REST_CLIENT_REQUESTS.labels(str(code), method, self._host).inc()

    async def get(self, r: Resource, name: str, namespace: str | None = None, sub: str | None = None) -> dict:
        return await self.request("GET", self.url(r, namespace, name, sub))

    async def list(self, r: Resource, namespace: str | None = None, **params: Any) -> dict:
        return await self.request("GET", self.url(r, namespace, params=params), timeout=120)

    async def create(self, r: Resource, obj: dict, namespace: str | None = None, sub_of: str | None = None,
                     sub: str | None = None) -> dict:
        return await self.request("POST", self.url(r, namespace, sub_of, sub), obj)

    async def update(self, r: Resource, obj: dict, namespace: str | None = None, sub: str | None = None) -> dict:
        return await self.request("PUT", self.url(r, namespace, obj["metadata"]["name"], sub), obj)

    async def patch(self, r: Resource, name: str, patch: Any, namespace: str | None = None, sub: str | None = None,
                    patch_type: str = "application/merge-patch+json") -> dict:
        return await self.request("PATCH", self.url(r, namespace, name, sub), patch, patch_type)

    async def delete(self, r: Resource, name: str, namespace: str | None = None, **options: Any) -> Any:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options} if options else None
        return await self.request("DELETE", self.url(r, namespace, name), body)

    async def watch(self, r: Resource, namespace: str | None = None, **params: Any) -> AsyncIterator[dict]:
        """Yield watch events ({type, object}) until the server ends the stream."""
        params = {**params, "watch": "true"}
        url = self.url(r, namespace, params=params)
        try:
            async with self.session().get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
                self._count(resp.status, "GET")
                if resp.status >= 400:
                    raw = await resp.read()
                    raise ApiError(resp.status, orjson.loads(raw) if raw.startswith(b"{") else None)
                buf = b""
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield orjson.loads(line)
        except (aiohttp.ClientError, OSError) as e:
            raise ApiError(0, None, f"watch {url}: {e}") from None

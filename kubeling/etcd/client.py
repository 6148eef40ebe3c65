"""EtcdClient: etcd's v3 JSON gateway over HTTP, with fail-over between endpoints.

Transport is aiohttp rather than httpx: measured on this project's 2-core machines, httpx
served about 300 puts/s to 64 concurrent tasks against either etcd or etcdnode, aiohttp
over 4,000/s through the same servers (docs/BENCHMARKS.md). The store client is the
hot path of every apiserver request, so the faster transport wins.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import aiohttp
import orjson

from .errors import CompactedError, EtcdError, EtcdUnavailable, from_body
from .types import (Bytesish, Compare, DeleteResponse, Header, LeaseGrantResponse, LeaseTTLResponse, Op,
                    PutResponse, RangeResponse, StatusResponse, TxnResponse, WatchResponse, delete_body, key_range,
                    options, put_body, range_body, txn_body, unb64)

# failures where the request never reached a server: always safe to try the next endpoint
_NOT_SENT = (aiohttp.ClientConnectorError,)
# failures after the request may have been received
_MAYBE_SENT = (asyncio.TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
               aiohttp.ClientPayloadError)


class EtcdClient:
    def __init__(self, endpoints: list[str] | str, timeout: float = 10.0, max_connections: int = 256) -> None:
        if isinstance(endpoints, str):
            endpoints = [e.strip() for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.max_connections = max_connections
        self._preferred = 0
        self._session: aiohttp.ClientSession | None = None

    # ----- lifecycle -----
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections),
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(self.timeout, 2.0)),
                headers={"Content-Type": "application/json"}, skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "EtcdClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _order(self) -> list[int]:
        n = len(self.endpoints)
        return [(self._preferred + i) % n for i in range(n)]

    # ----- one request, with fail-over -----
    async def call(self, path: str, body: dict, *, idempotent: bool, endpoint: str | None = None) -> dict:
        """POST body to path; reads move on to the next endpoint on any failure, writes only
        when the request cannot have reached a server."""
        http = self._http()
        data = orjson.dumps(body)
        order = [self.endpoints.index(endpoint)] if endpoint in self.endpoints else self._order()
        last: Exception | None = None
        for idx in order:
            try:
                async with http.post(self.endpoints[idx] + path, data=data) as resp:
                    raw = await resp.read()
                    status = resp.status
            except _NOT_SENT as e:
                last = e
                continue
            except _MAYBE_SENT as e:
                if idempotent:
                    last = e
                    continue
                raise EtcdUnavailable(14, f"{self.endpoints[idx]}: {type(e).__name__}: {e}",
                                      maybe_applied=True) from e
            if status == 200:
                self._preferred = idx
                return orjson.loads(raw)
            err = _decode_error(raw, status)
            if isinstance(err, EtcdUnavailable) and (idempotent or not err.maybe_applied):
                last = err
                continue
            raise err
        if isinstance(last, EtcdError):
            raise last
        raise EtcdUnavailable(14, f"no etcd endpoint reachable ({', '.join(self.endpoints)}): {last}")

    # ----- KV -----
    async def get(self, key: Bytesish, **kwargs: Any) -> RangeResponse:
        return RangeResponse.decode(await self.call("/v3/kv/range", range_body(key, **kwargs), idempotent=True))

    async def put(self, key: Bytesish, value: Bytesish, *, lease: int = 0, prev_kv: bool = False) -> PutResponse:
        body = put_body(key, value, lease=lease, prev_kv=prev_kv)
        return PutResponse.decode(await self.call("/v3/kv/put", body, idempotent=False))

    async def delete(self, key: Bytesish, *, range_end: Bytesish | None = None, prefix: bool = False,
                     prev_kv: bool = False) -> DeleteResponse:
        body = delete_body(key, range_end=range_end, prefix=prefix, prev_kv=prev_kv)
        return DeleteResponse.decode(await self.call("/v3/kv/deleterange", body, idempotent=False))

    async def txn(self, compare: list[Compare], success: list[Op], failure: list[Op] = ()) -> TxnResponse:
        body = txn_body(compare, success, failure)
        read_only = all("request_range" in o.body for o in (*success, *failure))
        return TxnResponse.decode(await self.call("/v3/kv/txn", body, idempotent=read_only))

    async def compact(self, revision: int, physical: bool = False) -> Header:
        body: dict = {"revision": revision}
        if physical:
            body["physical"] = True
        return Header.decode((await self.call("/v3/kv/compaction", body, idempotent=True)).get("header"))

    # ----- leases -----
    async def lease_grant(self, ttl: int, id: int = 0) -> LeaseGrantResponse:
        body: dict = {"TTL": ttl}
        if id:
            body["ID"] = id
        d = await self.call("/v3/lease/grant", body, idempotent=False)
        return LeaseGrantResponse(Header.decode(d.get("header")), int(d.get("ID", 0)), int(d.get("TTL", 0)))

    async def lease_revoke(self, id: int) -> Header:
        return Header.decode((await self.call("/v3/lease/revoke", {"ID": id}, idempotent=True)).get("header"))

    async def lease_keepalive_once(self, id: int) -> int:
        d = await self.call("/v3/lease/keepalive", {"ID": id}, idempotent=True)
        return int((d.get("result") or d).get("TTL", 0))

    async def lease_time_to_live(self, id: int, keys: bool = False) -> LeaseTTLResponse:
        body: dict = {"ID": id}
        if keys:
            body["keys"] = True
        d = await self.call("/v3/lease/timetolive", body, idempotent=True)
        return LeaseTTLResponse(Header.decode(d.get("header")), int(d.get("ID", 0)), int(d.get("TTL", 0)),
                                int(d.get("grantedTTL", 0)), [unb64(k) for k in d.get("keys") or ()])

    # ----- maintenance -----
    async def status(self, endpoint: str | None = None) -> StatusResponse:
        d = await self.call("/v3/maintenance/status", {}, idempotent=True, endpoint=endpoint)
        return StatusResponse(Header.decode(d.get("header")), d.get("version", ""), int(d.get("dbSize", 0)),
                              int(d.get("leader", 0)), int(d.get("raftIndex", 0)), int(d.get("raftTerm", 0)))

    # ----- watch -----
    def watch(self, key: Bytesish, *, range_end: Bytesish | None = None, prefix: bool = False,
              start_revision: int = 0, prev_kv: bool = False, progress_notify: bool = False) -> "Watch":
        req = options(key_range(key, range_end, prefix), start_revision=start_revision, prev_kv=prev_kv,
                      progress_notify=progress_notify)
        return Watch(self, {"create_request": req})


def _decode_error(raw: bytes, status: int) -> EtcdError:
    try:
        body = orjson.loads(raw)
        if isinstance(body, dict) and ("code" in body or "error" in body):
            return from_body(body, status)
    except orjson.JSONDecodeError:
        pass
    text = raw.decode(errors="replace").strip()[:200]
    if status >= 500:
        return EtcdUnavailable(14, f"HTTP {status}: {text}", status)
    return EtcdError(2, f"HTTP {status}: {text}", status)


class Watch:
    """One watch on its own HTTP stream. `async with` waits until the server confirmed it."""

    def __init__(self, client: EtcdClient, request: dict) -> None:
        self.client = client
        self.request = request
        self.watch_id = 0
        self.header: Any = None
        self._resp: aiohttp.ClientResponse | None = None
        self._buf = b""
        self._lines: list[bytes] = []

    async def __aenter__(self) -> "Watch":
        http = self.client._http()
        data = orjson.dumps(self.request)
        last: Exception | None = None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=2.0)
        for idx in self.client._order():
            try:
                resp = await http.post(self.client.endpoints[idx] + "/v3/watch", data=data, timeout=timeout)
            except (*_NOT_SENT, *_MAYBE_SENT) as e:
                last = e
                continue
            if resp.status != 200:
                err = _decode_error(await resp.read(), resp.status)
                resp.release()
                raise err
            self._resp = resp
            first = await self._next()
            self.watch_id = first.watch_id
            self.header = first.header
            if first.canceled and first.compact_revision:
                raise CompactedError(compact_revision=first.compact_revision)
            if not first.created:
                self._pending = first
            return self
        raise EtcdUnavailable(14, f"cannot open a watch on any endpoint: {last}")

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    async def _next(self) -> WatchResponse:
        pending = getattr(self, "_pending", None)
        if pending is not None:
            self._pending = None
            return pending
        while not self._lines:
            assert self._resp is not None
            chunk = await self._resp.content.readany()
            if not chunk:
                raise EtcdUnavailable(14, "watch stream closed by the server")
            self._buf += chunk
            *lines, self._buf = self._buf.split(b"\n")
            self._lines.extend(line for line in lines if line.strip())
        msg = orjson.loads(self._lines.pop(0))
        if "error" in msg and "result" not in msg:
            raise from_body(msg, 200)
        resp = WatchResponse.decode(msg.get("result") or {})
        if resp.canceled and resp.compact_revision:
            raise CompactedError(compact_revision=resp.compact_revision)
        return resp

    def __aiter__(self) -> AsyncIterator[WatchResponse]:
        return self

    async def __anext__(self) -> WatchResponse:
        if self._resp is None:
            raise StopAsyncIteration
        try:
            resp = await self._next()
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise EtcdUnavailable(14, f"watch stream broken: {e}") from e
        if resp.canceled:
            await self.close()
        return resp

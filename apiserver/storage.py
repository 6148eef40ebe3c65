"""Objects in etcd: JSON values under /registry keys, resourceVersion = the key's mod_revision.

Writes are single etcd transactions guarded by create_revision/mod_revision compares, so two
apiservers on one store can never lose each other's updates or allocate the same IP twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kubeling.etcd import EtcdClient
from kubeling.etcd.errors import CompactedError, EtcdError, EtcdUnavailable
from kubeling.etcd.types import Compare, KeyValue, Op, prefix_end

from kubeling.api.errors import StatusError, gone, internal_error


class KeyExists(Exception):
    pass


class KeyMissing(Exception):
    pass


class StaleRevision(Exception):
    """The compare on mod_revision failed: someone else wrote first."""

    def __init__(self, current: dict | None):
        super().__init__("stale")
        self.current = current


def encode(obj: dict) -> bytes:
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        meta = dict(meta)
        meta.pop("resourceVersion")
        obj = {**obj, "metadata": meta}
    return orjson.dumps(obj)


def decode(kv: KeyValue) -> dict:
    obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def _etcd_error(e: Exception) -> StatusError:
    if isinstance(e, EtcdUnavailable):
        if getattr(e, "maybe_applied", False):
            return StatusError(504, "Timeout", "Timeout: request did not complete within requested timeout - "
                               "context deadline exceeded")
        return StatusError(503, "ServiceUnavailable", f"etcdserver: {e}")
    return internal_error(f"etcdserver: {e}")


@dataclass
class ListPage:
    objects: list[dict]
    revision: int
    more: bool
    last_key: str | None
    remaining: int


class Storage:
    def __init__(self, etcd: EtcdClient):
        self.etcd = etcd

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except CompactedError:
            raise
        except (EtcdError, OSError) as e:
            raise _etcd_error(e) from e

    async def current_revision(self) -> int:
        resp = await self._call(self.etcd.get("/registry/health-probe", count_only=True))
        return resp.header.revision

    async def get(self, key: str) -> dict | None:
        resp = await self._call(self.etcd.get(key))
        return decode(resp.kvs[0]) if resp.kvs else None

    async def create(self, key: str, obj: dict, extra_puts: dict[str, bytes] | None = None) -> dict:
        """Create key (and any extra keys, e.g. IP allocations) atomically; returns obj with its resourceVersion."""
        keys = [key, *(extra_puts or {})]
        cmp = [Compare.create_revision(k, "=", 0) for k in keys]
        ops = [Op.put(key, encode(obj))] + [Op.put(k, v) for k, v in (extra_puts or {}).items()]
        resp = await self._call(self.etcd.txn(cmp, ops, [Op.get(key)]))
        if not resp.succeeded:
            if resp.responses and resp.responses[0].kvs:
                raise KeyExists(key)
            raise KeyExists(next(iter(extra_puts or {key: b""})))
        out = dict(obj)
        out["metadata"] = {**obj.get("metadata", {}), "resourceVersion": str(resp.header.revision)}
        return out

    async def update(self, key: str, obj: dict, expected_rev: int, extra_puts: dict[str, bytes] | None = None,
                     extra_deletes: list[str] | None = None) -> dict:
        cmp = [Compare.mod_revision(key, "=", expected_rev)]
        cmp += [Compare.create_revision(k, "=", 0) for k in (extra_puts or {})]
        ops = [Op.put(key, encode(obj))] + [Op.put(k, v) for k, v in (extra_puts or {}).items()]
        ops += [Op.delete(k) for k in extra_deletes or ()]
        resp = await self._call(self.etcd.txn(cmp, ops, [Op.get(key)]))
        if not resp.succeeded:
            kvs = resp.responses[0].kvs if resp.responses else []
            if not kvs:
                raise KeyMissing(key)
            current = decode(kvs[0])
            if kvs[0].mod_revision == expected_rev:   # the key matched: an extra key was taken
                raise KeyExists(next(iter(extra_puts or {})))
            raise StaleRevision(current)
        out = dict(obj)
        out["metadata"] = {**obj.get("metadata", {}), "resourceVersion": str(resp.header.revision)}
        return out

    async def delete(self, key: str, expected_rev: int, extra_deletes: list[str] | None = None) -> int:
        cmp = [Compare.mod_revision(key, "=", expected_rev)]
        ops = [Op.delete(key)] + [Op.delete(k) for k in extra_deletes or ()]
        resp = await self._call(self.etcd.txn(cmp, ops, [Op.get(key)]))
        if not resp.succeeded:
            kvs = resp.responses[0].kvs if resp.responses else []
            if not kvs:
                raise KeyMissing(key)
            raise StaleRevision(decode(kvs[0]))
        return resp.header.revision

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start: str | None = None) -> ListPage:
        """One page of the prefix at a revision (0: now). Raises 410 when the revision is compacted."""
        end = prefix_end(prefix.encode())
        key = start if start is not None else prefix
        try:
            resp = await self._call(self.etcd.get(key, range_end=end, revision=revision, limit=limit))
        except CompactedError as e:
            if start is None:
                raise gone(f"too old resource version: {revision}") from e
            raise gone("The provided continue parameter is too old to display a consistent list result. "
                       "You can start a new list without the continue parameter, or use the continue token "
                       "in this response to retrieve the remainder of the results. Continuing with the provided "
                       "token results in an inconsistent list - objects that were created, modified, or deleted "
                       "between the time the first chunk was returned and now may show up in the list.") from e
        objs = [decode(kv) for kv in resp.kvs]
        rev = revision or resp.header.revision
        last = resp.kvs[-1].key.decode() if resp.kvs else None
        return ListPage(objs, rev, resp.more, last, max(0, resp.count - len(resp.kvs)))

    async def put_raw(self, key: str, value: bytes) -> None:
        await self._call(self.etcd.put(key, value))

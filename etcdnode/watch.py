"""Watch streams: several watchers per stream, fed from the event log; wire-neutral.

A stream emits WatchResponse results as JSON-gateway-shaped dicts; the JSON gateway writes
them as NDJSON lines, the gRPC API converts them to protobuf messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from . import errors, wire
from .mvcc import DELETE, KEY, PUT, VALUE, MVCCStore

log = logging.getLogger("etcdnode.watch")

Emit = Callable[[dict], Awaitable[None]]


@dataclass(slots=True)
class Watcher:
    id: int
    key: bytes
    range_end: bytes
    next_rev: int
    prev_kv: bool
    progress_notify: bool
    no_put: bool
    no_delete: bool
    fragment: bool = False
    last_sent: float = field(default_factory=time.monotonic)

    def matches(self, key: bytes) -> bool:
        if not self.range_end:
            return key == self.key
        if self.range_end == b"\x00":
            return key >= self.key
        return self.key <= key < self.range_end


class WatchHub:
    """Wakes every open stream when the store applies something (called from the Raft thread)."""

    def __init__(self, store: MVCCStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self.streams: set[asyncio.Event] = set()
        self._scheduled = False
        store.on_apply = self._on_apply

    def _on_apply(self) -> None:  # Raft tick thread
        if not self._scheduled:
            self._scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _wake(self) -> None:
        self._scheduled = False
        for ev in self.streams:
            ev.set()


class WatchStream:
    """One watch stream (a POST /v3/watch or a gRPC Watch call): its watchers and their delivery.

    ``fragment_limit`` is the response size above which a watcher that asked for fragments gets
    its events split over several responses (etcd: --max-request-bytes plus 512 KiB).
    """

    def __init__(self, hub: WatchHub, header: Callable[[int], dict], emit: Emit,
                 progress_interval: float, fragment_limit: int) -> None:
        self.hub = hub
        self.header = header
        self.emit = emit
        self.progress_interval = progress_interval
        self.fragment_limit = fragment_limit
        self.watchers: dict[int, Watcher] = {}
        self.next_id = 0
        self.wake = asyncio.Event()
        self.closed = False
        self._decoder = json.JSONDecoder()
        self._buf = ""

    def feed(self, chunk: bytes, final: bool) -> list[dict]:
        """Split a JSON gateway request body into JSON objects (newline-separated or concatenated)."""
        self._buf += chunk.decode("utf-8", "replace")
        text, self._buf = self._buf, ""
        out, pos = [], 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos >= len(text):
                return out
            try:
                obj, pos = self._decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                if not final and len(text) - pos < (1 << 20):
                    self._buf = text[pos:]  # an object split across chunks: wait for the rest
                    return out
                ch = text[e.pos:e.pos + 1]
                raise errors.EtcdError(errors.UNKNOWN, f"invalid character {ch!r} looking for beginning of value"
                                       if ch else "unexpected EOF") from None
            out.append(obj)

    async def handle(self, req: dict) -> None:
        if not isinstance(req, dict):
            raise errors.EtcdError(errors.UNKNOWN, "invalid watch request")
        if "create_request" in req:
            await self._create(req["create_request"] or {})
        elif "cancel_request" in req:
            wid = wire.i64(req["cancel_request"] or {}, "watch_id")
            if self.watchers.pop(wid, None) is not None:
                await self.emit(self._with_id({"header": self._head(), "canceled": True}, wid))
        elif "progress_request" in req:
            await self.emit({"header": self._head(), "watch_id": "-1"})

    def _head(self) -> dict:
        with self.hub.store.lock:
            return self.header(self.hub.store.revision)

    @staticmethod
    def _with_id(d: dict, wid: int) -> dict:
        if wid:
            d["watch_id"] = str(wid)
        return d

    async def _create(self, cr: dict) -> None:
        store = self.hub.store
        key = wire.b64d(cr.get("key"))
        range_end = wire.b64d(cr.get("range_end"))
        start = wire.i64(cr, "start_revision")
        filters = cr.get("filters") or []
        wid = wire.i64(cr, "watch_id") or self.next_id
        while wid in self.watchers:
            wid += 1
        self.next_id = max(self.next_id, wid + 1)
        with store.lock:
            head = self.header(store.revision)
            compact = store.compact_revision
            if start == 0:
                start = store.revision + 1
        await self.emit(self._with_id({"header": head, "created": True}, wid))
        if start < compact:
            h = dict(head)
            h.pop("revision", None)
            await self.emit(self._with_id({"header": h, "canceled": True, "compact_revision": str(compact)}, wid))
            return
        self.watchers[wid] = Watcher(
            id=wid, key=key, range_end=range_end, next_rev=start, prev_kv=wire.flag(cr, "prev_kv"),
            progress_notify=wire.flag(cr, "progress_notify"),
            no_put="NOPUT" in filters or 0 in filters, no_delete="NODELETE" in filters or 1 in filters,
            fragment=wire.flag(cr, "fragment"))
        self.wake.set()

    async def pump(self) -> None:
        """Deliver events to every watcher of this stream until it closes."""
        store = self.hub.store
        self.hub.streams.add(self.wake)
        try:
            while not self.closed:
                self.wake.clear()
                for w in list(self.watchers.values()):
                    await self._deliver(store, w)
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=min(1.0, self.progress_interval))
                except asyncio.TimeoutError:
                    pass
                now = time.monotonic()
                for w in list(self.watchers.values()):
                    if w.progress_notify and now - w.last_sent >= self.progress_interval:
                        w.last_sent = now
                        await self.emit(self._with_id({"header": self._head()}, w.id))
        finally:
            self.hub.streams.discard(self.wake)

    async def _deliver(self, store: MVCCStore, w: Watcher) -> None:
        while w.id in self.watchers:
            with store.lock:
                rev = store.revision
                if w.next_rev > rev:
                    return
                if w.next_rev < store.compact_revision:
                    compact = store.compact_revision
                    head = self.header(rev)
                    batch = None
                else:
                    batch = store.events_since(w.next_rev)
                    head = self.header(rev if len(batch) < 1000 else batch[-1][0])
            if batch is None:
                self.watchers.pop(w.id, None)
                head.pop("revision", None)
                await self.emit(self._with_id({"header": head, "canceled": True,
                                                "compact_revision": str(compact)}, w.id))
                return
            events, sizes = [], []
            for _, typ, rec, prev in batch:
                if not w.matches(rec[0]) or (typ == PUT and w.no_put) or (typ == DELETE and w.no_delete):
                    continue
                e: dict = {"kv": wire.kv(rec)}
                if typ == DELETE:
                    e = {"type": "DELETE", "kv": e["kv"]}
                if w.prev_kv and prev is not None:
                    e["prev_kv"] = wire.kv(prev)
                events.append(e)
                sizes.append(_size(rec) + (_size(prev) if "prev_kv" in e else 0))
            w.next_rev = (int(head["revision"]) + 1) if batch and len(batch) >= 1000 else rev + 1
            if events:
                w.last_sent = time.monotonic()
                for part in self._fragments(w, events, sizes):
                    await self.emit(self._with_id({"header": head, **part}, w.id))

    def _fragments(self, w: Watcher, events: list[dict], sizes: list[int]) -> list[dict]:
        """The events of one response, split as etcd's sendFragments does when the watcher asked
        for fragments and the response reaches the limit: events are added to a part until it
        would reach the limit (a part holds at least one), all parts but the last marked
        ``fragment``."""
        if not w.fragment or len(events) < 2 or sum(sizes) + 64 < self.fragment_limit:
            return [{"events": events}]
        parts: list[dict] = []
        start, size = 0, 64
        for i, n in enumerate(sizes):
            if i > start and size + n >= self.fragment_limit:
                parts.append({"events": events[start:i], "fragment": True})
                start, size = i, 64
            size += n
        parts.append({"events": events[start:]})
        return parts


def _size(rec: tuple) -> int:
    """Approximate protobuf size of a KeyValue in an event (key, value, four varints, framing)."""
    return len(rec[KEY]) + len(rec[VALUE] or b"") + 40

"""One watch cache per apiserver, fed by a single etcd watch on /registry/.

Lists and watches of every kind are served from here; the event history lets clients
resume a watch from a recent resourceVersion, and older ones get 410 Expired.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice

from sortedcontainers import SortedDict

from kubeling.api.resources import RESOURCES
from kubeling.etcd import EtcdClient
from kubeling.etcd.errors import CompactedError, EtcdError
from kubeling.etcd.types import prefix_end

from .storage import decode

log = logging.getLogger("apiserver.watchcache")

ROOT = "/registry/"
PREFIXES = {r.key_prefix for r in RESOURCES}


def prefix_of(key: str) -> str | None:
    """The resource prefix holding key: a built-in kind's, or /registry/<group>/<plural>/ of a custom
    resource (custom groups always contain a dot), which the cache keeps from the start so objects of a
    CustomResourceDefinition are served at once, whatever order the store lists them in."""
    parts = key.split("/", 4)  # ['', 'registry', a, b, ...]
    if len(parts) >= 4:
        p2 = f"/registry/{parts[2]}/"
        if p2 in PREFIXES:
            return p2
        p3 = f"/registry/{parts[2]}/{parts[3]}/"
        if p3 in PREFIXES or ("." in parts[2] and len(parts) == 5 and parts[4]):
            return p3
    return None


@dataclass(slots=True)
class CacheEvent:
    rev: int
    type: str            # ADDED | MODIFIED | DELETED
    key: str
    obj: dict
    prev: dict | None


Filter = Callable[[dict], bool]


@dataclass(eq=False)
class Watcher:
    """One watch's live events, queued until its stream takes them.

    The queue is bounded: a consumer `limit` events behind is closed, as Kubernetes' cacher
    terminates watchers it cannot dispatch to; its stream then ends at once (buffered events are
    dropped) and the client re-watches from the last resourceVersion it saw. Replays never go
    through this queue, so their size is bounded only by the history."""
    prefix: str
    key_prefix: str          # prefix + namespace/ or the exact key, narrowing by position
    exact: bool
    accept: Filter | None
    bookmarks: bool
    limit: int = 50_000
    pending: deque[tuple] = field(default_factory=deque)
    closed: bool = False
    last_rev: int = 0        # the revision the replay reaches; live events start after it
    _wakeup: asyncio.Future | None = field(default=None, init=False, repr=False)   # a stream waiting

    def match(self, ev: CacheEvent) -> tuple | None:
        """The (type, object, rev) this watcher sees for `ev`, if any (selectors turn an object
        leaving them into DELETED and one entering into ADDED)."""
        if self.exact:
            if ev.key != self.key_prefix:
                return None
        elif not ev.key.startswith(self.key_prefix):
            return None
        typ, obj = ev.type, ev.obj
        if self.accept is not None:
            cur_ok = ev.type != "DELETED" and self.accept(ev.obj)
            prev_ok = ev.prev is not None and self.accept(ev.prev)
            if ev.type == "DELETED":
                if not prev_ok:
                    return None
            elif cur_ok and not prev_ok:
                typ = "ADDED"
            elif prev_ok and not cur_ok:
                typ, obj = "DELETED", _with_rv(ev.prev, ev.rev)  # type: ignore[arg-type]
            elif not cur_ok:
                return None
        return typ, obj, ev.rev

    def offer(self, ev: CacheEvent) -> None:
        if self.closed or ev.rev <= self.last_rev:
            return
        item = self.match(ev)
        if item is not None:
            self._put(item)

    def _put(self, item: tuple) -> None:
        if len(self.pending) >= self.limit:   # a consumer this slow is dropped, as Kubernetes does
            self.close()
            return
        self.pending.append(item)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def bookmark(self, rev: int) -> None:
        if self.bookmarks and not self.closed and rev > self.last_rev:
            self._put(("BOOKMARK", None, rev))

    def close(self) -> None:
        """End the watch: its stream stops promptly, even when the queue is full."""
        self.closed = True
        self.pending.clear()
        self._wake()

    async def next_batch(self, deadline: float, most: int = 256) -> list[tuple] | None:
        """Up to `most` queued events, waiting until `deadline` (loop time) for one.

        [] when the deadline passes first; None once the watcher is closed (the stream ends)."""
        loop = asyncio.get_running_loop()
        while not self.pending and not self.closed:
            left = deadline - loop.time()
            if left <= 0:
                return []
            self._wakeup = loop.create_future()
            try:
                await asyncio.wait_for(self._wakeup, left)
            except TimeoutError:
                pass
            finally:
                self._wakeup = None
        if self.closed:
            return None
        if len(self.pending) <= most:
            batch = list(self.pending)
            self.pending.clear()
            return batch
        return [self.pending.popleft() for _ in range(most)]


def _with_rv(obj: dict, rev: int) -> dict:
    return {**obj, "metadata": {**obj.get("metadata", {}), "resourceVersion": str(rev)}}


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested, self.oldest = requested, oldest


class WatchCache:
    def __init__(self, etcd: EtcdClient, history: int = 100_000, bookmark_interval: float = 60.0,
                 queue_length: int = 50_000):
        self.etcd = etcd
        self.queue_length = queue_length   # live events a watcher may fall behind before it is closed
        self.items: defaultdict[str, SortedDict] = defaultdict(SortedDict, {p: SortedDict() for p in PREFIXES})
        self.events: deque[CacheEvent] = deque()
        self.history = history
        self.rev = 0             # everything up to here is reflected
        self.oldest = 0          # history is complete for revisions > oldest
        self.watchers: defaultdict[str, set[Watcher]] = defaultdict(set, {p: set() for p in PREFIXES})
        self.ready = asyncio.Event()
        self.bookmark_interval = bookmark_interval
        self._rev_waiters: list[tuple[int, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self._bm_task: asyncio.Task | None = None

    # ---- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        self._bm_task = asyncio.create_task(self._bookmarks())

    async def stop(self) -> None:
        for t in (self._task, self._bm_task):
            if t:
                t.cancel()
        for ws in self.watchers.values():
            for w in list(ws):
                w.close()

    async def _load(self) -> None:
        """List everything under /registry/ at one revision (in pages)."""
        items: defaultdict[str, SortedDict] = defaultdict(SortedDict, {p: SortedDict() for p in PREFIXES})
        end = prefix_end(ROOT.encode())
        key, rev = ROOT.encode(), 0
        while True:
            resp = await self.etcd.get(key, range_end=end, revision=rev, limit=2000)
            rev = rev or resp.header.revision
            for kv in resp.kvs:
                k = kv.key.decode()
                p = prefix_of(k)
                if p is not None:
                    items[p][k] = decode(kv)
            if not resp.more or not resp.kvs:
                break
            key = resp.kvs[-1].key + b"\x00"
        self.items = items
        self.rev = self.oldest = rev
        self.events.clear()

    async def _run(self) -> None:
        need_load = True
        while True:
            try:
                if need_load:
                    await self._load()
                    for ws in self.watchers.values():   # their history is gone: make them re-watch
                        for w in list(ws):
                            w.close()
                    need_load = False
                    self.ready.set()
                    self._wake()
                async with self.etcd.watch(ROOT, prefix=True, start_revision=self.rev + 1, prev_kv=True,
                                           progress_notify=True) as stream:
                    async for resp in stream:
                        if resp.canceled:
                            break
                        for e in resp.events:
                            self._apply(e)
                        if resp.header.revision > self.rev and not resp.events:
                            self.rev = resp.header.revision
                        self._wake()
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.warning("watch cache fell behind a compaction; relisting")
                need_load = True
            except (EtcdError, OSError) as e:
                log.warning("etcd watch broken (%s); reconnecting", e)
                await asyncio.sleep(0.2)
            except Exception:
                log.exception("watch cache failure; relisting")
                need_load = True
                await asyncio.sleep(0.5)

    def _apply(self, e) -> None:
        k = e.kv.key.decode()
        rev = e.kv.mod_revision
        p = prefix_of(k)
        self.rev = max(self.rev, rev)
        if p is None:
            return
        store = self.items[p]
        if e.type == "DELETE":
            prev = store.pop(k, None)
            if prev is None and e.prev_kv is not None:
                prev = decode(e.prev_kv)
            if prev is None:
                return
            ev = CacheEvent(rev, "DELETED", k, _with_rv(prev, rev), prev)
        else:
            obj = decode(e.kv)
            prev = store.get(k)
            store[k] = obj
            ev = CacheEvent(rev, "ADDED" if prev is None else "MODIFIED", k, obj, prev)
        self.events.append(ev)
        if len(self.events) > self.history:
            self.oldest = self.events.popleft().rev
        for w in tuple(self.watchers[p]):
            w.offer(ev)

    def _wake(self) -> None:
        if not self._rev_waiters:
            return
        keep = []
        for rev, fut in self._rev_waiters:
            if self.rev >= rev:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((rev, fut))
        self._rev_waiters = keep

    async def wait_for(self, rev: int, timeout: float) -> bool:
        """Wait until the cache reflects revision `rev`; False on timeout."""
        if self.rev >= rev and self.ready.is_set():
            return True
        fut = asyncio.get_running_loop().create_future()
        self._rev_waiters.append((rev, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False

    async def _bookmarks(self) -> None:
        while True:
            await asyncio.sleep(self.bookmark_interval)
            for ws in self.watchers.values():
                for w in list(ws):
                    w.bookmark(self.rev)

    # ---- reads -------------------------------------------------------------
    def list(self, prefix: str, namespace: str | None) -> Iterable[dict]:
        store = self.items[prefix]
        if namespace is None:
            return store.values()
        lo = f"{prefix}{namespace}/"
        return (store[k] for k in store.irange(lo, lo + "\xff", inclusive=(True, False)))

    def get(self, key: str) -> dict | None:
        p = prefix_of(key)
        return self.items[p].get(key) if p else None

    def watch(self, prefix: str, key_prefix: str, exact: bool, accept: Filter | None, bookmarks: bool,
              since: int | None, initial: bool) -> tuple[Watcher, list[tuple]]:
        """Register a watcher; return it with the events it must see first.

        since=None: initial ADDED events for the current state (rv unset/0); otherwise every
        event of the history after `since` (TooOld when it is no longer all kept). The replay is
        a list of its own, not the watcher's bounded queue, so nothing of it is dropped. Runs
        without awaiting, so nothing can slip between the replay and live delivery."""
        w = Watcher(prefix, key_prefix, exact, accept, bookmarks, self.queue_length)
        if since is None or initial:
            store = self.items[prefix]
            if exact:
                objs = [store[key_prefix]] if key_prefix in store else []
            else:
                objs = [store[k] for k in store.irange(key_prefix, key_prefix + "\xff", inclusive=(True, False))]
            first = [("ADDED", o, self.rev) for o in objs if accept is None or accept(o)]
            w.last_rev = self.rev
        else:
            if since < self.oldest:
                raise TooOld(since, self.oldest)
            first = [item for ev in self._history_after(since) if (item := w.match(ev)) is not None]
            w.last_rev = max(since, self.rev)
        self.watchers[prefix].add(w)
        return w, first

    def _history_after(self, since: int) -> Iterable[CacheEvent]:
        ev = self.events
        if not ev or ev[-1].rev <= since:
            return ()
        # binary search on the deque (revisions increase)
        lo, hi = 0, len(ev)
        while lo < hi:
            mid = (lo + hi) // 2
            if ev[mid].rev <= since:
                lo = mid + 1
            else:
                hi = mid
        after = len(ev) - lo
        if lo <= after:     # indexing a deque walks from an end: iterate from the nearer one
            return islice(ev, lo, None)
        return reversed(list(islice(reversed(ev), after)))

    def unwatch(self, w: Watcher) -> None:
        self.watchers[w.prefix].discard(w)
        w.close()

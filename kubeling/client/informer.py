"""Shared informers: list, then watch from the list's resourceVersion (bookmarks on), relist on 410;
a local store with indexes, and handlers that are told about adds, updates and deletes."""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable

from kubeling.api.resources import Resource

from .rest import ApiError, Client

log = logging.getLogger("kubeling.informer")
Handler = Callable[..., Any]


def obj_key(obj: dict) -> str:
    m = obj.get("metadata") or {}
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else m.get("name", "")


class Informer:
    def __init__(self, client: Client, resource: Resource, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "", resync: float = 0) -> None:
        self.client, self.resource, self.namespace = client, resource, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.resync = resync
        self.store: dict[str, dict] = {}
        self.rv = ""
        self.synced = asyncio.Event()
        self._handlers: list[tuple[Handler | None, Handler | None, Handler | None]] = []
        self._indexers: dict[str, Callable[[dict], list[str]]] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self._task: asyncio.Task | None = None
        self._resync_task: asyncio.Task | None = None

    # ---- handlers and indexes ------------------------------------------------
    def add_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                    on_delete: Handler | None = None) -> None:
        self._handlers.append((on_add, on_update, on_delete))
        for obj in list(self.store.values()):
            if on_add:
                on_add(obj)

    def add_indexer(self, name: str, fn: Callable[[dict], list[str]]) -> None:
        self._indexers[name] = fn
        idx: dict[str, set[str]] = {}
        for k, o in self.store.items():
            for v in fn(o):
                idx.setdefault(v, set()).add(k)
        self._indices[name] = idx

    def by_index(self, name: str, value: str) -> list[dict]:
        return [self.store[k] for k in self._indices.get(name, {}).get(value, ()) if k in self.store]

    def get(self, key: str) -> dict | None:
        return self.store.get(key)

    def list(self, namespace: str | None = None) -> list[dict]:
        if namespace is None:
            return list(self.store.values())
        return self.by_index("namespace", namespace) if "namespace" in self._indexers else \
            [o for o in self.store.values() if o["metadata"].get("namespace") == namespace]

    def _index(self, key: str, old: dict | None, new: dict | None) -> None:
        for name, fn in self._indexers.items():
            idx = self._indices[name]
            for v in fn(old) if old else ():
                idx.get(v, set()).discard(key)
            for v in fn(new) if new else ():
                idx.setdefault(v, set()).add(key)

    def _emit(self, kind: int, *args: dict) -> None:
        for h in self._handlers:
            fn = h[kind]
            if fn is not None:
                try:
                    fn(*args)
                except Exception:
                    log.exception("informer handler failed")

    def _set(self, obj: dict) -> None:
        key = obj_key(obj)
        old = self.store.get(key)
        self.store[key] = obj
        self._index(key, old, obj)
        if old is None:
            self._emit(0, obj)
        else:
            self._emit(1, old, obj)

    def _del(self, obj: dict) -> None:
        key = obj_key(obj)
        old = self.store.pop(key, None)
        self._index(key, old, None)
        self._emit(2, old or obj)

    # ---- running -------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
            if self.resync > 0:
                self._resync_task = asyncio.create_task(self._resync_loop())

    def resync_once(self) -> None:
        """client-go's resync: every cached object is delivered again as an update (old is new),
        so level-driven controllers re-check objects whose watch events they might have missed."""
        for obj in list(self.store.values()):
            self._emit(1, obj, obj)

    async def _resync_loop(self) -> None:
        await self.synced.wait()
        while True:
            await asyncio.sleep(self.resync)
            self.resync_once()

    async def stop(self) -> None:
        for t in (self._task, self._resync_task):
            if t is not None:
                t.cancel()

    async def _list(self) -> None:
        body = await self.client.list(self.resource, self.namespace, labelSelector=self.label_selector,
                                      fieldSelector=self.field_selector)
        fresh = {obj_key(o): o for o in body.get("items") or []}
        for key in [k for k in self.store if k not in fresh]:
            self._del(self.store[key])
        for o in fresh.values():
            old = self.store.get(obj_key(o))
            if old is None or old["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion"):
                self._set(o)
        self.rv = body["metadata"]["resourceVersion"]
        self.synced.set()

    async def _run(self) -> None:
        need_list = True
        failures = 0
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = failures = 0
                timeout = random.randint(300, 600)
                async for ev in self.client.watch(self.resource, self.namespace, resourceVersion=self.rv,
                                                  allowWatchBookmarks="true", timeoutSeconds=timeout,
                                                  labelSelector=self.label_selector,
                                                  fieldSelector=self.field_selector):
                    typ, obj = ev.get("type"), ev.get("object") or {}
                    failures = 0
                    if typ == "ERROR":
                        if obj.get("code") == 410:
                            need_list = True
                        break
                    self.rv = obj.get("metadata", {}).get("resourceVersion", self.rv)
                    if typ in ("ADDED", "MODIFIED"):
                        self._set(obj)
                    elif typ == "DELETED":
                        self._del(obj)
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.code == 410:
                    need_list = True
                else:
                    failures += 1
                    delay = min(30.0, 2.0 ** (failures - 1))
                    log.warning("%s informer: failed to %s: %s; retrying in %gs", self.resource.plural,
                                "list" if need_list else "watch", e, delay)
                    await asyncio.sleep(delay)
            except Exception:
                log.exception("%s informer failed; relisting", self.resource.plural)
                need_list = True
                await asyncio.sleep(1)


class InformerFactory:
    """One informer per (kind, namespace, selectors) in a process, however many controllers use it."""

    def __init__(self, client: Client, resync: float = 0) -> None:
        self.client, self.resync = client, resync
        self.informers: dict[tuple, Informer] = {}

    def get(self, resource: Resource, namespace: str | None = None, label_selector: str = "",
            field_selector: str = "") -> Informer:
        key = (resource.group, resource.version, resource.plural, namespace, label_selector, field_selector)
        inf = self.informers.get(key)
        if inf is None:
            inf = self.informers[key] = Informer(self.client, resource, namespace, label_selector, field_selector,
                                                 self.resync)
            inf.add_indexer("namespace", lambda o: [o["metadata"].get("namespace", "")])
        return inf

    def start(self) -> None:
        for inf in self.informers.values():
            inf.start()

    async def wait_synced(self, timeout: float = 60) -> None:
        async def all_synced() -> None:   # sequential: nothing is left behind when cancelled
            for i in list(self.informers.values()):
                await i.synced.wait()
        await asyncio.wait_for(all_synced(), timeout)

"""Garbage collector: dependents follow their owners (ownerReferences across kinds).

Background: once every owner of an object is gone, the object is deleted. Foreground: an owner
with the foregroundDeletion finalizer deletes its dependents first and is finalized when none
block it. Orphan: the owner's dependents lose their reference to it, then the owner goes.
Owners of kinds not watched here (custom resources: an operator's object owning a Deployment) are
found through discovery and looked up by name, and their dependents are checked again periodically;
an owner whose kind the server does not serve is never taken for gone.
"""
from __future__ import annotations

import asyncio

from kubeling.api.resources import Resource, lookup
from kubeling.client import ApiError
from kubeling.client.discovery import custom_resources

from .base import Controller

KINDS = [lookup(*k) for k in (("", "v1", "pods"), ("apps", "v1", "replicasets"), ("apps", "v1", "deployments"),
                              ("apps", "v1", "daemonsets"), ("batch", "v1", "jobs"), ("", "v1", "services"),
                              ("discovery.k8s.io", "v1", "endpointslices"), ("", "v1", "configmaps"),
                              ("", "v1", "secrets"), ("", "v1", "endpoints"), ("", "v1", "replicationcontrollers"),
                              ("apps", "v1", "statefulsets"), ("apps", "v1", "controllerrevisions"),
                              ("", "v1", "persistentvolumeclaims"), ("batch", "v1", "cronjobs"),
                              ("", "v1", "serviceaccounts"), ("policy", "v1", "poddisruptionbudgets"))]
BY_KIND = {(r.api_version, r.kind): r for r in KINDS}
UNTRACKED_RECHECK = 10.0   # seconds between checks of dependents whose owners are of unwatched kinds


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.uids: dict[str, tuple] = {}            # uid -> (resource, namespace, name)
        self.dependents: dict[str, set[str]] = {}   # owner uid -> dependent uids
        self.untracked: set[str] = set()            # dependents with an owner of an unwatched kind
        self._custom: tuple[float, list[Resource]] = (0.0, [])   # discovery, read at most once a recheck period
        self.informers = {}
        for r in KINDS:
            inf = self.factory.get(r)
            self.informers[r.plural] = inf
            inf.add_handler(lambda o, r=r: self.observe(r, o), lambda old, new, r=r: self.observe(r, new),
                            lambda o, r=r: self.forget(o))

    def observe(self, r, obj: dict) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        self.uids[uid] = (r, meta.get("namespace"), meta["name"])
        self.untracked.discard(uid)
        for ref in meta.get("ownerReferences") or []:
            self.dependents.setdefault(ref["uid"], set()).add(uid)
            if (ref.get("apiVersion"), ref.get("kind")) not in BY_KIND:
                self.untracked.add(uid)
            if ref["uid"] not in self.uids:
                self.queue.add("uid:" + uid)       # maybe dangling: check after sync
        fin = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and ("foregroundDeletion" in fin or "orphan" in fin):
            self.queue.add("uid:" + uid)

    def forget(self, obj: dict) -> None:
        uid = obj["metadata"]["uid"]
        self.uids.pop(uid, None)
        self.untracked.discard(uid)
        for dep in self.dependents.get(uid, ()):
            self.queue.add("uid:" + dep)
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref["uid"] in self.uids:
                self.queue.add("uid:" + ref["uid"])   # a foreground owner may be waiting for this

    def _obj(self, uid: str) -> dict | None:
        entry = self.uids.get(uid)
        if entry is None:
            return None
        r, ns, name = entry
        return self.informers[r.plural].get(f"{ns}/{name}" if ns else name)

    async def _owner_exists(self, obj: dict, ref: dict) -> bool:
        if ref["uid"] in self.uids:
            return True
        r = BY_KIND.get((ref.get("apiVersion"), ref.get("kind"))) or await self._custom_kind(ref)
        if r is None:
            return True          # a kind the server does not serve (now): never collect on its account
        try:
            live = await self.client.get(r, ref["name"], obj["metadata"].get("namespace") if r.namespaced else None)
            return live["metadata"]["uid"] == ref["uid"]
        except ApiError as e:
            if e.not_found:
                return False
            raise

    async def _custom_kind(self, ref: dict) -> Resource | None:
        """The custom resource an owner reference names, from discovery (any served version of its group)."""
        group, _, _ = (ref.get("apiVersion") or "").rpartition("/")
        now = asyncio.get_running_loop().time()
        if now - self._custom[0] > UNTRACKED_RECHECK:
            self._custom = (now, await custom_resources(self.client))
        return next((r for r in self._custom[1] if r.group == group and r.kind == ref.get("kind")), None)

    async def _recheck_untracked(self) -> None:
        while True:
            await asyncio.sleep(UNTRACKED_RECHECK)
            for uid in list(self.untracked):
                self.queue.add("uid:" + uid)

    async def run(self) -> None:
        recheck = asyncio.create_task(self._recheck_untracked())
        try:
            await super().run()
        finally:
            recheck.cancel()

    async def sync(self, key: str) -> None:
        uid = key[4:]
        obj = self._obj(uid)
        if obj is None:
            return
        meta = obj["metadata"]
        r = self.uids[uid][0]
        fin = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and "orphan" in fin:
            await self._orphan(uid, obj, r)
            return
        if meta.get("deletionTimestamp") and "foregroundDeletion" in fin:
            await self._foreground(uid, obj, r)
            return
        refs = meta.get("ownerReferences") or []
        if not refs or meta.get("deletionTimestamp"):
            return
        alive = [ref for ref in refs if await self._owner_exists(obj, ref)]
        if alive:
            return
        policy = "Background"
        try:
            await self.client.delete(r, meta["name"], meta.get("namespace"), propagationPolicy=policy,
                                     preconditions={"uid": uid})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def _orphan(self, uid: str, obj: dict, r) -> None:
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self._obj(dep_uid)
            if dep is None:
                continue
            refs = [x for x in dep["metadata"].get("ownerReferences") or [] if x["uid"] != uid]
            dr = self.uids[dep_uid][0]
            try:
                await self.client.patch(dr, dep["metadata"]["name"], {"metadata": {"ownerReferences": refs or None}},
                                        dep["metadata"].get("namespace"))
            except ApiError as e:
                if not e.not_found:
                    raise
        await self._remove_finalizer(obj, r, "orphan")

    async def _foreground(self, uid: str, obj: dict, r) -> None:
        waiting = False
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self._obj(dep_uid)
            if dep is None:
                continue
            waiting = True
            if not dep["metadata"].get("deletionTimestamp"):
                dr = self.uids[dep_uid][0]
                try:
                    await self.client.delete(dr, dep["metadata"]["name"], dep["metadata"].get("namespace"),
                                             propagationPolicy="Foreground")
                except ApiError as e:
                    if not e.not_found:
                        raise
        if waiting:
            self.queue.add_after("uid:" + uid, 1.0)
            return
        await self._remove_finalizer(obj, r, "foregroundDeletion")

    async def _remove_finalizer(self, obj: dict, r, name: str) -> None:
        meta = obj["metadata"]
        fins = [f for f in meta.get("finalizers") or [] if f != name]
        try:
            await self.client.patch(r, meta["name"], {"metadata": {"finalizers": fins or None,
                                                                    "resourceVersion": meta["resourceVersion"]}},
                                    meta.get("namespace"))
        except ApiError as e:
            if e.conflict:
                self.queue.add_after("uid:" + meta["uid"], 0.2)
            elif not e.not_found:
                raise

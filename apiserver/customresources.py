"""Serving what CustomResourceDefinitions define (upstream's apiextensions-apiserver inside kube-apiserver).

Each apiserver follows the definitions through its watch cache: a definition whose names are free is
established (NamesAccepted, Established) and its served versions become rows of the resource table, with a
strategy built from the version's schema and OpenAPI documents; a definition being deleted gets its
objects removed before its cleanup finalizer is dropped, after which its rows go. Several apiservers do
the same work; their status writes are compare-and-swap, so they agree.
"""
from __future__ import annotations

import asyncio
import logging
import re

from kubeling.api.resources import Resource, lookup, remove_custom, set_custom

from apiserver.api import schema

from . import registry
from .codec import deepcopy
from .registry.custom import CustomResourceStrategy
from .registry.customresourcedefinitions import CLEANUP_FINALIZER, set_condition, storage_version
from .bootstrap import API_SERVICES, local_api_service
from .storage import KeyExists, KeyMissing, StaleRevision

log = logging.getLogger("apiserver.customresources")
CRDS = lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(v: str) -> tuple:
    """Kubernetes' version order: GA before beta before alpha, higher numbers first, others last by name."""
    m = _VERSION.fullmatch(v)
    if not m:
        return (3, 0, 0, v)
    major, level, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[level], -major, -minor, v)


def rows_of(crd: dict) -> list[tuple[Resource, dict]]:
    """One resource row per served version, with that version's definition."""
    spec = crd["spec"]
    names, sv = spec["names"], storage_version(crd)
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served"):
            continue
        subs = tuple(s for s in ("status", "scale") if s in (v.get("subresources") or {}))
        r = Resource(spec["group"], v["name"], names["kind"], names["plural"], spec["scope"] == "Namespaced",
                     short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
                     subresources=subs, storage=(spec["group"], names["plural"]), storage_version=sv,
                     has_generation=True, singular=names.get("singular") or "", custom=True)
        out.append((r, v))
    return out


class CustomResourceDefinitions:
    def __init__(self, cache, storage) -> None:
        self.cache, self.storage = cache, storage
        self.served: dict[str, list[Resource]] = {}
        self._cleanups: dict[str, asyncio.Task] = {}

    async def run(self) -> None:
        await self.cache.ready.wait()
        while True:
            watcher, first = self.cache.watch(CRDS.key_prefix, CRDS.key_prefix, False, None, False, None, True)
            try:
                for typ, obj, _ in first:
                    await self._handle(typ, obj)
                while (batch := await watcher.next_batch(asyncio.get_running_loop().time() + 30)) is not None:
                    for typ, obj, _ in batch:
                        await self._handle(typ, obj)
            finally:
                self.cache.unwatch(watcher)

    async def _handle(self, typ: str, crd: dict) -> None:
        name = crd["metadata"]["name"]
        if typ == "DELETED":
            self._withdraw(name)
            await self._register_api_services(crd["spec"]["group"])
            return
        if crd["metadata"].get("deletionTimestamp"):
            if CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or []) and name not in self._cleanups:
                task = asyncio.create_task(self._clean_up(name))
                self._cleanups[name] = task
                task.add_done_callback(lambda _t, n=name: self._cleanups.pop(n, None))
            return
        conflict = self._name_conflict(crd)
        if conflict is None:
            self._serve(crd)
            await self._register_api_services(crd["spec"]["group"])
        await self._establish(crd, conflict)

    def _name_conflict(self, crd: dict) -> tuple[str, str] | None:
        """(reason, message) when a built-in kind or another definition of the group has these names
        (definitions are named plural.group, so two never share a plural)."""
        spec, me = crd["spec"], crd["metadata"]["name"]
        names, group = spec["names"], spec["group"]
        for v in spec.get("versions") or []:
            other = lookup(group, v.get("name", ""), names["plural"])
            if other is not None and not other.custom:
                return "PluralConflict", f'"{names["plural"]}" is already in use'
        for name, rows in self.served.items():
            if name != me and any(r.group == group and r.kind == names["kind"] for r in rows):
                return "KindConflict", f'"{names["kind"]}" is already in use'
        return None

    def _serve(self, crd: dict) -> None:
        name = crd["metadata"]["name"]
        rows = rows_of(crd)
        for old in self.served.get(name, ()):
            registry.unregister(old)
            schema.unregister_custom(old)
        sv = storage_version(crd) or ""
        for r, v in rows:
            registry.register(r, CustomResourceStrategy(r, v, sv))
            schema.register_custom(r, (v.get("schema") or {}).get("openAPIV3Schema"))
        versions = sorted((v["name"] for v in crd["spec"].get("versions") or [] if v.get("served")), key=version_priority)
        set_custom(name, tuple(r for r, _ in rows), versions)
        self.served[name] = [r for r, _ in rows]

    def _withdraw(self, name: str) -> None:
        for r in self.served.pop(name, ()):
            registry.unregister(r)
            schema.unregister_custom(r)
        remove_custom(name)

    async def _register_api_services(self, group: str) -> None:
        """The group's APIServices follow the versions its definitions serve (upstream's crdregistration
        controller feeding autoregister): one per version, removed when no definition serves it."""
        served = {r.version for rows in self.served.values() for r in rows if r.group == group}
        for version in served:
            svc = local_api_service(group, version, 1000, 100, "true")
            try:
                await self.storage.create(API_SERVICES.key(None, svc["metadata"]["name"]), svc)
            except KeyExists:
                pass
        for svc in list(self.cache.list(API_SERVICES.key_prefix, None)):
            spec, meta = svc.get("spec") or {}, svc["metadata"]
            if spec.get("group") == group and spec.get("version") not in served \
                    and (meta.get("labels") or {}).get("kube-aggregator.kubernetes.io/automanaged") == "true":
                try:
                    await self.storage.delete(API_SERVICES.key(None, meta["name"]), int(meta["resourceVersion"]))
                except (StaleRevision, KeyMissing):
                    pass

    async def _establish(self, crd: dict, conflict: tuple[str, str] | None) -> None:
        """Accepted names and the NamesAccepted/Established conditions (upstream's naming and establishing
        controllers), written only when they change."""
        new = deepcopy(crd)
        status = new.setdefault("status", {})
        if conflict is None:
            status["acceptedNames"] = {k: v for k, v in crd["spec"]["names"].items()}
            set_condition(new, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
            set_condition(new, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
        else:
            set_condition(new, "NamesAccepted", "False", *conflict)
            if not any(c.get("type") == "Established" and c.get("status") == "True" for c in status.get("conditions") or []):
                set_condition(new, "Established", "False", "NotAccepted", "not all names are accepted")
        if new != crd:
            await self._write(crd, new)

    async def _write(self, crd: dict, new: dict) -> None:
        try:
            await self.storage.update(CRDS.key(None, crd["metadata"]["name"]), new, int(crd["metadata"]["resourceVersion"]))
        except (StaleRevision, KeyMissing):
            pass   # a newer version of the definition is on its way through the watch

    async def _clean_up(self, name: str) -> None:
        """Delete the definition's objects, then let the definition go (upstream's finalizing controller)."""
        key = CRDS.key(None, name)
        while True:
            crd = self.cache.get(key)
            if crd is None or CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
                return
            new = deepcopy(crd)
            set_condition(new, "Terminating", "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress")
            prefix = f"/registry/{crd['spec']['group']}/{crd['spec']['names']['plural']}/"
            left = 0
            for obj in list(self.cache.list(prefix, None)):
                left += 1
                await self._delete_object(prefix, obj)
            if left == 0:
                new["metadata"]["finalizers"] = [f for f in new["metadata"]["finalizers"] if f != CLEANUP_FINALIZER]
                try:
                    if new["metadata"]["finalizers"]:
                        await self.storage.update(key, new, int(crd["metadata"]["resourceVersion"]))
                    else:
                        await self.storage.delete(key, int(crd["metadata"]["resourceVersion"]))
                except (StaleRevision, KeyMissing):
                    pass
            elif new != crd:
                await self._write(crd, new)
            await asyncio.sleep(0.2 if left else 0.05)

    async def _delete_object(self, prefix: str, obj: dict) -> None:
        """Remove one object; one holding finalizers is marked deleted and left to its finalizers' owners."""
        meta = obj["metadata"]
        ns = meta.get("namespace")
        key = f"{prefix}{ns}/{meta['name']}" if ns else f"{prefix}{meta['name']}"
        try:
            if meta.get("finalizers"):
                if not meta.get("deletionTimestamp"):
                    new = deepcopy(obj)
                    new["metadata"]["deletionTimestamp"] = registry.now_rfc3339()
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    await self.storage.update(key, new, int(meta["resourceVersion"]))
            else:
                await self.storage.delete(key, int(meta["resourceVersion"]))
        except (StaleRevision, KeyMissing):
            pass

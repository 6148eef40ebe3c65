"""ResourceQuota controller: status.hard mirrors spec.hard and status.used is recomputed from the
namespace's objects - when a quota is created or edited, when a charged object goes away or changes
what it charges (replenishment), and for every quota on a periodic full resync (upstream's
pkg/controller/resourcequota). Admission charges creates as they happen; this loop gives back."""
from __future__ import annotations

import asyncio

from kubeling.api.quota import canonical, format_like, kind_of, total, usage
from kubeling.api.resources import RESOURCES, Resource, lookup
from kubeling.client import ApiError

from .base import Controller

QUOTAS = lookup("", "v1", "resourcequotas")
# kinds watched for replenishment (upstream's default replenishment set plus the counted core kinds)
REPLENISHED = [lookup("", "v1", p) for p in ("pods", "services", "configmaps", "secrets", "replicationcontrollers",
                                             "persistentvolumeclaims", "resourcequotas")]
RESYNC_SECONDS = 300.0   # kube-controller-manager's --resource-quota-sync-period


def served(group: str, plural: str) -> Resource | None:
    """The stored (not converted) version of a kind named in a quota."""
    return next((r for r in RESOURCES if r.group == group and r.plural == plural and not r.converted), None)


class ResourceQuotaController(Controller):
    name = "resourcequota"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.quotas = self.factory.get(QUOTAS)
        self.quotas.add_handler(self.enqueue, self.on_quota_update, None)
        for r in REPLENISHED:
            # adds too: a recount that listed just before an admitted object was stored must look again
            self.factory.get(r).add_handler(self._replenish, self._replenish_on_change(r.group, r.plural),
                                            self._replenish)

    def on_quota_update(self, old: dict, new: dict) -> None:
        spec_hard = (new.get("spec") or {}).get("hard") or {}
        status = new.get("status") or {}
        if old.get("spec") != new.get("spec") or set(status.get("hard") or {}) != set(spec_hard) \
                or set(status.get("used") or {}) != set(spec_hard):
            self.enqueue(new)

    def _replenish(self, obj: dict) -> None:
        """Every quota of the object's namespace is recomputed."""
        for q in self.quotas.list(obj["metadata"].get("namespace")):
            self.enqueue(q)

    def _replenish_on_change(self, group: str, plural: str):
        def on_update(old: dict, new: dict) -> None:
            if usage(group, plural, old) != usage(group, plural, new):
                self._replenish(new)
        return on_update

    async def _objects(self, group: str, plural: str, namespace: str) -> list[dict] | None:
        """A live list, not the informers': admission charges a quota just before storing the object,
        and an informer lagging behind that write would make the recount undo the charge."""
        r = served(group, plural)
        if r is None or not r.namespaced:
            return None
        return (await self.client.list(r, namespace)).get("items") or []

    async def sync(self, key: str) -> None:
        ns, _, name = key.partition("/")
        try:   # read fresh, so that a charge admission made since the informer's copy is not overwritten
            q = await self.client.get(QUOTAS, name, ns)
        except ApiError as e:
            if e.not_found:
                return
            raise
        hard = {k: canonical(v) for k, v in ((q.get("spec") or {}).get("hard") or {}).items()}
        by_kind: dict[tuple[str, str], set[str]] = {}
        for resource in hard:
            if (kind := kind_of(resource)) is not None:
                by_kind.setdefault(kind, set()).add(resource)
        used: dict = {}
        for (group, plural), names in by_kind.items():
            objs = await self._objects(group, plural, ns)
            if objs is not None:
                used.update(total(q, group, plural, objs, names))
        status = {"hard": hard, "used": format_like(used, hard)}
        if q.get("status") == status:
            # equal to what was read, but admission may have charged since: then count again
            latest = await self.client.get(QUOTAS, name, ns)
            if latest["metadata"]["resourceVersion"] != q["metadata"]["resourceVersion"]:
                self.queue.add(key)
            return
        try:
            await self.client.update(QUOTAS, {**q, "status": status}, ns, sub="status")
        except ApiError as e:
            if e.conflict:   # admission charged meanwhile: count again once its object is stored
                self.queue.add_after(key, 1.0)
            elif not e.not_found:
                raise

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(getattr(self.opts, "resource_quota_sync_period", RESYNC_SECONDS))
            for q in self.quotas.list():
                self.enqueue(q)

    async def run(self) -> None:
        resync = asyncio.create_task(self._resync())
        try:
            await super().run()
        finally:
            resync.cancel()

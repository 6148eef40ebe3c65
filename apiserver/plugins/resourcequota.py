"""ResourceQuota admission: an object that would push a namespace's quota past status.hard is refused;
one that fits is charged into status.used before it is stored (upstream's quota evaluator in
apiserver/pkg/admission/plugin/resourcequota). The charge is a compare-and-swap write of the quota, so
two apiservers admitting at once cannot both take the last unit; the quota controller later recomputes
usage from the objects themselves (and gives back what a refused-after-admission create charged)."""
from __future__ import annotations

from decimal import Decimal

from kubeling.api.quota import (charged_names, format_like, missing_constraints, parse_list, pretty, quota_matches,
                                usage)
from kubeling.api.resources import lookup

from ..storage import KeyMissing, StaleRevision
from . import Attributes
from .limitranger import forbidden

QUOTAS = lookup("", "v1", "resourcequotas")
RETRIES = 5
# kinds whose updates can change usage (a pod's resources are immutable here)
UPDATE_CHARGED = frozenset({("", "services"), ("", "persistentvolumeclaims")})


def plan(attrs: Attributes, quotas: list[dict]) -> list[tuple[dict, dict[str, Decimal]]]:
    """The quotas to charge with their new status.used, or a Forbidden error (upstream's checkRequest)."""
    group, plural = attrs.resource.group, attrs.resource.plural
    obj = attrs.obj
    interesting = []
    for q in quotas:
        hard = (q.get("status") or {}).get("hard") or {}
        names = charged_names(group, plural, hard)
        if not names or not quota_matches(q, group, plural, obj):
            continue
        if plural == "pods" and not group and (missing := missing_constraints(obj, {n: hard[n] for n in names})):
            raise forbidden(attrs, f"failed quota: {q['metadata']['name']}: must specify {missing}")
        used = (q.get("status") or {}).get("used") or {}
        if any(n not in used for n in names):
            raise forbidden(attrs, f"status unknown for quota: {q['metadata']['name']}, resources: "
                                   f"{','.join(sorted(names))}")
        interesting.append((q, names))
    if not interesting:
        return []
    delta = usage(group, plural, obj)
    if attrs.operation == "UPDATE" and attrs.old is not None:
        before = usage(group, plural, attrs.old)
        delta = {k: max(Decimal(0), v - before.get(k, Decimal(0))) for k, v in delta.items()}
    delta = {k: v for k, v in delta.items() if v != 0}
    if not delta:
        return []
    out = []
    for q, names in interesting:
        hard_s = q["status"]["hard"]
        hard, used = parse_list(hard_s), parse_list(q["status"].get("used"))
        requested = {k: v for k, v in delta.items() if k in hard}
        if not requested:
            continue
        new = {**used, **{k: used.get(k, Decimal(0)) + v for k, v in requested.items()}}
        exceeded = sorted(k for k in requested if new[k] > hard[k])
        if exceeded:
            name = q["metadata"]["name"]
            raise forbidden(attrs, f"exceeded quota: {name}, requested: {pretty({k: requested[k] for k in exceeded}, hard_s)}, "
                                   f"used: {pretty({k: used.get(k, Decimal(0)) for k in exceeded}, hard_s)}, "
                                   f"limited: {pretty({k: hard[k] for k in exceeded}, hard_s)}")
        out.append((q, new))
    return out


class ResourceQuotaAdmission:
    name = "ResourceQuota"
    order = 90
    validating = True
    resources: frozenset[tuple[str, str]] = frozenset()   # every kind: count/<resource>.<group> counts any

    async def admit(self, attrs: Attributes) -> None:
        if attrs.subresource or not attrs.namespace or attrs.obj is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        if attrs.operation == "UPDATE" and (attrs.resource.group, attrs.resource.plural) not in UPDATE_CHARGED:
            return
        for _ in range(RETRIES):
            charges = plan(attrs, list(attrs.cache.list(QUOTAS.key_prefix, attrs.namespace)))
            if not charges or attrs.dry_run:
                return
            if await self._charge(attrs, charges):
                return
            await attrs.cache.wait_for(await attrs.storage.current_revision(), 5.0)   # see the write that won
        raise forbidden(attrs, "Operation cannot be fulfilled on resourcequotas: the object has been modified; "
                               "please apply your changes to the latest version and try again")

    async def release(self, attrs: Attributes) -> None:
        """Give back what admitting attrs charged when the object was then not stored (a create losing a
        race for its name): without this the usage stays high until the controller's next full resync."""
        if attrs.subresource or not attrs.namespace or attrs.obj is None or attrs.operation != "CREATE" \
                or attrs.dry_run:
            return
        delta = usage(attrs.resource.group, attrs.resource.plural, attrs.obj)
        for _ in range(RETRIES):
            refunds = []
            for q in attrs.cache.list(QUOTAS.key_prefix, attrs.namespace):
                status = q.get("status") or {}
                if not quota_matches(q, attrs.resource.group, attrs.resource.plural, attrs.obj):
                    continue
                used = parse_list(status.get("used"))
                back = {k: v for k, v in delta.items() if k in used and v}
                if back:
                    refunds.append((q, {**used, **{k: max(Decimal(0), used[k] - v) for k, v in back.items()}}))
            if not refunds or await self._charge(attrs, refunds):
                return
            await attrs.cache.wait_for(await attrs.storage.current_revision(), 5.0)

    async def _charge(self, attrs: Attributes, charges: list[tuple[dict, dict[str, Decimal]]]) -> bool:
        """Write each quota's new usage guarded by its resourceVersion; False when one moved meanwhile."""
        for q, new in charges:
            status = {**q["status"], "used": format_like(new, q["status"]["hard"])}
            meta = q["metadata"]
            try:
                await attrs.storage.update(QUOTAS.key(meta["namespace"], meta["name"]), {**q, "status": status},
                                           int(meta["resourceVersion"]))
            except (StaleRevision, KeyMissing):
                return False
        return True


PLUGIN = ResourceQuotaAdmission()

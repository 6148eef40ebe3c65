"""Pods: service-account admission, graceful deletion, binding and eviction, status and ephemeral containers."""
from __future__ import annotations

from kubeling.api import errors as E

from .. import admission
from ..codec import deepcopy
from ..request import Reply, Request
from . import Strategy
from .conditions import with_condition
from .eviction import SUCCESS_201, evict


class PodStrategy(Strategy):
    def admit(self, obj: dict) -> None:
        admission.admit_pod(obj)

    def prepare_for_update(self, new: dict, old: dict, sub: str | None) -> dict:
        meta, ometa = new.setdefault("metadata", {}), old["metadata"]
        if sub == "ephemeralcontainers":
            merged = deepcopy(old)
            merged["spec"]["ephemeralContainers"] = (new.get("spec") or {}).get("ephemeralContainers") or []
            return merged
        if sub == "status":   # kubelets may also set labels and annotations through pods/status
            merged = super().prepare_for_update(new, old, sub)
            for k in ("labels", "annotations"):
                value = meta.get(k, ometa.get(k))
                if value is None:
                    merged["metadata"].pop(k, None)
                else:
                    merged["metadata"][k] = value
            return merged
        new["status"] = old.get("status", {})
        spec, ospec = new.setdefault("spec", {}), old.get("spec", {})
        for k in ("nodeName", "serviceAccountName", "serviceAccount"):
            if k in ospec and k not in spec:
                spec[k] = ospec[k]
        # ephemeral containers change only through their subresource
        spec.pop("ephemeralContainers", None)
        if "ephemeralContainers" in ospec:
            spec["ephemeralContainers"] = ospec["ephemeralContainers"]
        return new

    def validate(self, obj: dict, old: dict | None) -> None:
        if old is not None:
            _check_ephemeral_kept(obj["metadata"].get("name", ""), old, obj)
        super().validate(obj, old)

    def grace_period(self, obj: dict, opts: dict) -> int | None:
        """Graceful deletion applies to pods bound to a node that are not finished."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return None
        grace = opts.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace == 0:
            return None
        return max(1, int(grace))

    async def create_subresource(self, handler, req: Request) -> Reply | None:
        if req.subresource == "binding":
            await _bind(handler, req)
            return Reply(201, SUCCESS_201)
        if req.subresource == "eviction":
            return await evict(handler, req)
        return None


async def _bind(handler, req: Request) -> None:
    body = handler.decode(req)
    node = (body.get("target") or {}).get("name")
    if not node:
        raise E.invalid_error("", "Binding", req.name or "", [E.required("target.name")])

    def bind(pod: dict) -> dict:   # copy-on-write: pod may be the watch cache's
        spec = pod.get("spec") or {}
        if pod["metadata"].get("deletionTimestamp"):
            raise E.conflict("", "pods", req.name or "", f"pod {req.name} is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise E.conflict("", "pods", req.name or "", f'pod {req.name} is already assigned to node "{spec["nodeName"]}"')
        meta = pod["metadata"]
        ann = (body.get("metadata") or {}).get("annotations") or {}
        if ann:
            meta = {**meta, "annotations": {**(meta.get("annotations") or {}), **ann}}
        status = dict(pod.get("status") or {})
        status["conditions"] = with_condition(status.get("conditions") or [], {"type": "PodScheduled", "status": "True"})
        return {**pod, "metadata": meta, "spec": {**spec, "nodeName": node}, "status": status}
    await handler.guaranteed_update(req, bind, copy_on_write=True)


def _check_ephemeral_kept(name: str, old: dict, new: dict) -> None:
    """Ephemeral containers may be added, never changed or removed (upstream's ValidatePodEphemeralContainersUpdate)."""
    now = {c.get("name"): c for c in (new.get("spec") or {}).get("ephemeralContainers") or []}
    for c in (old.get("spec") or {}).get("ephemeralContainers") or []:
        kept = now.get(c.get("name"))
        if kept is None or kept != c:
            what = "removed" if kept is None else "changed"
            raise E.invalid_error("", "Pod", name, [E.forbidden(
                "spec.ephemeralContainers", f'existing ephemeral containers "{c.get("name")}" may not be {what}')])


STRATEGIES = {("", "pods"): PodStrategy}

"""LimitRanger admission: a namespace's LimitRanges default container resources and bound what pods
and PersistentVolumeClaims may ask for (upstream's plugin/pkg/admission/limitranger)."""
from __future__ import annotations

from decimal import Decimal

from kubeling.api import quantity
from kubeling.api.errors import StatusError
from kubeling.api.quota import canonical, pod_compute_usage
from kubeling.api.resources import lookup

from . import Attributes

LIMIT_RANGES = lookup("", "v1", "limitranges")
ANNOTATION = "kubernetes.io/limit-ranger"


def forbidden(attrs: Attributes, message: str) -> StatusError:
    """upstream's admission.NewForbidden: `<resource> "<name>" is forbidden: <message>`."""
    r = attrs.resource
    qualified = f"{r.plural}.{r.group}" if r.group else r.plural
    where = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details = {"name": attrs.name, "group": r.group, "kind": r.plural} if attrs.name else {"group": r.group, "kind": r.plural}
    return StatusError(403, "Forbidden", f"{where} is forbidden: {message}",
                       details={k: v for k, v in details.items() if v})


def aggregate(errs: list[str]) -> str:
    """utilerrors.NewAggregate's message: one error as is, several in brackets."""
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


# ---- defaulting ---------------------------------------------------------------------------------

def _defaults(lr: dict) -> tuple[dict, dict]:
    """(default requests, default limits) of the Container items (completed when the LimitRange was
    stored: apiserver/api/defaults.py)."""
    requests, limits = {}, {}
    for item in (lr.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            limits.update(item.get("default") or {})
            requests.update(item.get("defaultRequest") or {})
    return requests, limits


def _merge_container(c: dict, requests: dict, limits: dict, what: str, notes: list[str]) -> None:
    res = c.get("resources")
    if not isinstance(res, dict):
        res = c["resources"] = {}
    got_req, got_lim = res.setdefault("requests", {}), res.setdefault("limits", {})
    set_lim = sorted(k for k in limits if k not in got_lim)
    set_req = sorted(k for k in requests if k not in got_req)
    got_lim.update({k: limits[k] for k in set_lim})
    got_req.update({k: requests[k] for k in set_req})
    if set_req:
        notes.append(f"{', '.join(set_req)} request for {what} {c.get('name', '')}")
    if set_lim:
        notes.append(f"{', '.join(set_lim)} limit for {what} {c.get('name', '')}")
    for part in ("requests", "limits"):
        if not res[part]:
            del res[part]


def default_pod(lr: dict, pod: dict) -> None:
    """PodMutateLimitFunc: absent requests/limits come from the Container item's defaults, noted in
    the kubernetes.io/limit-ranger annotation."""
    requests, limits = _defaults(lr)
    if not requests and not limits:
        return
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for c in spec.get("containers") or []:
        _merge_container(c, requests, limits, "container", notes)
    for c in spec.get("initContainers") or []:
        _merge_container(c, requests, limits, "init container", notes)
    if notes:
        pod["metadata"].setdefault("annotations", {})[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


# ---- constraints --------------------------------------------------------------------------------

def _min(kind: str, name: str, enforced: str, req: dict, lim: dict) -> str | None:
    e = quantity.parse(enforced)
    if name not in req:
        return f"minimum {name} usage per {kind} is {canonical(enforced)}.  No request is specified"
    if e > quantity.parse(req[name]):
        return f"minimum {name} usage per {kind} is {canonical(enforced)}, but request is {canonical(req[name])}"
    if name in lim and e > quantity.parse(lim[name]):
        return f"minimum {name} usage per {kind} is {canonical(enforced)}, but limit is {canonical(lim[name])}"
    return None


def _max(kind: str, name: str, enforced: str, req: dict, lim: dict) -> str | None:
    e = quantity.parse(enforced)
    if name not in lim:
        return f"maximum {name} usage per {kind} is {canonical(enforced)}.  No limit is specified"
    if quantity.parse(lim[name]) > e:
        return f"maximum {name} usage per {kind} is {canonical(enforced)}, but limit is {canonical(lim[name])}"
    if name in req and quantity.parse(req[name]) > e:
        return f"maximum {name} usage per {kind} is {canonical(enforced)}, but request is {canonical(req[name])}"
    return None


def _max_request(kind: str, name: str, enforced: str, req: dict) -> str | None:
    if name not in req:
        return f"maximum {name} usage per {kind} is {canonical(enforced)}.  No request is specified"
    if quantity.parse(req[name]) > quantity.parse(enforced):
        return f"maximum {name} usage per {kind} is {canonical(enforced)}, but request is {canonical(req[name])}"
    return None


def _ratio(kind: str, name: str, enforced: str, req: dict, lim: dict) -> str | None:
    r, lm = quantity.parse(req.get(name)), quantity.parse(lim.get(name))
    head = f"{name} max limit to request ratio per {kind} is {canonical(enforced)}"
    if name not in req or r == 0:
        return f"{head}, but no request is specified or request is 0"
    if name not in lim or lm == 0:
        return f"{head}, but no limit is specified or limit is 0"
    if lm > r * quantity.parse(enforced):
        return f"{head}, but provided ratio is {lm / r:.6f}"
    return None


def _check(item: dict, kind: str, req: dict, lim: dict) -> list[str]:
    found = [_min(kind, k, v, req, lim) for k, v in (item.get("min") or {}).items()]
    found += [_max(kind, k, v, req, lim) for k, v in (item.get("max") or {}).items()]
    found += [_ratio(kind, k, v, req, lim) for k, v in (item.get("maxLimitRequestRatio") or {}).items()]
    return [e for e in found if e]


def _as_list(u: dict[str, Decimal], part: str) -> dict[str, str]:
    """Pod totals ("requests.cpu" -> 1.5) as a resource list ({"cpu": "1500m"})."""
    prefix = part + "."
    return {k[len(prefix):]: str(v) for k, v in u.items() if k.startswith(prefix)}


def validate_pod(lr: dict, pod: dict) -> list[str]:
    """PodValidateLimitFunc: Container items per (init) container, Pod items on the pod's totals."""
    errs: list[str] = []
    spec = pod.get("spec") or {}
    for item in (lr.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                res = c.get("resources") or {}
                errs += _check(item, "Container", res.get("requests") or {}, res.get("limits") or {})
        elif item.get("type") == "Pod":
            totals = pod_compute_usage(pod)
            errs += _check(item, "Pod", _as_list(totals, "requests"), _as_list(totals, "limits"))
    return errs


def validate_claim(lr: dict, pvc: dict) -> list[str]:
    """PersistentVolumeClaimValidateLimitFunc: min and max bound the claim's requests only."""
    req = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    errs: list[str] = []
    for item in (lr.get("spec") or {}).get("limits") or []:
        if item.get("type") == "PersistentVolumeClaim":
            errs += [e for k, v in (item.get("min") or {}).items() if (e := _min("PersistentVolumeClaim", k, v, req, {}))]
            errs += [e for k, v in (item.get("max") or {}).items() if (e := _max_request("PersistentVolumeClaim", k, v, req))]
    return errs


class LimitRanger:
    name = "LimitRanger"
    order = 20
    validating = False
    resources = frozenset({("", "pods"), ("", "persistentvolumeclaims")})

    async def admit(self, attrs: Attributes) -> None:
        # pods' containers are immutable, so only their creation is looked at; subresources never are
        if attrs.subresource or attrs.operation not in ("CREATE", "UPDATE") or attrs.obj is None:
            return
        pod = attrs.resource.plural == "pods"
        if (pod and attrs.operation == "UPDATE") or (attrs.old or {}).get("metadata", {}).get("deletionTimestamp"):
            return
        ranges = list(attrs.cache.list(LIMIT_RANGES.key_prefix, attrs.namespace))
        for lr in ranges:
            if pod:
                default_pod(lr, attrs.obj)
        for lr in ranges:
            errs = validate_pod(lr, attrs.obj) if pod else validate_claim(lr, attrs.obj)
            if errs:
                raise forbidden(attrs, aggregate(errs))


PLUGIN = LimitRanger()

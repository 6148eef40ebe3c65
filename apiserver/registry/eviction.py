"""pods/eviction (upstream's EvictionREST): a delete that honours the pod's PodDisruptionBudget.

The budget's status (kept by the disruption controller) says how many disruptions are allowed; an eviction
takes one by a compare-and-swap write of the budget's status that also records the pod in disruptedPods, so
the controller does not count it as healthy while it goes, and is refused with 429 when none is left."""
from __future__ import annotations

from datetime import datetime, timezone

from kubeling.api import errors as E
from kubeling.api.errors import StatusError, bad_request
from kubeling.api.resources import lookup
from kubeling.api.selectors import selector_from_object

from ..codec import deepcopy
from ..request import Reply, Request, check_dry_run
from ..storage import StaleRevision
from .conditions import with_condition

SUCCESS_201 = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
MAX_DISRUPTED_PODS = 2000   # upstream's MaxDisruptedPodSize
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def _budget_error(message: str, retry_after: int) -> StatusError:
    details: dict = {"causes": [{"reason": "DisruptionBudget", "message": message}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return StatusError(429, "TooManyRequests", REFUSED, details=details,
                       headers={"Retry-After": str(retry_after)} if retry_after else None)


def _processing(name: str) -> StatusError:
    return _budget_error(f"The disruption budget {name} is still being processed by the server.", 10)


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _can_ignore_budget(pod: dict) -> bool:
    """Pending, finished or already deleting pods cause no further disruption."""
    return (pod.get("status") or {}).get("phase") in ("Pending", "Succeeded", "Failed") or \
        bool(pod["metadata"].get("deletionTimestamp"))


def _budgets(handler, pod: dict) -> list[dict]:
    r = lookup("policy", "v1", "poddisruptionbudgets")
    labels = pod["metadata"].get("labels") or {}
    out = []
    for pdb in handler.cache.list(r.key_prefix, pod["metadata"].get("namespace")):
        raw = (pdb.get("spec") or {}).get("selector")
        sel = selector_from_object(raw) if raw else None
        if sel is not None and (raw.get("matchLabels") or raw.get("matchExpressions")) and sel.matches(labels):
            out.append(pdb)
    return out


def _with_rv(opts: dict, rv: str) -> dict:
    return {**opts, "preconditions": {**(opts.get("preconditions") or {}), "resourceVersion": rv}}


async def evict(handler, req: Request) -> Reply:
    body = handler.decode(req) if req.body else {}
    name = (body.get("metadata") or {}).get("name")
    if name and name != req.name:
        raise bad_request("name in URL does not match name in Eviction object")
    opts = body.get("deleteOptions") or {}
    check_dry_run(req, opts.get("dryRun"))
    pod = await handler.current(req, fresh=True)
    if pod is None:
        raise handler.not_found(req)
    if _can_ignore_budget(pod):
        await _mark_and_delete(handler, req, opts)
        return Reply(201, SUCCESS_201)
    budgets = _budgets(handler, pod)
    if len(budgets) > 1:
        return Reply(500, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "This pod has more than one PodDisruptionBudget, which the eviction "
                                      "subresource does not support.", "code": 500})
    if budgets:
        pdb = budgets[0]
        status = pdb.get("status") or {}
        unhealthy_ok = not _ready(pod) and (
            (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
            or status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0)
        if unhealthy_ok:   # an unready pod leaves a healthy budget as it is, if it is still unready at delete
            try:
                await _mark_and_delete(handler, req, _with_rv(opts, pod["metadata"]["resourceVersion"]))
            except StatusError as e:
                if e.reason == "Conflict" and not (opts.get("preconditions") or {}).get("resourceVersion"):
                    raise _processing(pdb["metadata"]["name"]) from None
                raise
            return Reply(201, SUCCESS_201)
        await _take_disruption(handler, req, pdb)
    await _mark_and_delete(handler, req, opts)
    return Reply(201, SUCCESS_201)


async def _mark_and_delete(handler, req: Request, opts: dict) -> None:
    """The pod gets the DisruptionTarget condition (reason EvictionByEvictionAPI), then is deleted; a
    resourceVersion precondition applies to the pod before the condition and follows it."""
    if not req.dry_run:
        rv = (opts.get("preconditions") or {}).get("resourceVersion")

        def mark(pod: dict) -> dict:
            status = dict(pod.get("status") or {})
            status["conditions"] = with_condition(status.get("conditions") or [], {
                "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting"})
            return {**pod, "status": status}
        marked, _ = await handler.guaranteed_update(req, mark, rv, copy_on_write=True)
        if rv:
            opts = _with_rv(opts, marked["metadata"]["resourceVersion"])
    await handler.delete_object(req, opts)


async def _take_disruption(handler, req: Request, pdb: dict) -> None:
    key = lookup("policy", "v1", "poddisruptionbudgets").key(pdb["metadata"]["namespace"], pdb["metadata"]["name"])
    for _ in range(5):
        name, status = pdb["metadata"]["name"], pdb.get("status") or {}
        if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 0):
            raise _processing(name)
        allowed = status.get("disruptionsAllowed", 0)
        if allowed < 0:
            raise E.forbidden_error(f'poddisruptionbudget.policy "{name}" is forbidden: pdb disruptions allowed is negative')
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise E.forbidden_error(f'poddisruptionbudget.policy "{name}" is forbidden: DisruptedPods map too big - '
                                    "too many evictions not confirmed by PDB controller")
        if allowed == 0:
            raise _budget_error(f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods "
                                f"and has {status.get('currentHealthy', 0)} currently", 0)
        if req.dry_run:
            return
        new = deepcopy(pdb)
        st = new.setdefault("status", {})
        st["disruptionsAllowed"] = allowed - 1
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if allowed - 1 == 0:
            st["conditions"] = _insufficient(st.get("conditions") or [], st.get("observedGeneration", 0), now)
        st["disruptedPods"] = {**(st.get("disruptedPods") or {}), req.name: now}
        try:
            await handler.storage.update(key, new, int(pdb["metadata"]["resourceVersion"]))
            return
        except StaleRevision as e:
            pdb = e.current
    raise StatusError(504, "Timeout", f'couldn\'t update PodDisruptionBudget "{pdb["metadata"]["name"]}" due to conflicts',
                      details={"retryAfterSeconds": 10})


def _insufficient(conds: list[dict], generation: int, now: str) -> list[dict]:
    """The DisruptionAllowed condition turned False (upstream's UpdateDisruptionAllowedCondition)."""
    cond = {"type": "DisruptionAllowed", "status": "False", "observedGeneration": generation,
            "lastTransitionTime": now, "reason": "InsufficientPods", "message": ""}
    out = [c for c in conds if c.get("type") != "DisruptionAllowed"]
    old = next((c for c in conds if c.get("type") == "DisruptionAllowed"), None)
    if old is not None and old.get("status") == "False":
        cond["lastTransitionTime"] = old.get("lastTransitionTime", now)
    return out + [cond]

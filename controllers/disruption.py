"""The disruption controller: keeps each PodDisruptionBudget's status (expected, desired and
current healthy pods, disruptionsAllowed, the DisruptionAllowed condition) in step with the
pods it selects and the scale of their controllers, so the eviction subresource can decide.

Entries the eviction subresource adds to status.disruptedPods (pods it let go) count as not
healthy until the pod is gone or two minutes have passed, as upstream; a pod the eviction marked
with a DisruptionTarget condition but that was not deleted within two minutes gets it cleared."""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from kubeling.api.gofmt import quote
from kubeling.api.resources import by_kind, lookup
from kubeling.api.selectors import selector_from_object
from kubeling.client import ApiError

from .base import Controller, controller_of
from .replicaset import pod_ready

PDBS = lookup("policy", "v1", "poddisruptionbudgets")
PODS = lookup("", "v1", "pods")
# controller kinds whose scale the budget is measured against: kind -> resource (upstream's finders)
SCALED = {"ReplicaSet": lookup("apps", "v1", "replicasets"), "Deployment": lookup("apps", "v1", "deployments"),
          "ReplicationController": lookup("", "v1", "replicationcontrollers"),
          "StatefulSet": lookup("apps", "v1", "statefulsets")}
DELETION_TIMEOUT = 120.0     # seconds a pod stays in disruptedPods while its deletion is awaited
STALE_DISRUPTION_TIMEOUT = 120.0   # seconds a DisruptionTarget condition may wait for the pod's deletion
STALE = "stale-pod-disruption/"    # queue keys of pods whose DisruptionTarget condition may be stale
TERMINATION_BY_KUBELET = "TerminationByKubelet"


class ScaleError(Exception):
    """The expected pod count cannot be worked out (a pod's controller is missing or not scalable)."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    if not value.endswith("%") or not value[:-1].isdigit():
        raise ScaleError(f"invalid value for IntOrString: invalid value {value!r}")
    exact = int(value[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def _go_selector(sel: dict | None) -> str:
    """A *metav1.LabelSelector as %v prints it (the UnmanagedPods message)."""
    sel = sel or {}
    labels = "".join(f"{k}: {v}," for k, v in sorted((sel.get("matchLabels") or {}).items()))
    exprs = "".join(f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
                    f"Values:[]string{{{','.join(e.get('values') or [])}}},}},"
                    for e in sel.get("matchExpressions") or [])
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


def allowed_condition(prev: list[dict], allowed: int, generation: int, reason: str = "", message: str = "") -> dict:
    """The DisruptionAllowed condition; its lastTransitionTime moves only when its status does."""
    status = "True" if allowed > 0 else "False"
    reason = reason or ("SufficientPods" if allowed > 0 else "InsufficientPods")
    old = next((c for c in prev if c.get("type") == "DisruptionAllowed"), None)
    since = old["lastTransitionTime"] if old is not None and old.get("status") == status else _now()
    return {"type": "DisruptionAllowed", "status": status, "observedGeneration": generation,
            "lastTransitionTime": since, "reason": reason, "message": message}


def stale_disruption_wait(pod: dict) -> float | None:
    """nonTerminatingPodHasStaleDisruptionCondition: seconds until the pod's DisruptionTarget
    condition counts as stale, or None when it has none that can be (it is deleting or finished,
    or the kubelet set it)."""
    if pod["metadata"].get("deletionTimestamp"):
        return None
    status = pod.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None)
    if cond is None or cond.get("status") != "True" or cond.get("reason") == TERMINATION_BY_KUBELET \
            or status.get("phase") in ("Succeeded", "Failed"):
        return None
    since = _epoch(cond["lastTransitionTime"]) if cond.get("lastTransitionTime") else time.time()
    return max(0.0, since + STALE_DISRUPTION_TIMEOUT - time.time())


class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.pdbs = self.factory.get(PDBS)
        self.pods = self.factory.get(PODS)
        self.owners = {kind: self.factory.get(r) for kind, r in SCALED.items()}
        self.pdbs.add_handler(*self.enqueue_handlers())
        self.pods.add_handler(self.on_pod, lambda old, new: self.on_pod(new), self.on_pod)

    def on_pod(self, pod: dict) -> None:
        """Every budget in the pod's namespace whose selector matches it; and the pod itself once its
        DisruptionTarget condition is stale."""
        wait = stale_disruption_wait(pod)
        if wait is not None:
            self.queue.add_after(STALE + f"{pod['metadata']['namespace']}/{pod['metadata']['name']}", wait)
        ns = pod["metadata"].get("namespace")
        matching = []
        for pdb in self.pdbs.list(ns):
            sel = selector_from_object((pdb.get("spec") or {}).get("selector"))
            if sel is not None and sel.matches(pod["metadata"].get("labels") or {}):
                matching.append(pdb)
                self.enqueue(pdb)
        if len(matching) > 1:
            first = min(p["metadata"]["name"] for p in matching)
            self.recorder.event(pod, "Warning", "MultiplePodDisruptionBudgets",
                                f"Pod {quote(ns)}/{quote(pod['metadata']['name'])} matches multiple "
                                f"PodDisruptionBudgets.  Chose {quote(first)} arbitrarily.")

    def _pods(self, pdb: dict) -> list[dict]:
        sel = selector_from_object((pdb.get("spec") or {}).get("selector"))
        if sel is None:
            return []
        return [p for p in self.pods.list(pdb["metadata"]["namespace"]) if sel.matches(p["metadata"].get("labels") or {})]

    def _known_scale(self, ns: str, ref: dict) -> tuple[str, int] | None:
        """upstream's finders for the built-in controllers: (uid, replicas), a ReplicaSet owned by a
        Deployment counting as that Deployment; None when the controller is not (or no longer) there."""
        kind = ref.get("kind")
        owner = self.owners[kind].get(f"{ns}/{ref.get('name')}")
        if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
            return None
        parent = controller_of(owner) if kind == "ReplicaSet" else None
        if parent is not None and parent.get("kind") == "Deployment":
            return self._known_scale(ns, parent)
        return owner["metadata"]["uid"], (owner.get("spec") or {}).get("replicas", 1)

    async def _scale_subresource(self, ns: str, ref: dict) -> tuple[str, int] | None:
        """getScaleController: any other controller through its scale subresource."""
        r = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if r is None:
            group, _, version = ref.get("apiVersion", "").rpartition("/")
            raise ScaleError(f"no matches for kind {quote(ref.get('kind', ''))} in version "
                             f"{quote(ref.get('apiVersion', '') if group else version)}")
        if "scale" not in r.subresources:
            raise ScaleError(f"{r.plural}{'.' + r.group if r.group else ''} does not implement the scale subresource")
        try:
            scale = await self.client.get(r, ref.get("name", ""), ns, "scale")
        except ApiError as e:
            if e.not_found:
                return None
            raise
        if scale["metadata"].get("uid") != ref.get("uid"):
            return None
        return scale["metadata"]["uid"], (scale.get("spec") or {}).get("replicas", 0)

    async def expected(self, pdb: dict, pods: list[dict]) -> tuple[int, int, list[str]]:
        """getExpectedPodCount: (expected pods, desired healthy, unmanaged pod names)."""
        spec = pdb.get("spec") or {}
        unmanaged: list[str] = []

        async def scale() -> int:
            scales: dict[str, int] = {}
            for p in pods:
                ns, ref = p["metadata"]["namespace"], controller_of(p)
                if ref is None:
                    unmanaged.append(p["metadata"]["name"])
                    continue
                found = (self._known_scale(ns, ref) if ref.get("kind") in self.owners
                         else await self._scale_subresource(ns, ref))
                if found is None:
                    raise ScaleError(f"found no controllers for pod {quote(p['metadata']['name'])}")
                scales[found[0]] = found[1]
            return sum(scales.values())
        if spec.get("maxUnavailable") is not None:
            expected = await scale()
            desired = max(0, expected - scaled_value(spec["maxUnavailable"], expected, True))
        elif isinstance(spec.get("minAvailable"), int):
            expected, desired = len(pods), spec["minAvailable"]
        elif spec.get("minAvailable") is not None:
            expected = await scale()
            desired = scaled_value(spec["minAvailable"], expected, True)
        else:
            expected, desired = len(pods), 0
        return expected, desired, unmanaged

    async def sync(self, key: str) -> None:
        if key.startswith(STALE):
            return await self._clear_stale_disruption(key[len(STALE):])
        pdb = self.pdbs.get(key)
        if pdb is None or pdb["metadata"].get("deletionTimestamp"):
            return
        pods = self._pods(pdb)
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = await self.expected(pdb, pods)
        except ScaleError as e:
            self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {e}")
            await self._fail_safe(pdb, str(e))
            raise                  # retried with back-off, as upstream

        if unmanaged:
            self.recorder.event(pdb, "Warning", "UnmanagedPods", "Pods selected by this PodDisruptionBudget "
                                f"(selector: {_go_selector((pdb.get('spec') or {}).get('selector'))}) were found to be "
                                "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which "
                                "may result in undefined behavior. To account for these pods please set "
                                "\".spec.minAvailable\" field of the PDB to an integer value.")
        disrupted, recheck = self._disrupted(pdb, pods)
        healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp")
                      and p["metadata"]["name"] not in disrupted and pod_ready(p))
        allowed = healthy - desired if expected > 0 else 0
        status = {**(pdb.get("status") or {}), "currentHealthy": healthy, "desiredHealthy": desired,
                  "expectedPods": expected, "disruptionsAllowed": max(0, allowed), "disruptedPods": disrupted or None}
        if not disrupted:
            status.pop("disruptedPods")
        await self._write(pdb, status)
        if recheck is not None:
            self.queue.add_after(key, max(0.0, recheck - time.time()) + 0.05)

    async def _clear_stale_disruption(self, key: str) -> None:
        """syncStalePodDisruption: a pod marked for disruption (by an eviction) that was not deleted
        within two minutes gets its DisruptionTarget condition set False."""
        pod = self.pods.get(key)
        if pod is None:
            return
        wait = stale_disruption_wait(pod)
        if wait is None:
            return
        if wait > 0:
            self.queue.add_after(STALE + key, wait)
            return
        patch = {"status": {"conditions": [{"type": "DisruptionTarget", "status": "False", "lastTransitionTime": _now()}]}}
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], patch, pod["metadata"]["namespace"], "status",
                                    patch_type="application/strategic-merge-patch+json")
        except ApiError as e:
            if not e.not_found:
                raise

    @staticmethod
    def _disrupted(pdb: dict, pods: list[dict]) -> tuple[dict[str, str], float | None]:
        """buildDisruptedPodMap: entries for pods still present and not yet deleting, for at most
        DELETION_TIMEOUT; and when the earliest of them expires."""
        entries = (pdb.get("status") or {}).get("disruptedPods") or {}
        live = {p["metadata"]["name"]: p for p in pods}
        out: dict[str, str] = {}
        recheck = None
        for name, since in entries.items():
            pod = live.get(name)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                continue
            expires = _epoch(since) + DELETION_TIMEOUT
            if expires < time.time():
                continue
            out[name] = since
            recheck = expires if recheck is None else min(recheck, expires)
        return out, recheck

    async def _fail_safe(self, pdb: dict, message: str) -> None:
        """failSafe: no disruptions allowed while the budget cannot be computed (observedGeneration
        stays, since this generation was not evaluated)."""
        status = {**(pdb.get("status") or {}), "disruptionsAllowed": 0}
        await self._write(pdb, status, status.get("observedGeneration", 0), "SyncFailed", message)

    async def _write(self, pdb: dict, status: dict, generation: int | None = None, reason: str = "",
                     message: str = "") -> None:
        if generation is None:
            generation = status["observedGeneration"] = pdb["metadata"].get("generation", 1)
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"] + [
            allowed_condition(status.get("conditions") or [], status.get("disruptionsAllowed", 0), generation,
                              reason, message)]
        if status == (pdb.get("status") or {}):
            return
        try:
            await self.client.update(PDBS, {**pdb, "status": status}, pdb["metadata"]["namespace"], "status")
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise
            self.enqueue(pdb)      # written meanwhile (by an eviction): compute again from the new version

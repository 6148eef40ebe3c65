"""DaemonSet (one pod per eligible node, rolling update) and Job (completions, parallelism,
backoffLimit, Complete/Failed) controllers."""
from __future__ import annotations

import asyncio
import hashlib
import time

import orjson

from kubeling.api.resources import lookup
from kubeling.api.scheduling import node_matches_pod, tolerates
from kubeling.client import ApiError

from .base import Controller, controller_of
from .replicaset import pod_active, pod_ready

PODS, NODES = lookup("", "v1", "pods"), lookup("", "v1", "nodes")
DS, JOBS = lookup("apps", "v1", "daemonsets"), lookup("batch", "v1", "jobs")
DS_TOLERATIONS = [{"key": k, "operator": "Exists", "effect": e} for k, e in (
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"))]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _owner_ref(obj: dict, kind: str, api_version: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


class OwnedPods(Controller):
    """Shared wiring: an owner kind, its pods indexed by controller uid, owner re-queued on pod events."""
    owner_resource = DS
    kind = ""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.owners = self.factory.get(self.owner_resource)
        self.pods = self.factory.get(PODS)
        self.pods.add_indexer("owner", lambda p: [r["uid"] for r in p["metadata"].get("ownerReferences") or []
                                                   if r.get("controller")])
        self.owners.add_handler(*self.enqueue_handlers())
        self.pods.add_handler(self.on_pod, lambda old, new: self.on_pod(new), self.on_pod)

    def on_pod(self, pod: dict) -> None:
        ref = controller_of(pod)
        if ref is not None and ref.get("kind") == self.kind:
            self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    async def delete_pod(self, pod: dict) -> None:
        try:
            await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
        except ApiError as e:
            if not e.not_found:
                raise

    async def write_status(self, obj: dict, status: dict) -> None:
        cur = obj.get("status") or {}
        if all(cur.get(k) == v for k, v in status.items()):
            return
        try:
            await self.client.patch(self.owner_resource, obj["metadata"]["name"], {"status": status},
                                    obj["metadata"]["namespace"], "status")
        except ApiError as e:
            if not e.not_found:
                raise


class DaemonSetController(OwnedPods):
    name = "daemonset"
    owner_resource = DS
    kind = "DaemonSet"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.nodes = self.factory.get(NODES)
        self.nodes.add_handler(self.on_node, lambda old, new: self.on_node(new), self.on_node)

    def on_node(self, node: dict) -> None:
        for ds in self.owners.list():
            self.enqueue(ds)

    def eligible(self, ds: dict, node: dict) -> bool:
        spec = (ds["spec"].get("template") or {}).get("spec") or {}
        tols = (spec.get("tolerations") or []) + DS_TOLERATIONS
        hard = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
        return node_matches_pod(spec, node) and all(tolerates(tols, t) for t in hard)

    async def sync(self, key: str) -> None:
        ds = self.owners.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        ns = ds["metadata"]["namespace"]
        tpl = ds["spec"].get("template") or {}
        h = hashlib.sha256(orjson.dumps(tpl, option=orjson.OPT_SORT_KEYS)).hexdigest()[:10]
        pods = [p for p in self.pods.by_index("owner", ds["metadata"]["uid"]) if pod_active(p)]
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            by_node.setdefault(self._target(p), []).append(p)
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list() if self.eligible(ds, n)}
        deletes = [p for name, ps in by_node.items() if name not in nodes for p in ps]
        deletes += [p for name, ps in by_node.items() if name in nodes for p in ps[1:]]
        creates = [name for name in nodes if name not in by_node]
        # rolling update: replace out-of-date pods, maxUnavailable at a time
        ru = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_unavailable = int(str(ru.get("maxUnavailable", 1)).rstrip("%") or 1)
        unavailable = sum(1 for name in nodes if not any(pod_ready(p) for p in by_node.get(name, [])))
        old = [ps[0] for name, ps in by_node.items() if name in nodes
               and (ps[0]["metadata"].get("labels") or {}).get("controller-revision-hash") != h]
        if (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            deletes += old[: max(0, max_unavailable - unavailable)]
        await asyncio.gather(*(self.delete_pod(p) for p in deletes))
        await asyncio.gather(*(self._create(ds, name, h) for name in creates))
        ready = sum(1 for ps in by_node.values() for p in ps[:1] if pod_ready(p))
        await self.write_status(ds, {
            "desiredNumberScheduled": len(nodes), "currentNumberScheduled": sum(1 for n in by_node if n in nodes),
            "numberMisscheduled": sum(1 for n in by_node if n not in nodes), "numberReady": ready,
            "numberAvailable": ready, "numberUnavailable": max(0, len(nodes) - ready),
            "updatedNumberScheduled": sum(1 for n, ps in by_node.items() if n in nodes and
                                          (ps[0]["metadata"].get("labels") or {}).get("controller-revision-hash") == h),
            "observedGeneration": ds["metadata"].get("generation", 1)})

    @staticmethod
    def _target(pod: dict) -> str:
        if (pod.get("spec") or {}).get("nodeName"):
            return pod["spec"]["nodeName"]
        terms = (((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
                  .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
        for t in terms:
            for f in t.get("matchFields") or []:
                if f.get("key") == "metadata.name" and f.get("values"):
                    return f["values"][0]
        return ""

    async def _create(self, ds: dict, node: str, h: str) -> None:
        tpl = orjson.loads(orjson.dumps(ds["spec"].get("template") or {}))
        meta = tpl.get("metadata") or {}
        spec = tpl.get("spec") or {}
        spec["tolerations"] = (spec.get("tolerations") or []) + [t for t in DS_TOLERATIONS
                                                                  if t not in (spec.get("tolerations") or [])]
        spec.setdefault("affinity", {})["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": ds["metadata"]["name"] + "-", "labels": {**(meta.get("labels") or {}),
                                                                    "controller-revision-hash": h},
            "annotations": meta.get("annotations") or {}, "ownerReferences": [_owner_ref(ds, "DaemonSet", "apps/v1")]},
            "spec": spec}
        pod = await self.client.create(PODS, body, ds["metadata"]["namespace"])
        self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")


class JobController(OwnedPods):
    name = "job"
    owner_resource = JOBS
    kind = "Job"

    async def sync(self, key: str) -> None:
        job = self.owners.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec, status = job.get("spec") or {}, dict(job.get("status") or {})
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in status.get("conditions") or []):
            return
        pods = self.pods.by_index("owner", job["metadata"]["uid"])
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        active = [p for p in pods if pod_active(p)]
        completions, parallelism = spec.get("completions") or 1, spec.get("parallelism", 1)
        new: dict = {"startTime": status.get("startTime") or _now(), "active": len(active),
                     "succeeded": succeeded, "failed": failed, "ready": sum(1 for p in active if pod_ready(p)),
                     "terminating": 0}
        conds = list(status.get("conditions") or [])
        if failed > spec.get("backoffLimit", 6):
            await asyncio.gather(*(self.delete_pod(p) for p in active))
            conds.append({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                          "message": "Job has reached the specified backoff limit",
                          "lastProbeTime": _now(), "lastTransitionTime": _now()})
            self.recorder.event(job, "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            new["active"] = 0
        elif succeeded >= completions:
            conds.append({"type": "Complete", "status": "True", "lastProbeTime": _now(), "lastTransitionTime": _now()})
            new["completionTime"] = _now()
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        elif not spec.get("suspend"):
            want = min(parallelism, completions - succeeded) - len(active)
            if want > 0:
                await asyncio.gather(*(self._create(job) for _ in range(want)))
        new["conditions"] = conds or None
        if new["conditions"] is None:
            new.pop("conditions")
        await self.write_status(job, new)

    async def _create(self, job: dict) -> None:
        tpl = job["spec"].get("template") or {}
        meta = tpl.get("metadata") or {}
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": job["metadata"]["name"] + "-", "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {}, "ownerReferences": [_owner_ref(job, "Job", "batch/v1")]},
            "spec": tpl.get("spec") or {}}
        pod = await self.client.create(PODS, body, job["metadata"]["namespace"])
        self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

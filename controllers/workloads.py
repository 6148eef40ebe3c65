"""DaemonSet (one pod per eligible node, rolling update) and Job (completions, parallelism,
backoffLimit, Indexed completion, podFailurePolicy, successPolicy, Complete/Failed) controllers."""
from __future__ import annotations

import asyncio
import time
from typing import Collection

import orjson

from kubeling.api.resources import lookup
from kubeling.api.scheduling import node_matches_pod, tolerates
from kubeling.client import ApiError

from kubeling.client.informer import obj_key
from kubeling.client.leaderelection import parse_time

from .base import Controller, controller_of
from .deployment import resolve, template_hash
from . import indexes, podfailurepolicy
from .expectations import Expectations
from .replicaset import pod_active, pod_ready

PODS, NODES = lookup("", "v1", "pods"), lookup("", "v1", "nodes")
DS, JOBS = lookup("apps", "v1", "daemonsets"), lookup("batch", "v1", "jobs")
REVISIONS = lookup("apps", "v1", "controllerrevisions")
REVISION_HASH = "controller-revision-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"
DS_TOLERATIONS = [{"key": k, "operator": "Exists", "effect": e} for k, e in (
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"))]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}


def daemon_pod_tolerations(spec: dict) -> list[dict]:
    """util.AddOrUpdateDaemonPodTolerations: daemon pods survive node problems (not-ready, unreachable)
    and run on nodes under pressure or cordoned (and without a network, with hostNetwork). A
    toleration of the same key, operator, value and effect (tolerationSeconds aside) is replaced."""
    tols = list(spec.get("tolerations") or [])
    for add in DS_TOLERATIONS + ([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else []):
        out, matched = [], False
        for t in tols:
            if any((t.get(k) or "") != add.get(k, "") for k in ("key", "operator", "value", "effect")):
                out.append(t)
            elif t.get("tolerationSeconds") is None:
                break            # already there: AddOrUpdateTolerationInPodSpec changes nothing
            else:
                out.append(add)
                matched = True
        else:
            tols = out if matched else out + [add]
    return tols


def should_run(ds: dict, node: dict) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (a new daemon pod belongs on the node, a running one may stay). A
    NoSchedule taint the pod does not tolerate only keeps new pods away; an untolerated NoExecute
    taint, a node selector or affinity that no longer matches, removes the running one too."""
    spec = dict((ds["spec"].get("template") or {}).get("spec") or {})
    name = node["metadata"]["name"]
    if spec.get("nodeName") not in (None, "", name) or not node_matches_pod(spec, node):
        return False, False
    tols = daemon_pod_tolerations(spec)
    untolerated = {t.get("effect") for t in (node.get("spec") or {}).get("taints") or [] if not tolerates(tols, t)}
    return not untolerated & {"NoSchedule", "NoExecute"}, "NoExecute" not in untolerated


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

    async def write_status(self, obj: dict, status: dict) -> dict | None:
        """Write status unless unchanged: the object as stored, or None when it is gone or changed
        meanwhile (a newer version is then on its way through the informer)."""
        cur = obj.get("status") or {}
        if all(cur.get(k) == v for k, v in status.items()):
            return obj
        try:
            return await self.client.update(self.owner_resource, {**obj, "status": status},
                                            obj["metadata"]["namespace"], "status")
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise
            return None


class DaemonSetController(OwnedPods):
    """One pod per eligible node. Each template version is a ControllerRevision (`<ds>-<hash>`, data
    a patch that replaces spec.template) whose hash labels the pods, so `kubectl rollout
    history|undo daemonset` work; RollingUpdate replaces pods maxUnavailable nodes at a time, or with
    maxSurge starts the new pod first and deletes the old one once the new one is ready."""
    name = "daemonset"
    owner_resource = DS
    kind = "DaemonSet"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.nodes = self.factory.get(NODES)
        self.nodes.add_handler(self.on_node, lambda old, new: self.on_node(new), self.on_node)
        self.revisions = self.factory.get(REVISIONS)
        self.revisions.add_indexer("owner", lambda r: [o["uid"] for o in r["metadata"].get("ownerReferences") or []
                                                       if o.get("controller")])

    def on_node(self, node: dict) -> None:
        for ds in self.owners.list():
            self.enqueue(ds)

    async def sync(self, key: str) -> None:
        ds = self.owners.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        pods = [p for p in self.pods.by_index("owner", ds["metadata"]["uid"]) if pod_active(p)]
        h = await self._revision(ds, pods)
        by_node: dict[str, list[dict]] = {}
        for p in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
            by_node.setdefault(self._target(p), []).append(p)
        verdicts = {n["metadata"]["name"]: should_run(ds, n) for n in self.nodes.list()}
        nodes = {name for name, (run, _) in verdicts.items() if run}
        # nodes whose daemon pod stays: where one belongs, and where it may keep running
        kept = {name for name in by_node if verdicts.get(name, (False, False))[1]}

        def updated(p: dict) -> bool:
            return (p["metadata"].get("labels") or {}).get(REVISION_HASH) == h
        deletes = [p for name, ps in by_node.items() if name not in kept for p in ps]
        creates = [name for name in nodes if name not in by_node]
        for name, ps in by_node.items():
            if name in kept:
                new = [p for p in ps if updated(p)]
                # duplicates: keep one pod, the updated one when there is one
                keep = new[0] if new else ps[0]
                deletes += [p for p in ps if p is not keep and (updated(p) or not new)]
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            d, c = self._rolling(strategy.get("rollingUpdate") or {}, nodes | kept, by_node, updated)
            deletes += [p for p in d if p not in deletes]
            creates += c
        await asyncio.gather(*(self.delete_pod(p) for p in deletes))
        await asyncio.gather(*(self._create(ds, name, h) for name in creates))
        current = {name: ps for name, ps in by_node.items() if name in nodes}
        ready = sum(1 for ps in current.values() if any(pod_ready(p) for p in ps))
        await self.write_status(ds, {
            "desiredNumberScheduled": len(nodes), "currentNumberScheduled": len(current),
            "numberMisscheduled": sum(1 for n in by_node if n in verdicts and n not in nodes),
            "numberReady": ready,
            "numberAvailable": ready, "numberUnavailable": max(0, len(nodes) - ready),
            "updatedNumberScheduled": sum(1 for ps in current.values() if any(updated(p) for p in ps)),
            "observedGeneration": ds["metadata"].get("generation", 1)})

    @staticmethod
    def _rolling(ru: dict, nodes: Collection[str], by_node: dict[str, list[dict]],
                 updated) -> tuple[list[dict], list[str]]:
        """Old pods to delete and nodes to start a new pod on, within maxUnavailable / maxSurge."""
        total = len(nodes)
        surge = resolve(ru.get("maxSurge", 0), total, True)
        max_unavailable = resolve(ru.get("maxUnavailable", 1), total, True)
        deletes: list[dict] = []
        creates: list[str] = []
        on_nodes = {n: ps for n, ps in by_node.items() if n in nodes}
        if surge > 0:
            surging = sum(1 for ps in on_nodes.values() if any(updated(p) for p in ps) and
                          any(not updated(p) for p in ps))
            for name, ps in on_nodes.items():
                old, new = [p for p in ps if not updated(p)], [p for p in ps if updated(p)]
                if not old:
                    continue
                if new and any(pod_ready(p) for p in new):
                    deletes += old
                elif not new and (not any(pod_ready(p) for p in old) or surging < surge):
                    creates.append(name)
                    surging += 1
            return deletes, creates
        unavailable = sum(1 for name in nodes if not any(pod_ready(p) for p in by_node.get(name, [])))
        budget = max_unavailable - unavailable
        for name, ps in on_nodes.items():
            old = [p for p in ps if not updated(p)]
            if not old or any(updated(p) for p in ps):
                continue
            if not any(pod_ready(p) for p in old):
                deletes += old           # an unavailable old pod costs nothing to replace
            elif budget > 0:
                deletes += old
                budget -= 1
        return deletes, []

    async def _revision(self, ds: dict, pods: list[dict]) -> str:
        """The hash of the current template's ControllerRevision, creating it (or renumbering the
        matching old one after a rollback) and pruning unused revisions beyond revisionHistoryLimit."""
        tpl = ds["spec"].get("template") or {}
        h = template_hash(tpl)
        name = f"{ds['metadata']['name']}-{h}"
        ns = ds["metadata"]["namespace"]
        revs = sorted(self.revisions.by_index("owner", ds["metadata"]["uid"]), key=lambda r: r.get("revision", 0))
        top = max((r.get("revision", 0) for r in revs), default=0)
        cur = next((r for r in revs if r["metadata"]["name"] == name), None)
        if cur is None:
            body = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {
                "name": name, "namespace": ns, "labels": {**((tpl.get("metadata") or {}).get("labels") or {}),
                                                          REVISION_HASH: h},
                "annotations": {k: v for k, v in (ds["metadata"].get("annotations") or {}).items()
                                if k == CHANGE_CAUSE},
                "ownerReferences": [_owner_ref(ds, "DaemonSet", "apps/v1")]},
                "data": {"spec": {"template": {**tpl, "$patch": "replace"}}}, "revision": top + 1}
            try:
                await self.client.create(REVISIONS, body, ns)
            except ApiError as e:
                if not e.already_exists:
                    raise
        elif cur.get("revision", 0) != top:
            await self.client.patch(REVISIONS, name, {"revision": top + 1}, ns)
        limit = ds["spec"].get("revisionHistoryLimit", 10)
        in_use = {(p["metadata"].get("labels") or {}).get(REVISION_HASH) for p in pods} | {h}
        stale = [r for r in revs if (r["metadata"].get("labels") or {}).get(REVISION_HASH) not in in_use]
        for r in stale[: max(0, len(stale) - limit)]:
            try:
                await self.client.delete(REVISIONS, r["metadata"]["name"], ns)
            except ApiError as e:
                if not e.not_found:
                    raise
        return h

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
        spec["tolerations"] = daemon_pod_tolerations(spec)
        # ReplaceDaemonSetPodNodeNameNodeAffinity: the required terms become "this node" (preferred ones stay)
        (spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
         )["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
             {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": ds["metadata"]["name"] + "-", "labels": {
                **(meta.get("labels") or {}), REVISION_HASH: h,
                "pod-template-generation": str(ds["metadata"].get("generation", 1))},
            "annotations": meta.get("annotations") or {}, "ownerReferences": [_owner_ref(ds, "DaemonSet", "apps/v1")]},
            "spec": spec}
        pod = await self.client.create(PODS, body, ds["metadata"]["namespace"])
        self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")


JOB_TRACKING = "batch.kubernetes.io/job-tracking"
BACKOFF_BASE, BACKOFF_MAX = 10.0, 360.0      # upstream DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff
TERMINAL = {  # condition that ends the job -> the interim condition set first (1.31+)
    "Failed": "FailureTarget", "Complete": "SuccessCriteriaMet"}


def _only_replace_failed(job: dict) -> bool:
    """onlyReplaceFailedPods: with a podFailurePolicy (or podReplacementPolicy Failed) a terminating
    pod is neither failed nor replaced until it reaches the Failed phase."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def _finished(pod: dict, job: dict) -> str | None:
    """'succeeded' or 'failed' for a pod that is done for the Job (isPodFailed: a deleted unfinished
    pod failed, unless only failed pods are replaced)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return "succeeded"
    if phase == "Failed" or (pod["metadata"].get("deletionTimestamp") and not _only_replace_failed(job)):
        return "failed"
    return None


def _indexed(job: dict) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def _failed_of_index(job: dict, pods: list[dict], index: int) -> list[dict]:
    return [p for p in pods if indexes.pod_index(p) == index and _finished(p, job) == "failed"]


def _per_index(job: dict) -> bool:
    """backoffLimitPerIndex: each index retried on its own, then marked failed."""
    return _indexed(job) and (job.get("spec") or {}).get("backoffLimitPerIndex") is not None


def _cond_true(conds: list[dict], typ: str) -> bool:
    return any(c.get("type") == typ and c.get("status") == "True" for c in conds)


def _tracked(pod: dict) -> bool:
    return JOB_TRACKING in (pod["metadata"].get("finalizers") or [])


class JobController(OwnedPods):
    """Jobs with upstream's finalizer-based pod tracking: a finished pod is first recorded in
    status.uncountedTerminatedPods, then its batch.kubernetes.io/job-tracking finalizer is removed,
    then it is moved into succeeded/failed, so a count is never lost or doubled across restarts."""
    name = "job"
    owner_resource = JOBS
    kind = "Job"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.last_failure: dict[str, float] = {}
        # as upstream's job controller: no new pods until the informer shows the ones just created,
        # or a sync on a cache without them would create them again
        self.expectations = Expectations()
        self.pods.add_handler(self._pod_added)

    def _pod_added(self, pod: dict) -> None:
        ref = controller_of(pod)
        if ref is not None and ref.get("kind") == self.kind:
            self.expectations.creation_observed(f"{pod['metadata']['namespace']}/{ref['name']}")

    def on_pod(self, pod: dict) -> None:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != self.kind:
            return
        key = f"{pod['metadata']['namespace']}/{ref['name']}"
        job = self.owners.get(key)
        if _tracked(pod) and (job is None or job["metadata"]["uid"] != ref.get("uid")):
            asyncio.ensure_future(self._release([pod]))   # orphaned: its Job is gone
        else:
            self.queue.add(key)

    async def _release(self, pods: list[dict]) -> None:
        """Remove the tracking finalizer; a JSON patch that tests the list so no other finalizer is lost."""
        async def one(p: dict) -> None:
            name, ns = p["metadata"]["name"], p["metadata"]["namespace"]
            for _ in range(5):
                fins = p["metadata"].get("finalizers") or []
                if JOB_TRACKING not in fins:
                    return
                try:
                    await self.client.patch(PODS, name, [
                        {"op": "test", "path": "/metadata/finalizers", "value": fins},
                        {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in fins if f != JOB_TRACKING]}],
                        ns, patch_type="application/json-patch+json")
                    return
                except ApiError as e:
                    if e.not_found:
                        return
                    if e.code not in (409, 422):
                        raise
                try:
                    p = await self.client.get(PODS, name, ns)
                except ApiError as e:
                    if e.not_found:
                        return
                    raise
            raise ApiError(409, None, f"could not remove {JOB_TRACKING} from {ns}/{name}")
        await asyncio.gather(*(one(p) for p in pods if _tracked(p)))

    async def sync(self, key: str) -> None:
        job = self.owners.get(key)
        if job is None:
            self.last_failure.pop(key, None)
            self.expectations.delete(key)
            return
        pods = self.pods.by_index("owner", job["metadata"]["uid"])
        if job["metadata"].get("deletionTimestamp"):
            return await self._release(pods)
        spec, status = job.get("spec") or {}, dict(job.get("status") or {})
        conds = list(status.get("conditions") or [])
        types = {c.get("type") for c in conds if c.get("status") == "True"}
        if types & set(TERMINAL):
            return await self._release(pods)
        # 1. record newly finished tracked pods, 2. release them, 3. count them
        uncounted = status.get("uncountedTerminatedPods") or {}
        pending = {k: list(uncounted.get(k) or []) for k in ("succeeded", "failed")}
        seen = set(pending["succeeded"]) | set(pending["failed"])
        completions = spec.get("completions") or 1
        completed = indexes.parse(status.get("completedIndexes"), completions) if _indexed(job) else set()
        failed_ix = indexes.parse(status.get("failedIndexes"), completions) if _per_index(job) else set()
        fresh, uncountable = self._classify(job, pods, seen, pending, completed, failed_ix)
        if completed:
            status["completedIndexes"] = indexes.format_indexes(completed)
        else:
            status.pop("completedIndexes", None)
        if _per_index(job):
            status["failedIndexes"] = indexes.format_indexes(failed_ix)
        if fresh:
            status["uncountedTerminatedPods"] = pending
            job = await self.write_status(job, status)
            if job is None:
                return
        counted = set(pending["succeeded"]) | set(pending["failed"])
        await self._release([p for p in pods if p["metadata"]["uid"] in counted] + uncountable)
        if pending["failed"]:
            self.last_failure[key] = time.time()
        # an Indexed Job counts its completed indexes (fewer after completions shrank, as elastic jobs may)
        status["succeeded"] = len(completed) if _indexed(job) else status.get("succeeded", 0) + len(pending["succeeded"])
        status["failed"] = status.get("failed", 0) + len(pending["failed"])
        status["uncountedTerminatedPods"] = {}

        active = [p for p in pods if pod_active(p) and not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp") and _tracked(p)
                       and p["metadata"]["uid"] not in counted]
        if _indexed(job):
            active, extra = self._dedupe_indexes(active, completions)
            await asyncio.gather(*(self.delete_pod(p) for p in extra))
        parallelism = spec.get("parallelism", 1)
        if not spec.get("suspend"):
            status["startTime"] = status.get("startTime") or _now()
        interim = next((t for t in ("FailureTarget", "SuccessCriteriaMet") if t in types), None)
        if interim is None:
            verdict = self._verdict(job, status, pods)
            if verdict is not None:
                interim = TERMINAL[verdict[0]]
                conds.append(self._cond(interim, verdict[1], verdict[2]))
                self.recorder.event(job, "Warning" if verdict[0] == "Failed" else "Normal",
                                    verdict[1] if verdict[0] == "Failed" else "Completed",
                                    verdict[2] if verdict[0] == "Failed" else "Job completed")
        if interim is not None:
            await asyncio.gather(*(self.delete_pod(p) for p in active))
            if not active and not terminating:   # every pod is gone: the terminal condition
                cond = next(c for c in conds if c["type"] == interim)
                final = next(t for t, i in TERMINAL.items() if i == interim)
                conds.append(self._cond(final, cond["reason"], cond["message"]))
                if final == "Complete":
                    status["completionTime"] = _now()
            active = []
        elif spec.get("suspend"):
            await asyncio.gather(*(self.delete_pod(p) for p in active))
            active = []
            if not _cond_true(conds, "Suspended"):
                conds = [c for c in conds if c.get("type") != "Suspended"] + [
                    self._cond("Suspended", "JobSuspended", "Job suspended")]
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
        else:
            if _cond_true(conds, "Suspended"):   # resumed: the active deadline starts again
                conds = [c for c in conds if c.get("type") != "Suspended"] + [
                    {**self._cond("Suspended", "JobResumed", "Job resumed"), "status": "False"}]
                status["startTime"] = _now()
                self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            want = min(parallelism, completions - status["succeeded"] - len(failed_ix)) - len(active)
            if _only_replace_failed(job):
                want -= len(terminating)
            delay = 0.0 if _per_index(job) else self._backoff(key, status["failed"])
            if want > 0 and delay > 0:
                self.queue.add_after(key, delay)
            elif want > 0 and self.expectations.satisfied(key):
                if _indexed(job):
                    taken = completed | failed_ix | {indexes.pod_index(p) for p in active + terminating} - {None}
                    slots: list[int | None] = list(indexes.first_pending(want, completions, taken))
                    if _per_index(job):
                        slots = self._off_backoff(key, job, pods, slots)
                else:
                    slots = [None] * want
                want = len(slots)
                self.expectations.expect_creations(key, want)
                made = await asyncio.gather(*(self._create(job, ix, pods) for ix in slots), return_exceptions=True)
                failed = [r for r in made if isinstance(r, BaseException)]
                if failed:      # never seen by the informer: not awaited either
                    self.expectations.creation_observed(key, len(failed))
                    raise failed[0]
        status.update({"active": len(active), "ready": sum(1 for p in active if pod_ready(p)),
                       "terminating": len(terminating), "conditions": conds or None})
        if not conds:
            status.pop("conditions")
        await self.write_status(job, status)

    @staticmethod
    def _classify(job: dict, pods: list[dict], seen: set[str], pending: dict[str, list[str]], completed: set[int],
                  failed_ix: set[int]) -> tuple[bool, list[dict]]:
        """Sort the newly finished tracked pods: into `pending` (uids to count), the indexes they
        complete or fail, or the returned list of pods that are released without counting (a
        failure the podFailurePolicy ignores, another success of a completed index). True when
        something is to be counted."""
        spec = job.get("spec") or {}
        completions = spec.get("completions") or 1
        fresh, uncountable = False, []
        for p in pods:
            how = _finished(p, job) if _tracked(p) and p["metadata"]["uid"] not in seen else None
            ix = indexes.pod_index(p)
            if how == "succeeded" and _indexed(job):
                if ix is None or ix >= completions or ix in completed:
                    uncountable.append(p)
                    continue
                completed.add(ix)
            elif how == "failed":
                verdict = podfailurepolicy.match(spec.get("podFailurePolicy"), p)
                if not verdict.counts:
                    uncountable.append(p)
                    continue
                if _per_index(job) and ix is not None and ix < completions and (
                        verdict.action == "FailIndex" or indexes.failure_counts(p)[0] >= spec["backoffLimitPerIndex"]):
                    failed_ix.add(ix)       # isIndexFailed: not retried any more
            if how is not None:
                pending[how].append(p["metadata"]["uid"])
                fresh = True
        return fresh, uncountable

    @staticmethod
    def _dedupe_indexes(active: list[dict], completions: int) -> tuple[list[dict], list[dict]]:
        """appendDuplicatedIndexPodsForRemoval: one active pod per valid index (the newest is kept);
        pods without a valid index, or with one beyond completions, go."""
        keep: dict[int, dict] = {}
        extra: list[dict] = []
        for p in sorted(active, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
            ix = indexes.pod_index(p)
            if ix is None or ix >= completions:
                extra.append(p)
                continue
            if ix in keep:
                extra.append(keep[ix])
            keep[ix] = p
        return list(keep.values()), extra

    def _verdict(self, job: dict, status: dict, pods: list[dict]) -> tuple[str, str, str] | None:
        spec = job.get("spec") or {}
        for p in pods:      # getFailJobMessage: any failed pod that a FailJob rule matches
            if _finished(p, job) == "failed":
                message = podfailurepolicy.match(spec.get("podFailurePolicy"), p).message
                if message is not None:
                    return "Failed", "PodFailurePolicy", message
        if _per_index(job):
            failed_ix = indexes.parse(status.get("failedIndexes"), spec.get("completions") or 1)
            if spec.get("maxFailedIndexes") is not None and len(failed_ix) > spec["maxFailedIndexes"]:
                return ("Failed", "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes")
            if failed_ix and status["succeeded"] + len(failed_ix) >= (spec.get("completions") or 1):
                return "Failed", "FailedIndexes", "Job has failed indexes"
        if status["failed"] > spec.get("backoffLimit", 6):
            return "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and status.get("startTime") and not spec.get("suspend"):
            left = parse_time(status["startTime"]) + deadline - time.time()
            if left <= 0:
                return "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
            self.queue.add_after(obj_key(job), left + 0.05)
        if _indexed(job):
            completions = spec.get("completions") or 1
            matched = indexes.success_policy_match(spec.get("successPolicy"), completions,
                                                   indexes.parse(status.get("completedIndexes"), completions))
            if matched is not None:
                return "Complete", "SuccessPolicy", matched
        if status["succeeded"] >= (spec.get("completions") or 1):
            return "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
        return None

    def _off_backoff(self, key: str, job: dict, pods: list[dict], slots: list[int]) -> list[int | None]:
        """backoffLimitPerIndex: an index is retried after its own back-off (10 s doubling per
        failure of the index, at most 6 min, from its last failed pod's finish); the others wait."""
        ready: list[int | None] = []
        waits = []
        for ix in slots:
            failed = _failed_of_index(job, pods, ix)
            wait = 0.0
            if failed:
                last = max(failed, key=lambda p: (sum(indexes.failure_counts(p)), indexes.finished_at(p)))
                count = sum(indexes.failure_counts(last)) + 1
                finished = indexes.finished_at(last)
                since = parse_time(finished) if finished else time.time()
                wait = since + min(BACKOFF_BASE * 2 ** (count - 1), BACKOFF_MAX) - time.time()
            if wait > 0:
                waits.append(wait)
            else:
                ready.append(ix)
        if waits:
            self.queue.add_after(key, min(waits) + 0.05)
        return ready

    def _backoff(self, key: str, failed: int) -> float:
        """Seconds to wait before replacing failed pods: 10 s doubling per failure, at most 6 min."""
        if not failed or key not in self.last_failure:
            return 0.0
        wait = min(BACKOFF_BASE * 2 ** (failed - 1), BACKOFF_MAX)
        return max(0.0, self.last_failure[key] + wait - time.time())

    @staticmethod
    def _cond(typ: str, reason: str, message: str) -> dict:
        return {"type": typ, "status": "True", "lastProbeTime": _now(), "lastTransitionTime": _now(),
                "reason": reason, "message": message}

    async def _create(self, job: dict, index: int | None = None, pods: list[dict] = ()) -> None:
        """One pod from the template; in an Indexed Job, the pod for completion index `index`, with
        backoffLimitPerIndex also the index's failure counts so far."""
        tpl = orjson.loads(orjson.dumps(job["spec"].get("template") or {}))
        name = job["metadata"]["name"]
        if index is not None:
            tpl = indexes.indexed_template(tpl, name, index)
            if _per_index(job):
                tpl["metadata"]["annotations"].update(indexes.failure_count_annotations(
                    _failed_of_index(job, pods, index),
                    lambda p: podfailurepolicy.match(job["spec"].get("podFailurePolicy"), p).counts))
        meta = tpl.get("metadata") or {}
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": name + "-" if index is None else indexes.generate_name(name, index),
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {}, "finalizers": [JOB_TRACKING],
            "ownerReferences": [_owner_ref(job, "Job", "batch/v1")]},
            "spec": tpl.get("spec") or {}}
        pod = await self.client.create(PODS, body, job["metadata"]["namespace"])
        self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")


class TTLAfterFinishedController(Controller):
    """Deletes finished Jobs (Complete or Failed) ttlSecondsAfterFinished after they finished,
    in the foreground like upstream, so their pods go first."""
    name = "ttl-after-finished"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.jobs = self.factory.get(JOBS)
        self.jobs.add_handler(*self.enqueue_handlers())

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        finished = next((c.get("lastTransitionTime") for c in (job.get("status") or {}).get("conditions") or []
                         if c.get("type") in TERMINAL and c.get("status") == "True"), None)
        if ttl is None or finished is None:
            return
        left = parse_time(finished) + ttl - time.time()
        if left > 0:
            self.queue.add_after(key, left + 0.05)
            return
        try:
            await self.client.delete(JOBS, job["metadata"]["name"], job["metadata"]["namespace"],
                                     propagationPolicy="Foreground", preconditions={"uid": job["metadata"]["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

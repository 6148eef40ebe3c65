"""ReplicaSet controller: keep `replicas` matching pods, adopt orphans, report status."""
from __future__ import annotations

import asyncio
import time

from kubeling.api.resources import lookup
from kubeling.api.selectors import selector_from_object
from kubeling.client import ApiError, Client
from kubeling.client.leaderelection import parse_time

from .base import Controller, controller_of, namespace_terminating
from .expectations import Expectations, pod_key

PODS, RS = lookup("", "v1", "pods"), lookup("apps", "v1", "replicasets")
BURST_REPLICAS = 500            # replicaset.BurstReplicas: creates or deletes per sync
SLOW_START_INITIAL_BATCH = 1    # controller.SlowStartInitialBatchSize


def pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_active(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _deletion_rank(pod: dict) -> tuple:
    """Delete unscheduled, then pending, then not-ready, then ready pods (newest first within a rank)."""
    st = pod.get("status") or {}
    return (bool((pod.get("spec") or {}).get("nodeName")), st.get("phase") == "Running", pod_ready(pod),
            [-ord(ch) for ch in pod["metadata"].get("creationTimestamp", "")])


async def adopt(client: Client, pod: dict, ref: dict) -> None:
    """ControllerRefManager's adoption: the orphan gains the controller reference, unless it changed
    or went meanwhile (the resourceVersion precondition)."""
    try:
        await client.patch(PODS, pod["metadata"]["name"], {"metadata": {
            "ownerReferences": (pod["metadata"].get("ownerReferences") or []) + [ref],
            "resourceVersion": pod["metadata"]["resourceVersion"]}}, pod["metadata"]["namespace"])
    except ApiError as e:
        if not (e.not_found or e.conflict):
            raise


class ReplicaSetController(Controller):
    """Upstream's ReplicaSet controller: at most burstReplicas creates (in slow-start batches) or
    deletes per sync, then no further action until the informer has shown exactly those (expectations).
    The owner kind is a class attribute so the ReplicationController controller is this one too."""
    name = "replicaset"
    resource = RS
    kind, api_version = "ReplicaSet", "apps/v1"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.rs = self.factory.get(self.resource)
        self.pods = self.factory.get(PODS)
        self.pods.add_indexer("owner", lambda p: [r["uid"] for r in p["metadata"].get("ownerReferences") or []
                                                   if r.get("controller")])
        self.rs.add_handler(*self.enqueue_handlers())
        self.pods.add_handler(self.add_pod, self.update_pod, self.delete_pod)
        self.expectations = Expectations()

    @staticmethod
    def selector(rs: dict) -> dict | None:
        """The owner's pod selector as a metav1.LabelSelector."""
        return (rs.get("spec") or {}).get("selector")

    def _owner(self, pod: dict, ref: dict | None) -> str | None:
        """The key of the ReplicaSet a controller reference names, if that very ReplicaSet exists."""
        if ref is None or ref.get("kind") != self.kind:
            return None
        key = f"{pod['metadata'].get('namespace')}/{ref['name']}"
        rs = self.rs.get(key)
        return key if rs is not None and rs["metadata"].get("uid") == ref.get("uid") else None

    def _enqueue_matching(self, pod: dict) -> None:
        """An orphan: wake the ReplicaSets whose selector matches it, so one adopts it."""
        labels = pod["metadata"].get("labels") or {}
        for rs in self.rs.list(pod["metadata"].get("namespace")):
            sel = selector_from_object(self.selector(rs))
            if sel is not None and sel and sel.matches(labels):
                self.enqueue(rs)

    def add_pod(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):   # seen for the first time already terminating
            self.delete_pod(pod)
            return
        ref = controller_of(pod)
        if ref is None:
            self._enqueue_matching(pod)
            return
        key = self._owner(pod, ref)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def update_pod(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return   # a resync: nothing changed
        label_changed = old["metadata"].get("labels") != new["metadata"].get("labels")
        if new["metadata"].get("deletionTimestamp"):
            # graceful deletion: replace the pod now rather than when its kubelet is done with it
            self.delete_pod(new)
            if label_changed:
                self.delete_pod(old)
            return
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref and (old_key := self._owner(old, old_ref)) is not None:
            self.queue.add(old_key)
        if new_ref is not None:
            if (key := self._owner(new, new_ref)) is not None:
                self.queue.add(key)
        elif label_changed or old_ref != new_ref:
            self._enqueue_matching(new)

    def delete_pod(self, pod: dict) -> None:
        key = self._owner(pod, controller_of(pod))
        if key is not None:
            self.expectations.deletion_observed(key, pod_key(pod))
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        rs = self.rs.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)   # before reading the cache, as upstream
        ns, meta = rs["metadata"]["namespace"], rs["metadata"]
        sel = selector_from_object(self.selector(rs))
        owned = [p for p in self.pods.by_index("owner", meta["uid"])]
        if meta.get("deletionTimestamp") is None and sel:
            for p in self.pods.list(ns):
                if controller_of(p) is None and pod_active(p) and sel.matches(p["metadata"].get("labels")):
                    await self._adopt(rs, p)
                    owned.append(p)
        active = [p for p in owned if pod_active(p)]
        error: ApiError | None = None
        if needs_sync and meta.get("deletionTimestamp") is None:
            try:
                await self._manage(rs, key, active)
            except ApiError as e:   # status is still written, then the sync is retried
                error = e
        await self._status(rs, active)
        if error is not None:
            raise error

    async def _manage(self, rs: dict, key: str, active: list[dict]) -> None:
        """manageReplicas: create or delete at most BURST_REPLICAS pods, expecting exactly those."""
        diff = rs["spec"].get("replicas", 1) - len(active)
        if diff > 0:
            n = min(diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, n)
            created, error = await self._create(rs, n)
            if created < n:   # failed or skipped creates: the informer will never show them
                self.expectations.creation_observed(key, n - created)
            if error is not None:
                raise error
        elif diff < 0:
            victims = sorted(active, key=_deletion_rank)[: min(-diff, BURST_REPLICAS)]
            self.expectations.expect_deletions(key, [pod_key(p) for p in victims])
            errors = [e for e in await asyncio.gather(*(self._delete(rs, key, p) for p in victims)) if e is not None]
            if errors:
                raise errors[0]

    async def _adopt(self, rs: dict, pod: dict) -> None:
        await adopt(self.client, pod, {"apiVersion": self.api_version, "kind": self.kind,
                                       "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"],
                                       "controller": True, "blockOwnerDeletion": True})

    async def _create(self, rs: dict, n: int) -> tuple[int, ApiError | None]:
        """slowStartBatch: batches of 1, 2, 4, ... so a template that cannot be created (quota,
        validation) costs a few requests rather than n; the pods created and the first error."""
        tpl = rs["spec"].get("template") or {}
        meta = rs["metadata"]
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": meta["name"] + "-", "labels": (tpl.get("metadata") or {}).get("labels") or {},
                             "annotations": (tpl.get("metadata") or {}).get("annotations") or {},
                             "ownerReferences": [{"apiVersion": self.api_version, "kind": self.kind, "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
                "spec": tpl.get("spec") or {}}
        created, batch = 0, min(n, SLOW_START_INITIAL_BATCH)
        while batch > 0:
            errors = [e for e in await asyncio.gather(*(self._create_pod(rs, body) for _ in range(batch)))
                      if e is not None]
            created += batch - len(errors)
            if errors:
                return created, errors[0]
            batch = min(2 * batch, n - created)
        return created, None

    async def _create_pod(self, rs: dict, body: dict) -> ApiError | None:
        try:
            pod = await self.client.create(PODS, body, rs["metadata"]["namespace"])
        except ApiError as e:
            if namespace_terminating(e):   # nothing can be created there any more: not a failure
                return None
            self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e.status.get('message') or e}")
            return e
        self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        return None

    async def _delete(self, rs: dict, key: str, pod: dict) -> ApiError | None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(PODS, name, pod["metadata"]["namespace"])
        except ApiError as e:
            self.expectations.deletion_observed(key, pod_key(pod))   # the informer will not show this one
            if e.not_found:
                return None
            self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {e.status.get('message') or e}")
            return e
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    async def _status(self, rs: dict, active: list[dict]) -> None:
        spec = rs.get("spec") or {}
        tpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = spec.get("minReadySeconds", 0)
        now = time.time()

        def available(p: dict) -> bool:
            if not pod_ready(p):
                return False
            if not min_ready:
                return True
            since = next((parse_time(c.get("lastTransitionTime")) for c in p["status"]["conditions"]
                          if c.get("type") == "Ready"), now)
            if since + min_ready > now:
                self.queue.add_after(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}", since + min_ready - now + 0.1)
                return False
            return True
        status = {"replicas": len(active),
                  "fullyLabeledReplicas": sum(1 for p in active if all((p["metadata"].get("labels") or {}).get(k) == v
                                                                        for k, v in tpl_labels.items())),
                  "readyReplicas": sum(1 for p in active if pod_ready(p)),
                  "availableReplicas": sum(1 for p in active if available(p)),
                  "observedGeneration": rs["metadata"].get("generation", 1)}
        cur = rs.get("status") or {}
        if all(cur.get(k, 0) == v for k, v in status.items()):
            return
        try:
            await self.client.patch(self.resource, rs["metadata"]["name"], {"status": status}, rs["metadata"]["namespace"], "status")
        except ApiError as e:
            if not e.not_found:
                raise

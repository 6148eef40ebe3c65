"""ReplicaSet controller: keep `replicas` matching pods, adopt orphans, report status."""
from __future__ import annotations

import asyncio
import time

from kubeling.api.resources import lookup
from kubeling.api.selectors import selector_from_object
from kubeling.client import ApiError

from .base import Controller, controller_of

PODS, RS = lookup("", "v1", "pods"), lookup("apps", "v1", "replicasets")


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


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.rs = self.factory.get(RS)
        self.pods = self.factory.get(PODS)
        self.pods.add_indexer("owner", lambda p: [r["uid"] for r in p["metadata"].get("ownerReferences") or []
                                                   if r.get("controller")])
        self.rs.add_handler(*self.enqueue_handlers())
        self.pods.add_handler(self.on_pod, lambda old, new: (self.on_pod(old), self.on_pod(new)), self.on_pod)
        self.expect: dict[str, tuple[int, float]] = {}   # rs key -> (pending adds/deletes, deadline)

    def on_pod(self, pod: dict) -> None:
        ref = controller_of(pod)
        ns = pod["metadata"].get("namespace")
        if ref is not None and ref.get("kind") == "ReplicaSet":
            key = f"{ns}/{ref['name']}"
            if key in self.expect:
                n, deadline = self.expect[key]
                self.expect[key] = (n - 1, deadline)
            self.queue.add(key)
        elif ref is None:
            labels = pod["metadata"].get("labels") or {}
            for rs in self.rs.list(ns):
                sel = selector_from_object(rs["spec"].get("selector"))
                if sel is not None and sel and sel.matches(labels):
                    self.enqueue(rs)

    def _expectations_met(self, key: str) -> bool:
        n, deadline = self.expect.get(key, (0, 0))
        return n <= 0 or time.time() > deadline

    async def sync(self, key: str) -> None:
        rs = self.rs.get(key)
        if rs is None:
            self.expect.pop(key, None)
            return
        ns, meta, spec = rs["metadata"]["namespace"], rs["metadata"], rs.get("spec") or {}
        sel = selector_from_object(spec.get("selector"))
        owned = [p for p in self.pods.by_index("owner", meta["uid"])]
        if meta.get("deletionTimestamp") is None and sel:
            for p in self.pods.list(ns):
                if controller_of(p) is None and pod_active(p) and sel.matches(p["metadata"].get("labels")):
                    await self._adopt(rs, p)
                    owned.append(p)
        active = [p for p in owned if pod_active(p)]
        want = spec.get("replicas", 1)
        if meta.get("deletionTimestamp") is None and self._expectations_met(key):
            diff = want - len(active)
            if diff > 0:
                self.expect[key] = (diff, time.time() + 300)
                await self._create(rs, min(diff, 500))
            elif diff < 0:
                victims = sorted(active, key=_deletion_rank)[: -diff]
                self.expect[key] = (len(victims), time.time() + 300)
                await asyncio.gather(*(self._delete(rs, p) for p in victims))
        await self._status(rs, active)

    async def _adopt(self, rs: dict, pod: dict) -> None:
        ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
               "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], {"metadata": {
                "ownerReferences": (pod["metadata"].get("ownerReferences") or []) + [ref],
                "resourceVersion": pod["metadata"]["resourceVersion"]}}, pod["metadata"]["namespace"])
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def _create(self, rs: dict, n: int) -> None:
        """Create in slow-start batches (1, 2, 4, ...) so a failing template does not flood the API."""
        tpl = rs["spec"].get("template") or {}
        meta = rs["metadata"]
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": meta["name"] + "-", "labels": (tpl.get("metadata") or {}).get("labels") or {},
                             "annotations": (tpl.get("metadata") or {}).get("annotations") or {},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
                "spec": tpl.get("spec") or {}}
        done, batch = 0, 1
        key = f"{meta['namespace']}/{meta['name']}"
        while done < n:
            size = min(batch, n - done)
            results = await asyncio.gather(*(self.client.create(PODS, body, meta["namespace"]) for _ in range(size)),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, Exception)]
            for r in results:
                if not isinstance(r, Exception):
                    self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            done += size
            if errors:
                left, deadline = self.expect.get(key, (0, 0))
                self.expect[key] = (left - len(errors) - (n - done), deadline)
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {errors[0]}")
                raise errors[0]
            batch *= 2

    async def _delete(self, rs: dict, pod: dict) -> None:
        try:
            await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
            self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        except ApiError as e:
            if not e.not_found:
                raise

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
            from kubeling.client.leaderelection import parse_time
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
            await self.client.patch(RS, rs["metadata"]["name"], {"status": status}, rs["metadata"]["namespace"], "status")
        except ApiError as e:
            if not e.not_found:
                raise

"""The one controller pattern: shared informers feed keys into a work queue; workers call sync(key)."""
from __future__ import annotations

from typing import Callable

from kubeling.client import ApiError, Client
from kubeling.client.events import EventRecorder
from kubeling.client.informer import InformerFactory, obj_key
from kubeling.client.workqueue import WorkQueue, run_workers


# controller -> the event source kube-controller-manager's controllers report (`kubectl describe`'s From)
EVENT_SOURCES = {
    "replicaset": "replicaset-controller", "deployment": "deployment-controller",
    "daemonset": "daemonset-controller", "job": "job-controller",
    "horizontalpodautoscaling": "horizontal-pod-autoscaler", "nodelifecycle": "node-controller",
    "endpoint": "endpoint-controller", "garbagecollector": "garbage-collector-controller",
    "nodeipam": "cidrAllocator", "namespace": "namespace-controller", "serviceaccount": "serviceaccount-controller",
    "ttl-after-finished": "ttl-after-finished-controller", "persistentvolume-binder": "persistentvolume-controller",
    "replicationcontroller": "replication-controller", "statefulset": "statefulset-controller",
    "cronjob": "cronjob-controller", "disruption": "controllermanager", "resourcequota": "resourcequota-controller",
}


def namespace_terminating(e: ApiError) -> bool:
    """apierrors.HasStatusCause(err, NamespaceTerminatingCause): a create refused because the
    namespace is being deleted, which controllers do not retry."""
    causes = (e.status.get("details") or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


def controller_of(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


class Controller:
    name = "controller"
    workers = 4

    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, opts=None) -> None:
        self.client, self.factory, self.recorder, self.opts = client, factory, recorder, opts
        self.queue = WorkQueue(self.name)

    def enqueue(self, obj: dict) -> None:
        self.queue.add(obj_key(obj))

    def enqueue_handlers(self) -> tuple[Callable, Callable, Callable]:
        return (self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await run_workers(self.queue, self.sync, self.workers)

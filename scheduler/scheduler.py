"""The scheduling loop: a priority queue of unscheduled pods, node infos with assumed pods, binding."""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client
from kubeling.client.events import EventRecorder
from kubeling.client.informer import InformerFactory, obj_key
from kubeling.client.leaderelection import parse_time
from kubeling.component import TaskSet

from .framework import NodeInfo, node_allocatable, schedule
from .preemption import Candidate, preempt

log = logging.getLogger("scheduler")
PODS, NODES = lookup("", "v1", "pods"), lookup("", "v1", "nodes")
PDBS = lookup("policy", "v1", "poddisruptionbudgets")


def _same_but_status(old: dict, new: dict) -> bool:
    """upstream's isPodUpdated, negated: only status and bookkeeping metadata differ."""
    def strip(p: dict) -> tuple:
        meta = {k: v for k, v in p["metadata"].items() if k not in ("resourceVersion", "generation", "managedFields")}
        return meta, p.get("spec")
    return strip(old) == strip(new)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Scheduler:
    def __init__(self, client: Client, name: str = "default-scheduler", registry: CollectorRegistry | None = None,
                 bind_concurrency: int = 256) -> None:
        # upstream binds every pod in its own goroutine; bindings are latency-bound while the
        # apiserver is busy, so many may be in flight (32 -> 256 doubled binds/s during bulk creates)
        self.client, self.name = client, name
        self.factory = InformerFactory(client)
        self.pods = self.factory.get(PODS)
        self.nodes = self.factory.get(NODES)
        self.pdbs = self.factory.get(PDBS)
        self.recorder = EventRecorder(client, name)
        self.infos: dict[str, NodeInfo] = {}
        self.where: dict[str, str] = {}          # pod key -> node it is counted on (bound or assumed)
        self.assumed: set[str] = set()
        self.nominated: dict[str, dict[str, dict]] = {}   # node -> {pod key: preemptor waiting for room there}
        self.heap: list[tuple[int, int, str]] = []
        self.queued: set[str] = set()
        self.unschedulable: set[str] = set()
        self.seq = itertools.count()
        self.wake = asyncio.Event()
        self.start_index = 0
        self.bind_slots = asyncio.Semaphore(bind_concurrency)
        self.tasks = TaskSet(log)   # bindings, FailedScheduling reports, the unschedulable flush
        reg = registry or CollectorRegistry()
        self.m_attempts = Counter("scheduler_schedule_attempts_total", "Scheduling attempts by result.", ["result"],
                                  registry=reg)
        self.m_latency = Histogram("scheduler_pod_scheduling_duration_seconds",
                                   "Time from pod creation to binding.", registry=reg,
                                   buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))

    # ---- informer handlers ----------------------------------------------------
    def _needs_scheduling(self, pod: dict) -> bool:
        spec, meta = pod.get("spec") or {}, pod["metadata"]
        return not spec.get("nodeName") and not meta.get("deletionTimestamp") and \
            spec.get("schedulerName", "default-scheduler") == self.name and \
            (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")

    def _count(self, key: str, pod: dict | None) -> None:
        prev = self.where.pop(key, None)
        if prev and prev in self.infos:
            self.infos[prev].remove(key)
        if pod is None:
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            self.where[key] = node
            if node in self.infos:
                self.infos[node].add(key, pod)

    def _nominate(self, key: str, pod: dict | None, node: str | None) -> None:
        for waiting in self.nominated.values():
            waiting.pop(key, None)
        if pod is not None and node:
            self.nominated.setdefault(node, {})[key] = pod
        self.nominated = {n: w for n, w in self.nominated.items() if w}

    def on_pod(self, *args: dict) -> None:
        pod = args[-1]
        key = obj_key(pod)
        self._nominate(key, pod, None if (pod.get("spec") or {}).get("nodeName") or pod["metadata"].get("deletionTimestamp")
                       else (pod.get("status") or {}).get("nominatedNodeName"))
        if (pod.get("spec") or {}).get("nodeName"):
            self.assumed.discard(key)
            self._count(key, pod)
        elif key not in self.assumed:
            self._count(key, None)
            if len(args) == 2 and key in self.unschedulable and _same_but_status(args[0], pod):
                return   # our own FailedScheduling/nomination write: wait for a change that may help
            if self._needs_scheduling(pod):
                self.enqueue(pod)

    def on_pod_delete(self, pod: dict) -> None:
        key = obj_key(pod)
        self._nominate(key, None, None)
        self.assumed.discard(key)
        self._count(key, None)
        self.unschedulable.discard(key)
        self.retry_unschedulable()

    def on_node(self, *args: dict) -> None:
        node = args[-1]
        name = node["metadata"]["name"]
        info = self.infos.get(name)
        if info is None:
            info = self.infos[name] = NodeInfo(node, node_allocatable(node))
            for key, where in self.where.items():
                if where == name and (p := self.pods.get(key)) is not None:
                    info.add(key, p)
        else:
            info.set_node(node)
        self.retry_unschedulable()

    def on_node_delete(self, node: dict) -> None:
        self.infos.pop(node["metadata"]["name"], None)

    def enqueue(self, pod: dict) -> None:
        key = obj_key(pod)
        if key in self.queued:
            return
        self.queued.add(key)
        self.unschedulable.discard(key)
        prio = (pod.get("spec") or {}).get("priority") or 0
        heapq.heappush(self.heap, (-prio, next(self.seq), key))
        self.wake.set()

    def retry_unschedulable(self) -> None:
        for key in list(self.unschedulable):
            pod = self.pods.get(key)
            if pod is not None and self._needs_scheduling(pod):
                self.enqueue(pod)
        self.unschedulable.clear()

    # ---- the loop ---------------------------------------------------------------
    async def run(self) -> None:
        self.pods.add_handler(self.on_pod, self.on_pod, self.on_pod_delete)
        self.nodes.add_handler(self.on_node, self.on_node, self.on_node_delete)
        self.factory.start()
        await self.factory.wait_synced()
        log.info("scheduler %s: caches synced (%d nodes, %d pods)", self.name, len(self.infos), len(self.pods.store))
        self.tasks.spawn(self._flush_unschedulable(), "retrying unschedulable pods")
        try:
            while True:
                while not self.heap:
                    self.wake.clear()
                    await self.wake.wait()
                _, _, key = heapq.heappop(self.heap)
                self.queued.discard(key)
                pod = self.pods.get(key)
                if pod is None or not self._needs_scheduling(pod) or key in self.assumed:
                    continue
                self.schedule_one(key, pod)
                if len(self.heap) % 64 == 0:
                    await asyncio.sleep(0)   # let informer events and binds run
        finally:   # a scheduler that lost its lease binds nothing more
            self.tasks.cancel()

    async def _flush_unschedulable(self) -> None:
        while True:
            await asyncio.sleep(30)
            self.retry_unschedulable()
            self.requeue_lost()

    def requeue_lost(self) -> None:
        """Queue pods that need scheduling but are neither queued, assumed (a bind in flight) nor
        waiting as unschedulable: the safety net of upstream's periodic queue flushes. Seen needed in
        a 30,000-pod run, where a few pods whose bind failed under load were never tried again."""
        for key, pod in list(self.pods.store.items()):
            if key not in self.queued and key not in self.assumed and key not in self.unschedulable \
                    and self._needs_scheduling(pod):
                log.info("scheduler %s: %s was waiting outside the queue; queued again", self.name, key)
                self.enqueue(pod)

    def schedule_one(self, key: str, pod: dict) -> None:
        nodes = list(self.infos.values())
        decision = schedule(pod, nodes, self.start_index, self.nominated)
        self.start_index = (self.start_index + 1) % max(1, len(nodes))
        if decision.node is None:
            self.m_attempts.labels("unschedulable").inc()
            self.unschedulable.add(key)
            message, nominated = decision.message, None
            if decision.fit_error:
                outcome = preempt(pod, nodes, decision.failed, self.pdbs.list())
                if outcome.candidate is not None:
                    message, nominated = decision.fit_error, outcome.candidate.node
                    self._nominate(key, pod, nominated)
                    self.tasks.spawn(self._preempt(pod, outcome.candidate), f"preempting for {key}")
                else:
                    message = f"{decision.fit_error} preemption: {outcome.message}"
            self.tasks.spawn(self._unschedulable(pod, message, nominated), f"reporting {key} unschedulable")
            return
        self.m_attempts.labels("scheduled").inc()
        self.assumed.add(key)
        self._nominate(key, None, None)
        assumed = {**pod, "spec": {**pod["spec"], "nodeName": decision.node}}
        self._count(key, assumed)
        self.tasks.spawn(self._bind(key, pod, decision.node), f"binding {key} to {decision.node}")

    async def _bind(self, key: str, pod: dict, node: str) -> None:
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        async with self.bind_slots:
            try:
                await self.client.create(PODS, body, meta["namespace"], meta["name"], "binding")
            except ApiError as e:
                log.warning("binding %s to %s failed: %s", key, node, e)
                self.assumed.discard(key)
                self._count(key, None)
                if not e.not_found:
                    current = self.pods.get(key)
                    if current is not None and self._needs_scheduling(current):
                        await asyncio.sleep(1)
                        self.enqueue(current)
                return
        self.recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")
        created = meta.get("creationTimestamp")
        if created:
            self.m_latency.observe(max(0.0, time.time() - parse_time(created)))

    async def _preempt(self, pod: dict, c: Candidate) -> None:
        """Evict the victims as upstream's prepareCandidate does: each gets the DisruptionTarget
        condition, then a graceful delete, then a Preempted event."""
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": f"{self.name}: preempting to accommodate a higher priority pod",
                "lastProbeTime": None, "lastTransitionTime": _now()}
        for victim in c.victims:
            meta = victim["metadata"]
            conds = [x for x in (victim.get("status") or {}).get("conditions") or [] if x.get("type") != cond["type"]]
            try:
                await self.client.patch(PODS, meta["name"], {"status": {"conditions": conds + [cond]}},
                                        meta["namespace"], "status")
                await self.client.delete(PODS, meta["name"], meta["namespace"])
            except ApiError as e:
                if not e.not_found:
                    log.warning("preempting %s for %s: %s", obj_key(victim), obj_key(pod), e)
                    continue
            self.recorder.event(victim, "Normal", "Preempted",
                                f"Preempted by pod {pod['metadata'].get('uid')} on node {c.node}")

    async def _unschedulable(self, pod: dict, message: str, nominated: str | None = None) -> None:
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                "lastProbeTime": None, "lastTransitionTime": _now()}
        conds = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        status: dict = {"conditions": conds + [cond]}
        if nominated:
            status["nominatedNodeName"] = nominated
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], {"status": status},
                                    pod["metadata"]["namespace"], "status")
        except ApiError as e:
            log.debug("status of unschedulable pod %s: %s", obj_key(pod), e)

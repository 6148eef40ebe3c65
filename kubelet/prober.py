"""Probes in the kubelet core, as upstream's prober manager runs them: one worker task per container
and probe type (startup, readiness, liveness), ticking every periodSeconds (readiness also when a
status is built while not ready), probing only what upstream probes (a running, started container,
after initialDelaySeconds; startup probes until started) and turning runs of results into a result
per container id once successThreshold or failureThreshold is reached. A changed result queues a
sync of the pod: readiness and startup then show in the status, a liveness or startup failure kills
the container (podsync.py). Probes run handlers.py's actions, never blocking the event loop.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime
from typing import Callable

from kubeling.component import TaskSet

from .handlers import FAILURE, SUCCESS, WARNING, Handlers, ProbeError
from .status import ProbeView

log = logging.getLogger("kubelet.prober")
LIVENESS, READINESS, STARTUP = "Liveness", "Readiness", "Startup"
FIELDS = {STARTUP: "startupProbe", READINESS: "readinessProbe", LIVENESS: "livenessProbe"}
UNKNOWN = "unknown"
INITIAL = {READINESS: FAILURE, LIVENESS: SUCCESS, STARTUP: UNKNOWN}   # a new container's result
MAX_PROBE_RETRIES = 3        # upstream's maxProbeRetries: a probe that errors is tried again at once
TERMINAL = ("Succeeded", "Failed")
Event = Callable[[dict, str, str, str], None]     # (pod, type, reason, message)


class Results:
    """The last result of one probe type per container id (upstream's results.Manager); a change
    queues a sync of the pod."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self.on_change = on_change
        self.values: dict[str, str] = {}

    def get(self, container_id: str) -> str | None:
        return self.values.get(container_id)

    def set(self, container_id: str, value: str, uid: str, notify: bool = True) -> None:
        if self.values.get(container_id) != value:
            self.values[container_id] = value
            if notify:
                self.on_change(uid)

    def remove(self, container_id: str) -> None:
        self.values.pop(container_id, None)


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


class ProbeWorker:
    """One probe of one container: when to probe (check) and what a run of results means (record),
    as upstream's worker.doProbe."""

    def __init__(self, kind: str, container: str, spec: dict, results: Results) -> None:
        self.kind, self.container, self.spec, self.results = kind, container, spec, results
        self.container_id = ""       # the runtime id probed now
        self.on_hold = False         # a liveness/startup failure: wait for the next container
        self.last: str | None = None
        self.run = 0                 # how many times in a row `last` came
        self.stopped = False
        self.trigger = asyncio.Event()

    def check(self, pod: dict | None, status: dict | None, now: float) -> bool | None:
        """Before a probe: False to stop for good, True to wait for the next tick, None to probe."""
        if pod is None or status is None:
            return True
        if status.get("phase") in TERMINAL:
            return False
        c = next((s for s in status.get("containerStatuses") or [] if s.get("name") == self.container), None)
        if c is None or not c.get("containerID"):
            return True
        uid, cid = pod["metadata"]["uid"], c["containerID"].split("://", 1)[-1]
        if cid != self.container_id:
            if self.container_id:
                self.results.remove(self.container_id)
            self.container_id, self.on_hold = cid, False
            self.results.set(cid, INITIAL[self.kind], uid, notify=False)
        if self.on_hold:
            return True
        state = c.get("state") or {}
        if "running" not in state:
            self.results.set(cid, FAILURE, uid)
            return "terminated" not in state or (pod.get("spec") or {}).get("restartPolicy") != "Never"
        if pod["metadata"].get("deletionTimestamp") and self.kind in (LIVENESS, STARTUP):
            self.results.set(cid, SUCCESS, uid)     # a quiet shutdown
            return False
        if int(now - _seconds(state["running"]["startedAt"])) < int(self.spec.get("initialDelaySeconds") or 0):
            return True
        if c.get("started"):
            return True if self.kind == STARTUP else None
        return None if self.kind == STARTUP else True

    def record(self, result: str, uid: str) -> None:
        """A probe's result counts once it came successThreshold (failureThreshold) times in a row."""
        if result == self.last:
            self.run += 1
        else:
            self.last, self.run = result, 1
        if (result == FAILURE and self.run < int(self.spec.get("failureThreshold") or 3)) or \
                (result == SUCCESS and self.run < int(self.spec.get("successThreshold") or 1)):
            return
        self.results.set(self.container_id, result, uid)
        if self.kind in (LIVENESS, STARTUP) and result == FAILURE:
            self.on_hold, self.run = True, 0      # it will be restarted: probe the next one


class ProbeManager:
    """The workers of one node's pods and their results."""

    def __init__(self, handlers: Handlers, on_change: Callable[[str], None], event: Event) -> None:
        self.handlers, self.event = handlers, event
        self.results = {kind: Results(on_change) for kind in FIELDS}
        self.workers: dict[tuple[str, str, str], ProbeWorker] = {}     # (pod uid, container, kind)
        self.pods: dict[str, dict] = {}
        self.statuses: dict[str, dict] = {}       # the status each pod's last sync built
        self.tasks = TaskSet(log)
        self.started = time.monotonic()

    def add_pod(self, pod: dict) -> None:
        """Workers for every probe of the pod's containers not yet probed (upstream's AddPod)."""
        uid = pod["metadata"]["uid"]
        self.pods[uid] = pod
        for c in (pod.get("spec") or {}).get("containers") or []:
            for kind, field in FIELDS.items():
                key = (uid, c["name"], kind)
                if c.get(field) and key not in self.workers:
                    worker = self.workers[key] = ProbeWorker(kind, c["name"], c[field], self.results[kind])
                    meta = pod["metadata"]
                    self.tasks.spawn(self._run(key, worker), f"{kind} probe of {meta.get('namespace')}/{meta['name']}"
                                                             f"/{c['name']}")

    def set_status(self, pod: dict, status: dict) -> None:
        """What the pod's workers probe against: the pod and the status its sync just built."""
        uid = pod["metadata"]["uid"]
        self.pods[uid], self.statuses[uid] = pod, status

    def remove_pod(self, uid: str) -> None:
        """Stop the pod's workers (deleted or gone); each finishes a probe under way first."""
        for key, worker in list(self.workers.items()):
            if key[0] == uid:
                worker.stopped = True
                worker.trigger.set()
                del self.workers[key]
        self.pods.pop(uid, None)
        self.statuses.pop(uid, None)

    def view(self, uid: str) -> ProbeView:
        """started and ready of a running container as its probes say (upstream's UpdatePodStatus);
        a readiness probe not yet successful is run at once."""
        def probe(name: str, container_id: str) -> tuple[bool, bool]:
            result = self.results[STARTUP].get(container_id)
            started = result == SUCCESS if result is not None else (uid, name, STARTUP) not in self.workers
            if not started:
                return False, False
            if self.results[READINESS].get(container_id) == SUCCESS:
                return True, True
            worker = self.workers.get((uid, name, READINESS))
            if worker is None:
                return True, True
            worker.trigger.set()
            return True, False
        return probe

    def failed(self, container_id: str) -> str:
        """"liveness" or "startup" when that probe failed the container (it is to be killed), else ""."""
        if self.results[LIVENESS].get(container_id) == FAILURE:
            return "liveness"
        if self.results[STARTUP].get(container_id) == FAILURE:
            return "startup"
        return ""

    async def _run(self, key: tuple[str, str, str], worker: ProbeWorker) -> None:
        """Probe every periodSeconds (a ticker's phase kept), or at once when triggered; a worker
        made just after the kubelet started waits a random part of a period first, as upstream's."""
        loop = asyncio.get_running_loop()
        period = float(worker.spec.get("periodSeconds") or 10)
        if time.monotonic() - self.started < period:
            await asyncio.sleep(random.random() * period)
        tick = loop.time() + period
        try:
            while not worker.stopped:
                uid = key[0]
                keep = worker.check(self.pods.get(uid), self.statuses.get(uid), time.time())
                if keep is None:
                    keep = True
                    result = await self._probe(uid, worker)
                    if result is not None and not worker.stopped:
                        worker.record(result, uid)
                if not keep:
                    break
                now = loop.time()
                if now >= tick:            # a tick came while probing: go again at once
                    while tick <= now:
                        tick += period
                    continue
                try:
                    async with asyncio.timeout_at(tick):
                        await worker.trigger.wait()
                except TimeoutError:
                    tick += period
                worker.trigger.clear()
        finally:
            if self.workers.get(key) is worker:
                del self.workers[key]
            if worker.container_id:
                worker.results.remove(worker.container_id)

    async def _probe(self, uid: str, worker: ProbeWorker) -> str | None:
        """One probe with upstream's retries and events: SUCCESS or FAILURE, None when it errored."""
        pod, status = self.pods[uid], self.statuses[uid]
        container = next(c for c in pod["spec"]["containers"] if c["name"] == worker.container)
        error: ProbeError | None = None
        for _ in range(MAX_PROBE_RETRIES):
            try:
                result, output = await self.handlers.probe(worker.spec, container, status.get("podIP", ""),
                                                           worker.container_id)
                break
            except ProbeError as e:
                error = e
        else:
            self.event(pod, "Warning", "Unhealthy",
                       f"{worker.kind} probe errored and resulted in unknown state: {error}")
            return None
        if result == WARNING:
            self.event(pod, "Warning", "ProbeWarning", f"{worker.kind} probe warning: {output}")
            return SUCCESS
        if result == FAILURE:
            self.event(pod, "Warning", "Unhealthy", f"{worker.kind} probe failed: {output}")
        return result

"""The container-runtime interface the pod-sync loop drives, and the hollow runtime (simulated containers).

The Docker runtime (a later issue) implements the same interface.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

ANN_EXIT = "hollow.kubeling.io/exit-code"      # containers exit with this code after starting
ANN_NOT_READY = "hollow.kubeling.io/not-ready"  # "true": containers never become ready
ANN_READY_DELAY = "hollow.kubeling.io/ready-delay"  # seconds until ready (default: the kubelet's flag)
ANN_EXIT_AFTER = "hollow.kubeling.io/exit-after"    # seconds a container runs before it exits (default 0)
BACKOFF_BASE, BACKOFF_MAX = 10.0, 300.0             # the kubelet's CrashLoopBackOff: 10 s doubling to 5 min


@dataclass
class ContainerState:
    name: str
    image: str
    started: float
    ready_at: float
    exit_code: int | None = None
    restarts: int = 0
    run_for: float = 0.0

    def at(self, t: float, restart_policy: str) -> "ContainerView":
        """Where this simulated container is at time t: running, exited for good, or waiting in
        CrashLoopBackOff between restarts (restartPolicy Always, or OnFailure after a failure).
        The first restart is immediate, then 10 s doubling to 5 min, as the kubelet does."""
        restarts = restart_policy == "Always" or (restart_policy == "OnFailure" and self.exit_code not in (None, 0))
        start, k, last = self.started, 0, None
        while True:
            exited = start + self.run_for if self.exit_code is not None else float("inf")
            if t < exited:
                ready = self.ready_at if self.ready_at == float("inf") else start + (self.ready_at - self.started)
                return ContainerView("running", start, k, last, ready, exited if exited != float("inf") else None)
            if not restarts:
                return ContainerView("terminated", start, k, (start, exited), float("inf"))
            backoff = min(BACKOFF_BASE * 2 ** (k - 1), BACKOFF_MAX) if k else 0.0
            if t < exited + backoff:
                return ContainerView("waiting", start, k, (start, exited), float("inf"), exited + backoff, backoff)
            last, start, k = (start, exited), exited + backoff, k + 1


@dataclass
class ContainerView:
    state: str                          # running | waiting (CrashLoopBackOff) | terminated
    started: float                      # start of the current or last run
    restarts: int
    last: tuple[float, float] | None    # (started, finished) of the last run that ended
    ready_at: float
    next_change: float | None = None
    backoff: float = 0.0


@dataclass
class PodState:
    uid: str
    containers: list[ContainerState] = field(default_factory=list)
    ip: str = ""


class Runtime:
    async def start_pod(self, pod: dict, ip: str) -> PodState:
        raise NotImplementedError

    async def recover_pod(self, pod: dict) -> PodState | None:
        """The pod's containers if this runtime already runs them (a restarted kubelet adopts them
        instead of starting them again), else None."""
        return None

    async def kill_pod(self, state: PodState) -> None:
        raise NotImplementedError


class HollowRuntime(Runtime):
    """Containers that 'run' instantly; readiness, exits and never-ready are driven by annotations."""

    def __init__(self, ready_delay: float = 0.0) -> None:
        self.ready_delay = ready_delay

    async def recover_pod(self, pod: dict) -> PodState | None:
        """Simulated containers live as long as the pod's reported status: they began at
        status.startTime, so a restarted kubelet reports the same runs, readiness and restarts."""
        status = pod.get("status") or {}
        if not status.get("containerStatuses") or not status.get("podIP") or not status.get("startTime"):
            return None
        from datetime import datetime
        started = datetime.fromisoformat(status["startTime"]).timestamp()
        return await self.start_pod(pod, status["podIP"], started)

    async def start_pod(self, pod: dict, ip: str, now: float | None = None) -> PodState:
        ann = pod["metadata"].get("annotations") or {}
        now = time.time() if now is None else now
        delay = float(ann.get(ANN_READY_DELAY, self.ready_delay))
        never = ann.get(ANN_NOT_READY) == "true"
        exit_code = int(ann[ANN_EXIT]) if ann.get(ANN_EXIT, "").lstrip("-").isdigit() else None
        run_for = float(ann.get(ANN_EXIT_AFTER, 0) or 0)
        state = PodState(pod["metadata"]["uid"], ip=ip)
        for c in (pod.get("spec") or {}).get("containers") or []:
            state.containers.append(ContainerState(c["name"], c.get("image", ""), now,
                                                   float("inf") if never else now + delay, exit_code, run_for=run_for))
        return state

    async def kill_pod(self, state: PodState) -> None:
        return None

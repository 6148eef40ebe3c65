"""The container-runtime interface the pod-sync loop drives, and the hollow runtime (simulated containers).

The Docker runtime (a later issue) implements the same interface.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

ANN_EXIT = "hollow.kubeling.io/exit-code"      # containers exit with this code after starting
ANN_NOT_READY = "hollow.kubeling.io/not-ready"  # "true": containers never become ready
ANN_READY_DELAY = "hollow.kubeling.io/ready-delay"  # seconds until ready (default: the kubelet's flag)


@dataclass
class ContainerState:
    name: str
    image: str
    started: float
    ready_at: float
    exit_code: int | None = None
    restarts: int = 0


@dataclass
class PodState:
    uid: str
    containers: list[ContainerState] = field(default_factory=list)
    ip: str = ""


class Runtime:
    async def start_pod(self, pod: dict, ip: str) -> PodState:
        raise NotImplementedError

    async def kill_pod(self, state: PodState) -> None:
        raise NotImplementedError


class HollowRuntime(Runtime):
    """Containers that 'run' instantly; readiness, exits and never-ready are driven by annotations."""

    def __init__(self, ready_delay: float = 0.0) -> None:
        self.ready_delay = ready_delay

    async def start_pod(self, pod: dict, ip: str) -> PodState:
        ann = pod["metadata"].get("annotations") or {}
        now = time.time()
        delay = float(ann.get(ANN_READY_DELAY, self.ready_delay))
        never = ann.get(ANN_NOT_READY) == "true"
        exit_code = int(ann[ANN_EXIT]) if ann.get(ANN_EXIT, "").lstrip("-").isdigit() else None
        state = PodState(pod["metadata"]["uid"], ip=ip)
        for c in (pod.get("spec") or {}).get("containers") or []:
            state.containers.append(ContainerState(c["name"], c.get("image", ""), now,
                                                   float("inf") if never else now + delay, exit_code))
        return state

    async def kill_pod(self, state: PodState) -> None:
        return None

"""The hollow runtime: simulated sandboxes and containers, for scale tests (kubemark's role).

Containers 'run' in memory. Annotations on the pod steer them; everything else (restarts,
CrashLoopBackOff, status) is the kubelet core's, exactly as with Docker. State lives in this
process only, so a restarted kubelet rebuilds it from the pods' reported status (`recover`).
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime

from .runtime import (CREATED, EXITED, RUNNING, ContainerConfig, ContainerStatus, PodRuntimeStatus, Runtime,
                      SandboxConfig, SandboxStatus)

ANN_EXIT = "hollow.kubeling.io/exit-code"      # containers exit with this code after starting
ANN_NOT_READY = "hollow.kubeling.io/not-ready"  # "true": containers never become ready
ANN_READY_DELAY = "hollow.kubeling.io/ready-delay"  # seconds until ready (default: the kubelet's flag)
ANN_EXIT_AFTER = "hollow.kubeling.io/exit-after"    # seconds a container runs before it exits (default 0)
STOPPED_EXIT_CODE = 137                             # what a container stopped by the kubelet reports


@dataclass
class Script:
    """How a simulated container behaves once started, read from the pod's annotations."""
    exit_code: int | None
    run_for: float
    ready_delay: float      # inf: never ready

    @classmethod
    def of(cls, pod: dict, container: str, default_delay: float) -> "Script":
        """Init containers complete (exit 0) unless the exit-code annotation says otherwise."""
        ann = pod["metadata"].get("annotations") or {}
        code = ann.get(ANN_EXIT, "")
        init = any(c["name"] == container for c in (pod.get("spec") or {}).get("initContainers") or [])
        exit_code = int(code) if code.lstrip("-").isdigit() else (0 if init else None)
        return cls(exit_code, float(ann.get(ANN_EXIT_AFTER) or 0),
                   float("inf") if ann.get(ANN_NOT_READY) == "true" else float(ann.get(ANN_READY_DELAY, default_delay)))


class HollowRuntime(Runtime):
    type = "hollow"
    host_volumes = False
    probes = False          # readiness comes from the annotations; probes and hooks would reach nothing

    def __init__(self, node_name: str, ready_delay: float = 0.0) -> None:
        super().__init__()
        self.node, self.ready_delay = node_name, ready_delay
        self.cidr: ipaddress.IPv4Network | None = None
        self.fallback_base = int(hashlib.sha1(node_name.encode()).hexdigest()[:4], 16) % 250
        self.pods: dict[str, PodRuntimeStatus] = {}
        self.scripts: dict[str, Script] = {}     # container id -> its behaviour
        self.owner: dict[str, str] = {}          # container or sandbox id -> pod uid

    def node_info(self) -> dict:
        return {"containerRuntimeVersion": "hollow://1.0", "kernelVersion": "hollow", "osImage": "kubeling hollow node",
                "machineID": self.node, "systemUUID": self.node, "bootID": self.node}

    async def update_pod_cidr(self, cidr: str) -> None:
        self.cidr = ipaddress.ip_network(cidr, strict=False) if cidr else None

    def _ip(self, uid: str) -> str:
        """A stable address inside the node's podCIDR (or a per-node /24 before IPAM assigned one)."""
        h = int(hashlib.sha1(uid.encode()).hexdigest()[:8], 16)
        if self.cidr is not None:
            return str(self.cidr.network_address + 2 + h % max(1, self.cidr.num_addresses - 3))
        return f"10.244.{self.fallback_base}.{2 + h % 250}"

    # ---- state ------------------------------------------------------------------
    def _advance(self, c: ContainerStatus) -> None:
        """Exit a running container whose script says it has ended (lazily, when looked at)."""
        script = self.scripts.get(c.id)
        if c.state == RUNNING and script is not None and script.exit_code is not None \
                and time.time() >= c.started_at + script.run_for:
            c.state, c.finished_at, c.exit_code = EXITED, c.started_at + script.run_for, script.exit_code
            c.reason = "Completed" if script.exit_code == 0 else "Error"

    async def list_pods(self) -> dict[str, PodRuntimeStatus]:
        return {uid: st for uid in list(self.pods) if (st := await self.pod_status(uid)) is not None}

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        st = self.pods.get(uid)
        if st is None:
            return None
        for c in st.containers:
            self._advance(c)
        return PodRuntimeStatus(st.uid, st.name, st.namespace, list(st.sandboxes), list(st.containers))

    def _pod(self, pod: dict) -> PodRuntimeStatus:
        meta = pod["metadata"]
        st = self.pods.get(meta["uid"])
        if st is None:
            st = self.pods[meta["uid"]] = PodRuntimeStatus(meta["uid"], meta["name"], meta.get("namespace", ""))
        return st

    async def recover(self, pod: dict) -> None:
        """Rebuild the pod from its reported status: the same container ids, start times and restart
        counts, so a restarted kubelet reports what it reported before."""
        status, uid = pod.get("status") or {}, pod["metadata"]["uid"]
        statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        if uid in self.pods or not status.get("podIP") or not statuses:
            return
        st = self._pod(pod)
        sandbox = f"{uid[:8]}-sandbox-0"
        st.sandboxes.append(SandboxStatus(sandbox, 0, True, status["podIP"], _t(status.get("startTime"))))
        self.owner[sandbox] = uid
        for cs in statuses:
            script = Script.of(pod, cs["name"], self.ready_delay)
            run = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated")
            cid = (cs.get("containerID") or "").removeprefix("hollow://")
            if "running" in run and cid:
                started = _t(run["running"].get("startedAt"))
                c = ContainerStatus(cid, cs["name"], cs.get("restartCount", 0), RUNNING, cs.get("image", ""),
                                    cs.get("imageID", ""), sandbox, created_at=started, started_at=started,
                                    ready_at=started + script.ready_delay)
                self.scripts[cid] = script
                self._announce_exit(c, uid)
            elif "terminated" in run:
                c = _exited(run["terminated"], cs, cs.get("restartCount", 0), sandbox)
            elif last:
                c = _exited(last, cs, cs.get("restartCount", 0), sandbox)
                last = None
            else:
                continue
            self.owner[c.id] = uid
            st.containers.append(c)
            if last and c.attempt > 0:
                st.containers.append(_exited(last, cs, c.attempt - 1, sandbox))
        st.containers.sort(key=lambda c: -c.created_at)

    # ---- calls ------------------------------------------------------------------
    async def image_present(self, image: str) -> bool:
        return True

    def can_pull(self, image: str) -> bool:
        return True

    async def pull_image(self, image: str) -> None:
        return None

    async def image_user(self, image: str) -> tuple[int | None, str]:
        return None, ""      # a simulated image names no user: it runs as root, as upstream's fake runtime's

    async def run_sandbox(self, pod: dict, config: SandboxConfig, attempt: int) -> str:
        st = self._pod(pod)
        sid = f"{st.uid[:8]}-sandbox-{attempt}"
        st.sandboxes.insert(0, SandboxStatus(sid, attempt, True, self._ip(st.uid), time.time()))
        self.owner[sid] = st.uid
        return sid

    async def stop_sandbox(self, sandbox_id: str) -> None:
        st = self.pods.get(self.owner.get(sandbox_id, ""))
        for s in st.sandboxes if st else ():
            if s.id == sandbox_id:
                s.ready = False

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self._remove(sandbox_id)

    def _remove(self, id_: str) -> None:
        """Forget a sandbox or container; a pod with neither left is gone from the runtime."""
        uid = self.owner.pop(id_, "")
        self.scripts.pop(id_, None)
        st = self.pods.get(uid)
        if st is None:
            return
        st.sandboxes = [s for s in st.sandboxes if s.id != id_]
        st.containers = [c for c in st.containers if c.id != id_]
        if not st.sandboxes and not st.containers:
            del self.pods[uid]

    async def create_container(self, sandbox_id: str, pod: dict, config: ContainerConfig) -> str:
        st = self._pod(pod)
        cid = f"{st.uid[:8]}-{config.name}-{config.attempt}"
        st.containers.insert(0, ContainerStatus(cid, config.name, config.attempt, CREATED, config.image,
                                                f"hollow://{config.image}", sandbox_id, config.spec_hash,
                                                created_at=time.time()))
        self.scripts[cid] = Script.of(pod, config.name, self.ready_delay)
        self.owner[cid] = st.uid
        return cid

    def _find(self, container_id: str) -> ContainerStatus | None:
        st = self.pods.get(self.owner.get(container_id, ""))
        return next((c for c in st.containers if c.id == container_id), None) if st else None

    async def start_container(self, container_id: str) -> None:
        c = self._find(container_id)
        if c is None:
            raise KeyError(container_id)
        script = self.scripts[container_id]
        c.state, c.started_at = RUNNING, time.time()
        c.ready_at = c.started_at + script.ready_delay
        self._announce_exit(c, self.owner[container_id])

    def _announce_exit(self, c: ContainerStatus, uid: str) -> None:
        """Tell the kubelet when a scripted exit happens, as a runtime's event stream would."""
        script = self.scripts[c.id]
        if script.exit_code is not None:
            delay = max(0.0, c.started_at + script.run_for - time.time())
            asyncio.get_running_loop().call_later(delay, self.on_change, uid)

    async def stop_container(self, container_id: str, grace: int) -> None:
        c = self._find(container_id)
        if c is not None:
            self._advance(c)
            if c.state in (RUNNING, CREATED):
                c.state, c.finished_at, c.exit_code, c.reason = EXITED, time.time(), STOPPED_EXIT_CODE, "Error"

    async def remove_container(self, container_id: str) -> None:
        self._remove(container_id)


def _t(stamp: str | None) -> float:
    return datetime.fromisoformat(stamp).timestamp() if stamp else time.time()


def _exited(term: dict, cs: dict, attempt: int, sandbox: str) -> ContainerStatus:
    cid = (term.get("containerID") or cs.get("containerID") or "").removeprefix("hollow://") \
        or f"recovered-{cs['name']}-{attempt}"
    started = _t(term.get("startedAt"))
    return ContainerStatus(cid, cs["name"], attempt, EXITED, cs.get("image", ""), cs.get("imageID", ""), sandbox,
                           created_at=started, started_at=started, finished_at=_t(term.get("finishedAt")),
                           exit_code=term.get("exitCode", 0), reason=term.get("reason", ""))

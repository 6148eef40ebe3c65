"""One node's kubelet: registration, Lease heartbeats, node status (capacity, nodeInfo from the
runtime, conditions) and the pod CIDR handed to the runtime; its pods are the PodSyncer's."""
from __future__ import annotations

import asyncio
import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client
from kubeling.client.leaderelection import micro_now
from kubeling.component import TaskSet

from .podsync import PodSyncer
from .runtime import Runtime, RuntimeFailure, RuntimeUnavailable

log = logging.getLogger("kubelet")
PODS, NODES, LEASES = lookup("", "v1", "pods"), lookup("", "v1", "nodes"), lookup("coordination.k8s.io", "v1", "leases")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _host_id(path: str, default: str) -> str:
    try:
        return Path(path).read_text().strip() or default
    except OSError:
        return default


class NodeAgent:
    def __init__(self, client: Client, name: str, runtime: Runtime, syncer: PodSyncer, *, node_ip: str = "127.0.0.1",
                 capacity: dict[str, str], port: int = 10250, lease_seconds: int = 40, labels: dict | None = None,
                 status_every: float = 10.0, pod_cidr: str = "") -> None:
        self.client, self.name, self.runtime, self.syncer = client, name, runtime, syncer
        self.node_ip, self.port, self.lease_seconds = node_ip, port, lease_seconds
        self.capacity = capacity
        arch = runtime.node_info().get("architecture") or "amd64"
        self.labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                       **(labels or {})}
        self.status_every = status_every
        self.flag_cidr, self.applied_cidr = pod_cidr, ""
        self.nodes = None        # an Informer of this process's Node objects, set by the CLI
        self.tasks = TaskSet(log)
        self.pressure: Callable[[], dict[str, bool]] | None = None   # the host's, for a real node (set by the CLI)
        self.reported_pressure: dict[str, bool] = {}
        self.transitions: dict[str, tuple[str, str]] = {}   # condition -> (status, since)
        self.machine_id = _host_id("/etc/machine-id", name)
        self.boot_id = _host_id("/proc/sys/kernel/random/boot_id", name)

    # ---- node object ----------------------------------------------------------
    def node_status(self) -> dict:
        t = now()

        def cond(typ: str, st: str, reason: str, msg: str) -> dict:
            """A condition whose lastTransitionTime moves only when its status does."""
            before = self.transitions.get(typ)
            since = before[1] if before is not None and before[0] == st else t
            self.transitions[typ] = (st, since)
            return {"type": typ, "status": st, "reason": reason, "message": msg,
                    "lastHeartbeatTime": t, "lastTransitionTime": since}
        pressure = self.pressure() if self.pressure is not None else {}
        self.reported_pressure = pressure
        memory, disk = pressure.get("MemoryPressure"), pressure.get("DiskPressure")
        return {
            "capacity": self.capacity, "allocatable": self.capacity,
            "conditions": [cond("MemoryPressure", "True", "KubeletHasInsufficientMemory",
                                "kubelet has insufficient memory available") if memory else
                           cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                                "kubelet has sufficient memory available"),
                           cond("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure") if disk
                           else cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                           cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                           self._ready(cond)],
            "addresses": [{"type": "InternalIP", "address": self.node_ip}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {"machineID": self.machine_id, "systemUUID": self.machine_id, "bootID": self.boot_id,
                         "kernelVersion": platform.release(), "osImage": "",
                         "kubeletVersion": "v1.32.0", "kubeProxyVersion": "v1.32.0", "operatingSystem": "linux",
                         "architecture": "amd64", **self.runtime.node_info()},
        }

    def _ready(self, cond: Callable[[str, str, str, str], dict]) -> dict:
        """Ready, unless pods could not get an address (upstream's NetworkPluginNotReady)."""
        problem = self.runtime.network_problem()
        if problem:
            return cond("Ready", "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false "
                        f"reason:NetworkPluginNotReady message:{problem}")
        return cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")

    async def register(self) -> None:
        """Create (or refresh) the Node, retrying like the kubelet until the apiserver answers."""
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name, "labels": self.labels},
                "spec": {}, "status": self.node_status()}
        delay = 1.0
        while True:
            try:
                try:
                    await self.client.create(NODES, body)
                    log.info("node %s registered", self.name)
                except ApiError as e:
                    if e.code != 409:
                        raise
                    await self.client.patch(NODES, self.name, {"status": self.node_status()}, sub="status")
                return
            except ApiError as e:
                log.error("node %s: unable to register node with API server: %s; retrying in %gs", self.name, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)

    def _node(self) -> dict | None:
        return self.nodes.get(self.name) if self.nodes is not None else None

    def node_changed(self, node: dict) -> None:
        """Hand the pod CIDR (--pod-cidr, else spec.podCIDR once node IPAM assigned one) to the
        runtime when it first becomes known or changes."""
        cidr = self.flag_cidr or (node.get("spec") or {}).get("podCIDR") or ""
        if cidr and cidr != self.applied_cidr:
            self.applied_cidr = cidr
            self.tasks.spawn(self._apply_cidr(cidr), f"node {self.name}: pod CIDR {cidr}")

    async def _apply_cidr(self, cidr: str) -> None:
        delay = 1.0
        while True:
            try:
                await self.runtime.update_pod_cidr(cidr)
                break
            except (RuntimeFailure, RuntimeUnavailable) as e:
                log.error("node %s: pod network for %s: %s; retrying in %gs", self.name, cidr, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.info("node %s: pod CIDR %s", self.name, cidr)
        for uid in list(self.syncer.pods):
            self.syncer.queue.add(uid)
        try:
            await self.client.patch(NODES, self.name, {"status": self.node_status()}, sub="status")
        except ApiError as e:   # the heartbeat posts it again soon
            log.warning("node %s: posting Ready: %s", self.name, e)

    def _status_stale(self, since_report: float) -> bool:
        """Post status when the Node no longer shows this kubelet's Ready=True (the node lifecycle
        controller marked it Unknown, say), when pressure changed, or at least every 5 minutes."""
        node = self._node()
        if node is None or since_report > 300:
            return True
        if self.pressure is not None and self.pressure() != self.reported_pressure:
            return True    # memory or disk pressure began or ended
        ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
        return ready.get("status") != "True"

    async def heartbeat(self) -> None:
        """Renew the node's Lease every lease/4 seconds; post node status when it needs it."""
        ns = "kube-node-lease"
        last_status = last_check = time.monotonic()
        while True:
            try:
                try:
                    lease = await self.client.get(LEASES, self.name, ns)
                    lease["spec"]["renewTime"] = micro_now()
                    lease["spec"]["holderIdentity"] = self.name
                    await self.client.update(LEASES, lease, ns)
                except ApiError as e:
                    if not e.not_found:
                        raise
                    await self.client.create(LEASES, {
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": ns},
                        "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.lease_seconds,
                                 "renewTime": micro_now()}}, ns)
                if time.monotonic() - last_check >= self.status_every:
                    last_check = time.monotonic()
                    if self._status_stale(last_check - last_status):
                        await self.client.patch(NODES, self.name, {"status": self.node_status()}, sub="status")
                        last_status = time.monotonic()
            except ApiError as e:
                log.warning("node %s heartbeat: %s", self.name, e)
            await asyncio.sleep(min(self.lease_seconds / 4, self.status_every))

"""One node's kubelet: registration, Lease heartbeats, Ready condition, and the pod-sync loop
(start pods bound here through the runtime, write pod status, finish graceful deletion)."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import datetime, timezone

from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client
from kubeling.client.leaderelection import micro_now
from kubeling.component import TaskSet

from .runtime import PodState, Runtime

log = logging.getLogger("kubelet")
PODS, NODES, LEASES = lookup("", "v1", "pods"), lookup("", "v1", "nodes"), lookup("coordination.k8s.io", "v1", "leases")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent:
    def __init__(self, client: Client, name: str, runtime: Runtime, *, node_ip: str = "127.0.0.1", cpu: str = "4",
                 memory: str = "8Gi", pods: str = "110", port: int = 10250, lease_seconds: int = 40,
                 labels: dict | None = None, status_every: float = 10.0) -> None:
        self.client, self.name, self.runtime = client, name, runtime
        self.node_ip, self.port, self.lease_seconds = node_ip, port, lease_seconds
        self.capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
        self.labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       **(labels or {})}
        self.states: dict[str, PodState] = {}     # pod uid -> runtime state
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.pods: dict[str, dict] = {}           # pod key -> latest pod bound here
        self.pod_cidr_base = int(hashlib.sha1(name.encode()).hexdigest()[:4], 16) % 250
        self.status_every = status_every
        self.nodes = None        # an Informer of this process's Node objects, set by the CLI
        self.tasks = TaskSet(log)   # runtime kills of deleted pods

    # ---- node object ----------------------------------------------------------
    def node_status(self) -> dict:
        t = now()
        cond = lambda typ, st, reason, msg: {"type": typ, "status": st, "reason": reason, "message": msg,  # noqa: E731
                                            "lastHeartbeatTime": t, "lastTransitionTime": t}
        return {
            "capacity": self.capacity, "allocatable": self.capacity,
            "conditions": [cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                           cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                           cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                           cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
            "addresses": [{"type": "InternalIP", "address": self.node_ip}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {"machineID": self.name, "systemUUID": self.name, "bootID": self.name, "kernelVersion": "hollow",
                         "osImage": "kubeling hollow node", "containerRuntimeVersion": "hollow://1.0",
                         "kubeletVersion": "v1.32.0", "kubeProxyVersion": "v1.32.0", "operatingSystem": "linux",
                         "architecture": "amd64"},
        }

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

    @property
    def pod_cidr(self) -> str:
        """spec.podCIDR once node IPAM assigned one, from the watched Node."""
        return ((self._node() or {}).get("spec") or {}).get("podCIDR") or ""

    def _status_stale(self, since_report: float) -> bool:
        """Post status when the Node no longer shows this kubelet's Ready=True (the node lifecycle
        controller marked it Unknown, say) or at least every 5 minutes, as the kubelet does."""
        node = self._node()
        if node is None or since_report > 300:
            return True
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

    # ---- pods -------------------------------------------------------------------
    def pod_changed(self, pod: dict) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        self.pods[key] = pod
        self.queue.put_nowait(key)

    def pod_deleted(self, pod: dict) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        self.pods.pop(key, None)
        st = self.states.pop(pod["metadata"].get("uid", ""), None)
        if st is not None:
            self.tasks.spawn(self.runtime.kill_pod(st), f"node {self.name}: killing pod {key}")

    async def sync_loop(self) -> None:
        while True:
            key = await self.queue.get()
            pod = self.pods.get(key)
            if pod is None:
                continue
            try:
                await self.sync_pod(pod)
            except ApiError as e:
                if not e.not_found:
                    log.warning("node %s: syncing %s: %s", self.name, key, e)
                    asyncio.get_running_loop().call_later(1, self.queue.put_nowait, key)
            except Exception:   # a bug with one pod must not stop the node's sync loop
                log.exception("node %s: syncing %s failed", self.name, key)
                asyncio.get_running_loop().call_later(5, self.queue.put_nowait, key)

    def _ip(self, uid: str) -> str:
        """A pod address inside the node's podCIDR (simulated; the Docker runtime allocates real ones)."""
        import ipaddress
        h = int(hashlib.sha1(uid.encode()).hexdigest()[:8], 16)
        if self.pod_cidr:
            net = ipaddress.ip_network(self.pod_cidr, strict=False)
            return str(net.network_address + 2 + h % max(1, net.num_addresses - 3))
        return f"10.244.{self.pod_cidr_base}.{2 + h % 250}"

    async def sync_pod(self, pod: dict) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            st = self.states.pop(uid, None)
            if st is not None:
                await self.runtime.kill_pod(st)
            await self.client.delete(PODS, meta["name"], meta["namespace"], gracePeriodSeconds=0,
                                     preconditions={"uid": uid})
            return
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        st = self.states.get(uid)
        if st is None:
            st = await self.runtime.recover_pod(pod)
            if st is not None:
                self.states[uid] = st
        if st is None:
            st = self.states[uid] = await self.runtime.start_pod(pod, self._ip(uid))
        new = self.pod_status(pod, st)
        if new != {k: status.get(k) for k in new}:
            await self.client.patch(PODS, meta["name"], {"status": new}, meta["namespace"], "status")
        t = time.time()
        restart = spec.get("restartPolicy", "Always")
        pending = [x for c in st.containers for v in [c.at(t, restart)] for x in (v.ready_at, v.next_change)
                   if x is not None and t < x != float("inf")]
        if pending:
            key = f"{meta['namespace']}/{meta['name']}"
            asyncio.get_running_loop().call_later(min(pending) - time.time() + 0.01, self.queue.put_nowait, key)

    def pod_status(self, pod: dict, st: PodState) -> dict:
        t = time.time()
        restart = (pod.get("spec") or {}).get("restartPolicy", "Always")
        statuses, all_ready, exited = [], True, []
        for c in st.containers:
            v = c.at(t, restart)
            entry = {"name": c.name, "image": c.image, "imageID": f"hollow://{c.image}", "restartCount": v.restarts,
                     "containerID": f"hollow://{st.uid[:8]}-{c.name}-{v.restarts}", "started": v.state == "running"}
            code = c.exit_code
            ended = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"} if code is not None else {}
            if v.state == "terminated":
                entry["state"] = {"terminated": {**ended, "startedAt": _ts(v.started), "finishedAt": _ts(v.last[1])}}
                exited.append(code)
            elif v.state == "waiting":
                entry["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                    f"back-off {int(v.backoff)}s restarting failed container={c.name} pod={pod['metadata']['name']}"
                    f"_{pod['metadata'].get('namespace')}({st.uid})")}}
            else:
                entry["state"] = {"running": {"startedAt": _ts(v.started)}}
            if v.last is not None and v.state != "terminated":
                entry["lastState"] = {"terminated": {**ended, "startedAt": _ts(v.last[0]), "finishedAt": _ts(v.last[1])}}
            entry["ready"] = v.state == "running" and v.ready_at <= t
            all_ready &= entry["ready"]
            statuses.append(entry)
        phase = "Running"
        if exited and len(exited) == len(st.containers):
            phase = "Succeeded" if all(code == 0 for code in exited) else "Failed"
        old = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}

        def cond(typ: str, ok: bool) -> dict:
            prev = old.get(typ)
            status = "True" if ok else "False"
            c = {"type": typ, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status else now()}
            if not ok and typ in ("Ready", "ContainersReady"):
                c["reason"] = "ContainersNotReady" if phase == "Running" else "PodCompleted"
            return c
        start = datetime.fromtimestamp(min((c.started for c in st.containers), default=t), timezone.utc)
        return {"phase": phase, "hostIP": self.node_ip, "hostIPs": [{"ip": self.node_ip}], "podIP": st.ip,
                "podIPs": [{"ip": st.ip}], "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "conditions": [cond("PodReadyToStartContainers", True), cond("Initialized", True),
                               cond("Ready", all_ready), cond("ContainersReady", all_ready),
                               cond("PodScheduled", True)],
                "containerStatuses": statuses}

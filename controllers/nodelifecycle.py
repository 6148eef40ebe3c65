"""Node lifecycle: nodes that stop heartbeating become Ready=Unknown with the unreachable NoExecute
taint (not-ready likewise); their pods are marked not ready (so Services stop sending them
traffic) and those that do not tolerate a NoExecute taint are evicted after their
tolerationSeconds, so their controllers recreate them elsewhere."""
from __future__ import annotations

import asyncio
import time

from kubeling.api.resources import lookup
from kubeling.client import ApiError
from kubeling.client.informer import obj_key
from kubeling.client.leaderelection import parse_time
from kubeling.client.workqueue import WorkQueue, run_workers

from .base import Controller

NODES, LEASES, PODS = lookup("", "v1", "nodes"), lookup("coordination.k8s.io", "v1", "leases"), lookup("", "v1", "pods")
UNREACHABLE, NOT_READY = "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def ready_condition(obj: dict) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def tolerates(pod: dict, taint: dict) -> tuple[bool, float | None]:
    """(tolerated at all, for how long: None = forever)."""
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        key_ok = (t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint["key"])) or \
            (t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""))
        if key_ok:
            secs = t.get("tolerationSeconds")
            return True, None if secs is None else float(secs)
    return False, 0.0


def _ready_not_false(pod: dict) -> bool:
    """The pod has a Ready condition that MarkPodsNotReady would change."""
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") != "False"


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.grace = getattr(self.opts, "node_monitor_grace_period", 40.0)
        self.period = getattr(self.opts, "node_monitor_period", 5.0)
        self.nodes = self.factory.get(NODES)
        self.leases = self.factory.get(LEASES, "kube-node-lease")
        self.pods = self.factory.get(PODS)
        self.pods.add_indexer("node", lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        self.nodes.add_handler(*self.enqueue_handlers())
        self.first_seen: dict[str, float] = {}
        # upstream's podUpdateQueue: pods that arrive on (are bound to) a node that is not Ready
        self.pod_queue = WorkQueue("node_lifecycle_pods")
        self.pods.add_handler(self.enqueue_pod, lambda old, new: self.enqueue_pod(new, old))
        self.observed_ready: dict[str, str] = {}   # node -> the Ready status its last sync saw
        self.retry: set[str] = set()               # nodes whose pods could not all be marked

    def enqueue_pod(self, pod: dict, old: dict | None = None) -> None:
        """podUpdated: only a new pod or a new binding; a pod whose kubelet says Ready again is left be."""
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (old is None or node != (old.get("spec") or {}).get("nodeName")):
            self.pod_queue.add(obj_key(pod))

    async def sync_pod(self, key: str) -> None:
        """processPod: a pod on a node whose Ready is not True is marked not ready."""
        pod = self.pods.get(key)
        node = self.nodes.get(pod["spec"]["nodeName"]) if pod is not None else None
        ready = ready_condition(node) if node is not None else None
        if ready is not None and ready.get("status") != "True":
            await self._mark_pods_not_ready([pod])

    async def run(self) -> None:
        async def tick() -> None:
            while True:
                await asyncio.sleep(self.period)
                for n in self.nodes.list():
                    self.enqueue(n)
        await asyncio.gather(super().run(), run_workers(self.pod_queue, self.sync_pod, 1), tick())

    def _last_heartbeat(self, node: dict) -> float:
        name = node["metadata"]["name"]
        lease = self.leases.get(f"kube-node-lease/{name}")
        t = parse_time((lease or {}).get("spec", {}).get("renewTime"))
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                t = max(t, parse_time(c.get("lastHeartbeatTime")))
        return t or self.first_seen.setdefault(name, time.time())

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            self.observed_ready.pop(key, None)
            self.retry.discard(key)
            return
        status = node.get("status") or {}
        ready = ready_condition(node)
        stale = time.time() - self._last_heartbeat(node) > self.grace
        if stale and (ready is None or ready.get("status") != "Unknown"):
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"]
            conds.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                          "message": "Kubelet stopped posting node status.",
                          "lastHeartbeatTime": (ready or {}).get("lastHeartbeatTime"), "lastTransitionTime": _now()})
            await self._patch(key, {"status": {"conditions": conds}}, "status")
            self.recorder.event(node, "Normal", "NodeNotReady", f"Node {key} status is now: NodeNotReady")
            return
        # the taint follows the Ready condition: Unknown -> unreachable, False -> not-ready
        want = {"Unknown": UNREACHABLE, "False": NOT_READY}.get((ready or {}).get("status", ""))
        taints = (node.get("spec") or {}).get("taints") or []
        mine = [t for t in taints if t.get("key") in (UNREACHABLE, NOT_READY)]
        keep = [t for t in taints if t not in mine]
        wanted = {(want, "NoSchedule"), (want, "NoExecute")} if want else set()
        if {(t["key"], t.get("effect")) for t in mine} != wanted:
            new = keep + [{"key": k, "effect": e, "timeAdded": _now()} for k, e in sorted(wanted)]
            await self._patch(key, {"spec": {"taints": new or None}})
            mine = [t for t in new if t.get("key") in (UNREACHABLE, NOT_READY)]
        for taint in mine if want else []:
            if taint.get("effect") == "NoExecute":
                await self._evict(node, taint)
        await self._on_ready_change(key, (ready or {}).get("status"))

    async def _on_ready_change(self, name: str, now: str | None) -> None:
        """When Ready leaves True (or a previous attempt failed) every pod on the node is marked not
        ready, once: a kubelet that is alive after all may say Ready again."""
        before = self.observed_ready.get(name)
        self.observed_ready[name] = now or ""
        if now in (None, "True") or (before != "True" and name not in self.retry):
            self.retry.discard(name)
            return
        self.retry.add(name)
        await self._mark_pods_not_ready(self.pods.by_index("node", name))
        self.retry.discard(name)

    async def _mark_pods_not_ready(self, pods: list[dict]) -> None:
        """MarkPodsNotReady: Ready=False through pods/status (reason and message kept), so endpoints
        controllers list the pods as not ready while their kubelet is unheard."""
        errors: list[ApiError] = []
        for pod in pods:
            if not _ready_not_false(pod):
                continue
            conds = [{**c, "status": "False", "lastTransitionTime": _now()} if c.get("type") == "Ready" else c
                     for c in pod["status"]["conditions"]]
            try:
                await self.client.update(PODS, {**pod, "status": {**pod["status"], "conditions": conds}},
                                         pod["metadata"]["namespace"], "status")
            except ApiError as e:
                if e.not_found:
                    continue
                errors.append(e)
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
        if errors:   # retried with back-off, like upstream's nodesToRetry
            raise errors[0]

    async def _patch(self, name: str, body: dict, sub: str | None = None) -> None:
        try:
            await self.client.patch(NODES, name, body, sub=sub)
        except ApiError as e:
            if not e.not_found:
                raise

    async def _evict(self, node: dict, taint: dict) -> None:
        added = parse_time(taint.get("timeAdded")) or time.time()
        soonest = None
        for pod in self.pods.by_index("node", node["metadata"]["name"]):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            ok, secs = tolerates(pod, taint)
            if ok and secs is None:
                continue
            due = added + (secs or 0)
            if due <= time.time():
                try:
                    await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
                    self.recorder.event(pod, "Normal", "TaintManagerEviction",
                                        f"Marking for deletion Pod {pod['metadata']['namespace']}/{pod['metadata']['name']}")
                except ApiError as e:
                    if not e.not_found:
                        raise
            else:
                soonest = due if soonest is None else min(soonest, due)
        if soonest is not None:
            self.queue.add_after(node["metadata"]["name"], soonest - time.time() + 0.1)


class NodeIpamController(Controller):
    """--allocate-node-cidrs: a unique /24 (--node-cidr-mask-size) of --cluster-cidr per node.
    One worker and an in-memory set of what it handed out (like upstream's cidrset), so two nodes
    registering together never get the same range before the informer shows the first patch."""
    name = "nodeipam"
    workers = 1

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        import ipaddress
        self.enabled = bool(getattr(self.opts, "allocate_node_cidrs", False))
        self.net = ipaddress.ip_network(getattr(self.opts, "cluster_cidr", "10.244.0.0/16"), strict=False)
        self.mask = int(getattr(self.opts, "node_cidr_mask_size", 24))
        self.nodes = self.factory.get(NODES)
        self.nodes.add_handler(*self.enqueue_handlers())
        self.handed_out: dict[str, str] = {}     # node -> CIDR patched by this process

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            self.handed_out.pop(key, None)
        if not self.enabled or node is None or (node.get("spec") or {}).get("podCIDR"):
            return
        used = {(n.get("spec") or {}).get("podCIDR") for n in self.nodes.list()}
        used |= {c for n, c in self.handed_out.items() if n != key}
        for subnet in self.net.subnets(new_prefix=self.mask):
            cidr = str(subnet)
            if cidr not in used:
                await self.client.patch(NODES, key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
                self.handed_out[key] = cidr
                self.recorder.event(node, "Normal", "CIDRAssignmentSucceeded", f"Node {key} got CIDR {cidr}")
                return
        self.recorder.event(node, "Warning", "CIDRNotAvailable", f"Node {key} status is now: CIDRNotAvailable")


class ServiceAccountController(Controller):
    """A `default` ServiceAccount in every active namespace."""
    name = "serviceaccount"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.namespaces = self.factory.get(lookup("", "v1", "namespaces"))
        self.accounts = self.factory.get(lookup("", "v1", "serviceaccounts"))
        self.namespaces.add_handler(*self.enqueue_handlers())
        self.accounts.add_handler(on_delete=lambda sa: self.queue.add(sa["metadata"]["namespace"]))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or self.accounts.get(f"{key}/default"):
            return
        try:
            await self.client.create(lookup("", "v1", "serviceaccounts"),
                                     {"apiVersion": "v1", "kind": "ServiceAccount",
                                      "metadata": {"name": "default", "namespace": key}}, key)
        except ApiError as e:
            if e.code not in (409, 403, 404):
                raise

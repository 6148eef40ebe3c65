"""Endpoints and EndpointSlice controller: each selector Service's ready and not-ready pod addresses,
named targetPorts resolved per pod."""
from __future__ import annotations

from kubeling.api.resources import lookup
from kubeling.api.selectors import selector_from_object
from kubeling.client import ApiError

from .base import Controller
from .replicaset import pod_ready

PODS, SERVICES = lookup("", "v1", "pods"), lookup("", "v1", "services")
ENDPOINTS, SLICES = lookup("", "v1", "endpoints"), lookup("discovery.k8s.io", "v1", "endpointslices")
MANAGED_BY = "endpointslice-controller.k8s.io"


def resolve_port(pod: dict, target) -> int | None:
    if isinstance(target, int):
        return target
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return p.get("containerPort")
    return None


class EndpointsController(Controller):
    name = "endpoint"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.services = self.factory.get(SERVICES)
        self.pods = self.factory.get(PODS)
        self.endpoints = self.factory.get(ENDPOINTS)
        self.slices = self.factory.get(SLICES)
        self.services.add_handler(*self.enqueue_handlers())
        self.pods.add_handler(self.on_pod, lambda old, new: (self.on_pod(old), self.on_pod(new)), self.on_pod)

    def on_pod(self, pod: dict) -> None:
        ns = pod["metadata"].get("namespace")
        labels = pod["metadata"].get("labels") or {}
        for svc in self.services.list(ns):
            sel = (svc.get("spec") or {}).get("selector")
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                self.enqueue(svc)

    def _groups(self, svc: dict) -> list[tuple[list[dict], list[tuple[dict, bool]]]]:
        """[(ports, [(pod, ready)])] grouped by the ports each pod resolves to."""
        spec = svc["spec"]
        ns = svc["metadata"]["namespace"]
        sel = selector_from_object({"matchLabels": spec["selector"]})
        groups: dict[tuple, list] = {}
        for pod in self.pods.list(ns):
            st = pod.get("status") or {}
            if not st.get("podIP") or pod["metadata"].get("deletionTimestamp") or \
                    st.get("phase") in ("Succeeded", "Failed") or not sel.matches(pod["metadata"].get("labels")):
                continue
            ports = []
            for p in spec.get("ports") or []:
                port = resolve_port(pod, p.get("targetPort", p.get("port")))
                if port:
                    ports.append(((p.get("name") or ""), port, p.get("protocol", "TCP")))
            ready = pod_ready(pod) or bool(spec.get("publishNotReadyAddresses"))
            groups.setdefault(tuple(ports), []).append((pod, ready))
        return [([{"name": n, "port": port, "protocol": proto} if n else {"port": port, "protocol": proto}
                  for n, port, proto in key], members) for key, members in sorted(groups.items())]

    async def sync(self, key: str) -> None:
        svc = self.services.get(key)
        ns, name = key.split("/", 1)
        if svc is None:
            try:
                await self.client.delete(ENDPOINTS, name, ns)
            except ApiError as e:
                if not e.not_found:
                    raise
            return
        if not (svc.get("spec") or {}).get("selector"):
            return
        groups = self._groups(svc)
        await self._endpoints(svc, groups)
        await self._slices(svc, groups)

    async def _endpoints(self, svc: dict, groups: list) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]

        def addr(pod: dict) -> dict:
            a = {"ip": pod["status"]["podIP"], "targetRef": {"kind": "Pod", "namespace": ns,
                 "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}}
            if pod["spec"].get("nodeName"):
                a["nodeName"] = pod["spec"]["nodeName"]
            return a
        subsets = []
        for ports, members in groups:
            sub: dict = {}
            ready = sorted((addr(p) for p, ok in members if ok), key=lambda a: a["ip"])
            not_ready = sorted((addr(p) for p, ok in members if not ok), key=lambda a: a["ip"])
            if ready:
                sub["addresses"] = ready
            if not_ready:
                sub["notReadyAddresses"] = not_ready
            if ports:
                sub["ports"] = ports
            subsets.append(sub)
        current = self.endpoints.get(f"{ns}/{name}")
        labels = {k: v for k, v in (svc["metadata"].get("labels") or {}).items()}
        if current is not None and (current.get("subsets") or []) == subsets:
            return
        body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns, "labels": labels}}
        if subsets:
            body["subsets"] = subsets
        if current is not None:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.client.update(ENDPOINTS, body, ns)
        else:
            try:
                await self.client.create(ENDPOINTS, body, ns)
            except ApiError as e:
                if e.code == 409:
                    self.queue.add(f"{ns}/{name}")
                else:
                    raise

    async def _slices(self, svc: dict, groups: list) -> None:
        ns, name, uid = svc["metadata"]["namespace"], svc["metadata"]["name"], svc["metadata"]["uid"]
        existing = sorted((s for s in self.slices.list(ns)
                           if (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name
                           and (s["metadata"].get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") == MANAGED_BY),
                          key=lambda s: s["metadata"]["name"])
        wanted = []
        for ports, members in groups or [([], [])]:
            eps = [{"addresses": [p["status"]["podIP"]],
                    # serving is the pod's own readiness; ready also counts publishNotReadyAddresses
                    "conditions": {"ready": ok, "serving": pod_ready(p), "terminating": False},
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]},
                    **({"nodeName": p["spec"]["nodeName"]} if p["spec"].get("nodeName") else {})}
                   for p, ok in sorted(members, key=lambda m: m[0]["status"]["podIP"])]
            wanted.append({"endpoints": eps, "ports": [{**({"name": x["name"]} if "name" in x else {"name": ""}),
                                                         "port": x["port"], "protocol": x["protocol"]} for x in ports]})
        for i, want in enumerate(wanted):
            cur = existing[i] if i < len(existing) else None
            if cur is not None and (cur.get("endpoints") or []) == want["endpoints"] and (cur.get("ports") or []) == want["ports"]:
                continue
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                    "metadata": {"namespace": ns,
                                 "labels": {"kubernetes.io/service-name": name,
                                            "endpointslice.kubernetes.io/managed-by": MANAGED_BY},
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": uid,
                                                      "controller": True, "blockOwnerDeletion": True}]},
                    **want}
            if cur is None:
                body["metadata"]["generateName"] = f"{name}-"
                await self.client.create(SLICES, body, ns)
            else:
                body["metadata"].update(name=cur["metadata"]["name"], resourceVersion=cur["metadata"]["resourceVersion"])
                await self.client.update(SLICES, body, ns)
        for extra in existing[len(wanted):]:
            try:
                await self.client.delete(SLICES, extra["metadata"]["name"], ns)
            except ApiError as e:
                if not e.not_found:
                    raise

"""Objects every cluster has: the system namespaces and the `kubernetes` Service with its Endpoints."""
from __future__ import annotations

import asyncio
import logging
import uuid

from kubeling.api.errors import StatusError
from kubeling.api.resources import lookup
from kubeling.etcd.errors import EtcdError

from .admission import IP_PREFIX, SYSTEM_NAMESPACES, ServiceAllocator
from .plugins.priority import PRIORITY_CLASSES, SYSTEM_PRIORITY_CLASSES, system_priority_class
from .storage import KeyExists, KeyMissing, StaleRevision, Storage
from .strategy import now_rfc3339

log = logging.getLogger("apiserver.bootstrap")
NAMESPACES = lookup("", "v1", "namespaces")


def _meta(name: str, namespace: str | None = None, labels: dict | None = None) -> dict:
    m = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339()}
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = labels
    return m


async def _ensure(storage: Storage, key: str, obj: dict, extra: dict[str, bytes] | None = None) -> None:
    try:
        await storage.create(key, obj, extra)
    except KeyExists:
        pass


SERVICE_KEY = "/registry/services/default/kubernetes"
ENDPOINTS_KEY = "/registry/endpoints/default/kubernetes"
SLICE_KEY = lookup("discovery.k8s.io", "v1", "endpointslices").key("default", "kubernetes")
MASTER_LEASES = "/registry/masterleases/"


def _namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, labels={"kubernetes.io/metadata.name": name}),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


class SystemReconciler:
    """The apiserver's own control loops (upstream's system-namespaces and bootstrap controllers):
    the system namespaces exist, and `default/kubernetes` Service, Endpoints and EndpointSlice name
    every live apiserver. Each apiserver keeps a master lease (a key on an etcd lease) so that the
    addresses of apiservers that stopped drop out of the endpoints."""

    def __init__(self, storage: Storage, alloc: ServiceAllocator, advertise: str, port: int,
                 interval: float = 10.0, lease_ttl: int = 15) -> None:
        self.storage, self.alloc = storage, alloc
        self.advertise, self.port = advertise, port
        self.interval, self.lease_ttl = interval, lease_ttl
        self._lease = 0

    async def run(self) -> None:
        """Reconcile every interval until cancelled; a failed round is logged and retried."""
        while True:
            try:
                await self.reconcile()
            except (StatusError, EtcdError, OSError) as e:
                log.warning("reconciling system objects failed: %s", e)
            await asyncio.sleep(self.interval)

    async def reconcile(self) -> None:
        for ns in SYSTEM_NAMESPACES:
            await _ensure(self.storage, NAMESPACES.key(None, ns), _namespace(ns))
        for name, value, description in SYSTEM_PRIORITY_CLASSES:   # engineer D: the system PriorityClasses
            pc = system_priority_class(name, value, description)
            pc["metadata"] = _meta(name)
            await _ensure(self.storage, PRIORITY_CLASSES.key(None, name), pc)
        await self._service()
        await self._master_lease()
        await self._endpoints()

    async def _service(self) -> None:
        ip = self.alloc.first_ip
        ports = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.port}]
        cur = await self.storage.get(SERVICE_KEY)
        if cur is None:
            svc = {"apiVersion": "v1", "kind": "Service",
                   "metadata": _meta("kubernetes", "default", {"component": "apiserver", "provider": "kubernetes"}),
                   "spec": {"ports": ports, "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP",
                            "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                            "internalTrafficPolicy": "Cluster"},
                   "status": {"loadBalancer": {}}}
            await _ensure(self.storage, SERVICE_KEY, svc, {IP_PREFIX + ip: b'{"namespace":"default","name":"kubernetes"}'})
            return
        spec = cur.setdefault("spec", {})
        if spec.get("ports") != ports or spec.get("type") != "ClusterIP":
            spec["ports"], spec["type"] = ports, "ClusterIP"
            try:
                await self.storage.update(SERVICE_KEY, cur, int(cur["metadata"]["resourceVersion"]))
            except (StaleRevision, KeyMissing):
                pass   # changed under us: the next round looks again

    async def _master_lease(self) -> None:
        if self._lease and await self.storage.etcd.lease_keepalive_once(self._lease) > 0:
            return
        lease = await self.storage.etcd.lease_grant(self.lease_ttl)
        self._lease = lease.id
        await self.storage.etcd.put(MASTER_LEASES + self.advertise,
                                    b'{"metadata":{"name":"' + self.advertise.encode() + b'"}}', lease=lease.id)

    async def _endpoints(self) -> None:
        page = await self.storage.list(MASTER_LEASES)
        ips = sorted({o["metadata"]["name"] for o in page.objects} | {self.advertise})
        port = {"name": "https", "port": self.port, "protocol": "TCP"}
        endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": _meta("kubernetes", "default", {"endpointslice.kubernetes.io/skip-mirror": "true"}),
                     "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [port]}]}
        await self._converge(ENDPOINTS_KEY, endpoints, ("subsets",))
        eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": _meta("kubernetes", "default", {"kubernetes.io/service-name": "kubernetes"}),
               "addressType": "IPv4",
               "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
               "ports": [port]}
        await self._converge(SLICE_KEY, eps, ("addressType", "endpoints", "ports"))

    async def _converge(self, key: str, want: dict, fields: tuple[str, ...]) -> None:
        """Create key as want, or set its fields to want's when they differ."""
        cur = await self.storage.get(key)
        if cur is None:
            await _ensure(self.storage, key, want)
            return
        if all(cur.get(f) == want[f] for f in fields):
            return
        cur.update({f: want[f] for f in fields})
        try:
            await self.storage.update(key, cur, int(cur["metadata"]["resourceVersion"]))
        except (StaleRevision, KeyMissing):
            pass   # changed under us: the next round looks again

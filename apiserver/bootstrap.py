"""Objects every cluster has: the system namespaces and the `kubernetes` Service with its Endpoints."""
from __future__ import annotations

import logging
import uuid

from kubeling.api.resources import lookup

from .admission import IP_PREFIX, SYSTEM_NAMESPACES, ServiceAllocator
from .storage import KeyExists, StaleRevision, Storage
from .strategy import now_rfc3339

log = logging.getLogger("apiserver.bootstrap")


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


async def bootstrap(storage: Storage, alloc: ServiceAllocator, advertise: str, port: int) -> None:
    ns_res = lookup("", "v1", "namespaces")
    for ns in SYSTEM_NAMESPACES:
        obj = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": _meta(ns, labels={"kubernetes.io/metadata.name": ns}),
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        await _ensure(storage, ns_res.key(None, ns), obj)
    ip = alloc.first_ip
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": _meta("kubernetes", "default", {"component": "apiserver", "provider": "kubernetes"}),
           "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                    "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
                    "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
           "status": {"loadBalancer": {}}}
    await _ensure(storage, "/registry/services/default/kubernetes", svc, {IP_PREFIX + ip: b'{"namespace":"default","name":"kubernetes"}'})
    await reconcile_endpoints(storage, advertise, port)


async def reconcile_endpoints(storage: Storage, advertise: str, port: int) -> None:
    """Each apiserver adds its advertise address to default/kubernetes endpoints."""
    key = "/registry/endpoints/default/kubernetes"
    for _ in range(10):
        cur = await storage.get(key)
        if cur is None:
            obj = {"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": _meta("kubernetes", "default", {"endpointslice.kubernetes.io/skip-mirror": "true"}),
                   "subsets": [{"addresses": [{"ip": advertise}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
            try:
                await storage.create(key, obj)
                return
            except KeyExists:
                continue
        subsets = cur.get("subsets") or [{"addresses": [], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
        addrs = subsets[0].setdefault("addresses", [])
        if any(a.get("ip") == advertise for a in addrs):
            return
        addrs.append({"ip": advertise})
        addrs.sort(key=lambda a: a.get("ip", ""))
        cur["subsets"] = subsets
        try:
            await storage.update(key, cur, int(cur["metadata"]["resourceVersion"]))
            return
        except StaleRevision:
            continue

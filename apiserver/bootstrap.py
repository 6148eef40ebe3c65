"""Objects every cluster has: the system namespaces, the `kubernetes` Service with its Endpoints, the
default RBAC roles and bindings and the APIServices of the built-in group versions."""
from __future__ import annotations

import asyncio
import logging
import uuid

from kubeling.api.errors import StatusError
from kubeling.api.resources import group_versions, lookup
from kubeling.etcd.errors import EtcdError

from .admission import IP_PREFIX, SYSTEM_NAMESPACES, ServiceAllocator
from .plugins.priority import PRIORITY_CLASSES, SYSTEM_PRIORITY_CLASSES, system_priority_class
from .storage import KeyExists, KeyMissing, StaleRevision, Storage
from .registry import now_rfc3339

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
        self._bootstrapped = False

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
        if not self._bootstrapped:
            await ensure_bootstrap_objects(self.storage)
            self._bootstrapped = True
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


# --- default RBAC policy and local APIServices (upstream's bootstrappolicy and autoregister) ---------

READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
RBAC_GROUP = "rbac.authorization.k8s.io"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
CLUSTER_ROLES = lookup(RBAC_GROUP, "v1", "clusterroles")
CLUSTER_ROLE_BINDINGS = lookup(RBAC_GROUP, "v1", "clusterrolebindings")
API_SERVICES = lookup("apiregistration.k8s.io", "v1", "apiservices")


def _rule(verbs: tuple[str, ...], groups: tuple[str, ...] = (), resources: tuple[str, ...] = (),
          urls: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> dict:
    """rbacv1helpers.NewRule(...).Groups(...).Resources(...).Names(...)/URLs(...): every list sorted, empty ones
    left out."""
    rule: dict = {"verbs": sorted(verbs)}
    for key, values in (("apiGroups", groups), ("resources", resources), ("resourceNames", names),
                        ("nonResourceURLs", urls)):
        if values:
            rule[key] = sorted(values)
    return rule


def _aggregate(label: str) -> dict:
    return {"clusterRoleSelectors": [{"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{label}": "true"}}]}


_EVENTS = _rule(("create", "patch", "update"), ("", "events.k8s.io"), ("events",))

# name -> (extra labels, rules); the aggregate-to-* roles feed admin, edit and view.
BOOTSTRAP_CLUSTER_ROLES: dict[str, tuple[dict, list[dict]]] = {
    "cluster-admin": ({}, [_rule(("*",), ("*",), ("*",)), _rule(("*",), urls=("*",))]),
    "system:discovery": ({}, [_rule(("get",), urls=("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                     "/openapi", "/openapi/*", "/readyz", "/version", "/version/"))]),
    "system:monitoring": ({}, [_rule(("get",), urls=("/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics",
                                                      "/metrics/slis", "/readyz", "/readyz/*"))]),
    "system:basic-user": ({}, [_rule(("create",), ("authorization.k8s.io",),
                                     ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
                               _rule(("create",), ("authentication.k8s.io",), ("selfsubjectreviews",))]),
    "system:public-info-viewer": ({}, [_rule(("get",), urls=("/healthz", "/livez", "/readyz", "/version",
                                                              "/version/"))]),
    "system:aggregate-to-admin": ({"rbac.authorization.k8s.io/aggregate-to-admin": "true"}, [
        _rule(("create",), ("authorization.k8s.io",), ("localsubjectaccessreviews",)),
        _rule(READ + WRITE, (RBAC_GROUP,), ("rolebindings", "roles")),
    ]),
    "system:aggregate-to-edit": ({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}, [
        _rule(READ, ("",), ("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy")),
        _rule(("impersonate",), ("",), ("serviceaccounts",)),
        _rule(WRITE, ("",), ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy")),
        _rule(("create",), ("",), ("pods/eviction",)),
        _rule(WRITE, ("",), ("configmaps", "persistentvolumeclaims", "replicationcontrollers",
                             "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                             "services/proxy")),
        _rule(("create",), ("",), ("serviceaccounts/token",)),
        _rule(WRITE, ("apps",), ("daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                                 "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale")),
        _rule(WRITE, ("autoscaling",), ("horizontalpodautoscalers",)),
        _rule(WRITE, ("batch",), ("cronjobs", "jobs")),
        _rule(WRITE, ("extensions",), ("daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                                       "ingresses", "networkpolicies", "replicasets", "replicasets/scale",
                                       "replicationcontrollers/scale")),
        _rule(WRITE, ("policy",), ("poddisruptionbudgets",)),
        _rule(WRITE, ("networking.k8s.io",), ("ingresses", "networkpolicies")),
    ]),
    "system:aggregate-to-view": ({"rbac.authorization.k8s.io/aggregate-to-view": "true"}, [
        _rule(READ, ("",), ("configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
                            "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                            "services", "services/status")),
        _rule(READ, ("",), ("bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                            "replicationcontrollers/status", "resourcequotas", "resourcequotas/status")),
        _rule(READ, ("",), ("namespaces",)),
        _rule(READ, ("discovery.k8s.io",), ("endpointslices",)),
        _rule(READ, ("apps",), ("controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                                "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                                "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status")),
        _rule(READ, ("autoscaling",), ("horizontalpodautoscalers", "horizontalpodautoscalers/status")),
        _rule(READ, ("batch",), ("cronjobs", "cronjobs/status", "jobs", "jobs/status")),
        _rule(READ, ("extensions",), ("daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                                      "deployments/status", "ingresses", "ingresses/status", "networkpolicies",
                                      "replicasets", "replicasets/scale", "replicasets/status",
                                      "replicationcontrollers/scale")),
        _rule(READ, ("policy",), ("poddisruptionbudgets", "poddisruptionbudgets/status")),
        _rule(READ, ("networking.k8s.io",), ("ingresses", "ingresses/status", "networkpolicies")),
    ]),
    "system:auth-delegator": ({}, [_rule(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
                                   _rule(("create",), ("authorization.k8s.io",), ("subjectaccessreviews",))]),
    "system:kube-dns": ({}, [_rule(("list", "watch"), ("",), ("endpoints", "services"))]),
    "system:node-bootstrapper": ({}, [_rule(("create", "get", "list", "watch"), ("certificates.k8s.io",),
                                            ("certificatesigningrequests",))]),
    "system:node-proxier": ({}, [_rule(("list", "watch"), ("",), ("endpoints", "services")),
                                 _rule(READ, ("",), ("nodes",)), _EVENTS,
                                 _rule(("list", "watch"), ("discovery.k8s.io",), ("endpointslices",))]),
    "system:service-account-issuer-discovery": ({}, [_rule(("get",), urls=(
        "/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks",
        "/openid/v1/jwks/"))]),
    "system:heapster": ({}, [_rule(READ, ("",), ("events", "namespaces", "nodes", "pods")),
                             _rule(READ, ("extensions",), ("deployments",))]),
    "system:node-problem-detector": ({}, [_rule(("get",), ("",), ("nodes",)),
                                          _rule(("patch",), ("",), ("nodes/status",)), _EVENTS]),
    "system:kubelet-api-admin": ({}, [_rule(READ, ("",), ("nodes",)), _rule(("proxy",), ("",), ("nodes",)),
                                      _rule(("*",), ("",), ("nodes/log", "nodes/metrics", "nodes/proxy",
                                                            "nodes/spec", "nodes/stats"))]),
    "system:kube-aggregator": ({}, [_rule(READ, ("",), ("endpoints", "services"))]),
    "system:persistent-volume-provisioner": ({}, [
        _rule(("create", "delete", "get", "list", "watch"), ("",), ("persistentvolumes",)),
        _rule(("get", "list", "update", "watch"), ("",), ("persistentvolumeclaims",)),
        _rule(READ, ("storage.k8s.io",), ("storageclasses",)), _rule(("watch",), ("",), ("events",)), _EVENTS]),
    "system:volume-scheduler": ({}, [_rule(READ + ("patch", "update"), ("",), ("persistentvolumes",)),
                                     _rule(READ, ("storage.k8s.io",), ("storageclasses",)),
                                     _rule(READ + ("patch", "update"), ("",), ("persistentvolumeclaims",))]),
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": ({}, [
        _rule(("create",), ("certificates.k8s.io",), ("certificatesigningrequests/nodeclient",))]),
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": ({}, [
        _rule(("create",), ("certificates.k8s.io",), ("certificatesigningrequests/selfnodeclient",))]),
    **{f"system:certificates.k8s.io:{role}": ({}, [_rule(("approve",), ("certificates.k8s.io",), ("signers",),
                                                         names=(signer,))])
       for role, signer in (("legacy-unknown-approver", "kubernetes.io/legacy-unknown"),
                            ("kubelet-serving-approver", "kubernetes.io/kubelet-serving"),
                            ("kube-apiserver-client-approver", "kubernetes.io/kube-apiserver-client"),
                            ("kube-apiserver-client-kubelet-approver", "kubernetes.io/kube-apiserver-client-kubelet"))},
    "system:kube-controller-manager": ({}, [
        _EVENTS, _rule(("create",), ("coordination.k8s.io",), ("leases",)),
        _rule(("get", "update"), ("coordination.k8s.io",), ("leases",), names=("kube-controller-manager",)),
        _rule(("create",), ("",), ("secrets", "serviceaccounts")), _rule(("delete",), ("",), ("secrets",)),
        _rule(("get",), ("",), ("configmaps", "namespaces", "secrets", "serviceaccounts")),
        _rule(("update",), ("",), ("secrets", "serviceaccounts")),
        _rule(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
        _rule(("create",), ("authorization.k8s.io",), ("subjectaccessreviews",)),
        _rule(("list", "watch"), ("*",), ("*",)), _rule(("create",), ("",), ("serviceaccounts/token",))]),
    "system:kube-scheduler": ({}, [
        _EVENTS, _rule(("create",), ("coordination.k8s.io",), ("leases",)),
        _rule(("get", "update"), ("coordination.k8s.io",), ("leases",), names=("kube-scheduler",)),
        _rule(READ, ("",), ("nodes",)), _rule(("delete", "get", "list", "watch"), ("",), ("pods",)),
        _rule(("create",), ("",), ("bindings", "pods/binding")), _rule(("patch", "update"), ("",), ("pods/status",)),
        _rule(READ, ("",), ("replicationcontrollers", "services")),
        _rule(READ, ("apps", "extensions"), ("replicasets",)), _rule(READ, ("apps",), ("statefulsets",)),
        _rule(READ, ("policy",), ("poddisruptionbudgets",)),
        _rule(READ, ("",), ("persistentvolumeclaims", "persistentvolumes")),
        _rule(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
        _rule(("create",), ("authorization.k8s.io",), ("subjectaccessreviews",)),
        _rule(READ, ("storage.k8s.io",), ("csinodes",)), _rule(READ, ("",), ("namespaces",)),
        _rule(READ, ("storage.k8s.io",), ("csidrivers",)),
        _rule(READ, ("storage.k8s.io",), ("csistoragecapacities",))]),
    "system:node": ({}, [
        _rule(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
        _rule(("create",), ("authorization.k8s.io",), ("localsubjectaccessreviews", "subjectaccessreviews")),
        _rule(READ, ("",), ("services",)), _rule(("create", "get", "list", "watch"), ("",), ("nodes",)),
        _rule(("patch", "update"), ("",), ("nodes/status",)), _rule(("patch", "update"), ("",), ("nodes",)),
        _rule(("create", "patch", "update"), ("",), ("events",)), _rule(READ, ("",), ("pods",)),
        _rule(("create", "delete"), ("",), ("pods",)), _rule(("patch", "update"), ("",), ("pods/status",)),
        _rule(("create",), ("",), ("pods/eviction",)), _rule(READ, ("",), ("configmaps", "secrets")),
        _rule(("get",), ("",), ("persistentvolumeclaims", "persistentvolumes")), _rule(("get",), ("",), ("endpoints",)),
        _rule(("create", "get", "list", "watch"), ("certificates.k8s.io",), ("certificatesigningrequests",)),
        _rule(("create", "delete", "get", "patch", "update"), ("coordination.k8s.io",), ("leases",)),
        _rule(("get",), ("storage.k8s.io",), ("volumeattachments",)),
        _rule(("get", "patch", "update"), ("",), ("persistentvolumeclaims/status",)),
        _rule(("create",), ("",), ("serviceaccounts/token",)),
        _rule(READ, ("storage.k8s.io",), ("csidrivers",)),
        _rule(("create", "delete", "get", "patch", "update"), ("storage.k8s.io",), ("csinodes",)),
        _rule(READ, ("node.k8s.io",), ("runtimeclasses",))]),
}
# Roles the aggregation controller fills: name -> (own labels, label it aggregates).
AGGREGATED_ROLES = {"admin": ({}, "admin"),
                    "edit": ({"rbac.authorization.k8s.io/aggregate-to-admin": "true"}, "edit"),
                    "view": ({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}, "view")}
# name -> subjects as (kind, name); the role of each binding has the binding's name.
BOOTSTRAP_CLUSTER_ROLE_BINDINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "cluster-admin": (("Group", "system:masters"),),
    "system:monitoring": (("Group", "system:monitoring"),),
    "system:discovery": (("Group", "system:authenticated"),),
    "system:basic-user": (("Group", "system:authenticated"),),
    "system:public-info-viewer": (("Group", "system:authenticated"), ("Group", "system:unauthenticated")),
    "system:node-proxier": (("User", "system:kube-proxy"),),
    "system:kube-dns": (("ServiceAccount", "kube-system/kube-dns"),),
    "system:service-account-issuer-discovery": (("Group", "system:serviceaccounts"),),
    "system:kube-controller-manager": (("User", "system:kube-controller-manager"),),
    "system:kube-scheduler": (("User", "system:kube-scheduler"),),
    "system:volume-scheduler": (("User", "system:kube-scheduler"),),
    "system:node": (),   # kept without subjects since the Node authorizer (1.8)
}


# The controller-manager's per-controller roles (upstream's controller_policy.go with 1.32's default feature
# gates), each bound to the kube-system ServiceAccount of the same name as its system:controller: suffix.
_RW = ("create", "delete", "get", "list", "patch", "update", "watch")
CONTROLLER_ROLES: dict[str, list[dict]] = {
    "attachdetach-controller": [
        _rule(("list", "watch"), ("",), ("persistentvolumeclaims", "persistentvolumes")),
        _rule(READ, ("",), ("nodes",)), _rule(("patch", "update"), ("",), ("nodes/status",)),
        _rule(("list", "watch"), ("",), ("pods",)), _EVENTS,
        _rule(("create", "delete", "get", "list", "watch"), ("storage.k8s.io",), ("volumeattachments",)),
        _rule(READ, ("storage.k8s.io",), ("csidrivers",)), _rule(READ, ("storage.k8s.io",), ("csinodes",))],
    "clusterrole-aggregation-controller": [
        _rule(("escalate", "get", "list", "patch", "update", "watch"), (RBAC_GROUP,), ("clusterroles",))],
    "cronjob-controller": [
        _rule(READ + ("update",), ("batch",), ("cronjobs",)), _rule(_RW, ("batch",), ("jobs",)),
        _rule(("update",), ("batch",), ("cronjobs/status",)), _rule(("update",), ("batch",), ("cronjobs/finalizers",)),
        _rule(("delete", "list"), ("",), ("pods",)), _EVENTS],
    "daemon-set-controller": [
        _rule(READ, ("apps", "extensions"), ("daemonsets",)),
        _rule(("update",), ("apps", "extensions"), ("daemonsets/status",)),
        _rule(("update",), ("apps", "extensions"), ("daemonsets/finalizers",)),
        _rule(("list", "watch"), ("",), ("nodes",)),
        _rule(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)),
        _rule(("create",), ("",), ("pods/binding",)), _rule(_RW, ("apps",), ("controllerrevisions",)), _EVENTS],
    "deployment-controller": [
        _rule(READ + ("update",), ("apps", "extensions"), ("deployments",)),
        _rule(("update",), ("apps", "extensions"), ("deployments/status",)),
        _rule(("update",), ("apps", "extensions"), ("deployments/finalizers",)),
        _rule(_RW, ("apps", "extensions"), ("replicasets",)), _rule(READ + ("update",), ("",), ("pods",)), _EVENTS],
    "disruption-controller": [
        _rule(READ, ("apps", "extensions"), ("deployments",)), _rule(READ, ("apps", "extensions"), ("replicasets",)),
        _rule(READ, ("",), ("replicationcontrollers",)), _rule(READ, ("policy",), ("poddisruptionbudgets",)),
        _rule(READ, ("apps",), ("statefulsets",)), _rule(("update",), ("policy",), ("poddisruptionbudgets/status",)),
        _rule(("patch", "update"), ("",), ("pods/status",)), _rule(("get",), ("*",), ("*/scale",)), _EVENTS],
    "endpoint-controller": [
        _rule(READ, ("",), ("pods", "services")),
        _rule(("create", "delete", "get", "list", "update"), ("",), ("endpoints",)),
        _rule(("create",), ("",), ("endpoints/restricted",)), _EVENTS],
    "endpointslice-controller": [
        _rule(READ, ("",), ("nodes", "pods", "services")), _rule(("update",), ("",), ("services/finalizers",)),
        _rule(("create", "delete", "get", "list", "update"), ("discovery.k8s.io",), ("endpointslices",)), _EVENTS],
    "endpointslicemirroring-controller": [
        _rule(READ, ("",), ("endpoints", "services")), _rule(("update",), ("",), ("services/finalizers",)),
        _rule(("update",), ("",), ("endpoints/finalizers",)),
        _rule(("create", "delete", "get", "list", "update"), ("discovery.k8s.io",), ("endpointslices",)), _EVENTS],
    "ephemeral-volume-controller": [
        _rule(READ, ("",), ("pods",)), _rule(("update",), ("",), ("pods/finalizers",)),
        _rule(READ + ("create",), ("",), ("persistentvolumeclaims",)), _EVENTS],
    "expand-controller": [
        _rule(READ + ("patch", "update"), ("",), ("persistentvolumes",)),
        _rule(("patch", "update"), ("",), ("persistentvolumeclaims/status",)),
        _rule(READ, ("",), ("persistentvolumeclaims",)), _rule(READ, ("storage.k8s.io",), ("storageclasses",)),
        _rule(("get",), ("",), ("endpoints", "services")), _rule(("get",), ("",), ("secrets",)), _EVENTS],
    "generic-garbage-collector": [_rule(("delete", "get", "list", "patch", "update", "watch"), ("*",), ("*",)),
                                  _EVENTS],
    "horizontal-pod-autoscaler": [
        _rule(READ, ("autoscaling",), ("horizontalpodautoscalers",)),
        _rule(("update",), ("autoscaling",), ("horizontalpodautoscalers/status",)),
        _rule(("get", "update"), ("*",), ("*/scale",)), _rule(("list",), ("",), ("pods",)),
        _rule(("list",), ("metrics.k8s.io",), ("pods",)), _rule(("get", "list"), ("custom.metrics.k8s.io",), ("*",)),
        _rule(("get", "list"), ("external.metrics.k8s.io",), ("*",)), _EVENTS],
    "job-controller": [
        _rule(READ + ("patch", "update"), ("batch",), ("jobs",)), _rule(("update",), ("batch",), ("jobs/status",)),
        _rule(("update",), ("batch",), ("jobs/finalizers",)),
        _rule(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)), _EVENTS],
    "namespace-controller": [
        _rule(READ + ("delete",), ("",), ("namespaces",)),
        _rule(("update",), ("",), ("namespaces/finalize", "namespaces/status")),
        _rule(("delete", "deletecollection", "get", "list"), ("*",), ("*",))],
    "node-controller": [
        _rule(("delete", "get", "list", "patch", "update"), ("",), ("nodes",)),
        _rule(("patch", "update"), ("",), ("nodes/status",)), _rule(("patch", "update"), ("",), ("pods/status",)),
        _rule(("delete", "get", "list"), ("",), ("pods",)), _EVENTS],
    "persistent-volume-binder": [
        _rule(_RW, ("",), ("persistentvolumes",)), _rule(("update",), ("",), ("persistentvolumes/status",)),
        _rule(READ + ("update",), ("",), ("persistentvolumeclaims",)),
        _rule(("update",), ("",), ("persistentvolumeclaims/status",)),
        _rule(("create", "delete", "get", "list", "watch"), ("",), ("pods",)),
        _rule(READ, ("storage.k8s.io",), ("storageclasses",)),
        _rule(("create", "delete", "get", "update"), ("",), ("endpoints",)),
        _rule(("create", "delete", "get"), ("",), ("services",)), _rule(("get",), ("",), ("secrets",)),
        _rule(("get", "list"), ("",), ("nodes",)), _rule(("watch",), ("",), ("events",)), _EVENTS],
    "pod-garbage-collector": [
        _rule(("delete", "list", "watch"), ("",), ("pods",)), _rule(("get", "list"), ("",), ("nodes",)),
        _rule(("patch",), ("",), ("pods/status",))],
    "replicaset-controller": [
        _rule(READ + ("update",), ("apps", "extensions"), ("replicasets",)),
        _rule(("update",), ("apps", "extensions"), ("replicasets/status",)),
        _rule(("update",), ("apps", "extensions"), ("replicasets/finalizers",)),
        _rule(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)), _EVENTS],
    "replication-controller": [
        _rule(READ + ("update",), ("",), ("replicationcontrollers",)),
        _rule(("update",), ("",), ("replicationcontrollers/status",)),
        _rule(("update",), ("",), ("replicationcontrollers/finalizers",)),
        _rule(("create", "delete", "list", "patch", "watch"), ("",), ("pods",)), _EVENTS],
    "resourcequota-controller": [_rule(("list", "watch"), ("*",), ("*",)),
                                 _rule(("update",), ("",), ("resourcequotas/status",)), _EVENTS],
    "route-controller": [_rule(("list", "watch"), ("",), ("nodes",)), _rule(("patch",), ("",), ("nodes/status",)),
                         _EVENTS],
    "service-account-controller": [_rule(("create",), ("",), ("serviceaccounts",)), _EVENTS],
    "service-controller": [_rule(READ, ("",), ("services",)), _rule(("patch", "update"), ("",), ("services/status",)),
                           _rule(("list", "watch"), ("",), ("nodes",)), _EVENTS],
    "statefulset-controller": [
        _rule(("list", "watch"), ("",), ("pods",)), _rule(READ, ("apps",), ("statefulsets",)),
        _rule(("update",), ("apps",), ("statefulsets/status",)),
        _rule(("update",), ("apps",), ("statefulsets/finalizers",)),
        _rule(("create", "delete", "get", "patch", "update"), ("",), ("pods",)),
        _rule(_RW, ("apps",), ("controllerrevisions",)), _rule(("create", "get"), ("",), ("persistentvolumeclaims",)),
        _EVENTS, _rule(("delete", "update"), ("",), ("persistentvolumeclaims",))],
    "ttl-controller": [_rule(("list", "patch", "update", "watch"), ("",), ("nodes",)), _EVENTS],
    "certificate-controller": [
        _rule(READ + ("delete",), ("certificates.k8s.io",), ("certificatesigningrequests",)),
        _rule(("update",), ("certificates.k8s.io",),
              ("certificatesigningrequests/approval", "certificatesigningrequests/status")),
        _rule(("approve",), ("certificates.k8s.io",), ("signers",),
              names=("kubernetes.io/kube-apiserver-client-kubelet",)),
        _rule(("sign",), ("certificates.k8s.io",), ("signers",), names=(
            "kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet",
            "kubernetes.io/kubelet-serving", "kubernetes.io/legacy-unknown")),
        _rule(("create",), ("authorization.k8s.io",), ("subjectaccessreviews",)), _EVENTS],
    "pvc-protection-controller": [_rule(READ + ("update",), ("",), ("persistentvolumeclaims",)),
                                  _rule(READ, ("",), ("pods",)), _EVENTS],
    "pv-protection-controller": [_rule(READ + ("update",), ("",), ("persistentvolumes",)), _EVENTS],
    "ttl-after-finished-controller": [_rule(READ + ("delete",), ("batch",), ("jobs",)), _EVENTS],
    "root-ca-cert-publisher": [_rule(("create", "update"), ("",), ("configmaps",)), _EVENTS],
    "validatingadmissionpolicy-status-controller": [
        _rule(READ, ("admissionregistration.k8s.io",), ("validatingadmissionpolicies",)),
        _rule(("get", "patch", "update"), ("admissionregistration.k8s.io",), ("validatingadmissionpolicies/status",)),
        _EVENTS],
    "legacy-service-account-token-cleaner": [
        _rule(("get",), ("",), ("configmaps",), names=("kube-apiserver-legacy-service-account-token-tracking",)),
        _rule(("delete", "patch"), ("",), ("secrets",))],
}


def _rbac_meta(name: str, labels: dict | None = None) -> dict:
    meta = _meta(name, labels={**(labels or {}), **BOOTSTRAP_LABELS})
    meta["annotations"] = dict(AUTOUPDATE)
    return meta


def aggregated_rules(label: str) -> list[dict]:
    """What the clusterrole-aggregation controller writes into admin/edit/view: the rules of every role
    labelled aggregate-to-<label>, roles in name order, each rule once."""
    sources = {name: rules for name, (labels, rules) in BOOTSTRAP_CLUSTER_ROLES.items()
               if labels.get(f"rbac.authorization.k8s.io/aggregate-to-{label}") == "true"}
    sources.update({name: aggregated_rules(own) for name, (labels, own) in AGGREGATED_ROLES.items()
                    if labels.get(f"rbac.authorization.k8s.io/aggregate-to-{label}") == "true"})
    out: list[dict] = []
    for name in sorted(sources):
        out += [r for r in sources[name] if r not in out]
    return out


def bootstrap_cluster_roles() -> list[dict]:
    roles = [{"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": _rbac_meta(name, labels),
              "rules": rules} for name, (labels, rules) in BOOTSTRAP_CLUSTER_ROLES.items()]
    roles += [{"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": _rbac_meta(name, labels),
               "aggregationRule": _aggregate(label), "rules": aggregated_rules(label)}
              for name, (labels, label) in AGGREGATED_ROLES.items()]
    roles += [{"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
               "metadata": _rbac_meta(f"system:controller:{name}"), "rules": rules}
              for name, rules in CONTROLLER_ROLES.items()]
    return roles


def _subject(kind: str, name: str) -> dict:
    if kind == "ServiceAccount":
        namespace, _, sa = name.partition("/")
        return {"kind": kind, "name": sa, "namespace": namespace}
    return {"kind": kind, "apiGroup": RBAC_GROUP, "name": name}


def bootstrap_cluster_role_bindings() -> list[dict]:
    out = []
    for name, subjects in BOOTSTRAP_CLUSTER_ROLE_BINDINGS.items():
        binding = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _rbac_meta(name),
                   "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name}}
        if subjects:   # omitempty
            binding["subjects"] = [_subject(kind, who) for kind, who in subjects]
        out.append(binding)
    out += [{"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding",
             "metadata": _rbac_meta(f"system:controller:{name}"),
             "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": f"system:controller:{name}"},
             "subjects": [_subject("ServiceAccount", f"kube-system/{name}")]} for name in CONTROLLER_ROLES]
    return out


# The namespaced roles and bindings of upstream's bootstrap policy: (namespace, name) -> rules / subjects.
ROLES = lookup(RBAC_GROUP, "v1", "roles")
ROLE_BINDINGS = lookup(RBAC_GROUP, "v1", "rolebindings")
BOOTSTRAP_ROLES: dict[tuple[str, str], list[dict]] = {
    ("kube-system", "extension-apiserver-authentication-reader"): [
        _rule(READ, ("",), ("configmaps",), names=("extension-apiserver-authentication",))],
    ("kube-system", "system::leader-locking-kube-controller-manager"): [
        _rule(("watch",), ("",), ("configmaps",)),
        _rule(("get", "update"), ("",), ("configmaps",), names=("kube-controller-manager",))],
    ("kube-system", "system::leader-locking-kube-scheduler"): [
        _rule(("watch",), ("",), ("configmaps",)),
        _rule(("get", "update"), ("",), ("configmaps",), names=("kube-scheduler",))],
    ("kube-system", "system:controller:bootstrap-signer"): [_rule(READ, ("",), ("secrets",))],
    ("kube-system", "system:controller:cloud-provider"): [
        _rule(("create", "get", "list", "watch"), ("",), ("configmaps",))],
    ("kube-system", "system:controller:token-cleaner"): [
        _rule(("delete", "get", "list", "watch"), ("",), ("secrets",)), _EVENTS],
    ("kube-public", "system:controller:bootstrap-signer"): [
        _rule(READ, ("",), ("configmaps",)), _rule(("update",), ("",), ("configmaps",), names=("cluster-info",)),
        _EVENTS],
}
# (namespace, binding name) -> (role name, subjects)
BOOTSTRAP_ROLE_BINDINGS: dict[tuple[str, str], tuple[str, tuple[tuple[str, str], ...]]] = {
    ("kube-system", "system::extension-apiserver-authentication-reader"): (
        "extension-apiserver-authentication-reader",
        (("User", "system:kube-controller-manager"), ("User", "system:kube-scheduler"))),
    ("kube-system", "system::leader-locking-kube-controller-manager"): (
        "system::leader-locking-kube-controller-manager",
        (("User", "system:kube-controller-manager"), ("ServiceAccount", "kube-system/kube-controller-manager"))),
    ("kube-system", "system::leader-locking-kube-scheduler"): (
        "system::leader-locking-kube-scheduler",
        (("User", "system:kube-scheduler"), ("ServiceAccount", "kube-system/kube-scheduler"))),
    ("kube-system", "system:controller:bootstrap-signer"): (
        "system:controller:bootstrap-signer", (("ServiceAccount", "kube-system/bootstrap-signer"),)),
    ("kube-system", "system:controller:cloud-provider"): (
        "system:controller:cloud-provider", (("ServiceAccount", "kube-system/cloud-provider"),)),
    ("kube-system", "system:controller:token-cleaner"): (
        "system:controller:token-cleaner", (("ServiceAccount", "kube-system/token-cleaner"),)),
    ("kube-public", "system:controller:bootstrap-signer"): (
        "system:controller:bootstrap-signer", (("ServiceAccount", "kube-system/bootstrap-signer"),)),
}


def _namespaced_meta(namespace: str, name: str) -> dict:
    meta = _rbac_meta(name)
    meta["namespace"] = namespace
    return meta


def bootstrap_roles() -> list[dict]:
    return [{"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role", "metadata": _namespaced_meta(ns, name), "rules": rules}
            for (ns, name), rules in BOOTSTRAP_ROLES.items()]


def bootstrap_role_bindings() -> list[dict]:
    return [{"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding", "metadata": _namespaced_meta(ns, name),
             "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
             "subjects": [_subject(kind, who) for kind, who in subjects]}
            for (ns, name), (role, subjects) in BOOTSTRAP_ROLE_BINDINGS.items()]


# kube-aggregator's priorities (group minimum, version) for the built-in group versions.
API_SERVICE_PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1), ("apiregistration.k8s.io", "v1"): (18000, 15), ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15), ("authentication.k8s.io", "v1"): (17700, 15),
    ("authorization.k8s.io", "v1"): (17600, 15), ("autoscaling", "v2"): (17500, 30),
    ("autoscaling", "v1"): (17500, 15), ("batch", "v1"): (17400, 15), ("certificates.k8s.io", "v1"): (17300, 15),
    ("networking.k8s.io", "v1"): (17200, 15), ("policy", "v1"): (17100, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15), ("storage.k8s.io", "v1"): (16800, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15), ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15), ("coordination.k8s.io", "v1"): (16500, 15),
    ("node.k8s.io", "v1"): (16300, 15), ("discovery.k8s.io", "v1"): (16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21), ("metrics.k8s.io", "v1beta1"): (100, 100),
}


def local_api_service(group: str, version: str, group_min: int, version_prio: int, managed: str) -> dict:
    """An APIService served by this apiserver ("Local", no service), always available; `managed` is the
    automanaged label: "onstart" for built-in groups, "true" for the groups of CustomResourceDefinitions."""
    return {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": _meta(f"{version}.{group}", labels={"kube-aggregator.kubernetes.io/automanaged": managed}),
        "spec": {"group": group, "version": version, "groupPriorityMinimum": group_min, "versionPriority": version_prio},
        "status": {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": now_rfc3339(),
                                   "reason": "Local", "message": "Local APIServices are always available"}]}}


def local_api_services() -> list[dict]:
    """One APIService per built-in group version, as the autoregister controller keeps them."""
    return [local_api_service(group, version, *API_SERVICE_PRIORITIES.get((group, version), (1000, 15)), "onstart")
            for group, versions in group_versions().items() for version in versions]


async def ensure_bootstrap_objects(storage: Storage) -> None:
    """Create the default cluster roles and bindings, the local APIServices and the API Priority and Fairness
    configuration that are missing (as the apiserver's post-start hooks do once at start; what users delete
    later stays deleted until a restart)."""
    for role in bootstrap_cluster_roles():
        await _ensure(storage, CLUSTER_ROLES.key(None, role["metadata"]["name"]), role)
    for binding in bootstrap_cluster_role_bindings():
        await _ensure(storage, CLUSTER_ROLE_BINDINGS.key(None, binding["metadata"]["name"]), binding)
    for role in bootstrap_roles():
        await _ensure(storage, ROLES.key(role["metadata"]["namespace"], role["metadata"]["name"]), role)
    for binding in bootstrap_role_bindings():
        meta = binding["metadata"]
        await _ensure(storage, ROLE_BINDINGS.key(meta["namespace"], meta["name"]), binding)
    for svc in local_api_services():
        await _ensure(storage, API_SERVICES.key(None, svc["metadata"]["name"]), svc)
    for level in priority_level_configurations():
        await _ensure(storage, PRIORITY_LEVELS.key(None, level["metadata"]["name"]), level)
    for schema in flow_schemas():
        await _ensure(storage, FLOW_SCHEMAS.key(None, schema["metadata"]["name"]), schema)


# --- API Priority and Fairness: the mandatory and suggested configuration (k8s.io/apiserver's bootstrap) ---

FLOW_SCHEMAS = lookup("flowcontrol.apiserver.k8s.io", "v1", "flowschemas")
PRIORITY_LEVELS = lookup("flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations")
APF_AUTOUPDATE = {"apf.kubernetes.io/autoupdate-spec": "true"}
EVERYONE = (("Group", "system:unauthenticated"), ("Group", "system:authenticated"))
ALL_REQUESTS = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True, "namespaces": ["*"]}]
ALL_URLS = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


def _leases(*groups_resources: tuple[str, str]) -> list[dict]:
    return [{"verbs": ["create", "get", "update"], "apiGroups": [group], "resources": [resource],
             "namespaces": ["*"]} for group, resource in groups_resources]


# name -> (nominal shares, lendable %, (queues, hand size, queue length limit) or None for Reject); exempt apart.
PRIORITY_LEVEL_TABLE: dict[str, tuple[int, int, tuple[int, int, int] | None]] = {
    "catch-all": (5, 0, None),
    "system": (30, 33, (64, 6, 50)),
    "node-high": (40, 25, (64, 6, 50)),
    "leader-election": (10, 0, (16, 4, 50)),
    "workload-high": (40, 50, (128, 6, 50)),
    "workload-low": (100, 90, (128, 6, 50)),
    "global-default": (20, 50, (128, 6, 50)),
}
# name -> (priority level, matching precedence, distinguisher, subjects, resource rules, non-resource rules)
FLOW_SCHEMA_TABLE: dict[str, tuple[str, int, str | None, tuple, list, list]] = {
    "exempt": ("exempt", 1, None, (("Group", "system:masters"),), ALL_REQUESTS, ALL_URLS),
    "probes": ("exempt", 2, None, EVERYONE, [], [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez",
                                                                                          "/readyz"]}]),
    "system-leader-election": ("leader-election", 100, "ByUser", (("User", "system:kube-controller-manager"),
                                                                  ("User", "system:kube-scheduler")),
                               _leases(("coordination.k8s.io", "leases")), []),
    "endpoint-controller": ("workload-high", 150, "ByUser", (("User", "system:kube-controller-manager"),
                                                             ("ServiceAccount", "kube-system/endpoint-controller")),
                            _leases(("", "endpoints")), []),
    "workload-leader-election": ("leader-election", 200, "ByUser", (("ServiceAccount", "kube-system/*"),),
                                 _leases(("coordination.k8s.io", "leases")), []),
    "system-node-high": ("node-high", 400, "ByUser", (("Group", "system:nodes"),),
                         [{"verbs": ["*"], "apiGroups": [""], "resources": ["nodes", "nodes/status"],
                           "clusterScope": True},
                          {"verbs": ["*"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                           "namespaces": ["*"]}], []),
    "system-nodes": ("system", 500, "ByUser", (("Group", "system:nodes"),), ALL_REQUESTS, ALL_URLS),
    "kube-controller-manager": ("workload-high", 800, "ByNamespace", (("User", "system:kube-controller-manager"),),
                                ALL_REQUESTS, ALL_URLS),
    "kube-scheduler": ("workload-high", 800, "ByNamespace", (("User", "system:kube-scheduler"),), ALL_REQUESTS,
                       ALL_URLS),
    "kube-system-service-accounts": ("workload-high", 900, "ByNamespace", (("ServiceAccount", "kube-system/*"),),
                                     ALL_REQUESTS, ALL_URLS),
    "service-accounts": ("workload-low", 9000, "ByUser", (("Group", "system:serviceaccounts"),), ALL_REQUESTS,
                         ALL_URLS),
    "global-default": ("global-default", 9900, "ByUser", EVERYONE, ALL_REQUESTS, ALL_URLS),
    "catch-all": ("catch-all", 10000, "ByUser", EVERYONE, ALL_REQUESTS, ALL_URLS),
}


def _apf_meta(name: str) -> dict:
    meta = _meta(name)
    meta["annotations"] = dict(APF_AUTOUPDATE)
    return meta


def priority_level_configurations() -> list[dict]:
    exempt = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
              "metadata": _apf_meta("exempt"),
              "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}},
              "status": {}}
    out = [exempt]
    for name, (shares, lendable, queuing) in PRIORITY_LEVEL_TABLE.items():
        response = ({"type": "Reject"} if queuing is None else
                    {"type": "Queue", "queuing": dict(zip(("queues", "handSize", "queueLengthLimit"), queuing))})
        out.append({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
                    "metadata": _apf_meta(name),
                    "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": shares,
                                                            "lendablePercent": lendable, "limitResponse": response}},
                    "status": {}})
    return out


def _flow_subject(kind: str, name: str) -> dict:
    if kind == "ServiceAccount":
        namespace, _, sa = name.partition("/")
        return {"kind": kind, "serviceAccount": {"namespace": namespace, "name": sa}}
    return {"kind": kind, kind.lower(): {"name": name}}


def flow_schemas() -> list[dict]:
    out = []
    for name, (level, precedence, distinguisher, subjects, resources, urls) in FLOW_SCHEMA_TABLE.items():
        rule: dict = {"subjects": [_flow_subject(kind, who) for kind, who in subjects]}
        if resources:
            rule["resourceRules"] = resources
        if urls:
            rule["nonResourceRules"] = urls
        spec: dict = {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": precedence,
                      "rules": [rule]}
        if distinguisher:
            spec["distinguisherMethod"] = {"type": distinguisher}
        message = f'This FlowSchema references the PriorityLevelConfiguration object named "{level}" and it exists'
        out.append({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                    "metadata": _apf_meta(name), "spec": spec,
                    "status": {"conditions": [{"type": "Dangling", "status": "False", "lastTransitionTime":
                                               now_rfc3339(), "reason": "Found", "message": message}]}})
    return out

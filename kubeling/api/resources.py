"""The declarative resource table: every kind the apiserver serves is one row here.

Components (apiserver, clients, kubectl-facing discovery, OpenAPI, tables) read
this table instead of hard-coding paths, so adding a kind is adding a row.
"""
from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str                 # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()   # status, scale, binding, log, exec, eviction
    verbs: tuple[str, ...] = ALL_VERBS
    # Storage shared between views (events.k8s.io events live with core events,
    # autoscaling/v1 and v2 HPAs share one record): (group, plural) of the owner.
    storage: tuple[str, str] | None = None
    storage_version: str | None = None   # version stored in etcd when shared
    custom: bool = False                 # served for a CustomResourceDefinition
    has_generation: bool = False        # metadata.generation tracks spec changes
    returns_deleted_object: bool = False   # DELETE answers with the object, not a Status (upstream's store flag)
    singular: str = ""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def storage_group(self) -> str:
        return self.storage[0] if self.storage else self.group

    @property
    def storage_plural(self) -> str:
        return self.storage[1] if self.storage else self.plural

    @property
    def converted(self) -> bool:
        """Served in a different group/version than the record in etcd."""
        return self.storage is not None and (self.storage[0], self.storage_version) != (self.group, self.version)

    @property
    def key_prefix(self) -> str:
        """etcd prefix, ending in '/': /registry/<group>/<plural>/ (core: no group)."""
        g = self.storage_group
        return f"/registry/{g}/{self.storage_plural}/" if g else f"/registry/{self.storage_plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix}{namespace}/{name}"
        return f"{self.key_prefix}{name}"

    def base_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool = True, **kw) -> Resource:
    return Resource(group, version, kind, plural, namespaced, **kw)


ALL = "all"
API_EXTENSIONS = "api-extensions"

RESOURCES: tuple[Resource, ...] = (
    _r("", "v1", "Namespace", "namespaces", False, short_names=("ns",), subresources=("status", "finalize"),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Pod", "pods", short_names=("po",), categories=(ALL,),
       subresources=("status", "binding", "log", "exec", "eviction", "ephemeralcontainers"), returns_deleted_object=True),
    _r("", "v1", "Service", "services", short_names=("svc",), categories=(ALL,), subresources=("status",),
       returns_deleted_object=True,
       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Endpoints", "endpoints", short_names=("ep",), singular="endpoints"),
    _r("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",), subresources=("token",),
       returns_deleted_object=True),
    _r("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("status", "proxy")),
    _r("", "v1", "Event", "events", short_names=("ev",)),
    _r("", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",), categories=(ALL,),
       subresources=("status", "scale"), has_generation=True),
    _r("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), subresources=("status",),
       returns_deleted_object=True),
    _r("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    _r("", "v1", "PodTemplate", "podtemplates", returns_deleted_object=True),
    _r("", "v1", "ComponentStatus", "componentstatuses", False, short_names=("cs",), verbs=("get", "list")),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, short_names=("pv",), subresources=("status",),
       returns_deleted_object=True),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), subresources=("status",),
       returns_deleted_object=True),
    _r("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=(ALL,),
       subresources=("status", "scale"), has_generation=True),
    _r("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=(ALL,),
       subresources=("status", "scale"), has_generation=True),
    _r("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=(ALL,),
       subresources=("status",), has_generation=True),
    _r("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=(ALL,),
       subresources=("status", "scale"), has_generation=True),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
       categories=(ALL,), subresources=("status",), has_generation=True,
       storage=("autoscaling", "horizontalpodautoscalers"), storage_version="v2"),
    _r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
       categories=(ALL,), subresources=("status",), has_generation=True,
       storage=("autoscaling", "horizontalpodautoscalers"), storage_version="v2"),
    _r("batch", "v1", "Job", "jobs", categories=(ALL,), subresources=("status",), has_generation=True),
    _r("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=(ALL,), subresources=("status",),
       has_generation=True),
    _r("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", False,
       short_names=("csr",), subresources=("status", "approval")),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",), has_generation=True),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",), subresources=("status",),
       has_generation=True),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False, has_generation=True),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",), subresources=("status",),
       has_generation=True),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False, returns_deleted_object=True),
    _r("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities"),
    _r("storage.k8s.io", "v1", "CSINode", "csinodes", False, returns_deleted_object=True),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",),
       returns_deleted_object=True),
    _r("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", False, subresources=("status",),
       returns_deleted_object=True),
    _r("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False,
       categories=(API_EXTENSIONS,), has_generation=True),
    _r("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
       False, categories=(API_EXTENSIONS,), has_generation=True),
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
       short_names=("crd", "crds"), categories=(API_EXTENSIONS,), subresources=("status",), has_generation=True),
    _r("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, categories=(API_EXTENSIONS,),
       subresources=("status",)),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short_names=("pc",)),
    _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    _r("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", False, subresources=("status",),
       has_generation=True),
    _r("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", False,
       subresources=("status",), has_generation=True),
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=("create",)),
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _r("events.k8s.io", "v1", "Event", "events", short_names=("ev",),
       storage=("", "events"), storage_version="v1"),
    # computed on read from the kubelets (apiserver/metrics.py), as metrics-server's aggregated API
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=("get", "list")),
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=("get", "list")),
)

# Preferred version first per group, in the order Kubernetes lists groups.
GROUP_ORDER = ("", "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io", "autoscaling", "batch",
               "certificates.k8s.io", "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
               "admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io",
               "node.k8s.io", "discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "metrics.k8s.io")


def group_versions() -> dict[str, list[str]]:
    """{group: [versions, preferred first]}: the built-in groups, then the custom ones."""
    out: dict[str, list[str]] = {g: [] for g in GROUP_ORDER}
    for r in RESOURCES:
        vs = out.setdefault(r.group, [])
        if r.version not in vs:
            vs.append(r.version)
    for group, versions in _CUSTOM_VERSIONS.items():
        out.setdefault(group, []).extend(v for v in versions if v not in out[group])
    return out


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural)) or _CUSTOM_BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind)) or _CUSTOM_BY_KIND.get((api_version, kind))


def storage_resource(r: Resource) -> Resource:
    """The row whose version is what etcd holds for r (r itself unless storage is shared)."""
    if not r.converted:
        return r
    return lookup(r.storage[0], r.storage_version or "", r.storage[1]) or r


def for_group_version(group: str, version: str) -> list[Resource]:
    return [r for r in all_resources() if r.group == group and r.version == version]


def all_resources() -> list[Resource]:
    """Built-in rows, then the custom resources' (CustomResourceDefinitions) rows."""
    return [*RESOURCES, *(r for rs in _CUSTOM.values() for r in rs)]


def set_custom(name: str, resources: tuple[Resource, ...], versions: list[str]) -> None:
    """The rows one CustomResourceDefinition serves (one per served version) and its group's versions,
    preferred first; replaces what the same definition had before."""
    _CUSTOM[name] = resources
    _CUSTOM_GROUP_VERSIONS[name] = (resources[0].group, versions) if resources else ("", [])
    _reindex()


def remove_custom(name: str) -> None:
    if _CUSTOM.pop(name, None) is not None:
        _CUSTOM_GROUP_VERSIONS.pop(name, None)
        _reindex()


def _reindex() -> None:
    rows = [r for rs in _CUSTOM.values() for r in rs]
    _CUSTOM_BY_PATH.clear()
    _CUSTOM_BY_PATH.update({(r.group, r.version, r.plural): r for r in rows})
    _CUSTOM_BY_KIND.clear()
    _CUSTOM_BY_KIND.update({(r.api_version, r.kind): r for r in rows})
    _CUSTOM_VERSIONS.clear()
    for group, versions in _CUSTOM_GROUP_VERSIONS.values():
        if group:
            known = _CUSTOM_VERSIONS.setdefault(group, [])
            known.extend(v for v in versions if v not in known)


_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}
_CUSTOM: dict[str, tuple[Resource, ...]] = {}
_CUSTOM_GROUP_VERSIONS: dict[str, tuple[str, list[str]]] = {}
_CUSTOM_BY_PATH: dict[tuple[str, str, str], Resource] = {}
_CUSTOM_BY_KIND: dict[tuple[str, str], Resource] = {}
_CUSTOM_VERSIONS: dict[str, list[str]] = {}

"""OpenAPI v2 (/openapi/v2) and v3 (/openapi/v3/...) documents for the kinds in the resource table.

kubectl reads these: `explain` walks the v3 schemas, `apply`/`edit`/`patch` look up strategic-merge
metadata (x-kubernetes-patch-merge-key/-strategy), and `--validate` decides to use server-side field
validation when the PATCH operation of the kind lists the `fieldValidation` parameter in the v3 doc.

Schemas come from the official Python client's generated models (the kubernetes package, 32.x =
Kubernetes 1.32): their source files are parsed (not imported; importing them costs ~0.3 s) for
`openapi_types`, `attribute_map`, required fields (setters raising on None) and property docstrings.
What the client does not carry (API groups of nested types, int32/int64, Quantity/IntOrString/
MicroTime fields, list patch metadata) lives in the small declarative tables below.

`unknown_fields` walks the same schemas for fieldValidation=Strict|Warn. kubectl 1.27/1.28 fetch
/openapi/v2 as protobuf only: `openapi_v2_response(accept)` picks JSON or the protobuf encoding.
Everything is built once on first use (~0.15 s) and cached, with pre-serialized bytes for serving.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any, Iterator

import orjson

from kubeling.api.resources import RESOURCES, Resource, group_versions

K8S_VERSION = "v1.32.0"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
TIME, MICROTIME, FIELDSV1, PATCH = f"{META}.Time", f"{META}.MicroTime", f"{META}.FieldsV1", f"{META}.Patch"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
STATUS, DELETE_OPTIONS, WATCH_EVENT = f"{META}.Status", f"{META}.DeleteOptions", f"{META}.WatchEvent"
RESOURCE_LIST = f"{META}.APIResourceList"

Json = dict[str, Any]
GVK = tuple[str, str, str]  # (group, version, kind)

# ---------------------------------------------------------------------------------------------
# Declarative tables: what the client models do not say.
# ---------------------------------------------------------------------------------------------

# Types of apimachinery's meta/v1 package (the client names them V1<Name> like core types).
META_TYPES = frozenset({
    "ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
    "ManagedFieldsEntry", "Status", "StatusDetails", "StatusCause", "DeleteOptions", "Preconditions",
    "WatchEvent", "Condition", "APIResource", "APIResourceList",
})

# Unprefixed client classes outside the core group (fnmatch patterns on the name after V<n>).
# Anything unlisted is core/v1; name clashes are prefixed by the client itself (CoreV1Event,
# EventsV1Event, DiscoveryV1EndpointPort, AuthenticationV1TokenRequest...).
GROUP_TYPES: dict[str, tuple[str, ...]] = {
    "apps": ("Deployment*", "ReplicaSet*", "DaemonSet*", "StatefulSet*", "ControllerRevision*",
             "RollingUpdateDeployment", "RollingUpdateDaemonSet", "RollingUpdateStatefulSetStrategy"),
    "autoscaling": ("HorizontalPodAutoscaler*", "CrossVersionObjectReference", "Scale", "ScaleSpec", "ScaleStatus",
                    "HPAScaling*", "Metric*", "*MetricSource", "*MetricStatus"),
    "batch": ("Job*", "CronJob*", "PodFailurePolicy*", "SuccessPolicy*", "UncountedTerminatedPods"),
    "coordination.k8s.io": ("Lease", "LeaseSpec", "LeaseList"),
    "discovery.k8s.io": ("EndpointSlice*", "Endpoint", "EndpointConditions", "EndpointHints", "ForZone", "ForNode"),
    "policy": ("Eviction", "PodDisruptionBudget*"),
    "authentication.k8s.io": ("TokenRequest*", "BoundObjectReference"),
}

# Request/response bodies of subresources, with the GVKs they are registered as.
SUBRESOURCE_KINDS: dict[str, GVK] = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}

# Fields stored as 64-bit integers (everything else the client calls 'int' is int32).
INT64_FIELDS = frozenset({
    "activeDeadlineSeconds", "deletionGracePeriodSeconds", "expirationSeconds", "fsGroup", "generation", "gid",
    "gracePeriodSeconds", "observedGeneration", "remainingItemCount", "runAsGroup", "runAsUser", "seconds",
    "sizeBytes", "supplementalGroups", "terminationGracePeriodSeconds", "tolerationSeconds", "uid",
    "startingDeadlineSeconds", "limitBytes", "sinceSeconds", "tailLines",
})

# (type, field) holding resource.Quantity values (scalars, or the values of a map).
QUANTITY_FIELDS = frozenset({
    ("ResourceRequirements", "limits"), ("ResourceRequirements", "requests"),
    ("VolumeResourceRequirements", "limits"), ("VolumeResourceRequirements", "requests"),
    ("ContainerStatus", "allocatedResources"), ("NodeStatus", "allocatable"), ("NodeStatus", "capacity"),
    ("PersistentVolumeSpec", "capacity"), ("PersistentVolumeClaimStatus", "capacity"),
    ("PersistentVolumeClaimStatus", "allocatedResources"), ("PodSpec", "overhead"),
    ("EmptyDirVolumeSource", "sizeLimit"), ("ResourceFieldSelector", "divisor"),
    ("MetricTarget", "value"), ("MetricTarget", "averageValue"),
    ("MetricValueStatus", "value"), ("MetricValueStatus", "averageValue"),
})
MICROTIME_FIELDS = frozenset({("LeaseSpec", "acquireTime"), ("LeaseSpec", "renewTime"), ("Event", "eventTime"),
                              ("EventSeries", "lastObservedTime")})
BYTE_MAPS = frozenset({("Secret", "data"), ("ConfigMap", "binaryData")})
# 'object' in the client is IntOrString unless listed here.
OBJECT_FIELDS = {("ManagedFieldsEntry", "fieldsV1"): FIELDSV1, ("WatchEvent", "object"): RAW_EXTENSION}

# Strategic-merge and server-side-apply metadata: (type, field) -> (patch strategy, merge key,
# list type, list map keys). Strategies/merge keys match the struct tags compiled into kubectl 1.32;
# list types follow k8s.io/api's +listType markers (unlisted lists carry no list type).
_C = ("merge", "name", "map", ("name",))
_COND = ("merge", "type", "map", ("type",))
LIST_META: dict[tuple[str, str], tuple[str | None, str | None, str | None, tuple[str, ...]]] = {
    ("PodSpec", "containers"): _C, ("PodSpec", "initContainers"): _C, ("PodSpec", "ephemeralContainers"): _C,
    ("PodSpec", "volumes"): ("merge,retainKeys", "name", "map", ("name",)),
    ("PodSpec", "imagePullSecrets"): _C, ("PodSpec", "schedulingGates"): _C,
    ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name", "map", ("name",)),
    ("PodSpec", "hostAliases"): ("merge", "ip", "map", ("ip",)),
    ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey", "map", ("topologyKey", "whenUnsatisfiable")),
    ("PodSpec", "tolerations"): (None, None, "atomic", ()), ("PodSpec", "readinessGates"): (None, None, "atomic", ()),
    ("Container", "ports"): ("merge", "containerPort", "map", ("containerPort", "protocol")),
    ("Container", "env"): _C, ("Container", "envFrom"): (None, None, "atomic", ()),
    ("Container", "volumeMounts"): ("merge", "mountPath", "map", ("mountPath",)),
    ("Container", "volumeDevices"): ("merge", "devicePath", "map", ("devicePath",)),
    ("Container", "command"): (None, None, "atomic", ()), ("Container", "args"): (None, None, "atomic", ()),
    ("EphemeralContainer", "ports"): ("merge", "containerPort", "map", ("containerPort", "protocol")),
    ("EphemeralContainer", "env"): _C,
    ("EphemeralContainer", "volumeMounts"): ("merge", "mountPath", "map", ("mountPath",)),
    ("EphemeralContainer", "volumeDevices"): ("merge", "devicePath", "map", ("devicePath",)),
    ("PodStatus", "conditions"): _COND, ("PodStatus", "podIPs"): ("merge", "ip", "map", ("ip",)),
    ("PodStatus", "hostIPs"): ("merge", "ip", "atomic", ()),
    ("PodStatus", "resourceClaimStatuses"): ("merge,retainKeys", "name", "map", ("name",)),
    ("ContainerStatus", "allocatedResourcesStatus"): _C,
    ("ServiceSpec", "ports"): ("merge", "port", "map", ("port", "protocol")),
    ("ServiceSpec", "clusterIPs"): (None, None, "atomic", ()),
    ("ServiceStatus", "conditions"): _COND, ("NodeStatus", "conditions"): _COND,
    ("NodeStatus", "addresses"): ("merge", "type", None, ()), ("NodeSpec", "podCIDRs"): ("merge", None, "set", ()),
    ("NamespaceStatus", "conditions"): _COND, ("PersistentVolumeClaimStatus", "conditions"): _COND,
    ("DeploymentStatus", "conditions"): _COND, ("ReplicaSetStatus", "conditions"): _COND,
    ("DaemonSetStatus", "conditions"): _COND, ("HorizontalPodAutoscalerStatus", "conditions"): _COND,
    ("JobStatus", "conditions"): ("merge", "type", "atomic", ()),
    ("DeploymentSpec", "strategy"): ("retainKeys", None, None, ()),
    ("ObjectMeta", "finalizers"): ("merge", None, "set", ()),
    ("ObjectMeta", "ownerReferences"): ("merge", "uid", "map", ("uid",)),
    ("ObjectMeta", "managedFields"): (None, None, "atomic", ()),
    ("ServiceAccount", "secrets"): _C,
    ("LabelSelector", "matchExpressions"): (None, None, "atomic", ()),
}

KIND_DOCS = {
    "Namespace": "Namespace gives a separate scope to the names of the namespaced objects in it.",
    "Pod": "Pod is a group of containers scheduled together on one node, sharing network and volumes.",
    "Service": "Service exposes a set of pods, chosen by a label selector, behind one stable address and port set.",
    "Endpoints": "Endpoints lists the addresses and ports that implement a Service.",
    "ConfigMap": "ConfigMap holds non-confidential configuration data as key-value pairs for pods to consume.",
    "Secret": "Secret holds confidential data (base64-encoded in data) for pods to consume.",
    "ServiceAccount": "ServiceAccount is an identity for processes running in pods, used to obtain API tokens.",
    "Node": "Node is a worker machine that runs pods; the kubelet reports its status.",
    "Event": "Event records something that happened to an object in the cluster, such as a state change or error.",
    "PersistentVolume": "PersistentVolume is a piece of cluster storage provisioned by an administrator or a class.",
    "PersistentVolumeClaim": "PersistentVolumeClaim is a request for storage that gets bound to a PersistentVolume.",
    "Deployment": "Deployment declares the desired state of a replicated application and rolls it out "
                  "through ReplicaSets.",
    "ReplicaSet": "ReplicaSet keeps the specified number of pod replicas running.",
    "DaemonSet": "DaemonSet runs a copy of a pod on every eligible node.",
    "HorizontalPodAutoscaler": "HorizontalPodAutoscaler adjusts the replica count of a scalable resource from "
                               "observed metrics.",
    "Job": "Job runs pods until a given number of them complete successfully.",
    "Lease": "Lease records which holder owns a named lock and until when.",
    "EndpointSlice": "EndpointSlice holds a subset of the network endpoints that implement a Service.",
    "Scale": "Scale is the scale subresource of a scalable resource: desired and observed replica counts.",
    "Binding": "Binding assigns a pod to a node; posted by the scheduler to the pods/binding subresource.",
    "Eviction": "Eviction asks for a pod to be deleted while honouring disruption budgets.",
    "TokenRequest": "TokenRequest asks for a token bound to a service account.",
    "Status": "Status is the response of calls that do not return an object, and the body of errors.",
    "DeleteOptions": "DeleteOptions may be sent as the body of delete requests.",
    "WatchEvent": "WatchEvent is one change notification of a watch stream.",
    "APIResourceList": "APIResourceList lists the resources of one group-version.",
}
SCALAR_DEFS: dict[str, Json] = {
    TIME: {"description": "Time is an RFC 3339 timestamp with second precision, in UTC.",
           "type": "string", "format": "date-time"},
    MICROTIME: {"description": "MicroTime is an RFC 3339 timestamp with microsecond precision.",
                "type": "string", "format": "date-time"},
    QUANTITY: {"description": "Quantity is a fixed-point number with an optional SI or binary suffix "
                              "(e.g. 100m, 1.5, 128Mi, 1e3).", "type": "string"},
    INT_OR_STRING: {"description": "IntOrString holds either an int32 or a string (e.g. a port number or name, "
                                   "or a percentage).", "type": "string", "format": "int-or-string"},
    FIELDSV1: {"description": "FieldsV1 is the set of fields owned by a manager, as a JSON trie of f:/k:/v:/i: keys.",
               "type": "object"},
    RAW_EXTENSION: {"description": "RawExtension holds an embedded object as raw JSON.", "type": "object"},
    PATCH: {"description": "Patch is the body of a PATCH request; its format follows the Content-Type.",
            "type": "object"},
}
FREE_FORM = frozenset(SCALAR_DEFS)  # no properties to check below these

# ---------------------------------------------------------------------------------------------
# Client model source parsing
# ---------------------------------------------------------------------------------------------

_GETTER = re.compile(r'def (\w+)\(self\):\n        """Gets the \w+ of this \w+\.  # noqa: E501\n\n'
                     r'(?:        (.+?)  # noqa: E501\n)?\n        :return:')
_REQUIRED = re.compile(r"Invalid value for `(\w+)`, must not be `None`")
_DICT_LITERAL = r"{} = (\{{.*?\n    \}})"
_UNESCAPE = re.compile(r'\\([\\"])')  # docstrings are plain (non-raw) string literals


@cache
def _models_dir() -> Path:
    spec = importlib.util.find_spec("kubernetes")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'kubernetes' client package is required for OpenAPI schemas")
    return Path(list(spec.submodule_search_locations)[0]) / "client" / "models"


@cache
def _model_files() -> dict[str, str]:
    """Client class name -> module file name, from the models package's import list."""
    text = (_models_dir() / "__init__.py").read_text()
    return {cls: mod for mod, cls in re.findall(r"^from kubernetes\.client\.models\.(\w+) import (\w+)$", text, re.M)}


@cache
def _model(cls: str) -> tuple[dict[str, str], dict[str, str], dict[str, str], frozenset[str]]:
    """(types, json names, descriptions, required) of a client class, keyed by python attribute."""
    src = (_models_dir() / f"{_model_files()[cls]}.py").read_text()
    types = ast.literal_eval(re.search(_DICT_LITERAL.format("openapi_types"), src, re.S).group(1))
    names = ast.literal_eval(re.search(_DICT_LITERAL.format("attribute_map"), src, re.S).group(1))
    docs = {m.group(1): _UNESCAPE.sub(r"\1", m.group(2) or "") for m in _GETTER.finditer(src)}
    return types, names, docs, frozenset(_REQUIRED.findall(src))


# ---------------------------------------------------------------------------------------------
# Names: client classes <-> Kubernetes definition names
# ---------------------------------------------------------------------------------------------

def _camel(group: str) -> str:
    """Group as it appears in operation ids and client prefixes: '' -> Core, events.k8s.io -> Events."""
    if not group:
        return "Core"
    return "".join(p[:1].upper() + p[1:] for p in group.removesuffix(".k8s.io").split("."))


_KNOWN_GROUPS = {r.group for r in RESOURCES} | {g for g, _, _ in SUBRESOURCE_KINDS.values()}
_PREFIX_GROUP = {_camel(g): g for g in _KNOWN_GROUPS}
_CLASS_RE = re.compile(r"([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)")


def _class_gvk(cls: str) -> GVK:
    """(group or META, version, name) of a client class; group META marks apimachinery meta types."""
    m = _CLASS_RE.fullmatch(cls)
    if not m:
        raise ValueError(f"not a versioned client model: {cls}")
    prefix, version, name = m.group(1), m.group(2).lower(), m.group(3)
    if prefix:
        return _PREFIX_GROUP.get(prefix, prefix.lower()), version, name
    if name in META_TYPES:
        return META, version, name
    for group, patterns in GROUP_TYPES.items():
        if any(fnmatchcase(name, p) for p in patterns):
            return group, version, name
    return "", version, name


def _def_name(cls: str) -> str:
    group, version, name = _class_gvk(cls)
    if group == META:
        return f"{META}.{name}"
    return f"io.k8s.api.{group.split('.')[0] or 'core'}.{version}.{name}"


def _class_for(group: str, version: str, kind: str) -> str | None:
    ver = version[:1].upper() + version[1:]
    files = _model_files()
    return next((c for c in (f"{_camel(group)}{ver}{kind}", f"{ver}{kind}") if c in files), None)


def _def_for(gvk: GVK) -> str:
    cls = _class_for(*gvk)
    if cls is None:
        raise LookupError(f"no client model for {gvk}")
    return _def_name(cls)


# ---------------------------------------------------------------------------------------------
# Definitions (Swagger 2.0 form; v3 is derived from it)
# ---------------------------------------------------------------------------------------------

def _ref(name: str) -> Json:
    return {"$ref": f"#/definitions/{name}"}


def _type_schema(owner: str, field: str, typ: str) -> tuple[Json, list[str]]:
    """Schema for a client type string, and the client classes it references."""
    if typ.startswith("list["):
        inner, refs = _type_schema(owner, field, typ[5:-1])
        return {"type": "array", "items": inner}, refs
    if typ.startswith("dict("):
        inner_t = typ[typ.index(",") + 1:-1].strip()
        if (owner, field) in QUANTITY_FIELDS:
            return {"type": "object", "additionalProperties": _ref(QUANTITY)}, []
        if (owner, field) in BYTE_MAPS:
            return {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}, []
        inner, refs = _type_schema(owner, field, inner_t)
        return {"type": "object", "additionalProperties": inner}, refs
    if typ == "str":
        return (_ref(QUANTITY) if (owner, field) in QUANTITY_FIELDS else {"type": "string"}), []
    if typ == "int":
        return {"type": "integer", "format": "int64" if field in INT64_FIELDS else "int32"}, []
    if typ == "float":
        return {"type": "number", "format": "double"}, []
    if typ == "bool":
        return {"type": "boolean"}, []
    if typ == "datetime":
        return _ref(MICROTIME if (owner, field) in MICROTIME_FIELDS else TIME), []
    if typ == "date":
        return {"type": "string", "format": "date"}, []
    if typ == "object":
        return _ref(OBJECT_FIELDS.get((owner, field), INT_OR_STRING)), []
    return _ref(_def_name(typ)), [typ]


def _gvk_ext(*gvks: GVK) -> list[Json]:
    return [{"group": g, "kind": k, "version": v} for g, v, k in gvks]


def _struct_def(cls: str) -> tuple[Json, list[str]]:
    types, names, docs, required = _model(cls)
    owner = _class_gvk(cls)[2]
    props: Json = {}
    refs: list[str] = []
    for attr, typ in types.items():
        field = names[attr]
        schema, more = _type_schema(owner, field, typ)
        refs += more
        doc = docs.get(attr) or _generic_doc(owner, field, typ)
        if doc:
            schema["description"] = doc
        strategy, key, list_type, map_keys = LIST_META.get((owner, field), (None, None, None, ()))
        if strategy:
            schema["x-kubernetes-patch-strategy"] = strategy
        if key:
            schema["x-kubernetes-patch-merge-key"] = key
        if list_type:
            schema["x-kubernetes-list-type"] = list_type
        if map_keys:
            schema["x-kubernetes-list-map-keys"] = list(map_keys)
        props[field] = schema
    out: Json = {"type": "object", "properties": props}
    req = [names[a] for a in types if a in required]
    if req:
        out["required"] = req
    if owner in KIND_DOCS:
        out["description"] = KIND_DOCS[owner]
    elif owner.endswith("List") and owner[:-4] in KIND_DOCS:
        out["description"] = f"{owner} is a list of {owner[:-4]} objects."
    return out, refs


def _generic_doc(owner: str, field: str, typ: str) -> str:
    """The client drops descriptions of object-typed fields; give the common ones a short one."""
    if owner not in KIND_DOCS and not owner.endswith("List"):
        return ""
    kind = owner.removesuffix("List")
    return {
        "metadata": ("Standard list metadata." if typ == "V1ListMeta" else
                     "Standard object metadata: name, namespace, labels, annotations, owners, and so on."),
        "spec": f"Desired state of the {kind}.",
        "status": f"Most recently observed state of the {kind}. Populated by the system. Read-only.",
    }.get(field, "")


@cache
def _definitions() -> dict[str, Json]:
    """All definitions reachable from the served kinds, their lists and the subresource/meta bodies."""
    roots: dict[str, list[GVK]] = {}
    for r in RESOURCES:
        for kind in (r.kind, r.list_kind):
            cls = _class_for(r.group, r.version, kind)
            if cls:
                roots.setdefault(cls, []).append((r.group, r.version, kind))
    for gvk in SUBRESOURCE_KINDS.values():
        if cls := _class_for(*gvk):
            roots.setdefault(cls, []).append(gvk)
    all_gvs = [(g, v) for g, vs in group_versions().items() for v in vs] + \
        [(g, v) for g, v, _ in SUBRESOURCE_KINDS.values()]
    all_gvs = list(dict.fromkeys(all_gvs))
    roots["V1Status"] = [("", "v1", "Status")]
    roots["V1APIResourceList"] = [("", "v1", "APIResourceList")]
    roots["V1DeleteOptions"] = [(g, v, "DeleteOptions") for g, v in all_gvs]
    roots["V1WatchEvent"] = [(g, v, "WatchEvent") for g, v in all_gvs]

    defs: dict[str, Json] = {name: dict(schema) for name, schema in SCALAR_DEFS.items()}
    todo = list(roots)
    seen: set[str] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        schema, refs = _struct_def(cls)
        if cls in roots:
            schema["x-kubernetes-group-version-kind"] = _gvk_ext(*roots[cls])
        defs[_def_name(cls)] = schema
        todo += refs
    return dict(sorted(defs.items()))


# ---------------------------------------------------------------------------------------------
# Paths and operations
# ---------------------------------------------------------------------------------------------

_PARAMS: dict[str, tuple[str, str]] = {  # name -> (type, description)
    "pretty": ("string", "If 'true', the output is pretty printed."),
    "dryRun": ("string", "When present, the request is processed but not persisted. The only valid value is All."),
    "fieldManager": ("string", "Name of the actor making the change, recorded in managedFields. Required for "
                               "apply patches (application/apply-patch+yaml)."),
    "fieldValidation": ("string", "How to treat unknown or duplicate fields in the request body: Ignore drops "
                                  "them, Warn drops them and returns a warning for each, Strict rejects the "
                                  "request."),
    "force": ("boolean", "Apply patches only: take ownership of fields that conflict with other managers."),
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK events on watches; servers may ignore it."),
    "continue": ("string", "Token from a previous paginated list response to fetch the next chunk."),
    "fieldSelector": ("string", "Restrict the returned objects by their fields. Defaults to everything."),
    "labelSelector": ("string", "Restrict the returned objects by their labels. Defaults to everything."),
    "limit": ("integer", "Maximum number of objects in a list response; the rest can be fetched with continue."),
    "resourceVersion": ("string", "Constraint on the resource version the request is served from."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    "sendInitialEvents": ("boolean", "Start a watch with synthetic ADDED events for the current state."),
    "timeoutSeconds": ("integer", "Time limit of the list or watch call."),
    "watch": ("boolean", "Stream changes (added, modified, deleted) instead of returning a list."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 deletes immediately."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": ("boolean", "Delete objects that cannot be read from "
                                                                    "storage (unsafe)."),
    "orphanDependents": ("boolean", "Deprecated, use propagationPolicy: orphan the dependents when true."),
    "propagationPolicy": ("string", "Garbage collection of dependents: Orphan, Background or Foreground."),
    "container": ("string", "Container to act on; defaults to the only container of the pod."),
    "follow": ("boolean", "Keep the log stream open and follow new output."),
    "insecureSkipTLSVerifyBackend": ("boolean", "Do not verify the serving certificate of the kubelet."),
    "limitBytes": ("integer", "Maximum number of log bytes to return."),
    "previous": ("boolean", "Return the logs of the previous, terminated instance of the container."),
    "sinceSeconds": ("integer", "Only logs newer than this many seconds."),
    "stream": ("string", "Log stream to return: All, Stdout or Stderr."),
    "tailLines": ("integer", "Number of lines from the end of the log to return."),
    "timestamps": ("boolean", "Prefix every log line with an RFC 3339 timestamp."),
    "command": ("string", "Command to execute; repeat the parameter for each argument."),
    "stdin": ("boolean", "Attach the standard input of the command."),
    "stdout": ("boolean", "Attach the standard output of the command."),
    "stderr": ("boolean", "Attach the standard error of the command."),
    "tty": ("boolean", "Allocate a terminal for the command."),
    "path": ("string", "Path of the request to forward."),
    "ports": ("integer", "Pod port to forward to; repeat the parameter for several ports."),
}
LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
               "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
PATCH_PARAMS = WRITE_PARAMS + ("force",)
DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential",
                 "orphanDependents", "propagationPolicy")
DELETECOLLECTION_PARAMS = DELETE_PARAMS + tuple(p for p in LIST_PARAMS if p not in ("watch", "allowWatchBookmarks"))
LOG_PARAMS = ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous", "sinceSeconds",
              "stream", "tailLines", "timestamps")
CONNECT_PARAMS = {"exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
                  "attach": ("container", "stderr", "stdin", "stdout", "tty"), "portforward": ("ports",)}

PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
PRODUCES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
PRODUCES_WATCH = PRODUCES + ("application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
_CODES = {"200": "OK", "201": "Created", "202": "Accepted"}


def _query(name: str) -> Json:
    typ, doc = _PARAMS[name]
    return {"name": name, "in": "query", "type": typ, "description": doc, "uniqueItems": True}


def _path_param(name: str, doc: str) -> Json:
    return {"name": name, "in": "path", "type": "string", "description": doc, "required": True, "uniqueItems": True}


def _op(op_id: str, action: str, doc: str, gvk: GVK | None, tag: str, *, params: tuple[str, ...] = (),
        body: str | None = None, resp: str | None = None, codes: tuple[str, ...] = ("200",),
        produces: tuple[str, ...] = PRODUCES, consumes: tuple[str, ...] = ("*/*",)) -> Json:
    """One Swagger 2.0 operation; resp None means a plain string response."""
    op: Json = {"description": doc, "operationId": op_id, "tags": [tag], "consumes": list(consumes),
                "produces": list(produces), "schemes": ["https"], "parameters": [_query(p) for p in params]}
    if body:
        op["parameters"].insert(0, {"name": "body", "in": "body", "required": True, "schema": _ref(body)})
    schema = _ref(resp) if resp else {"type": "string"}
    op["responses"] = {c: {"description": _CODES[c], "schema": schema} for c in codes}
    op["responses"]["401"] = {"description": "Unauthorized"}
    if action:
        op["x-kubernetes-action"] = action
    if gvk:
        op["x-kubernetes-group-version-kind"] = {"group": gvk[0], "kind": gvk[2], "version": gvk[1]}
    return op


def _root(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _tag(group: str, version: str) -> str:
    c = _camel(group)
    return f"{c[:1].lower()}{c[1:]}_{version}"


def _resource_paths(r: Resource) -> Iterator[tuple[str, Json]]:
    """(path, path item) pairs for one resource row and its subresources."""
    cls = _class_for(r.group, r.version, r.kind)
    if cls is None:
        return
    obj, lst = _def_name(cls), _def_name(_class_for(r.group, r.version, r.list_kind) or cls)
    gvk: GVK = (r.group, r.version, r.kind)
    gv = f"{_camel(r.group)}{r.version[:1].upper()}{r.version[1:]}"
    ns = "Namespaced" if r.namespaced else ""
    tag, root, verbs = _tag(r.group, r.version), _root(r.group, r.version), set(r.verbs)
    k = r.kind
    ns_seg = "/namespaces/{namespace}" if r.namespaced else ""
    coll, item = f"{root}{ns_seg}/{r.plural}", f"{root}{ns_seg}/{r.plural}/{{name}}"
    ns_param = [_path_param("namespace", "object name and auth scope, such as for teams and projects")] \
        if r.namespaced else []
    name_param = [_path_param("name", f"name of the {k}")]
    pretty = [_query("pretty")]

    ops: Json = {}
    if "list" in verbs:
        ops["get"] = _op(f"list{gv}{ns}{k}", "list", f"list or watch objects of kind {k}", gvk, tag,
                         params=LIST_PARAMS, resp=lst, produces=PRODUCES_WATCH)
    if "create" in verbs:
        ops["post"] = _op(f"create{gv}{ns}{k}", "post", f"create a {k}", gvk, tag, params=WRITE_PARAMS,
                          body=obj, resp=obj, codes=("200", "201", "202"))
    if "deletecollection" in verbs:
        ops["delete"] = _op(f"delete{gv}Collection{ns}{k}", "deletecollection", f"delete collection of {k}", gvk,
                            tag, params=DELETECOLLECTION_PARAMS, body=DELETE_OPTIONS, resp=STATUS)
    if ops:
        yield coll, {**ops, "parameters": ns_param + pretty}

    ops = {}
    if "get" in verbs:
        ops["get"] = _op(f"read{gv}{ns}{k}", "get", f"read the specified {k}", gvk, tag, resp=obj)
    if "update" in verbs:
        ops["put"] = _op(f"replace{gv}{ns}{k}", "put", f"replace the specified {k}", gvk, tag,
                         params=WRITE_PARAMS, body=obj, resp=obj, codes=("200", "201"))
    if "patch" in verbs:
        ops["patch"] = _op(f"patch{gv}{ns}{k}", "patch", f"partially update the specified {k}", gvk, tag,
                           params=PATCH_PARAMS, body=PATCH, resp=obj, codes=("200", "201"), consumes=PATCH_TYPES)
    if "delete" in verbs:
        ops["delete"] = _op(f"delete{gv}{ns}{k}", "delete", f"delete a {k}", gvk, tag, params=DELETE_PARAMS,
                            body=DELETE_OPTIONS, resp=obj if r.returns_deleted_object else STATUS,
                            codes=("200", "202"))
    if ops:
        yield item, {**ops, "parameters": name_param + ns_param + pretty}

    if "list" in verbs and r.namespaced:
        yield f"{root}/{r.plural}", {
            "get": _op(f"list{gv}{k}ForAllNamespaces", "list", f"list or watch objects of kind {k}", gvk, tag,
                       params=LIST_PARAMS, resp=lst, produces=PRODUCES_WATCH), "parameters": pretty}
    if "watch" in verbs:  # the deprecated /watch/ prefix, still used by old clients
        watch_ops = [(f"{root}/watch{ns_seg}/{r.plural}", f"watch{gv}{ns}{k}List", "watchlist",
                      f"watch individual changes to a list of {k}", ns_param)]
        if r.namespaced:
            watch_ops.append((f"{root}/watch/{r.plural}", f"watch{gv}{k}ListForAllNamespaces", "watchlist",
                              f"watch individual changes to a list of {k}", []))
        watch_ops.append((f"{root}/watch{ns_seg}/{r.plural}/{{name}}", f"watch{gv}{ns}{k}", "watch",
                          f"watch changes to an object of kind {k}", name_param + ns_param))
        for path, op_id, action, doc, pparams in watch_ops:
            yield path, {"get": _op(op_id, action, doc + ". deprecated: use the 'watch' parameter with a list "
                                    "operation instead.", gvk, tag, params=LIST_PARAMS, resp=WATCH_EVENT,
                                    produces=PRODUCES_WATCH), "parameters": pparams + pretty}

    sub_params = name_param + ns_param + pretty
    for sub in r.subresources:
        s = sub.capitalize()
        path = f"{item}/{sub}"
        if sub in ("status", "scale"):
            body = obj if sub == "status" else _def_for(SUBRESOURCE_KINDS["scale"])
            sgvk = gvk if sub == "status" else SUBRESOURCE_KINDS["scale"]
            yield path, {
                "get": _op(f"read{gv}{ns}{k}{s}", "get", f"read {sub} of the specified {k}", sgvk, tag, resp=body),
                "put": _op(f"replace{gv}{ns}{k}{s}", "put", f"replace {sub} of the specified {k}", sgvk, tag,
                           params=WRITE_PARAMS, body=body, resp=body, codes=("200", "201")),
                "patch": _op(f"patch{gv}{ns}{k}{s}", "patch", f"partially update {sub} of the specified {k}", sgvk,
                             tag, params=PATCH_PARAMS, body=PATCH, resp=body, codes=("200", "201"),
                             consumes=PATCH_TYPES),
                "parameters": sub_params}
        elif sub in ("binding", "eviction", "token"):
            sgvk = SUBRESOURCE_KINDS[sub]
            body = _def_for(sgvk)
            yield path, {"post": _op(f"create{gv}{ns}{k}{s}", "post", f"create {sub} of a {k}", sgvk, tag,
                                     params=WRITE_PARAMS, body=body, resp=body, codes=("200", "201", "202")),
                         "parameters": sub_params}
        elif sub == "finalize":
            yield path, {"put": _op(f"replace{gv}{ns}{k}{s}", "put", f"replace finalize of the specified {k}", gvk,
                                    tag, params=WRITE_PARAMS, body=obj, resp=obj, codes=("200", "201")),
                         "parameters": sub_params}
        elif sub == "log":
            yield path, {"get": _op(f"read{gv}{ns}{k}Log", "get", f"read log of the specified {k}", gvk, tag,
                                    params=LOG_PARAMS, produces=("text/plain", *PRODUCES)),
                         "parameters": sub_params}
        elif sub in CONNECT_PARAMS:  # exec, attach, portforward: upgraded (SPDY/WebSocket) streams
            xgvk: GVK = (r.group, r.version, f"{k}{'PortForward' if sub == 'portforward' else s}Options")
            yield path, {m: _op(f"connect{gv}{m.capitalize()}{ns}{k}{s}", "connect", f"connect {m.upper()} "
                                f"requests to {sub} of {k}", xgvk, tag, params=CONNECT_PARAMS[sub],
                                produces=("*/*",)) for m in ("get", "post")} | {"parameters": name_param + ns_param}
        elif sub == "proxy":
            pgvk: GVK = (r.group, r.version, f"{k}ProxyOptions")
            methods = ("delete", "get", "head", "options", "patch", "post", "put")
            for suffix, extra, tail in (("", [], ""), ("WithPath", [_path_param("path", "path to the resource")],
                                                       "/{path}")):
                yield path + tail, {m: _op(f"connect{gv}{m.capitalize()}{ns}{k}Proxy{suffix}", "connect",
                                           f"connect {m.upper()} requests to proxy of {k}", pgvk, tag,
                                           params=("path",), produces=("*/*",)) for m in methods} | \
                    {"parameters": name_param + ns_param + extra}


def _group_root(group: str, version: str) -> tuple[str, Json]:
    gv = f"{_camel(group)}{version[:1].upper()}{version[1:]}"
    return f"{_root(group, version)}/", {"get": _op(f"get{gv}APIResources", "", "get available resources", None,
                                                    _tag(group, version), resp=RESOURCE_LIST)}


@cache
def _paths_by_gv() -> dict[tuple[str, str], dict[str, Json]]:
    out: dict[tuple[str, str], dict[str, Json]] = {}
    for r in RESOURCES:
        if not _class_for(r.group, r.version, r.kind):   # no 1.32 schema: metrics.k8s.io, an aggregated API upstream
            continue
        paths = out.setdefault((r.group, r.version), dict([_group_root(r.group, r.version)]))
        paths.update(_resource_paths(r))
    return out


# ---------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------

def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[1]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _closure(roots: Any, defs: dict[str, Json]) -> dict[str, Json]:
    out: dict[str, Json] = {}
    todo = list(_refs(roots))
    while todo:
        name = todo.pop()
        if name not in out:
            out[name] = defs[name]
            todo += _refs(defs[name])
    return dict(sorted(out.items()))


@cache
def openapi_v2() -> Json:
    """The Swagger 2.0 document of /openapi/v2 (treat as read-only: it is shared)."""
    paths: dict[str, Json] = {}
    for gv_paths in _paths_by_gv().values():
        paths.update(gv_paths)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": K8S_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": _definitions(),
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey",
                                                "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }


def _v3_schema(node: Any) -> Any:
    """Rewrite a v2 schema for OpenAPI 3.0: component refs, and allOf around refs with siblings."""
    if isinstance(node, list):
        return [_v3_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _v3_schema(v) for k, v in node.items()}
    ref = out.pop("$ref", None)
    if ref is None:
        return out
    ref = {"$ref": ref.replace("#/definitions/", "#/components/schemas/")}
    return {"allOf": [ref], **out} if out else ref


def _v3_def(name: str, schema: Json) -> Json:
    if name == QUANTITY:
        return {"description": schema["description"], "oneOf": [{"type": "string"}, {"type": "number"}]}
    if name == INT_OR_STRING:
        return {"description": schema["description"], "format": "int-or-string",
                "oneOf": [{"type": "integer"}, {"type": "string"}]}
    return _v3_schema(schema)


def _v3_op(op: Json) -> Json:
    out: Json = {k: v for k, v in op.items() if k not in ("consumes", "produces", "schemes", "parameters",
                                                          "responses")}
    params = [p for p in op["parameters"] if p["in"] != "body"]
    if params:
        out["parameters"] = [_v3_param(p) for p in params]
    body = next((p for p in op["parameters"] if p["in"] == "body"), None)
    if body:
        out["requestBody"] = {"content": {ct: {"schema": _v3_schema(body["schema"])} for ct in op["consumes"]},
                              "required": True}
    out["responses"] = {c: {"description": r["description"],
                            "content": {ct: {"schema": _v3_schema(r["schema"])} for ct in op["produces"]}}
                        for c, r in op["responses"].items() if "schema" in r}
    return out


def _v3_param(p: Json) -> Json:
    out = {"name": p["name"], "in": p["in"], "description": p["description"], "schema": {"type": p["type"]}}
    if p.get("required"):
        out["required"] = True
    return out


@cache
def _v3_docs() -> dict[tuple[str, str], bytes]:
    defs = _definitions()
    docs: dict[tuple[str, str], bytes] = {}
    for gv, gv_paths in _paths_by_gv().items():
        paths = {path: {m: (_v3_op(op) if m != "parameters" else [_v3_param(p) for p in op])
                        for m, op in item.items()} for path, item in sorted(gv_paths.items())}
        schemas = _closure(gv_paths, defs)
        doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": K8S_VERSION}, "paths": paths,
               "components": {"schemas": {n: _v3_def(n, s) for n, s in schemas.items()},
                              "securitySchemes": {"BearerToken": {"type": "apiKey", "name": "authorization",
                                                                  "in": "header",
                                                                  "description": "Bearer Token authentication"}}},
               "security": [{"BearerToken": []}]}
        docs[gv] = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return docs


def openapi_v3(group: str, version: str) -> Json | None:
    """OpenAPI 3.0 document of one group-version ('' for core), or None if not served."""
    data = openapi_v3_bytes(group, version)
    return orjson.loads(data) if data is not None else None


def openapi_v3_bytes(group: str, version: str) -> bytes | None:
    return _v3_docs().get((group, version))


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@cache
def openapi_v3_index() -> Json:
    """The /openapi/v3 discovery document; each hash changes only when that group-version changes."""
    return {"paths": {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash="
                                       f"{hashlib.sha512(data).hexdigest().upper()}"}
                      for (g, v), data in _v3_docs().items()}}


@cache
def openapi_v3_index_bytes() -> bytes:
    return orjson.dumps(openapi_v3_index())


@cache
def openapi_v2_bytes() -> bytes:
    return orjson.dumps(openapi_v2(), option=orjson.OPT_SORT_KEYS)


# ---------------------------------------------------------------------------------------------
# Unknown-field detection for fieldValidation=Strict|Warn
# ---------------------------------------------------------------------------------------------

# A shape node: None = anything goes; ("o", def) = object with known properties;
# ("l", node) = list of node; ("m", node) = map with arbitrary keys of node.
Shape = tuple[str, Any] | None


def _shape(schema: Json) -> Shape:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        return None if name in FREE_FORM else ("o", name)
    if schema.get("type") == "array":
        return ("l", _shape(schema["items"]))
    if isinstance(schema.get("additionalProperties"), dict):
        return ("m", _shape(schema["additionalProperties"]))
    return None


@cache
def _props(name: str) -> dict[str, Shape]:
    return {f: _shape(s) for f, s in _definitions()[name].get("properties", {}).items()}


@cache
def _def_by_gvk() -> dict[GVK, str]:
    return {(g["group"], g["version"], g["kind"]): name for name, d in _definitions().items()
            for g in d.get("x-kubernetes-group-version-kind", ())}


def unknown_fields(api_version: str, kind: str, obj: dict) -> list[str]:
    """Paths of fields in obj that the kind's schema does not define, in document order.

    Paths use Kubernetes' strict-decoding notation with a leading dot: ".spec.template.spec.
    containers[0].imagee"; the apiserver strips the dot to answer `strict decoding error: unknown field
    "spec.template.spec.containers[0].imagee"` (errors joined by ", "). Map values are entered as
    ".key"; maps of scalars (labels, annotations, data, resource limits), IntOrString, Quantity,
    RawExtension and managedFields[].fieldsV1 accept anything. Unknown kinds give [].
    """
    group, _, version = api_version.rpartition("/")
    name = _def_by_gvk().get((group, version, kind))
    out: list[str] = []
    if name and isinstance(obj, dict):
        _walk(obj, name, "", out)
    return out


def _walk(obj: dict, name: str, path: str, out: list[str]) -> None:
    props = _props(name)
    for key, value in obj.items():
        if key not in props:
            out.append(f"{path}.{key}")
        elif props[key] is not None and value is not None:
            _visit(value, props[key], f"{path}.{key}", out)


def _visit(value: Any, shape: Shape, path: str, out: list[str]) -> None:
    if shape is None:
        return
    tag, inner = shape
    if tag == "o" and isinstance(value, dict):
        _walk(value, inner, path, out)
    elif tag == "l" and isinstance(value, list) and inner is not None:
        for i, item in enumerate(value):
            _visit(item, inner, f"{path}[{i}]", out)
    elif tag == "m" and isinstance(value, dict) and inner is not None:
        for key, item in value.items():
            _visit(item, inner, f"{path}.{key}", out)


# ---------------------------------------------------------------------------------------------
# Protobuf form of the v2 document (gnostic's openapi.v2.Document), which client-go asks for with
# Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf -- kubectl 1.27/1.28 use it for
# apply and explain and fail on JSON. Vendor extensions travel as YAML text (JSON is valid YAML).
# ---------------------------------------------------------------------------------------------

# client-go asks with the '@' form; responses use the dotted form because Go's mime.ParseMediaType
# rejects '@' in the Content-Type (kubectl then fails with "mime: unexpected content after media subtype").
OPENAPI_V2_PROTOBUF_ACCEPT = ("com.github.proto-openapi.spec.v2@v1.0+protobuf",
                              "com.github.proto-openapi.spec.v2.v1.0+protobuf")
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def openapi_v2_response(accept: str | None) -> tuple[bytes, str]:
    """(body, content type) for GET /openapi/v2: protobuf when the Accept header asks for it, else JSON."""
    if accept and any(t in accept for t in OPENAPI_V2_PROTOBUF_ACCEPT):
        return openapi_v2_protobuf(), OPENAPI_V2_PROTOBUF
    return openapi_v2_bytes(), "application/json"


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(field: int, data: bytes) -> bytes:
    """A length-delimited field (string, bytes or embedded message)."""
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _s(field: int, value: str | None) -> bytes:
    return _ld(field, value.encode()) if value else b""


def _b(field: int, value: bool | None) -> bytes:
    return _varint(field << 3) + b"\x01" if value else b""


def _rs(field: int, values: Any) -> bytes:
    return b"".join(_ld(field, v.encode()) for v in values or ())


def _yaml_any(value: Any) -> bytes:  # message Any {google.protobuf.Any value = 1; string yaml = 2}
    return _s(2, json.dumps(value, separators=(", ", ": ")))  # spaced JSON: flow YAML for yaml.v2 too


def _ext(field: int, node: Json) -> bytes:  # repeated NamedAny vendor_extension
    return b"".join(_ld(field, _s(1, k) + _ld(2, _yaml_any(v))) for k, v in node.items() if k.startswith("x-"))


def _pb_schema(s: Json) -> bytes:
    out = [_s(1, s.get("$ref")), _s(2, s.get("format")), _s(3, s.get("title")), _s(4, s.get("description"))]
    if "default" in s:
        out.append(_ld(5, _yaml_any(s["default"])))
    out += [_b(16, s.get("uniqueItems")), _rs(19, s.get("required"))]
    out += [_ld(20, _yaml_any(v)) for v in s.get("enum", ())]
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        out.append(_ld(21, _ld(1, _pb_schema(ap))))
    elif isinstance(ap, bool):
        out.append(_ld(21, _varint(2 << 3) + (b"\x01" if ap else b"\x00")))
    if "type" in s:
        out.append(_ld(22, _rs(1, [s["type"]] if isinstance(s["type"], str) else s["type"])))
    if "items" in s:
        out.append(_ld(23, _ld(1, _pb_schema(s["items"]))))
    out += [_ld(24, _pb_schema(x)) for x in s.get("allOf", ())]
    if "properties" in s:
        out.append(_ld(25, b"".join(_ld(1, _s(1, k) + _ld(2, _pb_schema(v))) for k, v in s["properties"].items())))
    out += [_b(27, s.get("readOnly")), _ext(31, s)]
    return b"".join(out)


def _pb_param(p: Json) -> bytes:  # ParametersItem{Parameter parameter = 1}
    if p["in"] == "body":
        param = _ld(1, _s(1, p.get("description")) + _s(2, p["name"]) + _s(3, "body") + _b(4, p.get("required"))
                    + _ld(5, _pb_schema(p["schema"])))
    else:  # NonBodyParameter: query sub-schema = 3 (type 6, uniqueItems 20), path = 4 (type 5, uniqueItems 19)
        query = p["in"] == "query"
        sub = (_b(1, p.get("required")) + _s(2, p["in"]) + _s(3, p.get("description")) + _s(4, p["name"])
               + _s(6 if query else 5, p.get("type")) + _b(20 if query else 19, p.get("uniqueItems")))
        param = _ld(2, _ld(3 if query else 4, sub))
    return _ld(1, param)


def _pb_operation(op: Json) -> bytes:
    responses = b"".join(
        _ld(1, _s(1, code) + _ld(2, _ld(1, _s(1, r["description"]) +
                                        (_ld(2, _ld(1, _pb_schema(r["schema"]))) if "schema" in r else b""))))
        for code, r in op["responses"].items())
    return b"".join([_rs(1, op.get("tags")), _s(3, op.get("description")), _s(5, op.get("operationId")),
                     _rs(6, op.get("produces")), _rs(7, op.get("consumes")),
                     b"".join(_ld(8, _pb_param(p)) for p in op.get("parameters", ())), _ld(9, responses),
                     _rs(10, op.get("schemes")), _ext(13, op)])


_PATH_ITEM_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _pb_path_item(item: Json) -> bytes:
    out = [_ld(n, _pb_operation(item[m])) for m, n in _PATH_ITEM_FIELDS.items() if m in item]
    out += [_ld(9, _pb_param(p)) for p in item.get("parameters", ())]
    return b"".join(out)


@cache
def openapi_v2_protobuf() -> bytes:
    """The /openapi/v2 document as protobuf (gnostic openapi.v2.Document wire format)."""
    doc = openapi_v2()
    sec = doc["securityDefinitions"]["BearerToken"]
    api_key = _s(1, sec["type"]) + _s(2, sec["name"]) + _s(3, sec["in"]) + _s(4, sec["description"])
    return b"".join([
        _s(1, doc["swagger"]), _ld(2, _s(1, doc["info"]["title"]) + _s(2, doc["info"]["version"])),
        _ld(8, b"".join(_ld(2, _s(1, path) + _ld(2, _pb_path_item(item))) for path, item in doc["paths"].items())),
        _ld(9, b"".join(_ld(1, _s(1, name) + _ld(2, _pb_schema(s))) for name, s in doc["definitions"].items())),
        _ld(12, _ld(1, _s(1, "BearerToken") + _ld(2, b""))),
        _ld(13, _ld(1, _s(1, "BearerToken") + _ld(2, _ld(2, api_key)))),
    ])

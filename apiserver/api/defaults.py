"""Kubernetes 1.32 defaulting for the served kinds, applied in place to JSON dicts.

Mirrors pkg/apis/*/v1/defaults.go (and the declarative `+default` tags) for the version each kind
is stored in, plus the few create-time rules upstream keeps in registry strategies because the
apiserver here has no separate strategy layer for them:

* Job selector generation (`batch.kubernetes.io/controller-uid`), needs metadata.uid;
* the Namespace `kubernetes` finalizer (create only, so the namespace controller can remove it);
* Secret `stringData` folded into `data` (upstream: v1 -> internal conversion).

Last, `fill_zero_fields` adds what Go's encoder always writes (zero values of fields without
omitempty, non-pointer structs such as `status: {}`), from the table tools/gen_zero_fields.py generates.

What is deliberately NOT here: Service clusterIP(s), ipFamilies, ipFamilyPolicy, nodePorts and
healthCheckNodePort are chosen by the apiserver's allocator (apiserver/admission.py), as upstream's
registry allocator does; tolerations and serviceAccountName come from pod admission.

"Create" is recognised by a missing metadata.resourceVersion: the apiserver strips it on create and
restores the stored one before defaulting an update.
"""
from __future__ import annotations

import base64
import re
from typing import Any, Callable

from kubeling.api.resources import Resource
from apiserver.api.zero_fields import FIELDS, ROOTS

Obj = dict[str, Any]

# ---- small helpers ---------------------------------------------------------------------------


def _dicts(items: Any) -> list[Obj]:
    """The dict members of a JSON list (anything else is left for validation to report)."""
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _child(obj: Obj, key: str) -> Obj | None:
    v = obj.get(key)
    return v if isinstance(v, dict) else None


def _spec(obj: Obj) -> Obj:
    """obj.spec, created when absent (Go's non-pointer spec struct always serialises)."""
    if not isinstance(obj.get("spec"), dict):
        obj["spec"] = {}
    return obj["spec"]


def _creating(obj: Obj) -> bool:
    return not (obj.get("metadata") or {}).get("resourceVersion")


# ---- container images -------------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)"
                        r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
                        r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")


def image_tag(image: str) -> str:
    """The tag kubelet's parser sees: "latest" when neither tag nor digest, "" for a bad reference."""
    m = _REFERENCE.match(image)
    if not m or len(m.group("name")) > 255 or re.fullmatch(r"[a-f0-9]{64}", image):
        return ""
    if m.group("tag"):
        return m.group("tag")
    return "" if m.group("digest") else "latest"


def pull_policy(image: str) -> str:
    """SetDefaults_Container: Always for the `latest` tag (explicit or implied), else IfNotPresent."""
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


# ---- pod spec ----------------------------------------------------------------------------------


def _http_get(action: Obj | None) -> None:
    if action is not None:
        action.setdefault("path", "/")
        action.setdefault("scheme", "HTTP")


def _handler(h: Obj | None) -> None:
    """Probe and lifecycle handlers share HTTPGetAction/GRPCAction defaults."""
    if h is None:
        return
    _http_get(_child(h, "httpGet"))
    grpc = _child(h, "grpc")
    if grpc is not None and grpc.get("service") is None:
        grpc["service"] = ""


def _probe(p: Obj | None) -> None:
    if p is None:
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not p.get(key):
            p[key] = value
    _handler(p)


def _field_ref(holder: Obj | None) -> None:
    ref = _child(holder, "fieldRef") if holder is not None else None
    if ref is not None and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = pull_policy(c["image"] if isinstance(c.get("image"), str) else "")
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for p in _dicts(c.get("ports")):
        if not p.get("protocol"):
            p["protocol"] = "TCP"
    for e in _dicts(c.get("env")):
        _field_ref(_child(e, "valueFrom"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_child(c, key))
    lifecycle = _child(c, "lifecycle")
    if lifecycle is not None:
        _handler(_child(lifecycle, "postStart"))
        _handler(_child(lifecycle, "preStop"))


def _mode(src: Obj | None) -> None:
    """Secret, ConfigMap, DownwardAPI and Projected volumes default their file mode to 0644."""
    if src is not None and src.get("defaultMode") is None:
        src["defaultMode"] = 420


def _volume_source(v: Obj) -> None:
    """Defaults of the volume sources a Pod or a PersistentVolume can carry."""
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        _mode(_child(v, key))
    for item in _dicts((_child(v, "downwardAPI") or {}).get("items")):
        _field_ref(item)
    for src in _dicts((_child(v, "projected") or {}).get("sources")):
        for item in _dicts((_child(src, "downwardAPI") or {}).get("items")):
            _field_ref(item)
        token = _child(src, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
    host_path = _child(v, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    iscsi = _child(v, "iscsi")
    if iscsi is not None and not iscsi.get("iscsiInterface"):
        iscsi["iscsiInterface"] = "default"
    rbd = _child(v, "rbd")
    if rbd is not None:
        for key, value in (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")):
            if not rbd.get(key):
                rbd[key] = value
    azure = _child(v, "azureDisk")
    if azure is not None:
        for key, value in (("cachingMode", "ReadWrite"), ("fsType", "ext4"), ("readOnly", False), ("kind", "Shared")):
            if azure.get(key) is None:
                azure[key] = value
    scaleio = _child(v, "scaleIO")
    if scaleio is not None:
        for key, value in (("storageMode", "ThinProvisioned"), ("fsType", "xfs")):
            if not scaleio.get(key):
                scaleio[key] = value
    ephemeral = _child(v, "ephemeral")
    claim_spec = _child(_child(ephemeral, "volumeClaimTemplate") or {}, "spec") if ephemeral else None
    if claim_spec is not None:
        _pvc_spec(claim_spec)


def _volume(v: Obj) -> None:
    if not any(k != "name" for k in v):
        v["emptyDir"] = {}       # SetDefaults_Volume: no source at all means an emptyDir
    _volume_source(v)


def pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and everything nested in it (pods and pod templates alike)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _container(c)
    for v in _dicts(spec.get("volumes")):
        _volume(v)


def _pod(obj: Obj) -> None:
    """SetDefaults_Pod adds what only a Pod (never a template) gets."""
    spec = _spec(obj)
    pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in _dicts(spec.get(key)):
            res = _child(c, "resources")
            limits = res.get("limits") if res is not None else None
            if isinstance(limits, dict) and limits:
                requests = res.setdefault("requests", {})
                if isinstance(requests, dict):
                    for name, qty in limits.items():
                        requests.setdefault(name, qty)
            if spec.get("hostNetwork"):
                for p in _dicts(c.get("ports")):
                    if not p.get("hostPort"):
                        p["hostPort"] = p.get("containerPort")
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True


def _template(spec: Obj) -> None:
    """A pod template's PodSpec defaults."""
    tpl = spec.get("template")
    if not isinstance(tpl, dict):
        tpl = spec["template"] = {}
    if not isinstance(tpl.get("spec"), dict):
        tpl["spec"] = {}
    pod_spec(tpl["spec"])


# ---- workloads ---------------------------------------------------------------------------------


def _rolling_strategy(spec: Obj, field: str, rolling: Obj) -> None:
    """Deployment/DaemonSet strategy: RollingUpdate with `rolling` defaults, and the history limit."""
    strategy = spec.get(field)
    if not isinstance(strategy, dict):
        strategy = spec[field] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = strategy["rollingUpdate"] = {}
        for key, value in rolling.items():
            if ru.get(key) is None:
                ru[key] = value
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10


def _deployment(obj: Obj) -> None:
    _replicaset(obj)
    spec = _spec(obj)
    _rolling_strategy(spec, "strategy", {"maxUnavailable": "25%", "maxSurge": "25%"})
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600


def _replicaset(obj: Obj) -> None:
    spec = _spec(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template(spec)


def _replicationcontroller(obj: Obj) -> None:
    """SetDefaults_ReplicationController: selector and labels from the template's labels when unset
    (the template is a pointer in v1, so an absent one gets no pod defaults)."""
    spec = _spec(obj)
    tpl = _child(spec, "template")
    tlabels = (_child(tpl, "metadata") or {}).get("labels") if tpl is not None else None
    if isinstance(tlabels, dict) and tlabels:
        if not spec.get("selector"):
            spec["selector"] = dict(tlabels)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else obj.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(tlabels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if tpl is not None:
        if not isinstance(tpl.get("spec"), dict):
            tpl["spec"] = {}
        pod_spec(tpl["spec"])


def _statefulset(obj: Obj) -> None:
    """SetDefaults_StatefulSet (MaxUnavailableStatefulSet is alpha in 1.32: maxUnavailable stays unset;
    StatefulSetAutoDeletePVC is on: the retention policy is Retain/Retain), plus the claim templates'
    PersistentVolumeClaim defaults."""
    spec = _spec(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if not isinstance(strategy.get("rollingUpdate"), dict):
            strategy["rollingUpdate"] = {}
    ru = _child(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and ru is not None and ru.get("partition") is None:
        ru["partition"] = 0
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(policy, dict):
        policy = spec["persistentVolumeClaimRetentionPolicy"] = {}
    for key in ("whenDeleted", "whenScaled"):
        if not policy.get(key):
            policy[key] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    for claim in _dicts(spec.get("volumeClaimTemplates")):
        _pvc(claim)
    _template(spec)


def _daemonset(obj: Obj) -> None:
    spec = _spec(obj)
    _rolling_strategy(spec, "updateStrategy", {"maxUnavailable": 1, "maxSurge": 0})
    _template(spec)


JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def generate_job_selector(obj: Obj) -> None:
    """The job registry's generateSelector: uid/name labels on the template, uid in the selector.

    Labels the user already set are left alone (validation then reports a mismatch)."""
    meta = obj.get("metadata") or {}
    uid, name = meta.get("uid") or "", meta.get("name") or ""
    spec = _spec(obj)
    tpl = spec.get("template") if isinstance(spec.get("template"), dict) else spec.setdefault("template", {})
    tmeta = tpl.get("metadata") if isinstance(tpl.get("metadata"), dict) else tpl.setdefault("metadata", {})
    labels = tmeta.get("labels") if isinstance(tmeta.get("labels"), dict) else tmeta.setdefault("labels", {})
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, name)
    for key in JOB_UID_LABELS:
        labels.setdefault(key, uid)
    sel = spec.get("selector") if isinstance(spec.get("selector"), dict) else spec.setdefault("selector", {})
    match = sel.get("matchLabels") if isinstance(sel.get("matchLabels"), dict) else sel.setdefault("matchLabels", {})
    match.setdefault(JOB_UID_LABELS[0], uid)


def _job(obj: Obj) -> None:
    spec = _spec(obj)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    policy = _child(spec, "podFailurePolicy")
    for rule in _dicts((policy or {}).get("rules")):
        for pattern in _dicts(rule.get("onPodConditions")):
            if not pattern.get("status"):
                pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if policy is not None else "TerminatingOrFailed"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else obj.setdefault("metadata", {})
    if _creating(obj) and meta.get("uid") and spec.get("manualSelector") is not True:
        generate_job_selector(obj)
    _template(spec)
    # SetDefaults_Job: an unlabelled Job takes its template's labels (generated ones included,
    # as every read of the stored object shows them upstream).
    tlabels = (_child(spec["template"], "metadata") or {}).get("labels")
    if tlabels and not meta.get("labels"):
        meta["labels"] = dict(tlabels)



def _cronjob(obj: Obj) -> None:
    """SetDefaults_CronJob; the job template gets only its pod template's defaults (upstream's
    JobSpec defaults belong to SetDefaults_Job, which runs when the controller creates the Job)."""
    spec = _spec(obj)
    for key, value in (("concurrencyPolicy", "Allow"), ("suspend", False),
                       ("successfulJobsHistoryLimit", 3), ("failedJobsHistoryLimit", 1)):
        if spec.get(key) is None:
            spec[key] = value
    tpl = spec.get("jobTemplate") if isinstance(spec.get("jobTemplate"), dict) else spec.setdefault("jobTemplate", {})
    _template(tpl.get("spec") if isinstance(tpl.get("spec"), dict) else tpl.setdefault("spec", {}))

# ---- autoscaling -------------------------------------------------------------------------------

_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
             "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]}
# scale-down stabilization stays unset: the controller's --horizontal-pod-autoscaler-downscale-stabilization
_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scaling_rules(given: Any, default: Obj) -> Obj:
    out = {k: (list(map(dict, v)) if isinstance(v, list) else v) for k, v in default.items()}
    if isinstance(given, dict):
        for key in ("selectPolicy", "stabilizationWindowSeconds", "policies"):
            if given.get(key) is not None:
                out[key] = given[key]
        for key, value in given.items():
            out.setdefault(key, value)
    return out


def _hpa_v2(obj: Obj) -> None:
    spec = _spec(obj)
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):       # only a given behavior is completed
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)


def _hpa_v1(obj: Obj) -> None:
    spec = _spec(obj)
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


# ---- core kinds --------------------------------------------------------------------------------


def externally_accessible(spec: Obj) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _service(obj: Obj) -> None:
    spec = _spec(obj)
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        client_ip = (cfg or {}).get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for p in _dicts(spec.get("ports")):
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port", 0)
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        lb = _child(_child(obj, "status") or {}, "loadBalancer") or {}
        for ing in _dicts(lb.get("ingress")):
            if ing.get("ip") and ing.get("ipMode") is None:
                ing["ipMode"] = "VIP"


def _namespace(obj: Obj) -> None:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else obj.setdefault("metadata", {})
    if meta.get("name"):
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else meta.setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = meta["name"]
    if _creating(obj):
        finalizers = _spec(obj).get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = obj["spec"]["finalizers"] = []
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
    status = obj.get("status") if isinstance(obj.get("status"), dict) else obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Active"


def _secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data") if isinstance(obj.get("data"), dict) else obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _pvc_spec(spec: Obj) -> None:
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"


def _pvc(obj: Obj) -> None:
    _pvc_spec(_spec(obj))
    status = obj.get("status") if isinstance(obj.get("status"), dict) else obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Pending"


def _pv(obj: Obj) -> None:
    spec = _spec(obj)
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    _volume_source(spec)
    status = obj.get("status") if isinstance(obj.get("status"), dict) else obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Pending"


def _endpoints(obj: Obj) -> None:
    for subset in _dicts(obj.get("subsets")):
        for p in _dicts(subset.get("ports")):
            if not p.get("protocol"):
                p["protocol"] = "TCP"


def _endpointslice(obj: Obj) -> None:
    for p in _dicts(obj.get("ports")):
        if p.get("name") is None:
            p["name"] = ""
        if p.get("protocol") is None:
            p["protocol"] = "TCP"


def _node(obj: Obj) -> None:
    status = _child(obj, "status")
    if status is not None and isinstance(status.get("capacity"), dict) and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


# (group, kind) -> defaulter; HPAs are keyed per version since v1 and v2 differ.
def _limit_range(obj: Obj) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit comes from max, its default request
    from the default limit, else from min; stored, so `kubectl describe limits` shows them."""
    for item in _dicts(_spec(obj).get("limits")):
        if item.get("type") != "Container":
            continue
        default, request = item.setdefault("default", {}), item.setdefault("defaultRequest", {})
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for source in (default, item.get("min") or {}):
            for k, v in source.items():
                request.setdefault(k, v)


DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("", "LimitRange"): _limit_range,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("", "Endpoints"): _endpoints,
    ("", "Node"): _node,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "StatefulSet"): _statefulset,
    ("", "ReplicationController"): _replicationcontroller,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): _hpa_v2,
    ("autoscaling/v1", "HorizontalPodAutoscaler"): _hpa_v1,
    ("discovery.k8s.io", "EndpointSlice"): _endpointslice,
    # ConfigMap (data: {} is omitempty), ServiceAccount, Event, Lease: nothing observable.
}


# ---- networking, storage, RBAC, certificates, flow control, admission (engineer E's kinds) -----------

RBAC_GROUP = "rbac.authorization.k8s.io"


def _ingress_class(obj: Obj) -> None:
    """SetDefaults_IngressClass: parameters are cluster-scoped unless said otherwise."""
    params = _child(_spec(obj), "parameters")
    if params is not None and params.get("scope") is None:
        params["scope"] = "Cluster"


def _network_policy(obj: Obj) -> None:
    """SetDefaults_NetworkPolicy: ports default to TCP; no policyTypes means Ingress, plus Egress when
    egress rules are given."""
    spec = _spec(obj)
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                if not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _storage_class(obj: Obj) -> None:
    if not obj.get("reclaimPolicy"):
        obj["reclaimPolicy"] = "Delete"
    if not obj.get("volumeBindingMode"):
        obj["volumeBindingMode"] = "Immediate"


def _csi_driver(obj: Obj) -> None:
    """SetDefaults_CSIDriver (with 1.32's default feature gates)."""
    spec = _spec(obj)
    for key, value in (("attachRequired", True), ("podInfoOnMount", False), ("storageCapacity", False),
                       ("fsGroupPolicy", "ReadWriteOnceWithFSType"), ("requiresRepublish", False),
                       ("seLinuxMount", False)):
        if spec.get(key) is None:
            spec[key] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


def _rbac_subjects(obj: Obj) -> None:
    """SetDefaults_Subject: users and groups are in the RBAC API group, service accounts in the core one."""
    for subject in _dicts(obj.get("subjects")):
        if subject.get("apiGroup"):
            continue
        if subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP
        else:
            subject.pop("apiGroup", None)   # "" for service accounts: omitempty


def _role_binding(obj: Obj) -> None:
    """SetDefaults_(Cluster)RoleBinding: roleRef.apiGroup, then the subjects."""
    ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else obj.setdefault("roleRef", {})
    if not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    _rbac_subjects(obj)


def _csr(obj: Obj) -> None:
    """SetDefaults_CertificateSigningRequestCondition: a condition without status is True."""
    for cond in _dicts((_child(obj, "status") or {}).get("conditions")):
        if not cond.get("status"):
            cond["status"] = "True"


def _flow_schema(obj: Obj) -> None:
    spec = _spec(obj)
    if not spec.get("matchingPrecedence"):
        spec["matchingPrecedence"] = 1000


def _priority_level(obj: Obj) -> None:
    """SetDefaults for Limited (30 shares, 0 % lendable, queuing 64/8/50) and Exempt (0/0) levels."""
    spec = _spec(obj)
    limited, exempt = _child(spec, "limited"), _child(spec, "exempt")
    if limited is not None:
        limited.setdefault("nominalConcurrencyShares", 30)
        limited.setdefault("lendablePercent", 0)
        queuing = _child(_child(limited, "limitResponse") or {}, "queuing")
        if queuing is not None:
            for key, value in (("handSize", 8), ("queues", 64), ("queueLengthLimit", 50)):
                if not queuing.get(key):
                    queuing[key] = value
    if exempt is not None:
        exempt.setdefault("nominalConcurrencyShares", 0)
        exempt.setdefault("lendablePercent", 0)


def _webhooks(mutating: bool) -> Callable[[Obj], None]:
    """SetDefaults_(Validating|Mutating)Webhook and their rules and service references."""
    def run(obj: Obj) -> None:
        for hook in _dicts(obj.get("webhooks")):
            for key, value in (("failurePolicy", "Fail"), ("matchPolicy", "Equivalent"), ("timeoutSeconds", 10)):
                if hook.get(key) is None:
                    hook[key] = value
            for key in ("namespaceSelector", "objectSelector"):
                if hook.get(key) is None:
                    hook[key] = {}
            if mutating and hook.get("reinvocationPolicy") is None:
                hook["reinvocationPolicy"] = "Never"
            for rule in _dicts(hook.get("rules")):
                if rule.get("scope") is None:
                    rule["scope"] = "*"
            service = _child(_child(hook, "clientConfig") or {}, "service")
            if service is not None and service.get("port") is None:
                service["port"] = 443
    return run


DEFAULTERS.update({
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    ("storage.k8s.io", "CSIDriver"): _csi_driver,
    ("rbac.authorization.k8s.io", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _role_binding,
    ("certificates.k8s.io", "CertificateSigningRequest"): _csr,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): _flow_schema,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): _priority_level,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _webhooks(False),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _webhooks(True),
    ("", "PodTemplate"): _template,   # a PodTemplate holds `template` at its top level
})


def apply_defaults(resource: Resource, obj: Obj) -> None:
    """Default obj (the JSON form of resource's version) in place, as the apiserver's decoder would."""
    if not isinstance(obj, dict):
        return
    fn = DEFAULTERS.get((resource.group, resource.kind)) or DEFAULTERS.get((resource.group_version, resource.kind))
    if fn is not None:
        fn(obj)
    fill_zero_fields(resource.api_version, resource.kind, obj)


# ---- fields Go always serialises ---------------------------------------------------------------


def fill_zero_fields(api_version: str, kind: str, obj: Obj) -> None:
    """Add what a decoded and re-encoded Go object carries although unset: fields without omitempty
    as their zero value (0, "", false; null for pointers, slices and maps) and non-pointer structs
    (`status: {}`), so clients that insist on required fields (the Python client) can read it."""
    definition = ROOTS.get((api_version, kind))
    if definition is not None:
        _fill(obj, definition)


def _fill(obj: Obj, definition: str) -> None:
    zeros, nested = FIELDS[definition]
    for key, zero in zeros.items():
        # An explicit null decodes to Go's zero value too, except where null is that zero.
        if obj.get(key) is None and (zero is not None or key not in obj):
            obj[key] = {} if isinstance(zero, dict) else zero
    for key in nested.keys() & obj.keys():
        child, how = nested[key]
        value = obj[key]
        if how == "[]":
            items = value if isinstance(value, list) else ()
        elif how == "{}":
            items = value.values() if isinstance(value, dict) else ()
        else:
            items = (value,)
        for item in items:
            if isinstance(item, dict):
                _fill(item, child)

"""Kubernetes' defaulters for the served kinds (pkg/apis/*/v1/defaults.go), applied to JSON dicts."""
from __future__ import annotations

from typing import Any, Callable

from kubeling.api.resources import Resource


def _pull_policy(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _probe(p: dict | None) -> None:
    if not p:
        return
    p.setdefault("timeoutSeconds", 1)
    p.setdefault("periodSeconds", 10)
    p.setdefault("successThreshold", 1)
    p.setdefault("failureThreshold", 3)
    hg = p.get("httpGet")
    if hg is not None:
        hg.setdefault("path", "/")
        hg.setdefault("scheme", "HTTP")


def _container(c: dict) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if isinstance(c.get("image"), str) and "imagePullPolicy" not in c:
        c["imagePullPolicy"] = _pull_policy(c["image"])
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for e in c.get("env") or []:
        fr = (e.get("valueFrom") or {}).get("fieldRef") if isinstance(e, dict) else None
        if isinstance(fr, dict):
            fr.setdefault("apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe))


def _volume(v: dict) -> None:
    for src in ("configMap", "secret"):
        if isinstance(v.get(src), dict):
            v[src].setdefault("defaultMode", 420)
    if isinstance(v.get("projected"), dict):
        v["projected"].setdefault("defaultMode", 420)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    if not any(k != "name" for k in v):
        v["emptyDir"] = {}


def pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _container(c)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            _volume(v)


def _template(spec: dict) -> None:
    tpl = spec.get("template")
    if isinstance(tpl, dict):
        if isinstance(tpl.get("spec"), dict):
            pod_spec(tpl["spec"])
        tpl.setdefault("metadata", {})
        tpl["metadata"].setdefault("creationTimestamp", None)


def _pod(obj: dict) -> None:
    if isinstance(obj.get("spec"), dict):
        pod_spec(obj["spec"])


def _service(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("sessionAffinity") == "ClientIP":
        spec.setdefault("sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}})
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "targetPort" not in p and "port" in p:
                p["targetPort"] = p["port"]
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def _deployment(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    st = spec.setdefault("strategy", {})
    st.setdefault("type", "RollingUpdate")
    if st["type"] == "RollingUpdate":
        ru = st.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec)


def _replicaset(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _template(spec)


def _daemonset(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    us = spec.setdefault("updateStrategy", {})
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        ru = us.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec)


def _job(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    uid = (obj.get("metadata") or {}).get("uid")
    if uid and not spec.get("manualSelector"):
        gen = {"batch.kubernetes.io/controller-uid": uid}
        if not spec.get("selector"):
            spec["selector"] = {"matchLabels": dict(gen)}
        tpl = spec.setdefault("template", {}).setdefault("metadata", {})
        labels = tpl.setdefault("labels", {})
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("batch.kubernetes.io/job-name", obj["metadata"].get("name", ""))
        labels.setdefault("controller-uid", uid)
        labels.setdefault("job-name", obj["metadata"].get("name", ""))
    _template(spec)


def _hpa(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("minReplicas", 1)
    if obj.get("apiVersion") == "autoscaling/v2" and not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]


def _namespace(obj: dict) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    name = (obj.get("metadata") or {}).get("name")
    if name:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name


def _secret(obj: dict) -> None:
    obj.setdefault("type", "Opaque")


def _pvc(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _pv(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _ports_tcp(key: str) -> Callable[[dict], None]:
    def run(obj: dict) -> None:
        if key == "subsets":
            for s in obj.get("subsets") or []:
                for p in s.get("ports") or []:
                    p.setdefault("protocol", "TCP")
        else:
            for p in obj.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
    return run


def _node(obj: dict) -> None:
    status = obj.setdefault("status", {})
    if status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


DEFAULTERS: dict[str, Callable[[dict], None]] = {
    "pods": _pod, "services": _service, "deployments": _deployment, "replicasets": _replicaset,
    "daemonsets": _daemonset, "jobs": _job, "horizontalpodautoscalers": _hpa, "namespaces": _namespace,
    "secrets": _secret, "persistentvolumeclaims": _pvc, "persistentvolumes": _pv,
    "endpoints": _ports_tcp("subsets"), "endpointslices": _ports_tcp("ports"), "nodes": _node,
}


def apply_defaults(resource: Resource, obj: dict[str, Any]) -> None:
    fn = DEFAULTERS.get(resource.plural)
    if fn is not None and isinstance(obj, dict):
        fn(obj)

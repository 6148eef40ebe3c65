"""Server-side Table printing: columns and cells as Kubernetes 1.32 prints them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from apiserver.api import conversion
from kubeling.api.resources import RESOURCES, lookup
from apiserver.api.tables import column_definitions, human_duration, row_cells, to_table

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: float = 300, **extra) -> dict:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(age), "resourceVersion": "7", **extra}


PODS = lookup("", "v1", "pods")


def pod(status: dict, containers=("app",), init=(), **meta_extra) -> dict:
    spec = {"containers": [{"name": c, "image": f"{c}:1"} for c in containers], "nodeName": "node-1"}
    if init:
        spec["initContainers"] = list(init)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web", **meta_extra), "spec": spec, "status": status}


def running(name: str = "app", ready: bool = True, restarts: int = 0, **extra) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(200)}},
            **extra}


def waiting(reason: str, name: str = "app", restarts: int = 0, **extra) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}, **extra}


def terminated(reason: str | None, code: int = 0, name: str = "app", **extra) -> dict:
    term = {"exitCode": code, "finishedAt": ago(60), **({"reason": reason} if reason else {})}
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": term}, **extra}


def cells(resource, obj) -> list:
    return row_cells(resource, obj, NOW)


@pytest.mark.parametrize("status, expected", [
    ({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
      "containerStatuses": [running()]}, ["1/1", "Running", "0"]),
    ({"phase": "Pending"}, ["0/1", "Pending", "0"]),
    ({"phase": "Pending", "containerStatuses": [waiting("ContainerCreating")]}, ["0/1", "ContainerCreating", "0"]),
    ({"phase": "Pending", "containerStatuses": [waiting("ImagePullBackOff")]}, ["0/1", "ImagePullBackOff", "0"]),
    ({"phase": "Succeeded", "containerStatuses": [terminated("Completed")]}, ["0/1", "Completed", "0"]),
    ({"phase": "Failed", "containerStatuses": [terminated("Error", 1)]}, ["0/1", "Error", "0"]),
    ({"phase": "Failed", "containerStatuses": [terminated(None, 137)]}, ["0/1", "ExitCode:137", "0"]),
    ({"phase": "Failed", "reason": "Evicted"}, ["0/1", "Evicted", "0"]),
    ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
     ["0/1", "SchedulingGated", "0"]),
])
def test_pod_status_reasons(status, expected):
    assert cells(PODS, pod(status))[1:4] == expected


def test_pod_crashloop_restarts_show_when_last_restarted():
    last = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(400)}}
    p = pod({"phase": "Running", "containerStatuses": [
        running("app", restarts=2, lastState=last), waiting("CrashLoopBackOff", "side", restarts=1)]},
        containers=("app", "side"))
    assert cells(PODS, p)[:5] == ["web", "1/2", "CrashLoopBackOff", "3 (6m40s ago)", "5m"]
    # restarts without a recorded termination time print just the count
    p = pod({"phase": "Running", "containerStatuses": [running(restarts=4)]})
    assert cells(PODS, p)[3] == "4"


def test_pod_completed_container_with_running_sibling():
    statuses = [running("app"), terminated("Completed", name="job")]
    ready = pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                 "containerStatuses": statuses}, containers=("app", "job"))
    assert cells(PODS, ready)[1:3] == ["1/2", "Running"]
    not_ready = pod({"phase": "Running", "containerStatuses": statuses}, containers=("app", "job"))
    assert cells(PODS, not_ready)[1:3] == ["1/2", "NotReady"]


def test_pod_init_containers():
    init = ({"name": "setup", "image": "busybox"},)
    p = pod({"phase": "Pending", "initContainerStatuses": [running("setup", ready=False)],
             "containerStatuses": [waiting("PodInitializing")]}, init=init)
    assert cells(PODS, p)[1:4] == ["0/1", "Init:0/1", "0"]
    p = pod({"phase": "Pending", "initContainerStatuses": [waiting("CrashLoopBackOff", "setup", restarts=2)]},
            init=init)
    assert cells(PODS, p)[1:4] == ["0/1", "Init:CrashLoopBackOff", "2"]
    p = pod({"phase": "Pending", "initContainerStatuses": [terminated("Error", 1, "setup")]}, init=init)
    assert cells(PODS, p)[2] == "Init:Error"
    p = pod({"phase": "Pending", "initContainerStatuses": [terminated(None, 2, "setup")]}, init=init)
    assert cells(PODS, p)[2] == "Init:ExitCode:2"
    done = pod({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [terminated("Completed", 0, "setup")],
                "containerStatuses": [running()]}, init=init)
    assert cells(PODS, done)[1:3] == ["1/1", "Running"]


def test_pod_sidecar_counts_towards_ready():
    init = ({"name": "proxy", "image": "envoy", "restartPolicy": "Always"},)
    p = pod({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
             "initContainerStatuses": [running("proxy", started=True)],
             "containerStatuses": [running()]}, init=init)
    assert cells(PODS, p)[1:3] == ["2/2", "Running"]


def test_pod_deletion():
    p = pod({"phase": "Running", "containerStatuses": [running()]}, deletionTimestamp=ago(1))
    assert cells(PODS, p)[2] == "Terminating"
    p = pod({"phase": "Running", "reason": "NodeLost"}, deletionTimestamp=ago(1))
    assert cells(PODS, p)[2] == "Unknown"
    p = pod({"phase": "Succeeded", "containerStatuses": [terminated("Completed")]}, deletionTimestamp=ago(1))
    assert cells(PODS, p)[2] == "Completed"


def test_pod_wide_cells():
    p = pod({"phase": "Running", "podIP": "10.1.0.4", "podIPs": [{"ip": "10.1.0.4"}],
             "nominatedNodeName": "node-2", "conditions": [{"type": "example.com/lb", "status": "True"}],
             "containerStatuses": [running()]})
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]
    assert cells(PODS, p)[5:] == ["10.1.0.4", "node-1", "node-2", "1/2"]
    bare = pod({"phase": "Pending"})
    del bare["spec"]["nodeName"]
    assert cells(PODS, bare)[5:] == ["<none>", "<none>", "<none>", "<none>"]
    only_pod_ip = pod({"phase": "Running", "podIP": "10.1.0.9"})
    assert cells(PODS, only_pod_ip)[5] == "10.1.0.9"


def test_pod_columns_and_table_shape():
    cols = column_definitions(PODS)
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in cols] == [
        ("Name", "string", "name", 0), ("Ready", "string", "", 0), ("Status", "string", "", 0),
        ("Restarts", "string", "", 0), ("Age", "string", "", 0), ("IP", "string", "", 1),
        ("Node", "string", "", 1), ("Nominated Node", "string", "", 1), ("Readiness Gates", "string", "", 1)]
    done = pod({"phase": "Succeeded", "containerStatuses": [terminated("Completed")]})
    table = to_table(PODS, [done], NOW, list_meta={"resourceVersion": "42", "continue": ""})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    row = table["rows"][0]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": done["metadata"]}
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    assert to_table(PODS, [done], NOW, include_object="Object")["rows"][0]["object"] is done
    assert "object" not in to_table(PODS, [done], NOW, include_object="None")["rows"][0]
    assert to_table(PODS, [], NOW, list_meta={"resourceVersion": "9"})["rows"] == []
    assert to_table(PODS, [done], NOW)["metadata"] == {"resourceVersion": "7"}  # a single object's version
    assert "columnDefinitions" not in to_table(PODS, [done], NOW, no_headers=True)


def test_every_served_kind_has_columns():
    for r in RESOURCES:
        cols = column_definitions(r)
        assert cols, r
        assert all(set(c) == {"name", "type", "format", "description", "priority"} and c["description"]
                   for c in cols), r
        name = [c for c in cols if c["format"] == "name"]
        assert len(name) == 1 and name[0]["name"] == "Name", r


def names(resource) -> list[tuple[str, int]]:
    return [(c["name"], c["priority"]) for c in column_definitions(resource)]


def test_column_names_match_kubernetes():
    assert names(lookup("batch", "v1", "jobs")) == [
        ("Name", 0), ("Status", 0), ("Completions", 0), ("Duration", 0), ("Age", 0),
        ("Containers", 1), ("Images", 1), ("Selector", 1)]
    assert names(lookup("", "v1", "events")) == [
        ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1),
        ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]
    assert column_definitions(lookup("events.k8s.io", "v1", "events")) == column_definitions(lookup("", "v1", "events"))
    hpa = [("Name", 0), ("Reference", 0), ("Targets", 0), ("MinPods", 0), ("MaxPods", 0), ("Replicas", 0), ("Age", 0)]
    assert names(lookup("autoscaling", "v1", "horizontalpodautoscalers")) == hpa
    assert names(lookup("autoscaling", "v2", "horizontalpodautoscalers")) == hpa
    assert names(lookup("", "v1", "nodes")) == [
        ("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0), ("Internal-IP", 1),
        ("External-IP", 1), ("OS-Image", 1), ("Kernel-Version", 1), ("Container-Runtime", 1)]
    assert names(lookup("", "v1", "services")) == [
        ("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0), ("Selector", 1)]
    assert names(lookup("coordination.k8s.io", "v1", "leases")) == [("Name", 0), ("Holder", 0), ("Age", 0)]
    types = {c["name"]: c["type"] for c in column_definitions(lookup("apps", "v1", "replicasets"))}
    assert types["Desired"] == types["Current"] == types["Ready"] == "integer"


TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
    {"name": "nginx", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox:1.36"}]}}
SELECTOR = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                                                {"key": "canary", "operator": "DoesNotExist"}]}


def test_deployment_and_replicaset():
    dep = {"metadata": meta("web", 7200), "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
           "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}}
    assert cells(lookup("apps", "v1", "deployments"), dep) == [
        "web", "2/3", 3, 2, "120m", "nginx,sidecar", "nginx:1.27,busybox:1.36", "app=web,!canary,tier in (a,b)"]
    fresh = {"metadata": meta("new", 5), "spec": {"selector": {"matchLabels": {"app": "new"}}, "template": TEMPLATE}}
    assert cells(lookup("apps", "v1", "deployments"), fresh)[:5] == ["new", "0/1", 0, 0, "5s"]
    rs = {"metadata": meta("web-5d9c", 90000), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                                       "template": TEMPLATE},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert cells(lookup("apps", "v1", "replicasets"), rs) == [
        "web-5d9c", 2, 2, 1, "25h", "nginx,sidecar", "nginx:1.27,busybox:1.36", "app=web"]


def test_daemonset_and_job():
    ds = {"metadata": meta("agent", 3 * 86400), "spec": {"selector": {}, "template": {
        "spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "a:1"}]}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert cells(lookup("apps", "v1", "daemonsets"), ds) == [
        "agent", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "3d", "a", "a:1", "<none>"]
    jobs = lookup("batch", "v1", "jobs")
    job = {"metadata": meta("pi", 600), "spec": {"completions": 1, "selector": {"matchLabels": {"job": "pi"}},
                                                "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
           "status": {"succeeded": 1, "startTime": ago(590), "completionTime": ago(545),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    assert cells(jobs, job) == ["pi", "Complete", "1/1", "45s", "10m", "pi", "perl", "job=pi"]
    busy = {"metadata": meta("batch", 30), "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}},
            "status": {"startTime": ago(20)}}
    assert cells(jobs, busy)[:4] == ["batch", "Running", "0/1 of 3", "20s"]
    failed = {"metadata": meta("f"), "spec": {"completions": 2},
              "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    assert cells(jobs, failed)[1:4] == ["Failed", "0/2", ""]


SERVICES = lookup("", "v1", "services")


def svc(spec: dict, status: dict | None = None) -> dict:
    return {"metadata": meta("web"), "spec": spec, **({"status": status} if status else {})}


def test_services():
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
             {"name": "https", "port": 443, "protocol": "TCP"}]
    assert cells(SERVICES, svc({"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                                "ports": ports, "selector": {"app": "web"}})) == [
        "web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,443/TCP", "5m", "app=web"]
    assert cells(SERVICES, svc({"type": "ClusterIP", "clusterIP": "None", "ports": [
        {"port": 53, "protocol": "UDP"}]}))[1:7] == ["ClusterIP", "None", "<none>", "53/UDP", "5m", "<none>"]
    lb = {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80, "protocol": "TCP",
                                                                          "nodePort": 31000}]}
    assert cells(SERVICES, svc(lb))[3] == "<pending>"
    assert cells(SERVICES, svc(lb, {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"},
                                                                   {"hostname": "lb.example.com"}]}}))[3] == \
        "203.0.113.9,lb.example.com"
    assert cells(SERVICES, svc({**lb, "externalIPs": ["198.51.100.1"]}))[3] == "198.51.100.1"
    assert cells(SERVICES, svc({"type": "ExternalName", "externalName": "db.example.com"}))[1:5] == [
        "ExternalName", "<none>", "db.example.com", "<none>"]
    assert cells(SERVICES, svc({"clusterIP": "10.96.0.1", "externalIPs": ["1.2.3.4", "5.6.7.8"],
                                "ports": [{"port": 443}]}))[1:5] == ["ClusterIP", "10.96.0.1", "1.2.3.4,5.6.7.8",
                                                                    "443/TCP"]


def test_endpoints_and_slices():
    eps = {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]}
    assert cells(lookup("", "v1", "endpoints"), eps) == [
        "web", "10.1.0.1:80,10.1.0.2:80,10.1.0.1:443 + 1 more...", "5m"]
    assert cells(lookup("", "v1", "endpoints"), {"metadata": meta("none")})[1] == "<none>"
    es = {"metadata": meta("web-abc"), "addressType": "IPv4", "ports": [{"name": "http", "port": 80}],
          "endpoints": [{"addresses": ["10.1.0.1"]}, {"addresses": ["10.1.0.2"]}]}
    assert cells(lookup("discovery.k8s.io", "v1", "endpointslices"), es) == [
        "web-abc", "IPv4", "80", "10.1.0.1,10.1.0.2", "5m"]
    empty = {"metadata": meta("e"), "addressType": "IPv4", "ports": [{"name": ""}], "endpoints": []}
    assert cells(lookup("discovery.k8s.io", "v1", "endpointslices"), empty)[2:4] == ["<unset>", "<unset>"]


NODES = lookup("", "v1", "nodes")


def test_nodes():
    node = {"metadata": meta("cp-1", 86400 * 10, labels={
        "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
        "kubernetes.io/hostname": "cp-1"}),
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname",
                                                                                  "address": "cp-1"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.13"}}}
    assert cells(NODES, node) == [
        "cp-1", "Ready,SchedulingDisabled", "control-plane,worker", "10d", "v1.32.0", "172.18.0.2", "<none>",
        "Debian GNU/Linux 12 (bookworm)", "6.1.0", "containerd://1.7.13"]
    worker = {"metadata": meta("w-1", labels={"kubernetes.io/role": "node"}),
              "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert cells(NODES, worker)[1:5] == ["NotReady", "node", "5m", ""]
    assert cells(NODES, worker)[7:] == ["<unknown>", "<unknown>", "<unknown>"]
    bare = {"metadata": meta("b")}
    assert cells(NODES, bare)[1:3] == ["Unknown", "<none>"]


def test_config_and_identity_kinds():
    assert cells(lookup("", "v1", "configmaps"), {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"},
                                                  "binaryData": {"c": "AA=="}}) == ["cfg", 3, "5m"]
    assert cells(lookup("", "v1", "secrets"), {"metadata": meta("tls"), "type": "kubernetes.io/tls",
                                               "data": {"tls.crt": "", "tls.key": ""}}) == [
        "tls", "kubernetes.io/tls", 2, "5m"]
    assert cells(lookup("", "v1", "serviceaccounts"), {"metadata": meta("default")}) == ["default", 0, "5m"]
    assert cells(lookup("", "v1", "namespaces"), {"metadata": meta("kube-system", 86400 * 400),
                                                  "status": {"phase": "Active"}}) == ["kube-system", "Active", "400d"]
    assert cells(lookup("coordination.k8s.io", "v1", "leases"), {
        "metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "cp-1_1234"}}) == [
        "kube-scheduler", "cp-1_1234", "5m"]
    assert cells(lookup("coordination.k8s.io", "v1", "leases"), {"metadata": meta("x"), "spec": {}})[1] == ""
    assert cells(lookup("", "v1", "namespaces"), {"metadata": {"name": "odd"}})[2] == "<unknown>"


def test_volumes():
    pv = {"metadata": meta("pv-1"), "spec": {"capacity": {"storage": "5Gi"},
                                             "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                                             "persistentVolumeReclaimPolicy": "Retain",
                                             "claimRef": {"namespace": "default", "name": "data"},
                                             "storageClassName": "standard"},
          "status": {"phase": "Bound"}}
    assert cells(lookup("", "v1", "persistentvolumes"), pv) == [
        "pv-1", "5Gi", "RWO,RWX", "Retain", "Bound", "default/data", "standard", "<unset>", "", "5m", "<unset>"]
    pvcs = lookup("", "v1", "persistentvolumeclaims")
    pending = {"metadata": meta("data"), "spec": {"accessModes": ["ReadWriteOnce"],
                                                 "resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Pending"}}
    assert cells(pvcs, pending) == ["data", "Pending", "", "", "", "", "<unset>", "5m", "<unset>"]
    bound = {"metadata": meta("data", annotations={"volume.beta.kubernetes.io/storage-class": "fast"},
                              deletionTimestamp=ago(1)),
             "spec": {"volumeName": "pv-1", "volumeMode": "Filesystem", "storageClassName": "standard"},
             "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"]}}
    assert cells(pvcs, bound) == ["data", "Terminating", "pv-1", "5Gi", "RWO", "fast", "<unset>", "5m", "Filesystem"]


EVENT = {"apiVersion": "v1", "kind": "Event", "metadata": meta("web.17a", 600),
         "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "apiVersion": "v1",
                            "fieldPath": "spec.containers{app}"},
         "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
         "source": {"component": "kubelet", "host": "node-1"}, "count": 4,
         "firstTimestamp": ago(600), "lastTimestamp": ago(30),
         "reportingComponent": "kubelet", "reportingInstance": "node-1"}


def test_events_core_and_events_view():
    core = lookup("", "v1", "events")
    expected = ["30s", "Warning", "BackOff", "pod/web", "spec.containers{app}", "kubelet, node-1",
                "Back-off restarting failed container", "10m", 4, "web.17a"]
    assert cells(core, EVENT) == expected
    view = lookup("events.k8s.io", "v1", "events")
    assert cells(view, conversion.from_storage(view, EVENT)) == expected


def test_events_new_api_shapes():
    core = lookup("", "v1", "events")
    singleton = {"metadata": meta("e1"), "eventTime": "2024-05-01T11:59:00.000000Z", "type": "Normal",
                 "reason": "Scheduled", "involvedObject": {"kind": "Node"}, "reportingComponent": "scheduler",
                 "reportingInstance": "", "source": {}}
    assert cells(core, singleton) == ["60s", "Normal", "Scheduled", "node", "", "scheduler", "", "60s", 1, "e1"]
    series = {**singleton, "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:50.000000Z"}}
    assert cells(core, series)[0] == "10s" and cells(core, series)[8] == 7
    unknown = {"metadata": meta("e2"), "involvedObject": {"kind": "Pod", "name": "x"}}
    assert cells(core, unknown)[0] == cells(core, unknown)[7] == "<unknown>"


HPA_V2 = lookup("autoscaling", "v2", "horizontalpodautoscalers")
HPA_V1 = lookup("autoscaling", "v1", "horizontalpodautoscalers")


def hpa(metrics: list, current: list | None = None, min_replicas: int | None = 2) -> dict:
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 10, "metrics": metrics}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("web"),
            "spec": spec, "status": {"currentReplicas": 3, "desiredReplicas": 3,
                                     **({"currentMetrics": current} if current is not None else {})}}


CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}
CPU_NOW = {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 10,
                                                                      "averageValue": "20m"}}}
MEM = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}
PODS_QPS = {"type": "Pods", "pods": {"metric": {"name": "qps"},
                                     "target": {"type": "AverageValue", "averageValue": "1k"}}}


def test_hpa_targets():
    assert cells(HPA_V2, hpa([CPU], [CPU_NOW])) == ["web", "Deployment/web", "cpu: 10%/50%", "2", 10, 3, "5m"]
    assert cells(HPA_V2, hpa([CPU], min_replicas=None))[2:4] == ["cpu: <unknown>/50%", "<unset>"]
    assert cells(HPA_V2, hpa([MEM]))[2] == "memory: <unknown>/100Mi"
    assert cells(HPA_V2, hpa([MEM, CPU, PODS_QPS]))[2] == \
        "memory: <unknown>/100Mi, cpu: <unknown>/50% + 1 more..."
    assert cells(HPA_V2, hpa([]))[2] == "<none>"
    ext = {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}}
    ext_now = {"type": "External", "external": {"metric": {"name": "queue"}, "current": {"value": "12"}}}
    assert cells(HPA_V2, hpa([ext], [ext_now]))[2] == "12/30"


def test_hpa_v1_view_prints_like_v2():
    stored = hpa([MEM, CPU], [{"type": "Resource", "resource": {"name": "memory", "current": {
        "averageValue": "50Mi"}}}, CPU_NOW])
    served = conversion.from_storage(HPA_V1, stored)
    assert served["spec"]["targetCPUUtilizationPercentage"] == 50
    assert cells(HPA_V1, served) == cells(HPA_V2, stored) == [
        "web", "Deployment/web", "memory: 50Mi/100Mi, cpu: 10%/50%", "2", 10, 3, "5m"]


@pytest.mark.parametrize("seconds, text", [
    (-5, "<invalid>"), (-1.5, "0s"), (-1, "0s"), (0, "0s"), (0.9, "0s"), (45, "45s"), (119, "119s"),
    (120, "2m"), (125, "2m5s"), (599, "9m59s"), (600, "10m"), (659, "10m"), (10799, "179m"), (10800, "3h"),
    (12000, "3h20m"), (28799, "7h59m"), (28800, "8h"), (172799, "47h"), (172800, "2d"), (183600, "2d3h"),
    (8 * 86400 - 1, "7d23h"), (8 * 86400, "8d"), (300 * 86400, "300d"), (729 * 86400, "729d"),
    (730 * 86400, "2y"), (731 * 86400, "2y1d"), (5 * 365 * 86400 + 10 * 86400, "5y10d"),
    (8 * 365 * 86400, "8y"), (20 * 365 * 86400 + 100 * 86400, "20y"),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text

"""Controller-manager behaviour users rely on, against real processes: daemon pods and taints, pods
on an unreachable node leaving Service endpoints, ReplicaSets larger than one burst, and the
kube-root-ca.crt ConfigMap in every namespace."""
from __future__ import annotations

import json
import time

from tests.integration.test_control_loops import cluster, ns, pods, running_ready  # noqa: F401 (fixtures)
from tests.support.clusters import wait_for

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the "
    "internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes "
    "clusters.")


def condition(obj: dict, typ: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == typ), None)


def test_daemon_pod_stays_on_a_no_schedule_node_and_leaves_a_no_execute_one(cluster, ns):  # noqa: F811
    """A NoSchedule taint keeps the running daemon pod (counted misscheduled); an untolerated
    NoExecute taint removes it; without taints it comes back. Daemon pods carry the standard tolerations."""
    k = cluster.kubectl
    ds = {"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
        "metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/daemonsets", ds)[0] == 201
    ready = wait_for(lambda: running_ready(cluster, ns, 2), 60, "one daemon pod per hollow node")
    for p in ready:
        assert p["spec"]["tolerations"] == DAEMON_TOLERATIONS
    on_node_1 = next(p["metadata"]["name"] for p in ready if p["spec"]["nodeName"] == "node-1")

    def status(**want: int) -> bool:
        st = cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent")[1].get("status", {})
        return all(st.get(key, 0) == v for key, v in want.items())
    try:
        k("taint", "nodes", "node-1", "dedicated=infra:NoSchedule")
        wait_for(lambda: status(desiredNumberScheduled=1, numberMisscheduled=1), 30, "node-1 counted misscheduled")
        pod = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/{on_node_1}")[1]
        assert pod.get("metadata", {}).get("name") == on_node_1 and not pod["metadata"].get("deletionTimestamp")
        k("taint", "nodes", "node-1", "evict=now:NoExecute")
        wait_for(lambda: not any(p["spec"]["nodeName"] == "node-1" for p in pods(cluster, ns)), 30,
                 "the daemon pod gone from node-1")
        wait_for(lambda: status(desiredNumberScheduled=1, currentNumberScheduled=1, numberMisscheduled=0), 30,
                 "status without node-1")
        k("taint", "nodes", "node-1", "evict-", "dedicated-")
        again = wait_for(lambda: running_ready(cluster, ns, 2), 60, "a daemon pod on node-1 again")
        assert sorted(p["spec"]["nodeName"] for p in again) == ["node-0", "node-1"]
    finally:
        k("taint", "nodes", "node-1", "evict-", "dedicated-", check=False)
        k("-n", ns, "delete", "daemonset", "agent", "--wait=false")


def test_pods_on_an_unreachable_node_become_not_ready_endpoints(cluster, ns):  # noqa: F811
    """A node whose heartbeats stop turns Unknown; its pods get Ready=False (NodeNotReady event) and
    Services list them under notReadyAddresses, EndpointSlices with ready=false."""
    def now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    node = {"metadata": {"name": "lost-1"}, "status": {
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now()[:19] + "Z"}]}}
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    assert cluster.http("POST", "/api/v1/nodes", node)[0] == 201
    try:
        assert cluster.http("POST", lease_path, {"metadata": {"name": "lost-1"}, "spec": {
            "holderIdentity": "lost-1", "leaseDurationSeconds": 4, "renewTime": now()}})[0] == 201
        pod = {"metadata": {"name": "web-0", "labels": {"app": "web"}}, "spec": {
            "nodeName": "lost-1", "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]}}
        assert cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201
        running = {"status": {"phase": "Running", "podIP": "10.244.250.7", "podIPs": [{"ip": "10.244.250.7"}],
                              "conditions": [{"type": "Ready", "status": "True"},
                                             {"type": "ContainersReady", "status": "True"}]}}
        assert cluster.http("PATCH", f"/api/v1/namespaces/{ns}/pods/web-0/status", running,
                            content_type="application/merge-patch+json")[0] == 200
        cluster.kubectl("-n", ns, "create", "service", "clusterip", "web", "--tcp=80:80")

        def ready_address() -> bool:   # the "kubelet" of lost-1 heartbeats until the Service shows its pod
            cluster.http("PATCH", f"{lease_path}/lost-1", {"spec": {"renewTime": now()}},
                         content_type="application/merge-patch+json")
            ep = cluster.http("GET", f"/api/v1/namespaces/{ns}/endpoints/web")[1]
            return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []] == ["10.244.250.7"]
        wait_for(ready_address, 30, "the pod as a ready endpoint", interval=0.5)

        wait_for(lambda: condition(cluster.http("GET", "/api/v1/nodes/lost-1")[1], "Ready") == "Unknown", 30,
                 "lost-1 Unknown after its heartbeats stop")
        wait_for(lambda: condition(cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/web-0")[1], "Ready")
                 == "False", 30, "the pod marked not ready")

        def not_ready_address():
            ep = cluster.http("GET", f"/api/v1/namespaces/{ns}/endpoints/web")[1]
            subsets = ep.get("subsets") or []
            return len(subsets) == 1 and "addresses" not in subsets[0] and subsets[0]
        subset = wait_for(not_ready_address, 30, "the address moved to notReadyAddresses")
        assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.244.250.7"]
        slices = cluster.http("GET", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
                                     "?labelSelector=kubernetes.io%2Fservice-name%3Dweb")[1]["items"]
        assert [e["conditions"] for s in slices for e in s["endpoints"]] == [
            {"ready": False, "serving": False, "terminating": False}]
        events = json.loads(cluster.kubectl("-n", ns, "get", "events", "-o", "json").stdout)["items"]
        assert any(e["reason"] == "NodeNotReady" and e["type"] == "Warning" and e["message"] == "Node is not ready"
                   and e["involvedObject"]["name"] == "web-0" for e in events)
    finally:
        cluster.http("DELETE", "/api/v1/nodes/lost-1")
        cluster.http("DELETE", f"{lease_path}/lost-1")


def test_replicaset_scales_far_past_one_burst_and_back(cluster, ns):  # noqa: F811
    """1,200 replicas (more than two bursts of 500) whose pods name a scheduler nobody runs, so they
    stay Pending: all are created, and scaling to 5 deletes the rest."""
    rs = {"metadata": {"name": "big"}, "spec": {"replicas": 1200, "selector": {"matchLabels": {"app": "big"}},
          "template": {"metadata": {"labels": {"app": "big"}}, "spec": {
              "schedulerName": "nobody", "containers": [{"name": "c", "image": "nginx"}]}}}}
    path = f"/apis/apps/v1/namespaces/{ns}/replicasets/big"
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/replicasets", rs)[0] == 201

    def replicas(n: int) -> bool:
        return cluster.http("GET", path)[1].get("status", {}).get("replicas") == n and len(pods(cluster, ns)) == n
    wait_for(lambda: replicas(1200), 120, "1,200 pods", interval=1)
    assert {p["status"]["phase"] for p in pods(cluster, ns)} == {"Pending"}
    assert cluster.http("PATCH", path, {"spec": {"replicas": 5}}, content_type="application/merge-patch+json")[0] == 200
    wait_for(lambda: replicas(5), 120, "5 pods after scaling down", interval=1)


def test_kube_root_ca_configmap_in_every_namespace(cluster, ns):  # noqa: F811
    """kube-root-ca.crt holds the cluster CA (here from the controller-manager's kubeconfig) in old and
    new namespaces; an edit is put back and a deletion undone."""
    ca = cluster.ca.read_text()

    def published(namespace: str) -> dict | None:
        code, cm, _ = cluster.http("GET", f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt")
        ok = code == 200 and cm.get("data") == {"ca.crt": ca} and \
            cm["metadata"].get("annotations", {}).get("kubernetes.io/description") == ROOT_CA_DESCRIPTION
        return cm if ok else None
    for namespace in ("default", "kube-system", "kube-public", "kube-node-lease", ns):
        wait_for(lambda n=namespace: published(n), 30, f"kube-root-ca.crt in {namespace}")
    cluster.kubectl("-n", ns, "patch", "configmap", "kube-root-ca.crt", "--type=merge", "-p",
                    '{"data":{"ca.crt":"forged"},"metadata":{"annotations":{"kubernetes.io/description":null}}}')
    wait_for(lambda: published(ns), 30, "the edited ConfigMap put back")
    uid = published(ns)["metadata"]["uid"]
    cluster.kubectl("-n", ns, "delete", "configmap", "kube-root-ca.crt")
    recreated = wait_for(lambda: published(ns), 30, "the deleted ConfigMap re-created")
    assert recreated["metadata"]["uid"] != uid
    cluster.kubectl("create", "namespace", f"{ns}-new")
    wait_for(lambda: published(f"{ns}-new"), 30, "kube-root-ca.crt in a new namespace")

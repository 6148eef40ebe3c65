"""Scheduler, controller-manager and hollow kubelets as processes: deployments converge and roll."""
from __future__ import annotations

import json
import time

import pytest

from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer, Component


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loops")
    store = EtcdnodeCluster(tmp / "store", size=3)
    procs: list = []
    api = None
    try:
        store.start_all()
        api = ApiServer(tmp / "api", store.client_urls).start()
        kc = str(api.kubeconfig)
        # a grace period a kill -9 and restart of the kubelet fits in on a loaded machine (its pods
        # are marked not ready after it, as upstream), yet short enough for heartbeat-loss tests
        procs = [
            Component(tmp, "scheduler", ["--kubeconfig", kc, "--leader-elect", "--port", str(free_port())]).start(),
            Component(tmp, "controllers", ["--kubeconfig", kc, "--leader-elect", "--port", str(free_port()),
                                           "--node-monitor-grace-period", "10", "--node-monitor-period", "1",
                                           "--allocate-node-cidrs", "--cluster-cidr", "10.244.0.0/16",
                                           "--hpa-metrics-source", "annotations",
                                           "--horizontal-pod-autoscaler-sync-period", "1",
                                           "--horizontal-pod-autoscaler-downscale-stabilization", "3"]).start(),
            Component(tmp, "kubelet", ["--kubeconfig", kc, "--hostname-override", "node", "--hollow-nodes", "2",
                                       "--healthz-port", str(free_port()), "--ready-delay", "0.2",
                                       "--node-lease-duration", "4", "--node-status-update-frequency", "1"]).start(),
        ]
        wait_for(lambda: len(api.http("GET", "/api/v1/nodes")[1].get("items", [])) == 2, 30, "2 hollow nodes")
        api.procs = procs
        yield api
    finally:
        for p in procs:
            p.stop()
        if api is not None:
            api.stop()
        store.stop()


@pytest.fixture
def ns(cluster, request):
    name = "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:40]
    code, body, _ = cluster.http("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    return name


def pods(api, ns: str) -> list[dict]:
    return api.http("GET", f"/api/v1/namespaces/{ns}/pods")[1]["items"]


def running_ready(api, ns: str, n: int, image: str | None = None) -> list[dict] | None:
    ps = [p for p in pods(api, ns) if not p["metadata"].get("deletionTimestamp")]
    ok = [p for p in ps if p.get("status", {}).get("phase") == "Running"
          and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
          and (image is None or p["spec"]["containers"][0]["image"] == image)]
    return ok if len(ok) == n and len(ps) == n else None


def test_deployment_converges_spread_over_nodes(cluster, ns):
    k = cluster.kubectl
    k("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=3")
    ready = wait_for(lambda: running_ready(cluster, ns, 3), 60, "3 running pods")
    assert {p["spec"]["nodeName"] for p in ready} == {"node-0", "node-1"}
    k("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    rs = json.loads(k("-n", ns, "get", "rs", "-o", "json").stdout)["items"]
    assert len(rs) == 1 and rs[0]["status"]["readyReplicas"] == 3
    assert rs[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    wide = k("-n", ns, "get", "pods", "-o", "wide").stdout
    assert "Running" in wide and "node-0" in wide and "node-1" in wide


def test_hundred_replica_deployment_reaches_ready_on_hollow_nodes(cluster, ns):
    k = cluster.kubectl
    k("-n", ns, "create", "deployment", "hundred", "--image=nginx", "--replicas=100")
    ready = wait_for(lambda: running_ready(cluster, ns, 100), 120, "100 running and ready pods", interval=0.5)
    assert {p["spec"]["nodeName"] for p in ready} == {"node-0", "node-1"}
    k("-n", ns, "rollout", "status", "deployment/hundred", "--timeout=60s")
    assert json.loads(k("-n", ns, "get", "deploy", "hundred", "-o", "json").stdout)["status"]["readyReplicas"] == 100
    k("-n", ns, "delete", "deployment", "hundred")           # the hollow nodes' pod slots are for the other tests
    wait_for(lambda: not pods(cluster, ns), 60, "the 100 pods gone", interval=0.5)


def test_rollout_set_image_history_undo_scale(cluster, ns):
    k = cluster.kubectl
    k("-n", ns, "create", "deployment", "web", "--image=nginx:1", "--replicas=3")
    wait_for(lambda: running_ready(cluster, ns, 3, "nginx:1"), 60, "3 pods of nginx:1")
    k("-n", ns, "set", "image", "deployment/web", "nginx=nginx:2")
    k("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    wait_for(lambda: running_ready(cluster, ns, 3, "nginx:2"), 60, "3 pods of nginx:2")
    hist = k("-n", ns, "rollout", "history", "deployment/web").stdout
    assert "1" in hist and "2" in hist
    k("-n", ns, "rollout", "undo", "deployment/web")
    k("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    wait_for(lambda: running_ready(cluster, ns, 3, "nginx:1"), 60, "back to nginx:1")
    dep = json.loads(k("-n", ns, "get", "deploy", "web", "-o", "json").stdout)
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    k("-n", ns, "scale", "deployment", "web", "--replicas=5")
    wait_for(lambda: running_ready(cluster, ns, 5), 60, "5 pods")
    k("-n", ns, "scale", "deployment", "web", "--replicas=1")
    wait_for(lambda: running_ready(cluster, ns, 1), 60, "1 pod")


def test_unschedulable_pod_reports_why(cluster, ns):
    code, _, _ = cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "huge"}, "spec": {
        "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "64"}}}]}})
    assert code == 201

    def reason():
        pod = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/huge")[1]
        return next((c for c in pod.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"), None)
    cond = wait_for(reason, 30, "PodScheduled=False")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"].startswith("0/2 nodes are available: 2 Insufficient cpu.")
    events = cluster.kubectl("-n", ns, "get", "events").stdout
    assert "FailedScheduling" in events


def test_cascading_and_orphaning_deletes(cluster, ns):
    k = cluster.kubectl
    k("-n", ns, "create", "deployment", "a", "--image=nginx", "--replicas=2")
    k("-n", ns, "create", "deployment", "b", "--image=nginx", "--replicas=2")
    wait_for(lambda: running_ready(cluster, ns, 4), 60, "4 pods")
    k("-n", ns, "delete", "deployment", "a")               # background: RS and pods follow
    wait_for(lambda: len(pods(cluster, ns)) == 2, 60, "pods of a collected")
    rs = json.loads(k("-n", ns, "get", "rs", "-o", "json").stdout)["items"]
    assert [r["metadata"]["name"].split("-")[0] for r in rs] == ["b"]
    k("-n", ns, "delete", "deployment", "b", "--cascade=orphan")
    wait_for(lambda: cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/b")[0] == 404, 30, "b gone")
    rs = json.loads(k("-n", ns, "get", "rs", "-o", "json").stdout)["items"]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")
    assert len(pods(cluster, ns)) == 2


def test_namespace_deletion_empties_and_removes_it(cluster):
    k = cluster.kubectl
    k("create", "namespace", "doomed")
    k("-n", "doomed", "create", "deployment", "web", "--image=nginx", "--replicas=2")
    k("-n", "doomed", "create", "configmap", "c", "--from-literal=a=b")
    wait_for(lambda: running_ready(cluster, "doomed", 2), 60, "2 pods")
    k("delete", "namespace", "doomed", "--timeout=60s")
    assert cluster.http("GET", "/api/v1/namespaces/doomed")[0] == 404


def test_endpoints_and_slices_follow_ready_pods(cluster, ns):
    k = cluster.kubectl
    k("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80")
    k("-n", ns, "expose", "deployment", "web", "--port=8080", "--target-port=80")
    wait_for(lambda: running_ready(cluster, ns, 2), 60, "2 pods")

    def addresses():
        ep = cluster.http("GET", f"/api/v1/namespaces/{ns}/endpoints/web")[1]
        subsets = ep.get("subsets") or []
        return subsets and len(subsets[0].get("addresses", [])) == 2 and subsets
    subsets = wait_for(addresses, 30, "2 ready endpoint addresses")
    assert subsets[0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    ips = {p["status"]["podIP"] for p in pods(cluster, ns)}
    assert {a["ip"] for a in subsets[0]["addresses"]} == ips
    slices = cluster.http("GET", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
                                 "?labelSelector=kubernetes.io%2Fservice-name%3Dweb")[1]["items"]
    assert len(slices) == 1 and {e["addresses"][0] for e in slices[0]["endpoints"]} == ips
    assert all(e["conditions"]["ready"] for e in slices[0]["endpoints"])
    k("-n", ns, "scale", "deployment", "web", "--replicas=1")

    def one_address() -> bool:
        ep = cluster.http("GET", f"/api/v1/namespaces/{ns}/endpoints/web")[1]
        return len((ep.get("subsets") or [{}])[0].get("addresses", [])) == 1
    wait_for(one_address, 30, "1 address after scale-down")


def test_node_heartbeat_loss_taints_evicts_and_replaces(cluster, ns):
    """A node whose Lease stops being renewed becomes Unknown, gets tainted, and its pods move."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    node = {"metadata": {"name": "fake-1", "labels": {"kubernetes.io/hostname": "fake-1", "pool": "fake"}},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now[:19] + "Z"}]}}
    assert cluster.http("POST", "/api/v1/nodes", node)[0] == 201
    lease = {"metadata": {"name": "fake-1"}, "spec": {"holderIdentity": "fake-1", "leaseDurationSeconds": 4,
                                                      "renewTime": now}}
    assert cluster.http("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)[0] == 201
    dep = {"metadata": {"name": "mover"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mover"}},
           "template": {"metadata": {"labels": {"app": "mover"}}, "spec": {
               "containers": [{"name": "c", "image": "nginx"}],
               "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 2}],
               "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                   {"weight": 100, "preference": {"matchExpressions": [
                       {"key": "pool", "operator": "In", "values": ["fake"]}]}}]}}}}}}
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dep)[0] == 201
    first = wait_for(lambda: next((p for p in pods(cluster, ns) if p["spec"].get("nodeName")), None), 30, "bound")
    assert first["spec"]["nodeName"] == "fake-1"

    def tainted():
        n = cluster.http("GET", "/api/v1/nodes/fake-1")[1]
        ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
        keys = {(t["key"], t["effect"]) for t in n["spec"].get("taints", [])}
        return ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in keys and n
    wait_for(tainted, 30, "fake-1 Unknown and tainted")
    cidrs = [x["spec"].get("podCIDR") for x in cluster.http("GET", "/api/v1/nodes")[1]["items"]]
    assert all(c and c.startswith("10.244.") and c.endswith("/24") for c in cidrs) and len(set(cidrs)) == len(cidrs)
    moved = wait_for(lambda: running_ready(cluster, ns, 1), 60, "replacement running on a live node")
    assert moved[0]["spec"]["nodeName"] in ("node-0", "node-1")
    old = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/{first['metadata']['name']}")[1]
    assert old.get("metadata", {}).get("deletionTimestamp")      # evicted (its kubelet is gone)
    cluster.http("DELETE", "/api/v1/nodes/fake-1")


def test_default_service_account_in_new_namespaces(cluster, ns):
    wait_for(lambda: cluster.http("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] == 200, 30,
             "default ServiceAccount")


def test_hpa_scales_up_and_down_with_stand_in_metrics(cluster, ns):
    k = cluster.kubectl
    dep = {"metadata": {"name": "hpa-web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hpa-web"}},
           "template": {"metadata": {"labels": {"app": "hpa-web"}}, "spec": {"containers": [
               {"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]}}}}
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dep)[0] == 201
    wait_for(lambda: running_ready(cluster, ns, 1), 60, "1 pod")
    k("-n", ns, "autoscale", "deployment", "hpa-web", "--cpu-percent=50", "--min=1", "--max=4")
    k("-n", ns, "annotate", "pods", "-l", "app=hpa-web", "metrics.kubeling.io/cpu=150m", "--overwrite")
    wait_for(lambda: running_ready(cluster, ns, 3), 60, "scaled up to 3 (150% of a 50% target)")
    hpa = json.loads(k("-n", ns, "get", "hpa.v2.autoscaling", "hpa-web", "-o", "json").stdout)
    assert hpa["status"]["desiredReplicas"] == 3
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 150
    assert {c["type"] for c in hpa["status"]["conditions"]} == {"AbleToScale", "ScalingActive", "ScalingLimited"}
    k("-n", ns, "annotate", "pods", "-l", "app=hpa-web", "metrics.kubeling.io/cpu=10m", "--overwrite")
    wait_for(lambda: running_ready(cluster, ns, 1), 60, "scaled down to 1 after the stabilization window")
    assert "SuccessfulRescale" in k("-n", ns, "get", "events").stdout


def test_standby_scheduler_and_controllers_take_over(cluster, ns, tmp_path):
    """Kill the active scheduler and controller-manager: the standbys take over within the lease
    duration and the deployment ends with exactly its replicas (nothing done twice)."""
    kc = str(cluster.kubeconfig)
    standby = [Component(tmp_path, "scheduler", ["--kubeconfig", kc, "--leader-elect", "--port", str(free_port())],
                         name="scheduler-2").start(),
               Component(tmp_path, "controllers", ["--kubeconfig", kc, "--leader-elect", "--port", str(free_port())],
                         name="controllers-2").start()]
    try:
        def holder(name):
            return cluster.http("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")[1][
                "spec"]["holderIdentity"]
        before = holder("kube-scheduler"), holder("kube-controller-manager")
        for p in cluster.procs[:2]:
            p.kill()
        wait_for(lambda: holder("kube-scheduler") != before[0] and holder("kube-controller-manager") != before[1],
                 40, "standbys to acquire the leases")
        cluster.kubectl("-n", ns, "create", "deployment", "after", "--image=nginx", "--replicas=4")
        wait_for(lambda: running_ready(cluster, ns, 4), 60, "4 pods from the new leaders")
        rs = cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/replicasets")[1]["items"]
        assert len(rs) == 1 and rs[0]["spec"]["replicas"] == 4
        assert len(pods(cluster, ns)) == 4
    finally:
        for p in cluster.procs[:2]:   # the module's other tests need a scheduler and controllers
            p.start()
        for p in standby:
            p.stop()


def test_daemonset_runs_one_pod_per_node(cluster, ns):
    ds = {"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
          "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/daemonsets", ds)[0] == 201
    ready = wait_for(lambda: running_ready(cluster, ns, 2), 60, "one pod per hollow node")
    assert sorted(p["spec"]["nodeName"] for p in ready) == ["node-0", "node-1"]
    wait_for(lambda: cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent")[1]
             .get("status", {}).get("numberReady") == 2, 30, "DaemonSet status")


def test_job_runs_to_completion(cluster, ns):
    job = {"metadata": {"name": "pi"}, "spec": {"completions": 3, "parallelism": 2, "template": {
        "metadata": {"annotations": {"hollow.kubeling.io/exit-code": "0"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}}}}
    assert cluster.http("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)[0] == 201

    def complete():
        st = cluster.http("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/pi")[1].get("status", {})
        return any(c["type"] == "Complete" for c in st.get("conditions", [])) and st
    st = wait_for(complete, 60, "Job Complete")
    assert st["succeeded"] == 3 and st["uncountedTerminatedPods"] == {} and st["completionTime"]
    assert [(c["type"], c["reason"]) for c in st["conditions"]] == [("SuccessCriteriaMet", "CompletionsReached"),
                                                                    ("Complete", "CompletionsReached")]
    lines = cluster.kubectl("-n", ns, "get", "jobs").stdout.splitlines()
    assert lines[1].split()[:3] == ["pi", "Complete", "3/3"]
    done = pods(cluster, ns)
    assert len(done) == 3 and all(not p["metadata"].get("finalizers") for p in done)


def test_job_backoff_limit_counts_failures_and_fails(cluster, ns):
    """Failing pods are counted through the job-tracking finalizer, replaced after the 10 s back-off,
    and the Job fails once failures exceed backoffLimit; deleting the Job releases its pods."""
    job = {"metadata": {"name": "flaky"}, "spec": {"backoffLimit": 1, "template": {
        "metadata": {"annotations": {"hollow.kubeling.io/exit-code": "3"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
    assert cluster.http("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)[0] == 201
    first = wait_for(lambda: pods(cluster, ns), 30, "the first pod")
    assert first[0]["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]

    def failed():
        st = cluster.http("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/flaky")[1].get("status", {})
        return any(c["type"] == "Failed" for c in st.get("conditions", [])) and st
    st = wait_for(failed, 60, "Job Failed after 2 failures (one 10 s back-off)")
    assert st["failed"] == 2 and st.get("succeeded", 0) == 0 and st["active"] == 0
    assert [(c["type"], c["reason"]) for c in st["conditions"]] == [("FailureTarget", "BackoffLimitExceeded"),
                                                                    ("Failed", "BackoffLimitExceeded")]
    assert "completionTime" not in st
    assert cluster.kubectl("-n", ns, "get", "jobs").stdout.splitlines()[1].split()[:3] == ["flaky", "Failed", "0/1"]
    ps = pods(cluster, ns)
    assert len(ps) == 2 and {p["status"]["phase"] for p in ps} == {"Failed"}
    assert all(not p["metadata"].get("finalizers") for p in ps)
    assert "BackoffLimitExceeded" in cluster.kubectl("-n", ns, "get", "events").stdout
    cluster.kubectl("-n", ns, "delete", "job", "flaky")
    wait_for(lambda: not pods(cluster, ns), 30, "pods removed with their Job")


def test_service_account_token_authenticates(cluster, ns):
    wait_for(lambda: cluster.http("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] == 200, 30,
             "default ServiceAccount")
    token = cluster.kubectl("-n", ns, "create", "token", "default").stdout.strip()
    assert token.count(".") == 2
    as_sa = {"Authorization": f"Bearer {token}"}
    code, body, _ = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods", auth=False, headers=as_sa)
    assert code == 200 and body["kind"] == "PodList"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert cluster.http("GET", "/api/v1/namespaces", auth=False, headers={"Authorization": f"Bearer {tampered}"})[0] == 401
    cluster.http("DELETE", f"/api/v1/namespaces/{ns}/serviceaccounts/default")
    assert cluster.http("GET", "/api/v1/namespaces", auth=False, headers=as_sa)[0] == 401


class PodExtremes:
    """Every pod change in a namespace, seen through a watch in a thread: the most pods alive and
    the fewest ready at any moment (terminating pods count as gone)."""

    def __init__(self, cluster, ns: str) -> None:
        import threading
        self.cluster, self.ns = cluster, ns
        self.state: dict[str, bool] = {p["metadata"]["name"]: True for p in pods(cluster, ns)}
        self.max_active, self.min_ready = len(self.state), len(self.state)
        self.rv = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods")[1]["metadata"]["resourceVersion"]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "PodExtremes":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.cluster.http("POST", f"/api/v1/namespaces/{self.ns}/configmaps", {"metadata": {"name": "nudge"}})
        self.thread.join(10)

    def _watch(self) -> None:
        import ssl
        import urllib.request
        ctx = ssl.create_default_context(cafile=str(self.cluster.ca))
        req = urllib.request.Request(self.cluster.url + f"/api/v1/namespaces/{self.ns}/pods?watch=1&resourceVersion="
                                     f"{self.rv}&timeoutSeconds=60",
                                     headers={"Authorization": f"Bearer {self.cluster.token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=70) as r:
            for line in r:
                ev = json.loads(line)
                p = ev["object"]
                name = p["metadata"]["name"]
                if ev["type"] == "DELETED" or p["metadata"].get("deletionTimestamp") or \
                        p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    self.state.pop(name, None)
                else:
                    self.state[name] = any(c["type"] == "Ready" and c["status"] == "True"
                                           for c in p.get("status", {}).get("conditions", []))
                self.max_active = max(self.max_active, len(self.state))
                self.min_ready = min(self.min_ready, sum(self.state.values()))
                if self.done.is_set():
                    return


def test_rolling_update_respects_max_surge_and_max_unavailable(cluster, ns):
    """Never more than replicas+maxSurge pods, never fewer than replicas-maxUnavailable ready."""
    dep = {"metadata": {"name": "roll"}, "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "roll"}},
           "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
           "template": {"metadata": {"labels": {"app": "roll"}}, "spec": {"containers": [{"name": "c", "image": "v1"}]}}}}
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dep)[0] == 201
    wait_for(lambda: running_ready(cluster, ns, 4, "v1"), 60, "4 pods of v1")
    with PodExtremes(cluster, ns) as seen:
        cluster.kubectl("-n", ns, "set", "image", "deployment/roll", "c=v2")
        cluster.kubectl("-n", ns, "rollout", "status", "deployment/roll", "--timeout=60s")
        wait_for(lambda: running_ready(cluster, ns, 4, "v2"), 60, "4 pods of v2")
    assert seen.max_active <= 5, vars(seen)
    assert seen.min_ready >= 3, vars(seen)


def test_daemonset_rolling_update_history_and_undo(cluster, ns):
    """kubectl set image / rollout status / history / undo on a DaemonSet: one node at a time
    (maxUnavailable 1 of 2), ControllerRevisions as history."""
    k = cluster.kubectl
    ds = {"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
          "template": {"metadata": {"labels": {"app": "agent"}},
                       "spec": {"containers": [{"name": "c", "image": "agent:1"}]}}}}
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/daemonsets", ds)[0] == 201
    wait_for(lambda: running_ready(cluster, ns, 2, "agent:1"), 60, "agent:1 on both nodes")
    with PodExtremes(cluster, ns) as seen:
        k("-n", ns, "set", "image", "daemonset/agent", "c=agent:2")
        out = k("-n", ns, "rollout", "status", "daemonset/agent", "--timeout=60s").stdout
        assert 'daemon set "agent" successfully rolled out' in out
        wait_for(lambda: running_ready(cluster, ns, 2, "agent:2"), 60, "agent:2 on both nodes")
    assert seen.min_ready >= 1 and seen.max_active <= 2, vars(seen)
    revs = k("-n", ns, "get", "controllerrevisions").stdout.splitlines()
    assert revs[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert sorted(line.split()[1:3] for line in revs[1:]) == [["daemonset.apps/agent", "1"],
                                                             ["daemonset.apps/agent", "2"]]
    history = k("-n", ns, "rollout", "history", "daemonset/agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    k("-n", ns, "rollout", "undo", "daemonset/agent")
    wait_for(lambda: running_ready(cluster, ns, 2, "agent:1"), 60, "back to agent:1")
    history = k("-n", ns, "rollout", "history", "daemonset/agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]


def test_progress_deadline_exceeded_when_pods_never_become_ready(cluster, ns):
    dep = {"metadata": {"name": "stuck"}, "spec": {"replicas": 1, "progressDeadlineSeconds": 3,
           "selector": {"matchLabels": {"app": "stuck"}},
           "template": {"metadata": {"labels": {"app": "stuck"}, "annotations": {"hollow.kubeling.io/not-ready": "true"}},
                        "spec": {"containers": [{"name": "c", "image": "broken"}]}}}}
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dep)[0] == 201

    def exceeded():
        st = cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/stuck")[1].get("status", {})
        return next((c for c in st.get("conditions", []) if c["type"] == "Progressing"
                     and c["reason"] == "ProgressDeadlineExceeded"), None)
    cond = wait_for(exceeded, 30, "ProgressDeadlineExceeded")
    assert cond["status"] == "False"
    p = cluster.kubectl("-n", ns, "rollout", "status", "deployment/stuck", "--timeout=20s", check=False)
    assert p.returncode != 0 and "exceeded its progress deadline" in p.stderr


def test_crash_looping_container_restarts_with_back_off(cluster, ns):
    """A hollow container that exits 1 under restartPolicy Always: restarted at once, then
    CrashLoopBackOff, as `kubectl get pods` shows on Kubernetes."""
    pod = {"metadata": {"name": "crasher", "annotations": {"hollow.kubeling.io/exit-code": "1"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201

    def looping():
        st = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/crasher")[1].get("status", {})
        cs = (st.get("containerStatuses") or [{}])[0]
        return "waiting" in cs.get("state", {}) and st
    st = wait_for(looping, 30, "CrashLoopBackOff")
    cs = st["containerStatuses"][0]
    assert st["phase"] == "Running" and cs["restartCount"] == 1 and not cs["ready"]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=c pod=crasher_")
    assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["lastState"]["terminated"]["reason"] == "Error"
    row = cluster.kubectl("-n", ns, "get", "pod", "crasher").stdout.splitlines()[1].split()
    assert row[1:4] == ["0/1", "CrashLoopBackOff", "1"], row


def test_mixed_scheduling_decisions_on_plain_nodes(cluster, ns):
    """Selectors, required and preferred node affinity, taints and tolerations, resource fit,
    unschedulable nodes and host ports together, on three plain Node objects kept apart from the
    hollow nodes by a `mix` label every test pod selects."""
    spec = {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]}
    nodes = {
        "mix-a": ({"disk": "ssd", "zone": "z1"}, spec, {}),
        "mix-b": ({"zone": "z1", "gpu": "true"}, {**spec, "capacity": {**spec["capacity"], "cpu": "1"}},
                  {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}),
        "mix-c": ({"zone": "z2"}, spec, {"unschedulable": True}),
    }
    for name, (labels, status, node_spec) in nodes.items():
        body = {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "mix": "yes", **labels}},
                "spec": node_spec, "status": status}
        assert cluster.http("POST", "/api/v1/nodes", body)[0] == 201
    tolerate_dead = [{"key": k, "operator": "Exists"} for k in ("node.kubernetes.io/unreachable",
                                                                "node.kubernetes.io/not-ready")]
    gpu = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]

    def place(name: str, cpu: str = "100m", tolerations=(), port=None, **extra) -> None:
        c = {"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}
        if port:
            c["ports"] = [{"containerPort": 80, "hostPort": port}]
        body = {"metadata": {"name": name}, "spec": {"containers": [c], "nodeSelector": {"mix": "yes", **extra.pop(
            "selector", {})}, "tolerations": tolerate_dead + list(tolerations), **extra}}
        assert cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", body)[0] == 201

    def where(name: str) -> str | None:
        return cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/{name}")[1]["spec"].get("nodeName")

    def why(name: str) -> str | None:
        pod = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/{name}")[1]
        return next((c["message"] for c in pod.get("status", {}).get("conditions", [])
                     if c["type"] == "PodScheduled" and c["status"] == "False"), None)
    try:
        place("ssd", selector={"disk": "ssd"})
        place("big", cpu="2", tolerations=gpu)                 # mix-b has 1 cpu, mix-c is cordoned
        place("gpu-pref", tolerations=gpu, affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}}]}})
        place("untolerated", cpu="10m", selector={"gpu": "true"})
        assert wait_for(lambda: where("ssd"), 30, "ssd bound") == "mix-a"
        assert wait_for(lambda: where("big"), 30, "big bound") == "mix-a"
        assert wait_for(lambda: where("gpu-pref"), 30, "gpu-pref bound") == "mix-b"
        msg = wait_for(lambda: why("untolerated"), 30, "untolerated reported")
        assert "1 node(s) had untolerated taint {dedicated: gpu}" in msg and "node(s) didn't match Pod's node " \
            "affinity/selector" in msg, msg
        place("port-1", tolerations=gpu, port=8080)
        place("port-2", tolerations=gpu, port=8080)
        assert {wait_for(lambda: where("port-1"), 30, "port-1"), wait_for(lambda: where("port-2"), 30, "port-2")} \
            == {"mix-a", "mix-b"}
        place("port-3", tolerations=gpu, port=8080)
        msg = wait_for(lambda: why("port-3"), 30, "port-3 reported")
        assert "1 node(s) were unschedulable, 2 node(s) didn't have free ports for the requested pod ports" in msg, msg
        # uncordoning mix-c makes the waiting pod fit: the node event retries it
        cluster.http("PATCH", "/api/v1/nodes/mix-c", {"spec": {"unschedulable": False}},
                     content_type="application/merge-patch+json")
        assert wait_for(lambda: where("port-3"), 30, "port-3 bound after uncordon") == "mix-c"
    finally:
        for name in nodes:
            cluster.http("DELETE", f"/api/v1/nodes/{name}")


def test_components_ride_out_an_apiserver_restart(cluster, ns):
    """kill -9 the apiserver under the running scheduler, controller-manager and kubelet: once it
    is back, their informers re-list/re-watch and new work converges; nodes stay Ready."""
    cluster.proc.kill()
    cluster.proc.wait()
    cluster.start()
    cluster.kubectl("-n", ns, "create", "deployment", "after-restart", "--image=nginx", "--replicas=2")
    ready = wait_for(lambda: running_ready(cluster, ns, 2), 60, "2 pods after the apiserver restart")
    assert {p["spec"]["nodeName"] for p in ready} <= {"node-0", "node-1"}
    nodes = cluster.http("GET", "/api/v1/nodes")[1]["items"]
    assert all(next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready") == "True"
               for n in nodes if n["metadata"]["name"] in ("node-0", "node-1"))


def test_kubelet_reposts_ready_after_the_controller_marks_it_unknown(cluster):
    """If Ready is overwritten (as the node lifecycle controller does after missed heartbeats), the
    kubelet posts Ready=True again and the unreachable taint goes away."""
    node = cluster.http("GET", "/api/v1/nodes/node-1")[1]
    conds = [c for c in node["status"]["conditions"] if c["type"] != "Ready"] + [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": "test"}]
    assert cluster.http("PATCH", "/api/v1/nodes/node-1/status", {"status": {"conditions": conds}},
                        content_type="application/merge-patch+json")[0] == 200

    def recovered():
        n = cluster.http("GET", "/api/v1/nodes/node-1")[1]
        ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
        taints = [t["key"] for t in n["spec"].get("taints") or []]
        return ready["status"] == "True" and "node.kubernetes.io/unreachable" not in taints
    wait_for(recovered, 30, "node-1 Ready again without the unreachable taint")


def test_job_suspend_resume_and_ttl_after_finished(cluster, ns):
    """A Job created suspended runs nothing (Suspended=True), runs when resumed (Suspended=False,
    JobResumed), and is deleted with its pods ttlSecondsAfterFinished after it completed."""
    job = {"metadata": {"name": "later"}, "spec": {"suspend": True, "ttlSecondsAfterFinished": 1, "template": {
        "metadata": {"annotations": {"hollow.kubeling.io/exit-code": "0", "hollow.kubeling.io/exit-after": "0.5"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
    assert cluster.http("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)[0] == 201

    def conditions():
        st = cluster.http("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/later")[1].get("status", {})
        return {c["type"]: (c["status"], c["reason"]) for c in st.get("conditions", [])}
    wait_for(lambda: conditions().get("Suspended") == ("True", "JobSuspended"), 30, "Suspended=True")
    assert pods(cluster, ns) == []
    assert cluster.kubectl("-n", ns, "get", "jobs").stdout.splitlines()[1].split()[1] == "Suspended"
    cluster.kubectl("-n", ns, "patch", "job", "later", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for(lambda: conditions().get("Complete") == ("True", "CompletionsReached"), 30, "Complete after resume")
    assert conditions()["Suspended"] == ("False", "JobResumed")
    wait_for(lambda: cluster.http("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/later")[0] == 404, 30,
             "Job deleted 1 s after it finished")
    wait_for(lambda: pods(cluster, ns) == [], 30, "its pod deleted too")


def test_kubelet_restart_adopts_running_pods(cluster, ns):
    """kill -9 of the kubelet and a restart: its pods keep running and Ready (never seen unready by
    a watch), with the same start times and no restarts; new pods still start."""
    cluster.kubectl("-n", ns, "create", "deployment", "steady", "--image=nginx", "--replicas=2")
    before = {p["metadata"]["name"]: p for p in wait_for(lambda: running_ready(cluster, ns, 2), 60, "2 pods")}
    kubelet = cluster.procs[2]
    with PodExtremes(cluster, ns) as seen:
        kubelet.kill()
        kubelet.start()
        cluster.kubectl("-n", ns, "scale", "deployment", "steady", "--replicas=3")
        wait_for(lambda: running_ready(cluster, ns, 3), 60, "a third pod from the restarted kubelet")
    assert seen.min_ready >= 2, vars(seen)
    for p in pods(cluster, ns):
        if p["metadata"]["name"] in before:
            old = before[p["metadata"]["name"]]["status"]
            assert p["status"]["startTime"] == old["startTime"]
            assert p["status"]["containerStatuses"][0]["restartCount"] == 0
            assert p["status"]["containerStatuses"][0]["state"] == old["containerStatuses"][0]["state"]


def test_components_expose_client_go_metrics(cluster):
    """/metrics of the controller-manager and scheduler: work queues, REST requests and leader
    election under client-go's metric names."""
    import urllib.request

    def scrape(proc, flag: str = "--port") -> str:
        port = proc.args[proc.args.index(flag) + 1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return r.read().decode()
    # (after the standby test these processes may still be waiting for the lease to expire)
    ctrl = wait_for(lambda: (t := scrape(cluster.procs[1])) and
                    'leader_election_master_status{name="kube-controller-manager"} 1.0' in t and t,
                    40, "controller-manager leading")
    assert 'workqueue_adds_total{name="deployment"}' in ctrl
    assert 'workqueue_depth{name="replicaset"}' in ctrl and "workqueue_work_duration_seconds_bucket" in ctrl
    assert 'rest_client_requests_total{code="200",host="127.0.0.1:' in ctrl
    sched = wait_for(lambda: (t := scrape(cluster.procs[0])) and
                     'leader_election_master_status{name="kube-scheduler"} 1.0' in t and t, 40, "scheduler leading")
    assert "scheduler_schedule_attempts_total" in sched and 'rest_client_requests_total{code="200"' in sched
    kubelet = scrape(cluster.procs[2], "--healthz-port")
    assert 'kubelet_node_name{node="node-0"} 1.0' in kubelet and 'kubelet_running_pods{node="node-1"}' in kubelet
    assert 'rest_client_requests_total{code="200"' in kubelet

"""The disruption controller keeps PodDisruptionBudget status against a real apiserver. Only it runs:
the test makes the workloads' objects and pods itself and reports pods Ready as a kubelet would."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.support.clusters import free_port, wait_for
from tests.support.control_plane import Component

PDBS = "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"


@pytest.fixture(scope="module")
def controllers(control_plane, tmp_path_factory):
    c = Component(tmp_path_factory.mktemp("cm"), "controllers",
                  ["--kubeconfig", str(control_plane.kubeconfig), "--port", str(free_port()),
                   "--controllers", "disruption"]).start()
    yield c
    c.stop()


def create(api, path: str, body: dict) -> dict:
    code, out, _ = api.http("POST", path, body)
    assert code == 201, out
    return out


def workload(api, ns: str, replicas: int, ready: int, deployment: bool = False) -> list[dict]:
    """A ReplicaSet of `replicas` (owned by a Deployment of that scale if asked) with that many pods
    labelled app=web, the first `ready` of them Running and Ready."""
    tpl = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": tpl}
    rs_meta: dict = {"name": "web-1"}
    if deployment:
        dep = create(api, f"/apis/apps/v1/namespaces/{ns}/deployments", {"metadata": {"name": "web"}, "spec": spec})
        rs_meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                       "uid": dep["metadata"]["uid"], "controller": True}]
    rs = create(api, f"/apis/apps/v1/namespaces/{ns}/replicasets",
                {"metadata": rs_meta, "spec": {**spec, "replicas": 1 if deployment else replicas}})
    out = []
    for i in range(replicas):
        pod = create(api, f"/api/v1/namespaces/{ns}/pods", {"metadata": {
            "name": f"web-{i}", "labels": {"app": "web"}, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": rs["metadata"]["uid"],
                "controller": True}]}, "spec": tpl["spec"]})
        if i < ready:
            set_ready(api, pod, True)
        out.append(pod)
    return out


def set_ready(api, pod: dict, ready: bool) -> None:
    m = pod["metadata"]
    cur = api.http("GET", f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}")[1]
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    code, body, _ = api.http("PUT", f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/status",
                             {**cur, "status": status})
    assert code == 200, body


def status_of(api, ns: str, name: str) -> dict:
    return api.http("GET", f"{PDBS.format(ns=ns)}/{name}")[1].get("status") or {}


def settled(api, ns: str, name: str, **want) -> dict:
    """The status once its counts are `want` (and it describes the current generation)."""
    def check():
        st = status_of(api, ns, name)
        return all(st.get(k) == v for k, v in want.items()) and st.get("observedGeneration") and st
    return wait_for(check, 20, f"{name} status {want}")


def condition(st: dict) -> tuple[str, str]:
    c = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    return c["status"], c["reason"]


def test_min_available_counts_healthy_pods(control_plane, controllers, ns):
    api = control_plane
    pods = workload(api, ns, replicas=4, ready=3)
    api.kubectl("-n", ns, "create", "pdb", "web", "--selector=app=web", "--min-available=2")
    st = settled(api, ns, "web", expectedPods=4, desiredHealthy=2, currentHealthy=3, disruptionsAllowed=1)
    assert condition(st) == ("True", "SufficientPods")
    assert st["observedGeneration"] == 1
    out = api.kubectl("-n", ns, "get", "pdb").stdout.splitlines()
    assert out[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert out[1].split()[:4] == ["web", "2", "N/A", "1"]
    # a pod the eviction subresource let go counts as unhealthy while it is being deleted
    cur = api.http("GET", f"{PDBS.format(ns=ns)}/web")[1]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, body, _ = api.http("PUT", f"{PDBS.format(ns=ns)}/web/status", {**cur, "status": {
        **cur["status"], "disruptionsAllowed": 0, "disruptedPods": {"web-0": now}}})
    assert code == 200, body
    st = settled(api, ns, "web", currentHealthy=2, disruptionsAllowed=0)
    assert st["disruptedPods"] == {"web-0": now} and condition(st) == ("False", "InsufficientPods")
    code, _, _ = api.http("DELETE", f"/api/v1/namespaces/{ns}/pods/web-0")
    assert code == 200
    st = settled(api, ns, "web", expectedPods=3, currentHealthy=2, disruptionsAllowed=0)
    assert "disruptedPods" not in st
    set_ready(api, pods[3], True)
    settled(api, ns, "web", currentHealthy=3, disruptionsAllowed=1)


def test_percentages_are_taken_of_the_controllers_scale(control_plane, controllers, ns):
    """The Deployment says 5 replicas while only 4 pods exist: percentages use the 5."""
    api = control_plane
    pods = workload(api, ns, replicas=4, ready=4, deployment=True)
    api.http("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web", {"spec": {"replicas": 5}},
             content_type="application/merge-patch+json")
    create(api, PDBS.format(ns=ns), {"metadata": {"name": "half"}, "spec": {
        "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "web"}}}})
    create(api, PDBS.format(ns=ns), {"metadata": {"name": "most"}, "spec": {
        "minAvailable": "80%", "selector": {"matchLabels": {"app": "web"}}}})
    st = settled(api, ns, "half", expectedPods=5, desiredHealthy=2, currentHealthy=4, disruptionsAllowed=2)
    assert condition(st) == ("True", "SufficientPods")
    st = settled(api, ns, "most", expectedPods=5, desiredHealthy=4, currentHealthy=4, disruptionsAllowed=0)
    assert condition(st) == ("False", "InsufficientPods")
    lines = api.kubectl("-n", ns, "get", "pdb").stdout.splitlines()[1:]
    assert [ln.split()[:4] for ln in lines] == [["half", "N/A", "50%", "2"], ["most", "80%", "N/A", "0"]]
    set_ready(api, pods[0], False)       # a pod event with both budgets in place
    want = f'Pod "{ns}"/"web-0" matches multiple PodDisruptionBudgets.  Chose "half" arbitrarily.'
    wait_for(lambda: want in {e["message"] for e in json.loads(api.kubectl(
        "-n", ns, "get", "events", "-o", "json").stdout)["items"] if e["reason"] == "MultiplePodDisruptionBudgets"},
        20, "MultiplePodDisruptionBudgets")


def test_pods_without_a_scalable_controller(control_plane, controllers, ns):
    api = control_plane
    create(api, f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "lone", "labels": {"app": "solo"}},
                                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    create(api, PDBS.format(ns=ns), {"metadata": {"name": "solo"}, "spec": {
        "maxUnavailable": 1, "selector": {"matchLabels": {"app": "solo"}}}})
    settled(api, ns, "solo", expectedPods=0, disruptionsAllowed=0)
    wait_for(lambda: any(e["reason"] == "UnmanagedPods" for e in json.loads(
        api.kubectl("-n", ns, "get", "events", "-o", "json").stdout)["items"]), 20, "UnmanagedPods event")
    # a pod whose controller cannot be found: the budget fails safe
    create(api, f"/api/v1/namespaces/{ns}/pods", {"metadata": {
        "name": "orphan", "labels": {"app": "solo"}, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "no-such-uid", "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    st = wait_for(lambda: (s := status_of(api, ns, "solo")).get("conditions") and
                  condition(s) == ("False", "SyncFailed") and s, 20, "SyncFailed")
    assert st["disruptionsAllowed"] == 0
    assert next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")["message"] == \
        "found no controllers for pod \"orphan\""


def test_stale_disruption_target_is_cleared(control_plane, controllers, ns):
    """An eviction marked the pod (DisruptionTarget) three minutes ago, yet it was never deleted."""
    api = control_plane
    pod = create(api, f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "kept"},
                                                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    marked = "2026-01-01T00:00:00Z"
    code, body, _ = api.http("PUT", f"/api/v1/namespaces/{ns}/pods/kept/status", {**pod, "status": {
        "phase": "Running", "conditions": [{"type": "DisruptionTarget", "status": "True", "lastTransitionTime": marked,
                                            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}]}})
    assert code == 200, body

    def cond():
        p = api.http("GET", f"/api/v1/namespaces/{ns}/pods/kept")[1]
        return next(c for c in p["status"]["conditions"] if c["type"] == "DisruptionTarget")
    c = wait_for(lambda: (c := cond())["status"] == "False" and c, 20, "DisruptionTarget=False")
    assert c["lastTransitionTime"] > marked and c["reason"] == "EvictionByEvictionAPI"


def test_controller_without_scale_subresource(control_plane, controllers, ns):
    api = control_plane
    create(api, f"/api/v1/namespaces/{ns}/pods", {"metadata": {
        "name": "worker", "labels": {"app": "batch"}, "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-uid", "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    create(api, PDBS.format(ns=ns), {"metadata": {"name": "batch"}, "spec": {
        "minAvailable": "50%", "selector": {"matchLabels": {"app": "batch"}}}})
    st = wait_for(lambda: (s := status_of(api, ns, "batch")).get("conditions") and s, 20, "a status")
    c = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert (c["status"], c["reason"], c["message"]) == ("False", "SyncFailed",
                                                        "jobs.batch does not implement the scale subresource")


def test_evictions_spend_the_budget_the_controller_keeps(control_plane, controllers, ns):
    """The eviction subresource takes one allowed disruption per eviction; the controller gives it
    back as pods come back."""
    api = control_plane
    pods = workload(api, ns, replicas=3, ready=3)
    create(api, PDBS.format(ns=ns), {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    settled(api, ns, "web", currentHealthy=3, disruptionsAllowed=1)

    def evict(name: str) -> tuple[int, dict]:
        code, body, _ = api.http("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", {
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}})
        return code, body
    assert evict("web-0")[0] == 201
    settled(api, ns, "web", expectedPods=2, currentHealthy=2, disruptionsAllowed=0)
    code, body = evict("web-1")
    assert code == 429 and body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    replacement = create(api, f"/api/v1/namespaces/{ns}/pods", {"metadata": {
        "name": "web-3", "labels": {"app": "web"}, "ownerReferences": pods[0]["metadata"]["ownerReferences"]},
        "spec": pods[0]["spec"]})
    set_ready(api, replacement, True)
    settled(api, ns, "web", expectedPods=3, currentHealthy=3, disruptionsAllowed=1)
    assert evict("web-1")[0] == 201

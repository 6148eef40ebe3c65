"""pods/eviction honours PodDisruptionBudgets as upstream's EvictionREST (the budget's status written here
stands in for the disruption controller, so the test sees the apiserver's side alone)."""
from __future__ import annotations

import time

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)

POLICY = "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"


def _pod(cp, ns: str, name: str, labels: dict, phase: str = "Running", ready: bool = True) -> None:
    code, body, _ = cp.http("POST", f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    assert code == 201, body
    body["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    code, body, _ = cp.http("PUT", f"/api/v1/namespaces/{ns}/pods/{name}/status", body)
    assert code == 200, body


def _budget(cp, ns: str, name: str, allowed: int, healthy: int = 2, desired: int = 1, **spec) -> dict:
    code, pdb, _ = cp.http("POST", POLICY.format(ns=ns), {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": desired, **spec}})
    assert code == 201, pdb
    pdb["status"] = {"observedGeneration": pdb["metadata"]["generation"], "disruptionsAllowed": allowed,
                     "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": healthy}
    code, pdb, _ = cp.http("PUT", POLICY.format(ns=ns) + f"/{name}/status", pdb)
    assert code == 200, pdb
    return pdb


def _evict(cp, ns: str, name: str, **query) -> tuple[int, dict]:
    q = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    code, body, _ = cp.http("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction{q}", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}})
    return code, body


def _gone(cp, ns: str, name: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cp.http("GET", f"/api/v1/namespaces/{ns}/pods/{name}")[0] == 404:
            return True
        time.sleep(0.05)
    return False


def test_eviction_takes_an_allowed_disruption_then_answers_429(control_plane, ns):
    cp = control_plane
    for name in ("a", "b"):
        _pod(cp, ns, name, {"app": "web"})
    _budget(cp, ns, "web", allowed=1)

    assert _evict(cp, ns, "a", dryRun="All")[0] == 201
    assert cp.http("GET", f"/api/v1/namespaces/{ns}/pods/a")[0] == 200, "a dry run deletes nothing"
    assert cp.http("GET", POLICY.format(ns=ns) + "/web")[1]["status"]["disruptionsAllowed"] == 1

    code, body = _evict(cp, ns, "a")
    assert (code, body["status"]) == (201, "Success")
    assert _gone(cp, ns, "a")
    status = cp.http("GET", POLICY.format(ns=ns) + "/web")[1]["status"]
    assert status["disruptionsAllowed"] == 0 and "a" in status["disruptedPods"]
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")

    code, body = _evict(cp, ns, "b")
    assert code == 429, body
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget web needs 1 healthy pods and has 2 currently"}]
    assert cp.http("GET", f"/api/v1/namespaces/{ns}/pods/b")[0] == 200


def test_pods_that_cause_no_disruption_are_evicted_without_a_budget_check(control_plane, ns):
    cp = control_plane
    _pod(cp, ns, "pending", {"app": "web"}, phase="Pending")
    _pod(cp, ns, "unready", {"app": "web"}, ready=False)
    _pod(cp, ns, "other", {"app": "db"})
    _budget(cp, ns, "web", allowed=0, healthy=2, desired=2)
    for name in ("pending", "unready", "other"):
        code, body = _evict(cp, ns, name)
        assert code == 201, (name, body)
        assert _gone(cp, ns, name), name


def test_a_budget_not_yet_observed_or_two_budgets_refuse(control_plane, ns):
    cp = control_plane
    _pod(cp, ns, "a", {"app": "web"})
    pdb = _budget(cp, ns, "web", allowed=1)
    pdb["spec"]["minAvailable"] = 0   # a new generation the controller has not seen
    assert cp.http("PUT", POLICY.format(ns=ns) + "/web", pdb)[0] == 200
    code, body = _evict(cp, ns, "a")
    assert code == 429 and body["details"]["retryAfterSeconds"] == 10
    assert body["details"]["causes"][0]["message"] == "The disruption budget web is still being processed by the server."

    _budget(cp, ns, "web2", allowed=1)
    code, body = _evict(cp, ns, "a")
    assert code == 500
    assert body["message"] == "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."


def test_eviction_of_a_missing_pod_or_with_a_wrong_name(control_plane, ns):
    cp = control_plane
    assert _evict(cp, ns, "nope")[0] == 404
    _pod(cp, ns, "a", {"app": "web"})
    code, body, _ = cp.http("POST", f"/api/v1/namespaces/{ns}/pods/a/eviction", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "b"}})
    assert (code, body["message"]) == (400, "name in URL does not match name in Eviction object")


def test_an_evicted_pod_on_a_node_is_marked_and_terminates_gracefully(control_plane, ns):
    cp = control_plane
    code, pod, _ = cp.http("POST", f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]}})
    assert code == 201, pod
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert cp.http("PUT", f"/api/v1/namespaces/{ns}/pods/bound/status", pod)[0] == 200
    assert _evict(cp, ns, "bound")[0] == 201
    pod = cp.http("GET", f"/api/v1/namespaces/{ns}/pods/bound")[1]
    assert pod["metadata"]["deletionTimestamp"] and pod["metadata"]["deletionGracePeriodSeconds"] == 30
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", "EvictionByEvictionAPI", "Eviction API: evicting")

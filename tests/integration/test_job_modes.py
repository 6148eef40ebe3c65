"""The Job controller's Indexed completion mode and podFailurePolicy against a real apiserver. No
kubelet runs: the test finishes pods by writing their status, as a kubelet would report it."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.support.clusters import free_port, wait_for
from tests.support.control_plane import Component

INDEX = "batch.kubernetes.io/job-completion-index"


@pytest.fixture(scope="module")
def controllers(control_plane, tmp_path_factory):
    c = Component(tmp_path_factory.mktemp("cm"), "controllers",
                  ["--kubeconfig", str(control_plane.kubeconfig), "--port", str(free_port()),
                   "--controllers", "job"]).start()
    yield c
    c.stop()


def pods(api, ns: str) -> list[dict]:
    return api.http("GET", f"/api/v1/namespaces/{ns}/pods")[1]["items"]


def job_status(api, ns: str, name: str) -> dict:
    return api.http("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")[1].get("status") or {}


def finish(api, pod: dict, phase: str, exit_code: int, conditions: tuple[str, ...] = ()) -> None:
    """Report the pod terminated now, as its kubelet would."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"phase": phase, "conditions": [{"type": t, "status": "True"} for t in conditions],
              "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                                     "restartCount": 0, "state": {"terminated": {
                                         "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                                         "startedAt": now, "finishedAt": now}}}
                                    for c in pod["spec"]["containers"]]}
    m = pod["metadata"]
    code, body, _ = api.http("PUT", f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/status",
                             {**pod, "status": status})
    assert code == 200, body


def live(api, ns: str, n: int) -> list[dict] | None:
    ps = [p for p in pods(api, ns) if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
    return sorted(ps, key=lambda p: int(p["metadata"]["annotations"].get(INDEX, 0))) if len(ps) == n else None


INDEXED = """apiVersion: batch/v1
kind: Job
metadata:
  name: shards
spec:
  completionMode: Indexed
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
        command: ["sh", "-c", "echo $JOB_COMPLETION_INDEX"]
"""


def test_indexed_job_runs_each_index_once(control_plane, controllers, ns):
    api = control_plane
    api.kubectl("-n", ns, "apply", "-f", "-", input=INDEXED)
    first = wait_for(lambda: live(api, ns, 2), 20, "pods for indexes 0 and 1")
    assert [p["metadata"]["annotations"][INDEX] for p in first] == ["0", "1"]
    for ix, p in enumerate(first):
        assert p["metadata"]["labels"][INDEX] == str(ix)
        assert p["metadata"]["name"].startswith(f"shards-{ix}-")
        assert p["spec"]["hostname"] == f"shards-{ix}"
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.labels['{INDEX}']"}}} in p["spec"]["containers"][0]["env"]
    finish(api, first[1], "Succeeded", 0)
    st = wait_for(lambda: (s := job_status(api, ns, "shards")).get("completedIndexes") == "1" and s, 20,
                  "index 1 completed")
    nxt = wait_for(lambda: live(api, ns, 2), 20, "a pod for index 2")
    assert [p["metadata"]["annotations"][INDEX] for p in nxt] == ["0", "2"]
    # a failed index is retried (it counts against backoffLimit), the others complete
    finish(api, nxt[0], "Failed", 3)
    retry = wait_for(lambda: (ps := live(api, ns, 2)) and ps[0]["metadata"]["uid"] != nxt[0]["metadata"]["uid"]
                     and ps, 40, "index 0 retried after the back-off")
    assert [p["metadata"]["annotations"][INDEX] for p in retry] == ["0", "2"]
    for p in retry:
        finish(api, p, "Succeeded", 0)
    st = wait_for(lambda: (s := job_status(api, ns, "shards")).get("completionTime") and s, 20, "Job complete")
    assert (st["succeeded"], st["failed"], st["completedIndexes"]) == (3, 1, "0-2")
    line = api.kubectl("-n", ns, "get", "job", "shards").stdout.splitlines()[1].split()
    assert line[:3] == ["shards", "Complete", "3/3"]


POLICY = {"rules": [
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


def test_pod_failure_policy_ignores_disruptions_and_fails_on_exit_code(control_plane, controllers, ns):
    api = control_plane
    job = {"metadata": {"name": "strict"}, "spec": {"backoffLimit": 6, "podFailurePolicy": POLICY, "template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}
    code, body, _ = api.http("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)
    assert code == 201, body
    assert body["spec"]["podReplacementPolicy"] == "Failed"
    assert body["spec"]["podFailurePolicy"]["rules"][1]["onPodConditions"][0]["status"] == "True"
    first = wait_for(lambda: live(api, ns, 1), 20, "the first pod")[0]
    finish(api, first, "Failed", 137, ("DisruptionTarget",))        # evicted: not the workload's fault
    second = wait_for(lambda: (ps := live(api, ns, 1)) and ps[0]["metadata"]["uid"] != first["metadata"]["uid"]
                      and ps[0], 20, "a replacement without back-off")
    assert not job_status(api, ns, "strict").get("failed")
    finish(api, second, "Failed", 42)
    st = wait_for(lambda: (s := job_status(api, ns, "strict")).get("conditions") and
                  any(c["type"] == "Failed" for c in s["conditions"]) and s, 20, "Job Failed")
    msg = f"Container main for pod {ns}/{second['metadata']['name']} failed with exit code 42 matching FailJob rule at index 0"
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("FailureTarget", "PodFailurePolicy", msg), ("Failed", "PodFailurePolicy", msg)]
    assert st["failed"] == 1
    assert all(not p["metadata"].get("finalizers") for p in pods(api, ns))
    events = json.loads(api.kubectl("-n", ns, "get", "events", "-o", "json").stdout)["items"]
    assert any(e["reason"] == "PodFailurePolicy" and e["message"] == msg for e in events)


def test_backoff_limit_per_index_and_fail_index(control_plane, controllers, ns):
    """Index 0 fails for good at once (FailIndex), index 1 after its one retry, index 2 succeeds:
    the Job fails with FailedIndexes."""
    api = control_plane
    job = {"metadata": {"name": "per-index"}, "spec": {
        "completionMode": "Indexed", "completions": 3, "parallelism": 3, "backoffLimitPerIndex": 1,
        "podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}}]},
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}
    code, body, _ = api.http("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)
    assert code == 201, body
    assert body["spec"]["backoffLimit"] == 2147483647
    first = wait_for(lambda: live(api, ns, 3), 20, "pods for the 3 indexes")
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] for p in first] == ["0"] * 3
    finish(api, first[0], "Failed", 7)
    finish(api, first[1], "Failed", 1)
    failed_at = datetime.now(timezone.utc)
    finish(api, first[2], "Succeeded", 0)
    st = wait_for(lambda: (s := job_status(api, ns, "per-index")).get("failedIndexes") == "0" and
                  s.get("completedIndexes") == "2" and s, 20, "index 0 failed, index 2 completed")
    retry = wait_for(lambda: live(api, ns, 1), 40, "index 1 retried after the back-off")[0]
    assert retry["metadata"]["annotations"][INDEX] == "1"
    assert retry["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
    created = datetime.fromisoformat(retry["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert (created - failed_at).total_seconds() >= 8       # the index's own 10 s back-off
    finish(api, retry, "Failed", 1)
    st = wait_for(lambda: (s := job_status(api, ns, "per-index")).get("conditions") and
                  any(c["type"] == "Failed" for c in s["conditions"]) and s, 20, "Job Failed")
    assert (st["failedIndexes"], st["completedIndexes"], st["failed"], st["succeeded"]) == ("0,1", "2", 3, 1)
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("FailureTarget", "FailedIndexes", "Job has failed indexes"), ("Failed", "FailedIndexes", "Job has failed indexes")]


def test_success_policy_completes_early(control_plane, controllers, ns):
    """The leader index (0) decides: once it succeeds the Job is complete and the workers go."""
    api = control_plane
    job = {"metadata": {"name": "leader"}, "spec": {
        "completionMode": "Indexed", "completions": 3, "parallelism": 3,
        "successPolicy": {"rules": [{"succeededIndexes": "0"}]},
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}
    code, body, _ = api.http("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)
    assert code == 201, body
    first = wait_for(lambda: live(api, ns, 3), 20, "pods for the 3 indexes")
    finish(api, first[0], "Succeeded", 0)
    st = wait_for(lambda: (s := job_status(api, ns, "leader")).get("completionTime") and s, 20, "Job complete")
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0"),
        ("Complete", "SuccessPolicy", "Matched rules at index 0")]
    assert (st["completedIndexes"], st["succeeded"], st["active"]) == ("0", 1, 0)
    wait_for(lambda: len(pods(api, ns)) == 1, 20, "the other indexes' pods removed")


def test_elastic_indexed_job_scales_down(control_plane, controllers, ns):
    """completions and parallelism shrink together: indexes beyond them lose their pods and stop counting."""
    api = control_plane
    job = {"metadata": {"name": "elastic"}, "spec": {
        "completionMode": "Indexed", "completions": 4, "parallelism": 4,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}
    code, body, _ = api.http("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)
    assert code == 201, body
    first = wait_for(lambda: live(api, ns, 4), 20, "pods for the 4 indexes")
    finish(api, first[3], "Succeeded", 0)
    wait_for(lambda: job_status(api, ns, "elastic").get("completedIndexes") == "3", 20, "index 3 completed")
    code, body, _ = api.http("PATCH", f"/apis/batch/v1/namespaces/{ns}/jobs/elastic",
                             {"spec": {"completions": 2, "parallelism": 2}}, content_type="application/merge-patch+json")
    assert code == 200, body
    left = wait_for(lambda: live(api, ns, 2), 20, "only indexes 0 and 1 left")
    wait_for(lambda: (s := job_status(api, ns, "elastic")).get("succeeded") == 0 and "completedIndexes" not in s,
             20, "index 3 no longer counted")
    assert [p["metadata"]["annotations"][INDEX] for p in left] == ["0", "1"]
    for p in left:
        finish(api, p, "Succeeded", 0)
    st = wait_for(lambda: (s := job_status(api, ns, "elastic")).get("completionTime") and s, 20, "Job complete")
    assert (st["completedIndexes"], st["succeeded"]) == ("0,1", 2)

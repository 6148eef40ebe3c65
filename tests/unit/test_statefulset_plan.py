"""The StatefulSet controller's pure decisions: identity, ordering, scale-down and rolling updates."""
from __future__ import annotations

from controllers.statefulset import (POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL, new_pod, ordinal_of, plan,
                                     revision_patch, revision_template)


NOW = 1_700_000_000.0


def pod(i: int, rev: str = "web-1", ready: bool = True, phase: str = "Running", deleting: bool = False) -> dict:
    meta = {"name": f"web-{i}", "labels": {REVISION_LABEL: rev}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def spec(replicas: int, policy: str = "OrderedReady", strategy: dict | None = None) -> dict:
    return {"replicas": replicas, "podManagementPolicy": policy,
            "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_ordinals_belong_to_their_set_only():
    assert ordinal_of("web", {"metadata": {"name": "web-12"}}) == 12
    assert ordinal_of("web", {"metadata": {"name": "web-x-1"}}) is None
    assert ordinal_of("web-x", {"metadata": {"name": "web-x-1"}}) == 1
    assert ordinal_of("web", {"metadata": {"name": "web"}}) is None


def test_ordered_ready_creates_one_at_a_time():
    assert plan(spec(3), {}, "web-1", NOW).create == [0]
    assert plan(spec(3), {0: pod(0, ready=False)}, "web-1", NOW).create == []
    assert plan(spec(3), {0: pod(0)}, "web-1", NOW).create == [1]


def test_parallel_creates_every_missing_ordinal():
    assert plan(spec(3, "Parallel"), {1: pod(1, ready=False)}, "web-1", NOW).create == [0, 2]


def test_scale_down_from_the_highest_ordinal_one_at_a_time():
    steps = plan(spec(1), {0: pod(0), 1: pod(1), 2: pod(2)}, "web-1", NOW)
    assert names(steps.condemn) == ["web-2"] and not steps.create and not steps.delete
    assert plan(spec(1), {0: pod(0), 1: pod(1), 2: pod(2, deleting=True)}, "web-1", NOW).condemn == []
    parallel = plan(spec(1, "Parallel"), {0: pod(0), 1: pod(1), 2: pod(2)}, "web-1", NOW)
    assert names(parallel.condemn) == ["web-2", "web-1"]


def test_failed_pods_are_replaced():
    assert names(plan(spec(2), {0: pod(0, phase="Failed", ready=False), 1: pod(1)}, "web-1", NOW).delete) == ["web-0"]


def test_rolling_update_goes_down_to_the_partition_one_pod_at_a_time():
    pods = {i: pod(i, rev="web-1") for i in range(3)}
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    assert names(plan(spec(3, strategy=rolling), pods, "web-2", NOW).delete) == ["web-2"]
    pods[2] = pod(2, rev="web-2", ready=False)           # the replacement is not ready yet: wait
    assert plan(spec(3, strategy=rolling), pods, "web-2", NOW).delete == []
    pods[2] = pod(2, rev="web-2")
    assert names(plan(spec(3, strategy=rolling), pods, "web-2", NOW).delete) == ["web-1"]
    pods[1] = pod(1, rev="web-2")
    assert plan(spec(3, strategy=rolling), pods, "web-2", NOW).delete == []   # web-0 is below the partition


def test_max_unavailable_and_on_delete():
    pods = {i: pod(i, rev="web-1") for i in range(4)}
    two = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}
    assert names(plan(spec(4, "Parallel", two), pods, "web-2", NOW).delete) == ["web-3", "web-2"]
    assert plan(spec(4, strategy={"type": "OnDelete"}), pods, "web-2", NOW).delete == []


def test_pod_identity_and_claims():
    sts = {"metadata": {"name": "web", "uid": "u1"}, "spec": {"serviceName": "nginx", "volumeClaimTemplates": [
        {"metadata": {"name": "www"}, "spec": {}}]}}
    tpl = {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}],
                                                              "volumes": [{"name": "www", "emptyDir": {}}]}}
    p = new_pod(sts, tpl, 3, "web-abc")
    assert p["metadata"]["name"] == "web-3"
    assert p["metadata"]["labels"] == {"app": "nginx", POD_NAME_LABEL: "web-3", POD_INDEX_LABEL: "3",
                                       REVISION_LABEL: "web-abc"}
    assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == ("web-3", "nginx")
    assert p["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-3"}}]
    assert p["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert revision_template({"data": revision_patch(tpl)}) == tpl


def test_min_ready_seconds_hold_ordered_creation_until_available():
    fresh = pod(0)
    fresh["status"]["conditions"][0]["lastTransitionTime"] = "2023-11-14T22:13:15Z"   # NOW - 5 s
    assert plan({**spec(2), "minReadySeconds": 10}, {0: fresh}, "web-1", NOW).create == []
    assert plan({**spec(2), "minReadySeconds": 3}, {0: fresh}, "web-1", NOW).create == [1]


def test_ordinals_start():
    five = {**spec(2), "ordinals": {"start": 5}}
    assert plan(five, {}, "web-1", NOW).create == [5]
    assert plan(five, {5: pod(5), 6: pod(6), 0: pod(0)}, "web-1", NOW).condemn == [pod(0)]

"""Where daemon pods go and stay (NodeShouldRunDaemonPod), and the tolerations the DaemonSet
controller gives them (AddOrUpdateDaemonPodTolerations)."""
from controllers.workloads import daemon_pod_tolerations, should_run


def ds(spec: dict | None = None) -> dict:
    return {"spec": {"template": {"spec": {"containers": [{"name": "c"}], **(spec or {})}}}}


def node(*taints: tuple[str, str], labels: dict | None = None) -> dict:
    return {"metadata": {"name": "n1", "labels": labels or {}},
            "spec": {"taints": [{"key": k, "effect": e} for k, e in taints]}}


def test_no_schedule_keeps_new_pods_away_but_lets_a_running_one_stay():
    assert should_run(ds(), node()) == (True, True)
    assert should_run(ds(), node(("dedicated", "NoSchedule"))) == (False, True)
    assert should_run(ds(), node(("dedicated", "PreferNoSchedule"))) == (True, True)
    assert should_run(ds(), node(("dedicated", "NoSchedule"), ("gone", "NoExecute"))) == (False, False)
    tolerant = ds({"tolerations": [{"key": "dedicated", "operator": "Exists"}]})
    assert should_run(tolerant, node(("dedicated", "NoSchedule"))) == (True, True)


def test_the_standard_daemon_tolerations_count_for_placement():
    for taint in ("node.kubernetes.io/unschedulable", "node.kubernetes.io/disk-pressure"):
        assert should_run(ds(), node((taint, "NoSchedule"))) == (True, True)
    assert should_run(ds(), node(("node.kubernetes.io/unreachable", "NoExecute"))) == (True, True)
    net = ("node.kubernetes.io/network-unavailable", "NoSchedule")
    assert should_run(ds(), node(net)) == (False, True)
    assert should_run(ds({"hostNetwork": True}), node(net)) == (True, True)


def test_node_selector_and_name_decide_before_taints():
    assert should_run(ds({"nodeSelector": {"disk": "ssd"}}), node()) == (False, False)
    assert should_run(ds({"nodeSelector": {"disk": "ssd"}}), node(labels={"disk": "ssd"})) == (True, True)
    assert should_run(ds({"nodeName": "other"}), node()) == (False, False)


def test_tolerations_are_added_once_and_replace_a_timed_one():
    timed = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
    own = {"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}
    tols = daemon_pod_tolerations({"tolerations": [own, timed]})
    assert tols[0] == own and tols[1] == {k: v for k, v in timed.items() if k != "tolerationSeconds"}
    assert [(t["key"], t["effect"]) for t in tols[2:]] == [
        ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"), ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule")]
    assert daemon_pod_tolerations({"tolerations": tols}) == tols
    host = daemon_pod_tolerations({"hostNetwork": True})
    assert host[-1] == {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}

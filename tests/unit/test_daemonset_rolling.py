"""DaemonSet rolling update decisions: which old pods go and where new ones start."""
from controllers.workloads import DaemonSetController

rolling = DaemonSetController._rolling


def pod(name: str, rev: str, ready: bool = True) -> dict:
    return {"metadata": {"name": name, "labels": {"controller-revision-hash": rev}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def is_new(p: dict) -> bool:
    return p["metadata"]["labels"]["controller-revision-hash"] == "new"


NODES = {f"n{i}": {} for i in range(4)}


def test_max_unavailable_counts_nodes_without_a_ready_pod():
    by_node = {f"n{i}": [pod(f"p{i}", "old")] for i in range(4)}
    deletes, creates = rolling({"maxUnavailable": 1}, NODES, by_node, is_new)
    assert [p["metadata"]["name"] for p in deletes] == ["p0"] and creates == []
    by_node["n0"] = [pod("q0", "new", ready=False)]
    assert rolling({"maxUnavailable": 1}, NODES, by_node, is_new) == ([], [])
    deletes, _ = rolling({"maxUnavailable": "50%"}, NODES, by_node, is_new)
    assert [p["metadata"]["name"] for p in deletes] == ["p1"]


def test_unready_old_pods_are_replaced_regardless_of_the_budget():
    by_node = {f"n{i}": [pod(f"p{i}", "old", ready=i != 2)] for i in range(4)}
    deletes, _ = rolling({"maxUnavailable": 1}, NODES, by_node, is_new)
    assert [p["metadata"]["name"] for p in deletes] == ["p2"]


def test_max_surge_starts_new_pods_first_and_deletes_old_once_new_is_ready():
    by_node = {f"n{i}": [pod(f"p{i}", "old")] for i in range(4)}
    deletes, creates = rolling({"maxSurge": 2, "maxUnavailable": 0}, NODES, by_node, is_new)
    assert deletes == [] and creates == ["n0", "n1"]
    by_node["n0"].append(pod("q0", "new"))
    by_node["n1"].append(pod("q1", "new", ready=False))
    deletes, creates = rolling({"maxSurge": 2, "maxUnavailable": 0}, NODES, by_node, is_new)
    assert [p["metadata"]["name"] for p in deletes] == ["p0"] and creates == []

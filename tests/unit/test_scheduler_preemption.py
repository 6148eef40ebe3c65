"""Default preemption on hand-made nodes: which node and which victims, and why none."""
import itertools

from scheduler.framework import NodeInfo, schedule
from scheduler.preemption import preempt

_uid = itertools.count()


def node(name, cpu="2"):
    return NodeInfo({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {},
                     "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}, {})


def pod(name, cpu, prio=0, labels=None, **spec):
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"preemption-{next(_uid)}", "resourceVersion": "1",
                         "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}], "priority": prio, **spec}}


def place(ni, *pods):
    for p in pods:
        ni.add(f"ns/{p['metadata']['name']}", p)
    return ni


def run(p, nodes, pdbs=()):
    d = schedule(p, nodes)
    assert d.node is None
    return preempt(p, nodes, d.failed, list(pdbs))


def names(outcome):
    return outcome.candidate.node, sorted(v["metadata"]["name"] for v in outcome.candidate.victims)


def test_fewest_lowest_priority_victims():
    a = place(node("a"), pod("a-low", "1", 1), pod("a-mid", "1", 5))
    b = place(node("b"), pod("b-low1", "500m", 1), pod("b-low2", "500m", 1), pod("b-high", "1", 100))
    assert names(run(pod("new", "1", 10), [a, b])) == ("a", ["a-low"])
    # only one node can make room: there the two small low pods both have to go
    assert names(run(pod("new", "1", 10), [b])) == ("b", ["b-low1", "b-low2"])


def test_pdb_protected_pods_are_spared_when_possible():
    a = place(node("a"), pod("guarded", "2", 1, {"app": "db"}))
    b = place(node("b"), pod("free", "2", 2))
    pdb = {"metadata": {"name": "db", "namespace": "ns"}, "spec": {"selector": {"matchLabels": {"app": "db"}}},
           "status": {"disruptionsAllowed": 0}}
    assert names(run(pod("new", "2", 10), [a, b], [pdb])) == ("b", ["free"])
    assert names(run(pod("new", "2", 10), [a, b])) == ("a", ["guarded"])


def test_no_preemption_messages():
    a = place(node("a"), pod("high", "2", 100))
    out = run(pod("new", "1", 10), [a])
    assert out.candidate is None and out.message == "0/1 nodes are available: 1 No preemption victims found for incoming pod."
    out = run(pod("new", "1", 1000, preemptionPolicy="Never"), [a])
    assert out.message == "not eligible due to preemptionPolicy=Never."
    out = run(pod("new", "1", 1000, nodeSelector={"x": "y"}), [a])
    assert out.message == "0/1 nodes are available: 1 Preemption is not helpful for scheduling."


def test_not_eligible_while_a_victim_on_the_nominated_node_terminates():
    victim = pod("low", "2", 1)
    victim["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    a = place(node("a"), victim)
    p = pod("new", "1", 10)
    p["status"] = {"nominatedNodeName": "a"}
    assert run(p, [a]).message == "not eligible due to a terminating pod on the nominated node."


def test_room_made_for_a_nominated_preemptor_is_kept_for_it():
    a = node("a")
    boss = pod("boss", "1500m", 100)
    nominated = {"a": {"ns/boss": boss}}
    assert schedule(pod("same", "1", 100), [a], nominated=nominated).node is None
    assert schedule(pod("higher", "1", 1000), [a], nominated=nominated).node == "a"
    assert schedule(boss, [a], nominated=nominated).node == "a"

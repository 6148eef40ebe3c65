"""Scheduling decisions of the filter/score tables on hand-made nodes and pods."""
import itertools

from scheduler.framework import NodeInfo, nodes_to_find, pod_requests, schedule


def node(name, cpu="4", memory="8Gi", labels=None, taints=None, unschedulable=False):
    return NodeInfo({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                     "spec": {"taints": taints or [], "unschedulable": unschedulable},
                     "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}, {})


_uid = itertools.count()


def pod(name="p", cpu=None, memory=None, **spec):
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"metadata": {"name": name, "uid": f"uid-{next(_uid)}", "resourceVersion": "1"},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": req}}], **spec}}


def test_requests_and_sampling():
    assert pod_requests(pod(cpu="250m", memory="1Gi")) == {"cpu": 250, "memory": 2**30, "ephemeral-storage": 0}
    assert nodes_to_find(50) == 50 and nodes_to_find(1000) == 420 and nodes_to_find(5000) == 500


def test_filters_and_failure_message():
    nodes = [node("tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
             node("small", cpu="1"), node("small2", cpu="1")]
    d = schedule(pod(cpu="2"), nodes)
    assert d.node is None
    assert d.message.startswith("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                                "2 Insufficient cpu.")   # the example; upstream sorts "count reason"
    tolerating = pod(cpu="2", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                            "effect": "NoSchedule"}])
    assert schedule(tolerating, nodes).node == "tainted"


def test_node_selector_affinity_name_and_unschedulable():
    nodes = [node("a", labels={"disktype": "ssd"}), node("b", labels={"disktype": "hdd"}),
             node("c", unschedulable=True)]
    assert schedule(pod(nodeSelector={"disktype": "hdd"}), nodes).node == "b"
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}]}]}}}
    assert schedule(pod(affinity=aff), nodes).node == "a"
    assert schedule(pod(nodeName="b"), nodes).node == "b"
    d = schedule(pod(nodeSelector={"disktype": "nvme"}), nodes)
    assert "1 node(s) were unschedulable" in d.message and "2 node(s) didn't match Pod's node affinity/selector" in d.message


def test_least_allocated_prefers_emptier_node_and_assumed_pods_count():
    busy, idle = node("busy"), node("idle")
    busy.add("x/y", pod("y", cpu="3"))
    assert schedule(pod(cpu="500m"), [busy, idle]).node == "idle"
    idle.add("x/z", pod("z", cpu="3500m"))
    assert schedule(pod(cpu="800m"), [busy, idle]).node == "busy"
    assert schedule(pod(cpu="1100m"), [busy, idle]).node is None


def test_host_ports_conflict():
    a, b = node("a"), node("b")
    a.add("x/web", {"metadata": {"name": "web", "uid": "web"}, "spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}})
    p = {"metadata": {"name": "q", "uid": "q"}, "spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}
    assert schedule(p, [a, b]).node == "b"


def test_pod_anti_affinity_and_topology_spread():
    a, b, c = node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}), node("c", labels={"zone": "z2"})
    web = {"metadata": {"name": "w0", "uid": "w0", "namespace": "d", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c"}]}}
    a.add("d/w0", web)
    anti = pod(affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}})
    anti["metadata"].update(namespace="d", labels={"app": "web"})
    d = schedule(anti, [a])
    assert d.node is None and "didn't match pod anti-affinity rules" in d.message
    assert schedule(anti, [a, b, c]).node in ("b", "c")
    spread = pod(topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                             "labelSelector": {"matchLabels": {"app": "web"}}}])
    spread["metadata"].update(namespace="d", labels={"app": "web"})
    b.add("d/w1", {**web, "metadata": {**web["metadata"], "name": "w1", "uid": "w1"}})
    assert schedule(spread, [a, b, c]).node == "c"      # z1 has 2, z2 has 0: only z2 keeps skew <= 1


def test_existing_pods_anti_affinity_is_symmetric():
    """A placed pod whose required anti-affinity selects the newcomer keeps it off its node (and
    zone, for a zone term), though the newcomer itself has no affinity."""
    a, b, c = node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}), node("c", labels={"zone": "z2"})
    loner = pod(affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "noisy"}}, "topologyKey": "zone"}]}})
    loner["metadata"].update(name="loner", uid="loner", namespace="d")
    a.add("d/loner", loner)
    noisy = pod()
    noisy["metadata"].update(namespace="d", labels={"app": "noisy"})
    assert schedule(noisy, [a, b, c]).node == "c"
    d = schedule(noisy, [a, b])
    assert d.node is None and "2 node(s) didn't satisfy existing pods anti-affinity rules" in d.message
    other_ns = pod()
    other_ns["metadata"].update(namespace="e", labels={"app": "noisy"})
    assert schedule(other_ns, [a, b]).node in ("a", "b")
    a.remove("d/loner")
    assert not a.anti and schedule(noisy, [a, b]).node in ("a", "b")


def test_preferred_pod_affinity_and_anti_affinity_scores():
    a, b = node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})
    cache = {"metadata": {"name": "cache", "uid": "cache", "namespace": "d", "labels": {"app": "cache"}},
             "spec": {"containers": [{"name": "c"}]}}
    b.add("d/cache", cache)
    near = pod(affinity={"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}}]}})
    near["metadata"]["namespace"] = "d"
    assert schedule(near, [a, b]).node == "b"
    far = pod(affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}})
    far["metadata"]["namespace"] = "d"
    assert schedule(far, [b, a]).node == "a"


def test_schedule_anyway_spread_prefers_the_emptier_domain():
    a, b, c = node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}), node("c", labels={"zone": "z2"})
    web = {"metadata": {"name": "w0", "uid": "w0", "namespace": "d", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c"}]}}
    a.add("d/w0", web)
    soft = pod(topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                                           "labelSelector": {"matchLabels": {"app": "web"}}}])
    soft["metadata"].update(namespace="d", labels={"app": "web"})
    assert schedule(soft, [a, b, c]).node == "c"
    assert schedule(soft, [a, b]).node == "a" or schedule(soft, [a, b]).node == "b"   # soft: never unschedulable

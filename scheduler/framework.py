"""Scheduling decisions: filters and scores as tables of small functions over a NodeInfo view.

Pure logic (no I/O) so it is unit-testable; the scheduler process feeds it from informers.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from kubeling.api import quantity

RESOURCES = ("cpu", "memory", "ephemeral-storage")


def pod_requests(pod: dict) -> dict[str, int]:
    """Effective requests: sum of containers, at least the largest init container (cpu in millicores)."""
    spec = pod.get("spec") or {}

    def req(c: dict) -> dict[str, int]:
        r = (c.get("resources") or {}).get("requests") or {}
        return {"cpu": quantity.milli(r.get("cpu")), "memory": quantity.value(r.get("memory")),
                "ephemeral-storage": quantity.value(r.get("ephemeral-storage"))}
    total = Counter()
    for c in spec.get("containers") or []:
        total.update(req(c))
    for c in spec.get("initContainers") or []:
        for k, v in req(c).items():
            total[k] = max(total[k], v)
    return {k: total.get(k, 0) for k in RESOURCES}


def node_allocatable(node: dict) -> dict[str, int]:
    st = node.get("status") or {}
    a = st.get("allocatable") or st.get("capacity") or {}
    return {"cpu": quantity.milli(a.get("cpu")), "memory": quantity.value(a.get("memory")),
            "ephemeral-storage": quantity.value(a.get("ephemeral-storage")) if a.get("ephemeral-storage") else 0,
            "pods": quantity.value(a.get("pods")) if a.get("pods") else 110}


@dataclass
class NodeInfo:
    node: dict
    allocatable: dict[str, int]
    requested: Counter = field(default_factory=Counter)
    pods: dict[str, dict] = field(default_factory=dict)      # key -> pod
    host_ports: set[tuple[str, int]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    def add(self, key: str, pod: dict) -> None:
        if key in self.pods:
            self.remove(key)
        self.pods[key] = pod
        self.requested.update(pod_requests(pod))
        self.host_ports |= set(_host_ports(pod))

    def remove(self, key: str) -> None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return
        self.requested.subtract(pod_requests(pod))
        self.host_ports = set()
        for p in self.pods.values():
            self.host_ports |= set(_host_ports(p))


def _host_ports(pod: dict) -> list[tuple[str, int]]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append((p.get("protocol", "TCP"), p["hostPort"]))
    return out


# ---- filters: return None when the node fits, else the reason counted in the failure message ----

def f_node_name(pod: dict, ni: NodeInfo) -> str | None:
    want = (pod.get("spec") or {}).get("nodeName")
    return None if not want or want == ni.name else "node(s) didn't match the requested node name"


def _tolerates(tols: list[dict], taint: dict) -> bool:
    for t in tols:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def f_unschedulable(pod: dict, ni: NodeInfo) -> str | None:
    if not (ni.node.get("spec") or {}).get("unschedulable"):
        return None
    tols = (pod.get("spec") or {}).get("tolerations") or []
    if _tolerates(tols, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
        return None
    return "node(s) were unschedulable"


def _match_expr(labels: dict, e: dict) -> bool:
    op, key, vals = e.get("operator"), e.get("key"), e.get("values") or []
    if op == "In":
        return key in labels and labels[key] in vals
    if op == "NotIn":
        return key not in labels or labels[key] not in vals
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    try:
        if op == "Gt":
            return key in labels and int(labels[key]) > int(vals[0])
        if op == "Lt":
            return key in labels and int(labels[key]) < int(vals[0])
    except (ValueError, IndexError):
        return False
    return False


def _term_matches(node: dict, term: dict) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return all(_match_expr(labels, e) for e in term.get("matchExpressions") or []) and \
        all(_match_expr(fields, e) for e in term.get("matchFields") or [])


def f_node_affinity(pod: dict, ni: NodeInfo) -> str | None:
    spec = pod.get("spec") or {}
    labels = ni.node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return "node(s) didn't match Pod's node affinity/selector"
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms")
    if terms and not any(_term_matches(ni.node, t) for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def f_taints(pod: dict, ni: NodeInfo) -> str | None:
    tols = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (ni.node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tols, taint):
            val = f": {taint['value']}" if taint.get("value") else ""
            return f"node(s) had untolerated taint {{{taint.get('key')}{val}}}"
    return None


def f_resources(pod: dict, ni: NodeInfo) -> str | None:
    if len(ni.pods) + 1 > ni.allocatable["pods"]:
        return "Too many pods"
    req = pod_requests(pod)
    for r in RESOURCES:
        if req[r] and ni.allocatable.get(r, 0) and req[r] + ni.requested[r] > ni.allocatable[r]:
            return f"Insufficient {r}"
        if req[r] and not ni.allocatable.get(r, 0) and r != "ephemeral-storage":
            return f"Insufficient {r}"
    return None


def f_ports(pod: dict, ni: NodeInfo) -> str | None:
    if any(p in ni.host_ports for p in _host_ports(pod)):
        return "node(s) didn't have free ports for the requested pod ports"
    return None


FILTERS: list[tuple[str, Callable[[dict, NodeInfo], str | None]]] = [
    ("NodeUnschedulable", f_unschedulable), ("NodeName", f_node_name), ("TaintToleration", f_taints),
    ("NodeAffinity", f_node_affinity), ("NodePorts", f_ports), ("NodeResourcesFit", f_resources),
]


# ---- scores (0..100 each) -------------------------------------------------------------------------

def s_least_allocated(pod: dict, ni: NodeInfo) -> float:
    req = pod_requests(pod)
    scores = []
    for r, default in (("cpu", 100), ("memory", 200 * 2**20)):
        alloc = ni.allocatable.get(r, 0)
        if not alloc:
            continue
        used = ni.requested[r] + (req[r] or default)
        scores.append(max(0.0, (alloc - used) * 100 / alloc))
    return sum(scores) / len(scores) if scores else 0


def s_balanced(pod: dict, ni: NodeInfo) -> float:
    req = pod_requests(pod)
    fr = [(ni.requested[r] + req[r]) / ni.allocatable[r] for r in ("cpu", "memory") if ni.allocatable.get(r)]
    if len(fr) < 2:
        return 100
    return (1 - abs(fr[0] - fr[1]) / 2) * 100


def s_prefer_no_schedule(pod: dict, ni: NodeInfo) -> float:
    tols = (pod.get("spec") or {}).get("tolerations") or []
    bad = sum(1 for t in (ni.node.get("spec") or {}).get("taints") or []
              if t.get("effect") == "PreferNoSchedule" and not _tolerates(tols, t))
    return max(0, 100 - 25 * bad)


def s_preferred_affinity(pod: dict, ni: NodeInfo) -> float:
    prefs = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
             .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    if not prefs:
        return 0
    total = sum(p.get("weight", 0) for p in prefs)
    got = sum(p.get("weight", 0) for p in prefs if _term_matches(ni.node, p.get("preference") or {}))
    return got * 100 / total if total else 0


def _owner(pod: dict) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def s_spread(pod: dict, ni: NodeInfo) -> float:
    owner = _owner(pod)
    if owner is None:
        return 0
    same = sum(1 for p in ni.pods.values() if _owner(p) == owner)
    return 100 / (1 + same)


SCORES: list[tuple[str, Callable[[dict, NodeInfo], float], int]] = [
    ("NodeResourcesFit", s_least_allocated, 1), ("NodeResourcesBalancedAllocation", s_balanced, 1),
    ("TaintToleration", s_prefer_no_schedule, 3), ("NodeAffinity", s_preferred_affinity, 2),
    ("SelectorSpread", s_spread, 2),
]


def nodes_to_find(n: int) -> int:
    """Upstream's adaptive percentageOfNodesToScore: stop filtering once this many nodes fit."""
    if n < 100:
        return n
    pct = max(5, 50 - n // 125)
    return max(100, n * pct // 100)


@dataclass
class Decision:
    node: str | None
    message: str = ""


def schedule(pod: dict, nodes: list[NodeInfo], start: int = 0) -> Decision:
    """Pick a node for pod or explain why none fits (Kubernetes' FailedScheduling message)."""
    if not nodes:
        return Decision(None, "no nodes available to schedule pods")
    want = nodes_to_find(len(nodes))
    feasible: list[NodeInfo] = []
    reasons: Counter = Counter()
    n = len(nodes)
    for i in range(n):
        ni = nodes[(start + i) % n]
        for _, f in FILTERS:
            why = f(pod, ni)
            if why:
                reasons[why] += 1
                break
        else:
            feasible.append(ni)
            if len(feasible) >= want:
                break
    if not feasible:
        parts = ", ".join(f"{c} {r}" for r, c in sorted(reasons.items(), key=lambda x: x[0]))
        return Decision(None, f"0/{n} nodes are available: {parts}. preemption: 0/{n} nodes are available: "
                              f"{n} Preemption is not helpful for scheduling.")
    best, best_score = feasible[0], -1.0
    for ni in feasible:
        score = sum(w * fn(pod, ni) for _, fn, w in SCORES)
        if score > best_score:
            best, best_score = ni, score
    return Decision(best.name)

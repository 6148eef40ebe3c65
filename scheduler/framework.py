"""Scheduling decisions: filters and scores as tables of small functions over a NodeInfo view.

Pure logic (no I/O) so it is unit-testable; the scheduler process feeds it from informers.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from kubeling.api import quantity
from kubeling.api.scheduling import term_matches, tolerates
from kubeling.api.selectors import selector_from_object

RESOURCES = ("cpu", "memory", "ephemeral-storage")


_REQ_CACHE: dict[tuple, dict[str, int]] = {}


def pod_requests(pod: dict) -> dict[str, int]:
    """Effective requests: sum of containers, at least the largest init container (cpu in millicores).
    Memoized per pod version: filters ask for every node they look at."""
    meta = pod.get("metadata") or {}
    key = (meta.get("uid"), meta.get("resourceVersion"))
    hit = _REQ_CACHE.get(key) if key[0] else None
    if hit is not None:
        return hit
    out = _pod_requests(pod)
    if key[0]:
        if len(_REQ_CACHE) > 100_000:
            _REQ_CACHE.clear()
        _REQ_CACHE[key] = out
    return out


def _pod_requests(pod: dict) -> dict[str, int]:
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
    host_ports: Counter = field(default_factory=Counter)      # (protocol, port) -> pods using it
    owners: Counter = field(default_factory=Counter)         # controller uid -> pods here
    anti: dict[str, dict] = field(default_factory=dict)      # pods here with required anti-affinity
    taints: list[dict] = field(default_factory=list)
    unschedulable: bool = False

    def __post_init__(self) -> None:
        self.set_node(self.node)

    def set_node(self, node: dict) -> None:
        self.node = node
        self.allocatable = node_allocatable(node)
        spec = node.get("spec") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    def add(self, key: str, pod: dict) -> None:
        if key in self.pods:
            self.remove(key)
        self.pods[key] = pod
        self.requested.update(pod_requests(pod))
        self.host_ports.update(_host_ports(pod))
        self.owners[_owner(pod)] += 1
        if _anti_terms(pod):
            self.anti[key] = pod

    def remove(self, key: str) -> None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return
        self.requested.subtract(pod_requests(pod))
        self.owners[_owner(pod)] -= 1
        self.host_ports.subtract(_host_ports(pod))
        self.anti.pop(key, None)
        self.host_ports += Counter()   # drop ports no pod uses any more


def _anti_terms(pod: dict) -> list[dict]:
    return ((((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {})
            .get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def _host_ports(pod: dict) -> list[tuple[str, int]]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append((p.get("protocol", "TCP"), p["hostPort"]))
    return out


# ---- filters: return None when the node fits, else the reason counted in the failure message ----

def f_node_name(pod: dict, req: dict[str, int], ni: NodeInfo) -> str | None:
    want = (pod.get("spec") or {}).get("nodeName")
    return None if not want or want == ni.name else "node(s) didn't match the requested node name"


def f_unschedulable(pod: dict, req: dict[str, int], ni: NodeInfo) -> str | None:
    if not ni.unschedulable:
        return None
    tols = (pod.get("spec") or {}).get("tolerations") or []
    if tolerates(tols, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
        return None
    return "node(s) were unschedulable"


def f_node_affinity(pod: dict, req: dict[str, int], ni: NodeInfo) -> str | None:
    spec = pod.get("spec") or {}
    if not spec.get("nodeSelector") and not spec.get("affinity"):
        return None
    labels = ni.node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return "node(s) didn't match Pod's node affinity/selector"
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms")
    if terms and not any(term_matches(ni.node, t) for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def f_taints(pod: dict, req: dict[str, int], ni: NodeInfo) -> str | None:
    taints = ni.taints
    if not taints:
        return None
    tols = (pod.get("spec") or {}).get("tolerations") or []
    for taint in taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tols, taint):
            val = f": {taint['value']}" if taint.get("value") else ""
            return f"node(s) had untolerated taint {{{taint.get('key')}{val}}}"
    return None


def f_resources(pod: dict, req: dict[str, int], ni: NodeInfo) -> str | None:
    if len(ni.pods) + 1 > ni.allocatable["pods"]:
        return "Too many pods"
    for r in RESOURCES:
        if req[r] and ni.allocatable.get(r, 0) and req[r] + ni.requested[r] > ni.allocatable[r]:
            return f"Insufficient {r}"
        if req[r] and not ni.allocatable.get(r, 0) and r != "ephemeral-storage":
            return f"Insufficient {r}"
    return None


def f_ports(pod: dict, req: dict[str, int], ni: NodeInfo) -> str | None:
    if not ni.host_ports:
        return None
    if any(p in ni.host_ports for p in _host_ports(pod)):
        return "node(s) didn't have free ports for the requested pod ports"
    return None


def _always(pod: dict) -> bool:
    return True


# (plugin, filter, does it apply to this pod at all?) - skipping filters that cannot fail keeps a
# scheduling cycle over hundreds of nodes cheap
FILTERS: list[tuple[str, Callable[[dict, dict, NodeInfo], str | None], Callable[[dict], bool]]] = [
    ("NodeUnschedulable", f_unschedulable, _always),
    ("NodeName", f_node_name, lambda pod: bool((pod.get("spec") or {}).get("nodeName"))),
    ("TaintToleration", f_taints, _always),
    ("NodeAffinity", f_node_affinity, lambda pod: bool((pod.get("spec") or {}).get("nodeSelector")
                                                     or (pod.get("spec") or {}).get("affinity"))),
    ("NodePorts", f_ports, lambda pod: bool(_host_ports(pod))),
    ("NodeResourcesFit", f_resources, _always),
]


# ---- scores (0..100 each) -------------------------------------------------------------------------

def s_prefer_no_schedule(pod: dict, ni: NodeInfo) -> float:
    if not ni.taints:
        return 100
    tols = (pod.get("spec") or {}).get("tolerations") or []
    bad = sum(1 for t in (ni.node.get("spec") or {}).get("taints") or []
              if t.get("effect") == "PreferNoSchedule" and not tolerates(tols, t))
    return max(0, 100 - 25 * bad)


def s_preferred_affinity(pod: dict, ni: NodeInfo) -> float:
    if not (pod.get("spec") or {}).get("affinity"):
        return 0
    prefs = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
             .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    if not prefs:
        return 0
    total = sum(p.get("weight", 0) for p in prefs)
    got = sum(p.get("weight", 0) for p in prefs if term_matches(ni.node, p.get("preference") or {}))
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
    return 100 / (1 + ni.owners[owner])


def resource_score(req: dict[str, int], ni: NodeInfo) -> float:
    """LeastAllocated + BalancedAllocation on cpu and memory, fused: it runs for every feasible node."""
    a, r = ni.allocatable, ni.requested
    ac, am = a["cpu"], a["memory"]
    if not ac or not am:
        return 0.0
    uc = r["cpu"] + (req["cpu"] or 100)
    um = r["memory"] + (req["memory"] or 200 * 2**20)
    least = (max(0.0, (ac - uc) * 100 / ac) + max(0.0, (am - um) * 100 / am)) / 2
    fc, fm = (r["cpu"] + req["cpu"]) / ac, (r["memory"] + req["memory"]) / am
    return least + (1 - abs(fc - fm) / 2) * 100


# (plugin, score function, weight, applies to the pod?) - the resource scores are fused above
SCORES: list[tuple[str, Callable[[dict, NodeInfo], float], int, Callable[[dict], bool]]] = [
    ("TaintToleration", s_prefer_no_schedule, 3, _always),
    ("NodeAffinity", s_preferred_affinity, 2, lambda pod: bool((pod.get("spec") or {}).get("affinity"))),
    ("SelectorSpread", s_spread, 2, lambda pod: _owner(pod) is not None),
]


def nodes_to_find(n: int) -> int:
    """Upstream's adaptive percentageOfNodesToScore: stop filtering once this many nodes fit."""
    if n < 100:
        return n
    pct = max(5, 50 - n // 125)
    return max(100, n * pct // 100)


def _matching(nodes: list[NodeInfo], pod: dict, selector: dict | None, namespaces: list[str] | None) -> \
        list[tuple[NodeInfo, int]]:
    """(node, number of its pods matching selector in the namespaces)."""
    sel = selector_from_object(selector or {})
    nss = set(namespaces or [pod["metadata"].get("namespace")])
    out = []
    for ni in nodes:
        n = sum(1 for p in ni.pods.values() if p["metadata"].get("namespace") in nss
                and sel.matches(p["metadata"].get("labels")))
        out.append((ni, n))
    return out


def _label(ni: NodeInfo, key: str) -> str | None:
    return (ni.node["metadata"].get("labels") or {}).get(key)


def inter_pod_filters(pod: dict, nodes: list[NodeInfo]) -> list[Callable[[dict, dict, NodeInfo], str | None]]:
    """InterPodAffinity (required affinity and anti-affinity) and PodTopologySpread (DoNotSchedule),
    pre-computed over all nodes once per pod."""
    spec = pod.get("spec") or {}
    aff = spec.get("affinity") or {}
    out: list[Callable[[dict, dict, NodeInfo], str | None]] = []
    for kind in ("podAntiAffinity", "podAffinity"):
        for term in (aff.get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []:
            key = term.get("topologyKey", "kubernetes.io/hostname")
            counts = _matching(nodes, pod, term.get("labelSelector"), term.get("namespaces"))
            domains = {_label(ni, key) for ni, n in counts if n and _label(ni, key) is not None}
            if kind == "podAntiAffinity":
                out.append(lambda p, r, ni, d=domains, k=key: "node(s) didn't match pod anti-affinity rules"
                           if _label(ni, k) in d else None)
            else:
                self_match = selector_from_object(term.get("labelSelector") or {}).matches(pod["metadata"].get("labels"))
                if not domains and self_match:
                    continue   # the first pod of a group that selects itself may go anywhere
                out.append(lambda p, r, ni, d=domains, k=key: None if _label(ni, k) in d
                           else "node(s) didn't match pod affinity rules")
    for c in spec.get("topologySpreadConstraints") or []:
        if c.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        key, skew = c.get("topologyKey", ""), c.get("maxSkew", 1)
        per: dict[str, int] = {}
        for ni, n in _matching(nodes, pod, c.get("labelSelector"), None):
            v = _label(ni, key)
            if v is not None and f_node_affinity(pod, {}, ni) is None:
                per[v] = per.get(v, 0) + n
        if not per:
            continue
        low = min(per.values())
        out.append(lambda p, r, ni, per=per, low=low, k=key, s=skew:
                   None if _label(ni, k) in per and per[_label(ni, k)] + 1 - low <= s
                   else "node(s) didn't match pod topology spread constraints")
    return out


def existing_anti_affinity(pod: dict, nodes: list[NodeInfo]) -> Callable[[dict, dict, NodeInfo], str | None] | None:
    """The symmetric half of InterPodAffinity: pods already placed whose required anti-affinity
    selects this pod keep it out of their topology domain."""
    labels, ns = pod["metadata"].get("labels") or {}, pod["metadata"].get("namespace")
    forbidden: set[tuple[str, str]] = set()
    for ni in nodes:
        for other in ni.anti.values():
            for term in _anti_terms(other):
                key = term.get("topologyKey", "kubernetes.io/hostname")
                value = _label(ni, key)
                if value is None or ns not in (term.get("namespaces") or [other["metadata"].get("namespace")]):
                    continue
                if selector_from_object(term.get("labelSelector") or {}).matches(labels):
                    forbidden.add((key, value))
    if not forbidden:
        return None
    return lambda p, r, ni: "node(s) didn't satisfy existing pods anti-affinity rules" \
        if any(_label(ni, k) == v for k, v in forbidden) else None


INTER_POD_AFFINITY_WEIGHT = 2


def _domain_counts(nodes: list[NodeInfo], pod: dict, selector: dict | None, namespaces: list[str] | None,
                   key: str) -> Counter:
    """Matching pods per topology domain (value of `key`) over nodes that have the label."""
    out: Counter = Counter()
    for ni, n in _matching(nodes, pod, selector, namespaces):
        if _label(ni, key) is not None:
            out[_label(ni, key)] += n
    return out


def preferred_pod_affinity(pod: dict, nodes: list[NodeInfo], feasible: list[NodeInfo]) -> dict[str, float]:
    """InterPodAffinity scoring of the pod's preferred terms: + weight per matching pod in the
    node's topology domain (affinity), - weight (anti-affinity), normalized to 0..100 over the
    feasible nodes as upstream does."""
    aff = (pod.get("spec") or {}).get("affinity") or {}
    terms = [(w, t) for kind, sign in (("podAffinity", 1), ("podAntiAffinity", -1))
             for w, t in ((sign * p.get("weight", 0), p.get("podAffinityTerm") or {})
                          for p in (aff.get(kind) or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or [])]
    if not terms:
        return {}
    raw = {ni.name: 0.0 for ni in feasible}
    for weight, term in terms:
        key = term.get("topologyKey", "kubernetes.io/hostname")
        per_domain = _domain_counts(nodes, pod, term.get("labelSelector"), term.get("namespaces"), key)
        for ni in feasible:
            raw[ni.name] += weight * per_domain.get(_label(ni, key), 0)
    lo, hi = min(raw.values()), max(raw.values())
    if hi == lo:
        return {name: 0.0 for name in raw}
    return {name: (v - lo) * 100 / (hi - lo) for name, v in raw.items()}


TOPOLOGY_SPREAD_WEIGHT = 2


def soft_topology_spread(pod: dict, nodes: list[NodeInfo], feasible: list[NodeInfo]) -> dict[str, float]:
    """PodTopologySpread scoring of ScheduleAnyway constraints: fewer matching pods in the node's
    domain scores higher; each constraint weighs log(domains + 2); normalized to 0..100."""
    soft = [c for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or []
            if c.get("whenUnsatisfiable") == "ScheduleAnyway"]
    if not soft:
        return {}
    raw = {ni.name: 0.0 for ni in feasible}
    for c in soft:
        key = c.get("topologyKey", "")
        per_domain = _domain_counts(nodes, pod, c.get("labelSelector"), None, key)
        weight = math.log(len(per_domain) + 2)
        for ni in feasible:
            raw[ni.name] += weight * per_domain.get(_label(ni, key), 0)
    lo, hi = min(raw.values()), max(raw.values())
    if hi == 0:
        return {name: 100.0 for name in raw}
    return {name: 100 * (hi + lo - v) / hi for name, v in raw.items()}


@dataclass
class Decision:
    node: str | None
    message: str = ""
    fit_error: str = ""                                       # "0/N nodes are available: ...", before "preemption:"
    failed: dict[str, str] = field(default_factory=dict)      # node -> the filter reason that rejected it


def with_nominated(pod: dict, nodes: list[NodeInfo], nominated: dict[str, dict[str, dict]]) -> list[NodeInfo]:
    """Nodes as if the pods nominated to them (preemptors waiting for their victims to go) at no lower
    priority than pod were already there, so that pod cannot take the room made for them
    (upstream's addNominatedPods)."""
    mine = (pod.get("spec") or {}).get("priority") or 0
    uid = pod["metadata"].get("uid")
    out = []
    for ni in nodes:
        extra = {k: p for k, p in nominated.get(ni.name, {}).items()
                 if p["metadata"].get("uid") != uid and ((p.get("spec") or {}).get("priority") or 0) >= mine}
        if extra:
            copy = NodeInfo(ni.node, ni.allocatable)
            for k, p in [*ni.pods.items(), *extra.items()]:
                copy.add(k, p)
            ni = copy
        out.append(ni)
    return out


def schedule(pod: dict, nodes: list[NodeInfo], start: int = 0,
             nominated: dict[str, dict[str, dict]] | None = None) -> Decision:
    """Pick a node for pod or explain why none fits (Kubernetes' FailedScheduling message)."""
    if not nodes:
        return Decision(None, "no nodes available to schedule pods")
    if nominated:
        nodes = with_nominated(pod, nodes, nominated)
    want = nodes_to_find(len(nodes))
    filters = [f for _, f, applies in FILTERS if applies(pod)]
    spec = pod.get("spec") or {}
    if spec.get("topologySpreadConstraints") or any(k in (spec.get("affinity") or {})
                                                   for k in ("podAffinity", "podAntiAffinity")):
        filters += inter_pod_filters(pod, nodes)
    if any(ni.anti for ni in nodes) and (symmetric := existing_anti_affinity(pod, nodes)) is not None:
        filters.append(symmetric)
    req = pod_requests(pod)
    feasible: list[NodeInfo] = []
    reasons: Counter = Counter()
    failed: dict[str, str] = {}
    n = len(nodes)
    for i in range(n):
        ni = nodes[(start + i) % n]
        for f in filters:
            why = f(pod, req, ni)
            if why:
                reasons[why] += 1
                failed[ni.name] = why
                break
        else:
            feasible.append(ni)
            if len(feasible) >= want:
                break
    if not feasible:
        parts = ", ".join(sorted(f"{c} {r}" for r, c in reasons.items()))   # upstream sorts these strings
        fit_error = f"0/{n} nodes are available: {parts}."
        return Decision(None, f"{fit_error} preemption: 0/{n} nodes are available: "
                              f"{n} Preemption is not helpful for scheduling.", fit_error, failed)
    extra = [(fn, w) for _, fn, w, applies in SCORES if applies(pod)]
    bonus: Counter = Counter()     # normalized scores computed over all feasible nodes at once
    for fn, w in ((preferred_pod_affinity, INTER_POD_AFFINITY_WEIGHT), (soft_topology_spread, TOPOLOGY_SPREAD_WEIGHT)):
        for name, v in fn(pod, nodes, feasible).items():
            bonus[name] += w * v
    best, best_score = feasible[0], -1.0
    for ni in feasible:
        score = resource_score(req, ni) + (bonus[ni.name] if bonus else 0.0)
        for fn, w in extra:
            score += w * fn(pod, ni) if ni.taints or fn is not s_prefer_no_schedule else 300
        if score > best_score:
            best, best_score = ni, score
    return Decision(best.name)

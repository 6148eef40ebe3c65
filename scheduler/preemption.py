"""Default preemption (upstream's DefaultPreemption PostFilter): when a pod fits no node, find the node
where evicting the fewest, least important lower-priority pods makes it fit, sparing pods a
PodDisruptionBudget protects whenever possible. Pure logic; the scheduler carries out the result."""
from __future__ import annotations

from dataclasses import dataclass

from kubeling.api.selectors import selector_from_object

from .framework import FILTERS, NodeInfo, pod_requests

# filter reasons preemption cannot fix (upstream: UnschedulableAndUnresolvable statuses)
UNRESOLVABLE = ("node(s) didn't match the requested node name", "node(s) didn't match Pod's node affinity/selector",
                "node(s) had untolerated taint", "node(s) were unschedulable", "node(s) didn't match pod affinity rules")


def priority(pod: dict) -> int:
    return (pod.get("spec") or {}).get("priority") or 0


@dataclass
class Candidate:
    node: str
    victims: list[dict]
    pdb_violations: int


@dataclass
class Outcome:
    candidate: Candidate | None
    message: str    # upstream's PostFilter message ("" when a candidate was found)


def eligible(pod: dict, nodes: dict[str, NodeInfo]) -> str | None:
    """PodEligibleToPreemptOthers: None when it may preempt, else why not."""
    spec = pod.get("spec") or {}
    if spec.get("preemptionPolicy") == "Never":
        return "not eligible due to preemptionPolicy=Never."
    nominated = (pod.get("status") or {}).get("nominatedNodeName")
    ni = nodes.get(nominated or "")
    if ni is not None and any(p["metadata"].get("deletionTimestamp") and priority(p) < priority(pod)
                              for p in ni.pods.values()):
        return "not eligible due to a terminating pod on the nominated node."
    return None


def _fits(pod: dict, ni: NodeInfo) -> bool:
    req = pod_requests(pod)
    return all(f(pod, req, ni) is None for _, f, applies in FILTERS if applies(pod))


def _violates(pods: list[dict], pdbs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(pods whose eviction would break a PodDisruptionBudget, the others), in the given order."""
    allowed = {id(b): ((b.get("status") or {}).get("disruptionsAllowed") or 0) for b in pdbs}
    bad, ok = [], []
    for p in pods:
        meta = p["metadata"]
        hit = False
        for b in pdbs:
            sel = (b.get("spec") or {}).get("selector")
            if b["metadata"].get("namespace") != meta.get("namespace") or not sel or \
                    meta.get("name") in ((b.get("status") or {}).get("disruptedPods") or {}):
                continue
            if selector_from_object(sel).matches(meta.get("labels")):
                allowed[id(b)] -= 1
                hit = hit or allowed[id(b)] < 0
        (bad if hit else ok).append(p)
    return bad, ok


def _start(p: dict) -> str:
    return (p.get("status") or {}).get("startTime") or p["metadata"].get("creationTimestamp") or ""


def select_victims(pod: dict, ni: NodeInfo, pdbs: list[dict]) -> Candidate | None:
    """Remove every lower-priority pod; if the pod then fits, put back as many as still let it fit,
    most important first and PDB-protected ones before the rest (upstream's selectVictimsOnNode)."""
    mine = priority(pod)
    lower = {k: p for k, p in ni.pods.items() if priority(p) < mine}
    if not lower:
        return None
    trial = NodeInfo(ni.node, ni.allocatable)
    for k, p in ni.pods.items():
        if k not in lower:
            trial.add(k, p)
    if not _fits(pod, trial):
        return None
    keys = {id(p): k for k, p in lower.items()}
    ordered = sorted(lower.values(), key=lambda p: (-priority(p), _start(p)))
    violating, rest = _violates(ordered, pdbs)
    victims: list[dict] = []
    violations = 0
    for group, counts in ((violating, True), (rest, False)):
        for p in group:
            trial.add(keys[id(p)], p)
            if not _fits(pod, trial):
                trial.remove(keys[id(p)])
                victims.append(p)
                violations += counts
    return Candidate(ni.name, victims, violations)


def _rank(c: Candidate) -> tuple:
    """upstream's pickOneNodeForPreemption, as one sort key: fewest PDB violations, lowest highest
    victim priority, smallest priority sum, fewest victims, latest start of the top victims."""
    top = max(priority(v) for v in c.victims) if c.victims else -(2**31)
    latest = max((_start(v) for v in c.victims if priority(v) == top), default="")
    return (c.pdb_violations, top, sum(priority(v) + 2**31 for v in c.victims), len(c.victims),
            tuple(-ord(ch) for ch in latest))


def preempt(pod: dict, nodes: list[NodeInfo], failed: dict[str, str], pdbs: list[dict]) -> Outcome:
    """Pick the node and victims, or say why preemption cannot help (the "preemption: ..." message)."""
    by_name = {ni.name: ni for ni in nodes}
    why = eligible(pod, by_name)
    if why:
        return Outcome(None, why)
    helpless = no_victims = 0
    candidates: list[Candidate] = []
    for ni in nodes:
        reason = failed.get(ni.name)
        if reason is None or reason.startswith(UNRESOLVABLE):
            helpless += 1
            continue
        c = select_victims(pod, ni, pdbs)
        if c is None or not c.victims:
            no_victims += 1
        else:
            candidates.append(c)
    if candidates:
        return Outcome(min(candidates, key=_rank), "")
    parts = sorted(p for p in (f"{no_victims} No preemption victims found for incoming pod" if no_victims else "",
                               f"{helpless} Preemption is not helpful for scheduling" if helpless else "") if p)
    return Outcome(None, f"0/{len(nodes)} nodes are available: {', '.join(parts)}.")

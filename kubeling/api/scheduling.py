"""Taint/toleration and node-affinity matching, shared by the scheduler and the DaemonSet controller."""
from __future__ import annotations


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def match_expression(labels: dict, e: dict) -> bool:
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


def term_matches(node: dict, term: dict) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return all(match_expression(labels, e) for e in term.get("matchExpressions") or []) and \
        all(match_expression(fields, e) for e in term.get("matchFields") or [])


def node_matches_pod(spec: dict, node: dict) -> bool:
    """nodeSelector and required node affinity of a pod spec against a node."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms")
    return not terms or any(term_matches(node, t) for t in terms)

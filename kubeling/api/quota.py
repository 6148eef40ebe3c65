"""ResourceQuota arithmetic shared by the quota admission plugin and the quota controller.

Upstream's quota evaluators (pkg/quota/v1/evaluator/core): what an object of a kind charges against
which quota resource names, which quotas match an object (scopes, scope selector), and quantities
printed the way resource.Quantity prints them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from kubeling.api import quantity

Usage = dict[str, Decimal]

# kinds with a legacy object-count name ("pods" as well as "count/pods")
LEGACY_COUNTS = frozenset(("pods", "services", "configmaps", "secrets", "replicationcontrollers",
                           "resourcequotas", "persistentvolumeclaims"))
# quota names whose presence makes every container state the matching request or limit
POD_VALIDATION = frozenset(("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"))
POD_COMPUTE = ("cpu", "memory", "ephemeral-storage")
# the quota names each scope may constrain (upstream's podObjectCountScopes / podComputeScopes)
POD_SCOPED_NAMES = frozenset(("pods", "count/pods", "cpu", "memory", "ephemeral-storage", "requests.cpu",
                              "requests.memory", "requests.ephemeral-storage", "limits.cpu", "limits.memory",
                              "limits.ephemeral-storage"))
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"

_DEC_SUFFIX = [(18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k"), (0, ""), (-3, "m"), (-6, "u"), (-9, "n")]
_BIN_SUFFIX = [(60, "Ei"), (50, "Pi"), (40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")]


def format_quantity(v: Decimal, binary: bool = False) -> str:
    """resource.Quantity's canonical String(): the largest suffix that keeps an integer mantissa."""
    if v == 0:
        return "0"
    if binary and v == v.to_integral_value():
        for exp, suffix in _BIN_SUFFIX:
            if v % (2 ** exp) == 0:
                return f"{int(v) // 2 ** exp}{suffix}"
    for exp, suffix in _DEC_SUFFIX:
        m = v / (Decimal(10) ** exp)
        if m == m.to_integral_value():
            return f"{int(m)}{suffix}"
    return f"{int((v * Decimal(10) ** 9).to_integral_value(rounding='ROUND_CEILING'))}n"


def is_binary(q: str | int | float | None) -> bool:
    return isinstance(q, str) and q.rstrip().endswith("i")


def canonical(q: str | int | float) -> str:
    return format_quantity(quantity.parse(q), is_binary(q))


def parse_list(rl: dict | None) -> Usage:
    return {k: quantity.parse(v) for k, v in (rl or {}).items()}


def format_like(usage: Usage, hard: dict) -> dict[str, str]:
    """A usage list printed in the format (binary or decimal) of the quota's hard amounts."""
    return {k: format_quantity(v, is_binary(hard.get(k))) for k, v in usage.items()}


def count_name(group: str, plural: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


# ---- pods -------------------------------------------------------------------------------------------

def _container_usage(c: dict) -> Usage:
    res = c.get("resources") or {}
    req, lim = parse_list(res.get("requests")), parse_list(res.get("limits"))
    out: Usage = {}
    for r in POD_COMPUTE:
        if r in req:
            out[r] = out[f"requests.{r}"] = req[r]
        if r in lim:
            out[f"limits.{r}"] = lim[r]
    return out


def _add(a: Usage, b: Usage) -> None:
    for k, v in b.items():
        a[k] = a.get(k, Decimal(0)) + v


def pod_compute_usage(pod: dict) -> Usage:
    """Sum over containers, at least each init container (restartable sidecars add up)."""
    spec = pod.get("spec") or {}
    total: Usage = {}
    for c in spec.get("containers") or []:
        _add(total, _container_usage(c))
    sidecars: Usage = {}
    for c in spec.get("initContainers") or []:
        u = _container_usage(c)
        if c.get("restartPolicy") == "Always":
            _add(total, u)
            _add(sidecars, u)
            u = dict(sidecars)
        else:
            u = {**u}
            _add(u, sidecars)
        for k, v in u.items():
            total[k] = max(total.get(k, Decimal(0)), v)
    return total


def pod_terminal(pod: dict, now: datetime | None = None) -> bool:
    """upstream's !QuotaV1Pod: Succeeded/Failed pods, and pods stuck terminating past their deletion
    timestamp plus grace period (a lost node must not block scaling up)."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    meta = pod["metadata"]
    deleting, grace = meta.get("deletionTimestamp"), meta.get("deletionGracePeriodSeconds")
    if not deleting or grace is None:
        return False
    at = datetime.fromisoformat(deleting.replace("Z", "+00:00")) + timedelta(seconds=grace)
    return (now or datetime.now(timezone.utc)) > at


def best_effort(pod: dict) -> bool:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            if any(k in ("cpu", "memory") for k in (res.get(part) or {})):
                return False
    return True


def missing_constraints(pod: dict, hard: dict) -> str | None:
    """upstream's pod evaluator Constraints: "limits.cpu for: a,b; requests.memory for: a" or None."""
    required = POD_VALIDATION & set(hard)
    if not required:
        return None
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        have = set(_container_usage(c))
        for r in required - have:
            missing.setdefault(r, set()).add(c.get("name", ""))
    if not missing:
        return None
    return "; ".join(f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing))


def _match_expression(value: str, expr: dict) -> bool:
    op, values = expr.get("operator"), expr.get("values") or []
    return {"In": lambda: value in values, "NotIn": lambda: value not in values,
            "Exists": lambda: True, "DoesNotExist": lambda: False}.get(op, lambda: False)()


def _scope_matches(scope: str, pod: dict, expr: dict | None = None) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None
    if scope == "BestEffort":
        return best_effort(pod)
    if scope == "NotBestEffort":
        return not best_effort(pod)
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        if expr is None:
            return bool(name)
        if expr.get("operator") in ("Exists", "DoesNotExist"):
            return bool(name) == (expr["operator"] == "Exists")
        return _match_expression(name, expr)
    return False   # CrossNamespacePodAffinity: pods without such terms do not match


def _scopes(quota: dict) -> list[tuple[str, dict | None]]:
    spec = quota.get("spec") or {}
    out: list[tuple[str, dict | None]] = [(s, None) for s in spec.get("scopes") or []]
    out += [(e.get("scopeName", ""), e) for e in (spec.get("scopeSelector") or {}).get("matchExpressions") or []]
    return out


def quota_matches(quota: dict, group: str, plural: str, obj: dict) -> bool:
    """A quota with scopes only ever matches pods, and then only pods in all of its scopes."""
    scopes = _scopes(quota)
    if not scopes:
        return True
    if (group, plural) != ("", "pods"):
        return False
    return all(_scope_matches(s, obj, e) for s, e in scopes)


# ---- every kind -------------------------------------------------------------------------------------

def usage(group: str, plural: str, obj: dict) -> Usage:
    """What one object charges, by quota resource name (empty for a pod that no longer counts)."""
    out: Usage = {count_name(group, plural): Decimal(1)}
    if (group, plural) == ("", "pods") and pod_terminal(obj):
        return out   # compute resources (and "pods") end with the pod's life; count/pods does not
    if not group and plural in LEGACY_COUNTS:
        out[plural] = Decimal(1)
    spec = obj.get("spec") or {}
    if (group, plural) == ("", "pods"):
        out.update(pod_compute_usage(obj))
    elif (group, plural) == ("", "services"):
        typ = spec.get("type", "ClusterIP")
        out["services.loadbalancers"] = Decimal(1 if typ == "LoadBalancer" else 0)
        ports = len(spec.get("ports") or []) if typ in ("NodePort", "LoadBalancer") else 0
        out["services.nodeports"] = Decimal(ports)
    elif (group, plural) == ("", "persistentvolumeclaims"):
        storage = quantity.parse(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
        out["requests.storage"] = storage
        sc = spec.get("storageClassName")
        if sc:
            out[f"{sc}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
            out[f"{sc}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = Decimal(1)
    return out


def charged_names(group: str, plural: str, hard: dict) -> set[str]:
    """The hard names an object of this kind can charge (zero included: a quota of 0 still counts)."""
    names = {count_name(group, plural)}
    if not group and plural in LEGACY_COUNTS:
        names.add(plural)
    if (group, plural) == ("", "pods"):
        names |= POD_SCOPED_NAMES
    elif (group, plural) == ("", "services"):
        names |= {"services.loadbalancers", "services.nodeports"}
    elif (group, plural) == ("", "persistentvolumeclaims"):
        names.add("requests.storage")
        names |= {k for k in hard if STORAGE_CLASS_SUFFIX in k}
    return names & set(hard)


def kind_of(name: str) -> tuple[str, str] | None:
    """(group, plural) a quota resource name counts, for the controller's recalculation."""
    if name.startswith("count/"):
        plural, _, group = name[len("count/"):].partition(".")
        return group, plural
    if name in LEGACY_COUNTS:
        return "", name
    if name in POD_SCOPED_NAMES:
        return "", "pods"
    if name.startswith("services."):
        return "", "services"
    if name == "requests.storage" or STORAGE_CLASS_SUFFIX in name:
        return "", "persistentvolumeclaims"
    return None


def total(quota: dict, group: str, plural: str, objs: list[dict], names: set[str]) -> Usage:
    """Usage of names by the objects the quota matches."""
    out = {n: Decimal(0) for n in names}
    for o in objs:
        if quota_matches(quota, group, plural, o):
            for k, v in usage(group, plural, o).items():
                if k in out:
                    out[k] += v
    return out


def pretty(usage_: Usage, hard: dict) -> str:
    """upstream's prettyPrint: sorted name=quantity pairs joined by commas."""
    return ",".join(f"{k}={format_quantity(usage_[k], is_binary(hard.get(k)))}" for k in sorted(usage_))

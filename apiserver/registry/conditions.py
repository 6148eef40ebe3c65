"""Setting one condition of an object's status.conditions, as upstream's UpdatePodCondition."""
from __future__ import annotations

from datetime import datetime, timezone


def with_condition(conds: list[dict], cond: dict) -> list[dict]:
    """conds with cond set (a new list; the changed condition is a new dict)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out, found = [], False
    for c in conds:
        if c.get("type") == cond["type"] and not found:
            found = True
            c = {**c, **cond, "lastTransitionTime": now if c.get("status") != cond["status"]
                 else c.get("lastTransitionTime", now)}
        out.append(c)
    if not found:
        out.append({**cond, "lastProbeTime": None, "lastTransitionTime": now})
    return out

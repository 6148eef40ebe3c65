"""Priority admission: pods get spec.priority and spec.preemptionPolicy from their PriorityClass (or the
global default class), and at most one PriorityClass is the global default (upstream's
plugin/pkg/admission/priority)."""
from __future__ import annotations

from kubeling.api.resources import lookup

from . import Attributes
from .limitranger import forbidden

PRIORITY_CLASSES = lookup("scheduling.k8s.io", "v1", "priorityclasses")
PREEMPT_LOWER = "PreemptLowerPriority"

# created by every apiserver at startup (upstream's scheduling post-start hook)
SYSTEM_PRIORITY_CLASSES = (
    ("system-node-critical", 2000001000, "Used for system critical pods that must not be moved from their current node."),
    ("system-cluster-critical", 2000000000,
     "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
)


def system_priority_class(name: str, value: int, description: str) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, "globalDefault": False, "description": description, "preemptionPolicy": PREEMPT_LOWER}


def global_default(cache) -> dict | None:
    """The global default class; the lowest value wins should a race have left several."""
    defaults = [pc for pc in cache.list(PRIORITY_CLASSES.key_prefix, None) if pc.get("globalDefault")]
    return min(defaults, key=lambda pc: pc.get("value", 0), default=None)


class Priority:
    name = "Priority"
    order = 50
    validating = False
    resources = frozenset({("", "pods"), ("scheduling.k8s.io", "priorityclasses")})

    async def admit(self, attrs: Attributes) -> None:
        if attrs.subresource or attrs.obj is None:
            return
        if attrs.resource.plural == "priorityclasses":
            self._admit_class(attrs)
        elif attrs.operation == "CREATE":
            self._admit_pod(attrs)
        elif attrs.operation == "UPDATE" and attrs.old is not None:
            spec, old = attrs.obj.setdefault("spec", {}), attrs.old.get("spec") or {}
            for f in ("priority", "preemptionPolicy"):   # keep what admission set at creation
                if spec.get(f) is None and old.get(f) is not None:
                    spec[f] = old[f]

    def _admit_pod(self, attrs: Attributes) -> None:
        spec = attrs.obj.setdefault("spec", {})
        name = spec.get("priorityClassName")
        if name:
            pc = attrs.cache.get(PRIORITY_CLASSES.key(None, name))
            if pc is None:
                raise forbidden(attrs, f"no PriorityClass with name {name} was found")
        else:
            pc = global_default(attrs.cache)
        value = pc.get("value", 0) if pc else 0
        policy = (pc.get("preemptionPolicy") or PREEMPT_LOWER) if pc else PREEMPT_LOWER
        if pc is not None:
            spec["priorityClassName"] = pc["metadata"]["name"]
        if spec.get("priority") is not None and spec["priority"] != value:
            raise forbidden(attrs, f"the integer value of priority ({spec['priority']}) must not be provided in pod "
                                   f"spec; priority admission controller computed {value} from the given PriorityClass name")
        spec["priority"] = value
        if spec.get("preemptionPolicy") and spec["preemptionPolicy"] != policy:
            raise forbidden(attrs, f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must not be "
                                   f"provided in pod spec; priority admission controller computed {policy} from the "
                                   "given PriorityClass name")
        spec["preemptionPolicy"] = policy

    def _admit_class(self, attrs: Attributes) -> None:
        if attrs.operation not in ("CREATE", "UPDATE") or not attrs.obj.get("globalDefault"):
            return
        current = global_default(attrs.cache)
        if current is not None and current["metadata"]["name"] != attrs.obj["metadata"].get("name"):
            raise forbidden(attrs, f"PriorityClass {current['metadata']['name']} is already marked as default. "
                                   "Only one default can exist")


PLUGIN = Priority()

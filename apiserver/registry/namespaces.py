"""Namespaces: phase, the finalize subresource, spec.finalizers holding deletion, immortal system namespaces."""
from __future__ import annotations

from kubeling.api import errors as E

from .. import admission
from ..codec import deepcopy
from . import DeleteStep, Strategy, now_rfc3339


class NamespaceStrategy(Strategy):
    def prepare_for_create(self, obj: dict, user: dict | None = None) -> None:
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: dict, old: dict, sub: str | None) -> dict:
        if sub == "status":
            return super().prepare_for_update(new, old, sub)
        if sub == "finalize":
            merged = deepcopy(old)
            merged.setdefault("spec", {})["finalizers"] = (new.get("spec") or {}).get("finalizers") or []
            return merged
        new["status"] = old.get("status", {"phase": "Active"})
        if "spec" not in new:
            new["spec"] = old.get("spec", {})
        return new

    def check_delete(self, name: str) -> None:
        if name in admission.IMMORTAL_NAMESPACES:
            raise E.forbidden_error(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                    details={"name": name, "kind": "namespaces"})

    def mark_for_deletion(self, new: dict, current: dict, finalizers: list[str], grace, now) -> DeleteStep:
        """A namespace goes Terminating and stays until its content is gone (spec.finalizers emptied)."""
        nmeta = new["metadata"]
        if nmeta.get("deletionTimestamp"):
            return "unchanged"
        nmeta["deletionTimestamp"] = now_rfc3339()
        new["status"] = {**new.get("status", {}), "phase": "Terminating"}
        if not (new.get("spec") or {}).get("finalizers") and not finalizers:
            return "delete"
        nmeta["finalizers"] = finalizers or nmeta.get("finalizers")
        if not nmeta["finalizers"]:
            nmeta.pop("finalizers")
        return "update"

    def finished_deleting(self, obj: dict) -> bool:
        return super().finished_deleting(obj) and not (obj.get("spec") or {}).get("finalizers")


STRATEGIES = {("", "namespaces"): NamespaceStrategy}

"""Services: cluster IPs and node ports are store keys written and released with the Service."""
from __future__ import annotations

from .. import admission
from . import Strategy


class ServiceStrategy(Strategy):
    def claimed_keys(self, obj: dict) -> set[str]:
        return admission.allocated_keys(obj)

    def allocate(self, handler, new: dict, old: dict | None, taken: set[str]) -> tuple[dict, list]:
        a = handler.alloc.allocate(new, old, taken)
        return a.puts, a.deletes

    def key_taken(self, obj: dict, key: str) -> None:
        spec = obj.get("spec") or {}
        if key.startswith(admission.IP_PREFIX):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for p in spec.get("ports") or []:
            if key == admission.PORT_PREFIX + str(p.get("nodePort")):
                p.pop("nodePort", None)


STRATEGIES = {("", "services"): ServiceStrategy}

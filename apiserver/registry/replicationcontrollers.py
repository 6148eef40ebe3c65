"""ReplicationControllers: their selector is a plain label map, not a LabelSelector."""
from __future__ import annotations

from . import Strategy


class ReplicationControllerStrategy(Strategy):
    def scale_selector(self, obj: dict) -> str:
        sel = (obj.get("spec") or {}).get("selector") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))


STRATEGIES = {("", "replicationcontrollers"): ReplicationControllerStrategy}

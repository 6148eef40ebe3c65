"""ReplicationController controller: upstream runs the ReplicaSet controller on RCs through a
conversion layer; here the same controller is pointed at RCs, their map selector read as a LabelSelector."""
from __future__ import annotations

from kubeling.api.resources import lookup

from .replicaset import ReplicaSetController

RC = lookup("", "v1", "replicationcontrollers")


class ReplicationControllerController(ReplicaSetController):
    name = "replicationcontroller"
    resource = RC
    kind, api_version = "ReplicationController", "v1"

    @staticmethod
    def selector(rc: dict) -> dict | None:
        """v1 RC selectors are plain label maps (equality only); an empty one selects nothing."""
        sel = (rc.get("spec") or {}).get("selector")
        return {"matchLabels": sel} if sel else None

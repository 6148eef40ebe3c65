"""client-go's controller expectations: after issuing creates or deletes, a controller waits until
its informer has observed exactly those before it acts on the object again, so it never acts twice
on a stale cache (creating or deleting more pods than it should)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

EXPECTATIONS_TIMEOUT = 300.0   # client-go's ExpectationsTimeout: a lost watch event cannot stall a controller forever


def pod_key(pod: dict) -> str:
    """controller.PodKey: what deletions are tracked by."""
    return f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


@dataclass
class _Record:
    adds: int
    deletes: int
    since: float
    uids: set[str] = field(default_factory=set)   # pod keys whose deletion is awaited


class Expectations:
    """UIDTrackingControllerExpectations: per controller key, the creations still to be observed and
    the pods whose deletion is still to be observed; satisfied when both are done or expired."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout, self.clock = timeout, clock
        self._records: dict[str, _Record] = {}

    def satisfied(self, key: str) -> bool:
        """True when nothing is awaited, the wait expired, or nothing was ever expected (a new or
        restarted controller, which then starts from what its informer shows)."""
        r = self._records.get(key)
        return r is None or (r.adds <= 0 and r.deletes <= 0) or self.clock() - r.since > self.timeout

    def expect_creations(self, key: str, adds: int) -> None:
        self._records[key] = _Record(adds, 0, self.clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._records[key] = _Record(0, len(set(pod_keys)), self.clock(), set(pod_keys))

    def creation_observed(self, key: str, n: int = 1) -> None:
        """An add seen by the informer, or (n) creates that failed or were never attempted."""
        r = self._records.get(key)
        if r is not None:
            r.adds -= n

    def deletion_observed(self, key: str, pod: str) -> None:
        """Counts once per awaited pod, whether seen as a deletionTimestamp, a delete, or a failed delete."""
        r = self._records.get(key)
        if r is not None and pod in r.uids:
            r.uids.discard(pod)
            r.deletes -= 1

    def delete(self, key: str) -> None:
        self._records.pop(key, None)

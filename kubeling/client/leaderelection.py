"""Leader election on coordination.k8s.io/v1 Leases (lease 15 s, renew deadline 10 s, retry 2 s)."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

from kubeling.api.resources import lookup

from .metrics import LEADER_ELECTION_MASTER
from .rest import ApiError, Client

log = logging.getLogger("kubeling.leaderelection")
LEASES = lookup("coordination.k8s.io", "v1", "leases")


def micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str | None) -> float:
    if not s:
        return 0.0
    t = datetime.fromisoformat(s)   # 3.11: RFC 3339 with Z and any fraction
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


class LeaderElector:
    def __init__(self, client: Client, name: str, identity: str, namespace: str = "kube-system",
                 lease_duration: float = 15, renew_deadline: float = 10, retry_period: float = 2) -> None:
        self.client, self.name, self.identity, self.namespace = client, name, identity, namespace
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.is_leader = False

    async def _try(self) -> bool:
        """One acquire-or-renew attempt; True when we hold the lease afterwards."""
        now = micro_now()
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as e:
            if not e.not_found:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                             "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}
            return await self._won(self.client.create(LEASES, body, self.namespace))
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity")
        expired = parse_time(spec.get("renewTime")) + (spec.get("leaseDurationSeconds") or self.lease_duration) < time.time()
        if holder and holder != self.identity and not expired:
            return False
        if holder != self.identity:
            spec["leaseTransitions"] = (spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = now
        spec.update(holderIdentity=self.identity, renewTime=now, leaseDurationSeconds=int(self.lease_duration))
        return await self._won(self.client.update(LEASES, lease, self.namespace))

    @staticmethod
    async def _won(write: Awaitable[dict]) -> bool:
        """A Lease write: False when another candidate got there first (409)."""
        try:
            await write
            return True
        except ApiError as e:
            if e.conflict:
                return False
            raise

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign until elected, run `lead()` while renewing; return when leadership is lost."""
        while True:
            try:
                if await self._try():
                    break
            except ApiError as e:
                log.warning("leader election %s: %s", self.name, e)
            await asyncio.sleep(self.retry_period)
        self.is_leader = True
        LEADER_ELECTION_MASTER.labels(self.name).set(1)
        log.info("%s became leader of %s/%s", self.identity, self.namespace, self.name)
        task = asyncio.create_task(lead())
        last_renew = time.monotonic()
        try:
            while not task.done():
                await asyncio.sleep(self.retry_period)
                try:
                    if await self._try():
                        last_renew = time.monotonic()
                        continue
                    log.error("%s lost the lease %s", self.identity, self.name)
                    break
                except ApiError as e:
                    log.warning("renewing %s: %s", self.name, e)
                if time.monotonic() - last_renew > self.renew_deadline:
                    log.error("%s could not renew %s within %.0fs", self.identity, self.name, self.renew_deadline)
                    break
        finally:
            self.is_leader = False
            LEADER_ELECTION_MASTER.labels(self.name).set(0)
            task.cancel()

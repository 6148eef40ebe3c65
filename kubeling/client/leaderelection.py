"""Leader election on coordination.k8s.io/v1 Leases (lease 15 s, renew deadline 10 s, retry 2 s), as
client-go's: a candidate never compares the holder's renewTime (another machine's clock) with its own.
It notes on its own monotonic clock when it saw the lease record change and takes the lease over only
once leaseDurationSeconds have passed locally without a change; the holder keeps leading only while
it renews within renew_deadline of its own clock."""
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
                 lease_duration: float = 15, renew_deadline: float = 10, retry_period: float = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.name, self.identity, self.namespace = client, name, identity, namespace
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.clock = clock
        self.is_leader = False
        self._lease: dict | None = None   # the Lease last read or written: its resourceVersion guards our writes
        self._observed: dict = {}         # its spec, the leader election record
        self._observed_at = 0.0           # self.clock() when that record was last seen to change

    def _observe(self, lease: dict) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed:
            self._observed, self._observed_at = spec, self.clock()
        self._lease = lease

    def _holds(self) -> bool:
        return self._observed.get("holderIdentity") == self.identity

    def _lease_valid(self) -> bool:
        duration = self._observed.get("leaseDurationSeconds") or self.lease_duration
        return self.clock() < self._observed_at + duration

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's tryAcquireOrRenew): True when we hold the lease afterwards. A failed
        request is a failed attempt; the caller retries."""
        now = micro_now()
        record = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                  "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        if self._holds() and self._lease_valid() and self._lease is not None:
            # The holder writes over the Lease it last saw without reading it first; a conflict means
            # someone else wrote, and the slow path below reads what they wrote.
            record.update(acquireTime=self._observed.get("acquireTime") or now,
                          leaseTransitions=self._observed.get("leaseTransitions") or 0)
            try:
                self._observe(await self.client.update(LEASES, {**self._lease, "spec": record}, self.namespace))
                return True
            except ApiError as e:
                log.info("renewing %s without reading it failed (%s); reading it", self.name, e)
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as e:
            if not e.not_found:
                log.warning("reading lease %s: %s", self.name, e)
                return False
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": record}
            return await self._write(self.client.create(LEASES, body, self.namespace))
        self._observe(lease)
        if self._observed.get("holderIdentity") and not self._holds() and self._lease_valid():
            return False
        if self._holds():
            record.update(acquireTime=self._observed.get("acquireTime") or now,
                          leaseTransitions=self._observed.get("leaseTransitions") or 0)
        else:
            record["leaseTransitions"] = (self._observed.get("leaseTransitions") or 0) + 1
        return await self._write(self.client.update(LEASES, {**lease, "spec": record}, self.namespace))

    async def _write(self, write: Awaitable[dict]) -> bool:
        """A Lease create or update: True (and the written record observed) when it went through."""
        try:
            self._observe(await write)
            return True
        except ApiError as e:
            if not e.conflict:
                log.warning("writing lease %s: %s", self.name, e)
            return False

    async def _renew(self) -> bool:
        """Retry every retry period until renewed; False once another holder is seen or renew_deadline
        has passed on our clock (client-go waits out the deadline in the first case too; stepping down
        at once shortens the time two leaders overlap)."""
        deadline = self.clock() + self.renew_deadline
        while True:
            try:
                if await asyncio.wait_for(self.try_acquire_or_renew(), max(deadline - self.clock(), 0.0)):
                    return True
            except asyncio.TimeoutError:
                pass
            if not self._holds():
                log.error("%s lost the lease %s to %s", self.identity, self.name, self._observed.get("holderIdentity"))
                return False
            if self.clock() >= deadline:
                log.error("%s could not renew %s within %.0fs", self.identity, self.name, self.renew_deadline)
                return False
            await asyncio.sleep(self.retry_period)

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign until elected, run `lead()` while renewing; return when leadership is lost or `lead()`
        ends (its exception is raised)."""
        while not await self.try_acquire_or_renew():
            await asyncio.sleep(self.retry_period)
        self.is_leader = True
        LEADER_ELECTION_MASTER.labels(self.name).set(1)
        log.info("%s became leader of %s/%s", self.identity, self.namespace, self.name)
        task = asyncio.create_task(lead())
        try:
            while True:
                await asyncio.wait([task], timeout=self.retry_period)
                if task.done():
                    task.result()
                    return
                if not await self._renew():
                    return
        finally:
            self.is_leader = False
            LEADER_ELECTION_MASTER.labels(self.name).set(0)
            task.cancel()

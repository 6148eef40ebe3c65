"""Leader election judged on the candidate's own clock, as client-go's: a holder whose machine clock is
far off (its renewTime in the past or the future) keeps the lease while it renews, and a lease nobody
renews is taken over after leaseDurationSeconds of the candidate's time, whatever its renewTime says."""
from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta, timezone

import pytest

from kubeling.client.leaderelection import LeaderElector
from kubeling.client.rest import ApiError

LEASE_SECONDS = 15


def stamp(offset: timedelta) -> str:
    """A MicroTime on a clock that is `offset` away from ours."""
    return (datetime.now(timezone.utc) + offset).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Leases:
    """One Lease behind get/create/update with resourceVersion conflicts, as the apiserver serves it.
    Every GET takes `step` seconds of the candidate's clock, and `before_get` lets another machine act
    between two reads."""

    def __init__(self, clock: Clock, step: float = 1.0) -> None:
        self.clock, self.step = clock, step
        self.lease: dict | None = None
        self.rv = 0
        self.before_get = lambda: None
        self.gets = 0
        self.acquired_at: float | None = None  # candidate clock when "a" first wrote itself in
        self.fail_writes = False

    def put(self, spec: dict) -> None:
        self.rv += 1
        self.lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                      "metadata": {"name": "lock", "namespace": "kube-system", "resourceVersion": str(self.rv)},
                      "spec": copy.deepcopy(spec)}
        if spec.get("holderIdentity") == "a" and self.acquired_at is None:
            self.acquired_at = self.clock.now

    async def get(self, r, name: str, namespace: str) -> dict:
        self.before_get()
        self.clock.now += self.step
        self.gets += 1
        if self.lease is None:
            raise ApiError(404, {"reason": "NotFound"})
        return copy.deepcopy(self.lease)

    async def create(self, r, obj: dict, namespace: str) -> dict:
        if self.lease is not None:
            raise ApiError(409, {"reason": "AlreadyExists"})
        self.put(obj["spec"])
        return copy.deepcopy(self.lease)

    async def update(self, r, obj: dict, namespace: str) -> dict:
        if self.fail_writes:
            raise ApiError(0, text="connection refused")
        if self.lease is None or obj["metadata"].get("resourceVersion") != str(self.rv):
            raise ApiError(409, {"reason": "Conflict"})
        self.put(obj["spec"])
        return copy.deepcopy(self.lease)

    def holder(self) -> str | None:
        return (self.lease or {}).get("spec", {}).get("holderIdentity")


def held_by_b(leases: Leases, skew: timedelta) -> None:
    """Machine b, whose clock is `skew` away from ours, holds the lease."""
    now = stamp(skew)
    leases.put({"holderIdentity": "b", "leaseDurationSeconds": LEASE_SECONDS, "acquireTime": now,
                "renewTime": now, "leaseTransitions": 3})


async def campaign(leases: Leases, clock: Clock, gets: int) -> asyncio.Task:
    """Candidate "a" campaigning until it has read the lease `gets` times (or won it)."""
    elected = asyncio.Event()

    async def lead() -> None:
        elected.set()
        await asyncio.Event().wait()

    elector = LeaderElector(leases, "lock", "a", lease_duration=LEASE_SECONDS, renew_deadline=10,  # type: ignore[arg-type]
                            retry_period=0.001, clock=clock)
    task = asyncio.create_task(elector.run(lead))
    deadline = asyncio.get_running_loop().time() + 5
    while leases.gets < gets and not elected.is_set():
        assert asyncio.get_running_loop().time() < deadline, f"only {leases.gets} reads of the lease"
        await asyncio.sleep(0.001)
    return task


@pytest.mark.parametrize("skew", [timedelta(days=-365), timedelta(days=365)], ids=["behind", "ahead"])
async def test_a_renewing_holder_with_a_skewed_clock_keeps_the_lease(skew):
    clock = Clock()
    leases = Leases(clock)
    held_by_b(leases, skew)
    renewals = iter(range(1, 10_000))

    def b_renews() -> None:
        spec = dict(leases.lease["spec"])
        spec["renewTime"] = stamp(skew + timedelta(seconds=next(renewals)))
        leases.put(spec)
    leases.before_get = b_renews
    task = await campaign(leases, clock, gets=4 * LEASE_SECONDS)
    try:
        assert clock.now - 1000 >= 4 * LEASE_SECONDS
        assert leases.holder() == "b" and leases.lease["spec"]["leaseTransitions"] == 3
    finally:
        task.cancel()


@pytest.mark.parametrize("skew", [timedelta(days=-365), timedelta(0), timedelta(days=365)],
                         ids=["behind", "same", "ahead"])
async def test_an_unrenewed_lease_is_taken_over_after_the_lease_duration_of_local_time(skew):
    clock = Clock()
    leases = Leases(clock)
    held_by_b(leases, skew)
    task = await campaign(leases, clock, gets=3 * LEASE_SECONDS)
    try:
        assert leases.holder() == "a"
        first_seen = 1000 + leases.step
        assert first_seen + LEASE_SECONDS <= leases.acquired_at <= first_seen + LEASE_SECONDS + leases.step
        assert leases.lease["spec"]["leaseTransitions"] == 4
    finally:
        task.cancel()


async def test_the_holder_steps_down_when_it_cannot_renew_within_the_renew_deadline():
    clock = Clock()
    leases = Leases(clock, step=0)
    cancelled = asyncio.Event()

    async def lead() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    elector = LeaderElector(leases, "lock", "a", lease_duration=LEASE_SECONDS, renew_deadline=10,  # type: ignore[arg-type]
                            retry_period=0.001, clock=clock)
    task = asyncio.create_task(elector.run(lead))
    deadline = asyncio.get_running_loop().time() + 5
    while not elector.is_leader:
        assert asyncio.get_running_loop().time() < deadline, "never elected"
        await asyncio.sleep(0.001)
    leases.fail_writes = True
    writes_failing_since = clock.now
    real = leases.update

    async def slow_failing_update(r, obj, namespace):
        clock.now += 1
        return await real(r, obj, namespace)
    leases.update = slow_failing_update  # type: ignore[method-assign]
    await asyncio.wait_for(task, 5)
    assert cancelled.is_set() and not elector.is_leader
    assert 10 <= clock.now - writes_failing_since <= 12

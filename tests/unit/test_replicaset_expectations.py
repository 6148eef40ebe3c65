"""ReplicaSet expectations (client-go's ControllerExpectations): a sync issues at most 500 creates
or deletes, in slow-start batches, and the next one acts only once the informer has shown exactly
those; failed creates and deletes lower the expectations at once."""
import asyncio
import copy
import itertools

from controllers.expectations import Expectations
from controllers.replicaset import ReplicaSetController
from kubeling.client import ApiError
from kubeling.client.informer import InformerFactory


class FakeClient:
    """Records creates and deletes; the test decides when the informer sees them."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.created: list[dict] = []
        self.deleted: list[str] = []
        self.in_flight = self.peak = 0
        self.batches: list[int] = []                     # creates in flight together
        self.fail_at = fail_at
        self.names = itertools.count()

    async def create(self, resource, body: dict, namespace: str) -> dict:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        if self.in_flight == 0:
            self.batches.append(self.peak)
            self.peak = 0
        n = next(self.names)
        if n == self.fail_at:
            raise ApiError(403, {"reason": "Forbidden", "message": "exceeded quota"})
        pod = copy.deepcopy(body)
        pod["metadata"].update(name=f"web-{n}", namespace=namespace, uid=f"u{n}", resourceVersion="1",
                               creationTimestamp=f"2024-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z")
        self.created.append(pod)
        return pod

    async def delete(self, resource, name: str, namespace: str) -> None:
        self.deleted.append(name)

    async def patch(self, *args, **kwargs) -> dict:
        return {}


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        self.seen.append((reason, message))


def replicaset(replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "d", "uid": "rs-uid", "resourceVersion": str(replicas)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}}


def controller(client: FakeClient, rs: dict) -> tuple[ReplicaSetController, Events]:
    events = Events()
    c = ReplicaSetController(client, InformerFactory(client), events)   # type: ignore[arg-type]
    c.rs._set(rs)
    return c, events


def test_expectations_count_observations_and_expire():
    now = [0.0]
    e = Expectations(timeout=300, clock=lambda: now[0])
    assert e.satisfied("d/web")                          # nothing expected yet
    e.expect_creations("d/web", 2)
    e.creation_observed("d/web")
    assert not e.satisfied("d/web")
    e.creation_observed("d/web")
    assert e.satisfied("d/web")
    e.expect_deletions("d/web", ["d/a", "d/b"])
    e.deletion_observed("d/web", "d/a")
    e.deletion_observed("d/web", "d/a")                  # the same pod counts once
    e.deletion_observed("d/web", "d/other")              # a pod nobody deleted does not count
    assert not e.satisfied("d/web")
    now[0] = 301
    assert e.satisfied("d/web")                          # a lost watch event stalls nothing for long


def test_scale_up_creates_one_burst_in_slow_start_batches_and_waits_for_the_adds():
    async def run() -> None:
        client = FakeClient()
        c, events = controller(client, replicaset(1200))
        await c.sync("d/web")
        assert client.batches == [1, 2, 4, 8, 16, 32, 64, 128, 245] and len(client.created) == 500
        assert events.seen[0] == ("SuccessfulCreate", "Created pod: web-0")
        await c.sync("d/web")
        assert len(client.created) == 500                # the adds are not seen yet
        for p in client.created[:499]:
            c.pods._set(p)                               # the informer's handlers observe the adds
        first = client.created[0]
        c.pods._set({**first, "metadata": {**first["metadata"], "resourceVersion": "2"}})
        await c.sync("d/web")
        assert len(client.created) == 500                # an update is no add
        c.pods._set(client.created[499])
        await c.sync("d/web")
        assert len(client.created) == 1000
    asyncio.run(run())


def test_scale_down_deletes_one_burst_and_waits_for_those_deletions():
    async def run() -> None:
        client = FakeClient()
        c, _ = controller(client, replicaset(10))
        body = {"metadata": {"labels": {"app": "web"}, "ownerReferences": [
            {"kind": "ReplicaSet", "name": "web", "uid": "rs-uid", "controller": True}]}, "spec": {}}
        for _ in range(700):
            c.pods._set(await client.create(None, body, "d"))
        await c.sync("d/web")
        assert len(client.deleted) == 500
        await c.sync("d/web")
        assert len(client.deleted) == 500
        gone = [c.pods.get(f"d/{name}") for name in client.deleted]
        for p in gone[:-1]:
            c.pods._del(p)
        await c.sync("d/web")
        assert len(client.deleted) == 500
        c.pods._set({**gone[-1], "metadata": {**gone[-1]["metadata"], "resourceVersion": "9",
                                              "deletionTimestamp": "2024-01-01T00:00:00Z"}})   # graceful
        await c.sync("d/web")
        assert len(client.deleted) == 690
    asyncio.run(run())


def test_a_failed_create_stops_the_burst_and_lowers_the_expectations():
    async def run() -> None:
        client = FakeClient(fail_at=4)                   # the second pod of the third batch (4 pods)
        c, events = controller(client, replicaset(20))
        try:
            await c.sync("d/web")
        except ApiError as e:
            assert e.code == 403
        else:
            raise AssertionError("the failed create must fail the sync (so it is retried)")
        assert len(client.created) == 6
        assert ("FailedCreate", "Error creating: exceeded quota") in events.seen
        assert not c.expectations.satisfied("d/web")
        for p in client.created:
            c.pods._set(p)
        assert c.expectations.satisfied("d/web")          # only the 6 created were awaited
    asyncio.run(run())

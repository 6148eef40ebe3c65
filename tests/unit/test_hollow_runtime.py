"""The kubelet core's pod sync on the hollow runtime, on a controlled clock: exits, restarts,
CrashLoopBackOff timing, readiness, init containers, deletion and a kubelet restart adopting pods."""
from __future__ import annotations

import time

import pytest

from kubelet.hollow import HollowRuntime
from kubelet.podconfig import ConfigBuilder, DNSSettings
from kubelet.podsync import Backoff, PodSyncer

INF = float("inf")


class FakeClient:
    """Records what the kubelet writes; the tests feed each status back as the watch would."""

    def __init__(self) -> None:
        self.patches: list[dict] = []
        self.deletes: list[tuple[str, dict]] = []

    async def patch(self, resource, name, body, namespace=None, sub=None, **kw):
        self.patches.append(body["status"])
        return {}

    async def delete(self, resource, name, namespace=None, **options):
        self.deletes.append((name, options))


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock(1_000_000.0)
    monkeypatch.setattr(time, "time", c)
    return c


def make_pod(annotations: dict | None = None, policy: str = "Always", init: list[str] | None = None) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "0123456789abcdef", "annotations": annotations or {}},
            "spec": {"restartPolicy": policy, "nodeName": "n", "containers": [{"name": "c", "image": "busybox"}],
                     "initContainers": [{"name": n, "image": "busybox"} for n in init or []]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}


class Node:
    def __init__(self, ready_delay: float = 0.0) -> None:
        self.client = FakeClient()
        self.runtime = HollowRuntime("n", ready_delay)
        config = ConfigBuilder(self.client, "10.0.0.1", "/nonexistent", DNSSettings([], "cluster.local"),
                               False, {})
        self.syncer = PodSyncer(self.client, "n", "10.0.0.1", self.runtime, config)

    async def step(self, clock: Clock, pod: dict, t: float) -> dict:
        """Sync the pod at time t (seconds after the start) and apply what was posted."""
        clock.t = 1_000_000.0 + t
        self.syncer.pods[pod["metadata"]["uid"]] = pod
        n = len(self.client.patches)
        await self.syncer.sync(pod["metadata"]["uid"])
        for st in self.client.patches[n:]:
            pod["status"] = {**pod["status"], **st}
        return pod["status"]


def container(st: dict) -> dict:
    return st["containerStatuses"][0]


async def test_running_forever_and_ready_after_the_delay(clock):
    node, pod = Node(ready_delay=1.0), make_pod()
    st = await node.step(clock, pod, 0)
    c = container(st)
    assert st["phase"] == "Running" and "running" in c["state"] and not c["ready"] and c["restartCount"] == 0
    assert c["containerID"] == "hollow://01234567-c-0" and c["imageID"] == "hollow://busybox" and st["podIP"]
    st = await node.step(clock, pod, 1.5)
    assert container(st)["ready"] and {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
    st = await node.step(clock, pod, 10_000)
    assert container(st)["restartCount"] == 0 and "running" in container(st)["state"]


async def test_readiness_due_during_a_slow_status_write_is_synced_at_once(clock):
    """A loaded apiserver may take longer to accept the status than the ready delay: the sync that
    reports Ready must still follow at once, not a sync period later."""
    node, pod = Node(ready_delay=0.2), make_pod()
    write = node.client.patch

    async def slow_write(*args, **kw):
        clock.t += 1.0
        return await write(*args, **kw)
    node.client.patch = slow_write
    st = await node.step(clock, pod, 0)
    assert not container(st)["ready"]
    assert len(node.syncer.queue) == 1
    st = await node.step(clock, pod, 1.0)
    assert container(st)["ready"]


async def test_exit_with_restart_policy_never_is_terminal(clock):
    node, pod = Node(), make_pod({"hollow.kubeling.io/exit-code": "3", "hollow.kubeling.io/exit-after": "5"}, "Never")
    await node.step(clock, pod, 0)
    assert (await node.step(clock, pod, 4))["phase"] == "Running"
    st = await node.step(clock, pod, 6)
    term = container(st)["state"]["terminated"]
    assert st["phase"] == "Failed" and (term["exitCode"], term["reason"]) == (3, "Error")
    assert container(st)["restartCount"] == 0
    assert not node.runtime.pods[pod["metadata"]["uid"]].sandbox.ready     # a finished pod's sandbox is stopped


async def test_on_failure_does_not_restart_a_success(clock):
    node, pod = Node(), make_pod({"hollow.kubeling.io/exit-code": "0"}, "OnFailure")
    st = await node.step(clock, pod, 0)
    assert st["phase"] == "Succeeded" and container(st)["state"]["terminated"]["reason"] == "Completed"
    node, pod = Node(), make_pod({"hollow.kubeling.io/exit-code": "1"}, "OnFailure")
    await node.step(clock, pod, 0)
    st = await node.step(clock, pod, 0.5)
    assert st["phase"] == "Running" and container(st)["restartCount"] == 1


async def test_crash_loop_restarts_at_once_then_backs_off_10s_doubling(clock):
    node = Node()
    pod = make_pod({"hollow.kubeling.io/exit-code": "1", "hollow.kubeling.io/exit-after": "1"})
    await node.step(clock, pod, 0)
    st = await node.step(clock, pod, 1.5)        # exited at 1, restarted at once
    c = container(st)
    assert "running" in c["state"] and c["restartCount"] == 1 and c["lastState"]["terminated"]["exitCode"] == 1
    st = await node.step(clock, pod, 5)          # the second run ended at 2.5: back-off 10 s
    c = container(st)
    assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff" and c["restartCount"] == 1 and not c["ready"]
    assert c["state"]["waiting"]["message"] == \
        "back-off 10s restarting failed container=c pod=p_ns(0123456789abcdef)"
    assert c["lastState"]["terminated"]["reason"] == "Error" and st["phase"] == "Running"
    assert "waiting" in container(await node.step(clock, pod, 12))["state"]
    st = await node.step(clock, pod, 12.6)       # 10 s after 2.5
    assert "running" in container(st)["state"] and container(st)["restartCount"] == 2
    st = await node.step(clock, pod, 20)         # ended at 13.6: back-off 20 s
    assert container(st)["state"]["waiting"]["message"].startswith("back-off 20s ")


def test_back_off_caps_at_5_minutes_and_resets_after_10_minutes_of_running():
    b = Backoff()
    t = 0.0
    for expected in (10, 20, 40, 80, 160, 300, 300):
        b.next("u", "c", t)
        assert b.duration("u", "c") == expected
        t += expected
    assert b.in_backoff_since("u", "c", t, t + 299) and not b.in_backoff_since("u", "c", t, t + 300)
    b.next("u", "c", t + 601)                     # it ran for more than 10 minutes: back to 10 s
    assert b.duration("u", "c") == 10


async def test_init_containers_run_in_order_before_the_app(clock):
    node, pod = Node(), make_pod(init=["first", "second"])
    st = await node.step(clock, pod, 0)
    inits = {s["name"]: s for s in st["initContainerStatuses"]}
    assert "terminated" in inits["first"]["state"] and inits["second"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert st["phase"] == "Pending" and container(st)["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert {c["type"]: c.get("message") for c in st["conditions"]}["Initialized"] == \
        "containers with incomplete status: [second]"
    await node.step(clock, pod, 1)
    st = await node.step(clock, pod, 2)
    assert st["phase"] == "Running" and "running" in container(st)["state"]
    assert [s["state"]["terminated"]["reason"] for s in st["initContainerStatuses"]] == ["Completed", "Completed"]


async def test_deletion_stops_everything_then_deletes_with_grace_0(clock):
    node, pod = Node(), make_pod()
    await node.step(clock, pod, 0)
    pod["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    await node.step(clock, pod, 1)
    assert node.client.deletes == [("p", {"gracePeriodSeconds": 0, "preconditions": {"uid": "0123456789abcdef"}})]
    assert node.runtime.pods == {}


async def test_a_restarted_kubelet_adopts_what_it_reported(clock):
    node = Node()
    pod = make_pod({"hollow.kubeling.io/exit-code": "1", "hollow.kubeling.io/exit-after": "100"})
    await node.step(clock, pod, 0)
    await node.step(clock, pod, 101)
    before = dict(pod["status"])
    restarted = Node()            # a new process: nothing in memory
    n = len(restarted.client.patches)
    st = await restarted.step(clock, pod, 150)
    assert len(restarted.client.patches) == n and st == before
    st = await restarted.step(clock, pod, 202)   # its second run ended at 201; back-off memory died with
    c = container(st)                            # the old process (as upstream's): restarted at once
    assert "running" in c["state"] and c["restartCount"] == 2 and c["lastState"]["terminated"]["exitCode"] == 1

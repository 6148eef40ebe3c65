"""Fire-and-forget work of the scheduler (bindings): each task is held until it finishes and its
failure is logged when it happens, naming what failed (not lost, nor 'Task exception was never
retrieved' whenever the garbage collector gets to it)."""
import asyncio
import gc
import logging

from scheduler.framework import NodeInfo, node_allocatable
from scheduler.scheduler import Scheduler

NODE = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "spec": {},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}
POD = {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"},
       "spec": {"containers": [{"name": "c", "image": "x"}]}}


class BrokenClient:
    """An apiserver client with a bug: every write raises something that is not an ApiError."""

    async def create(self, *args: object, **kwargs: object) -> dict:
        raise RuntimeError("boom")


async def settle(tasks: set[asyncio.Task]) -> None:
    """Collect garbage (an unheld task would vanish here) and wait for every held task."""
    gc.collect()
    while tasks:
        await asyncio.wait(list(tasks))


def test_a_failing_binding_is_held_and_logged(caplog):
    async def main() -> Scheduler:
        s = Scheduler(BrokenClient())   # type: ignore[arg-type]
        s.infos["n1"] = NodeInfo(NODE, node_allocatable(NODE))
        s.schedule_one("default/p", POD)
        assert len(s.tasks.tasks) == 1
        await settle(s.tasks.tasks)
        return s

    with caplog.at_level(logging.ERROR, logger="scheduler"):
        asyncio.run(main())
    assert [r.getMessage() for r in caplog.records if r.name == "scheduler"] == \
        ["binding default/p to n1 failed: boom"]


def test_a_pod_lost_outside_the_queue_is_queued_again():
    """A pod that needs scheduling but is neither queued, assumed nor unschedulable goes back in."""
    async def main() -> Scheduler:
        s = Scheduler(BrokenClient())   # type: ignore[arg-type]
        s.pods.store["default/p"] = POD
        s.requeue_lost()
        assert s.queued == {"default/p"}
        s.queued.clear()
        s.assumed.add("default/p")      # a bind in flight: left alone
        s.requeue_lost()
        assert s.queued == set()
        return s
    asyncio.run(main())

"""Informer resync: every cached object is delivered again as an update with old == new."""
import asyncio

from kubeling.api.resources import lookup
from kubeling.client.informer import Informer


def test_resync_redelivers_cached_objects_as_updates():
    inf = Informer(None, lookup("", "v1", "pods"), resync=0.01)   # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []
    inf.add_handler(lambda o: seen.append(("add", o["metadata"]["name"])),
                    lambda old, new: seen.append(("update", new["metadata"]["name"])) if old is new else None)
    inf._set({"metadata": {"name": "a", "namespace": "d"}})
    inf._set({"metadata": {"name": "b", "namespace": "d"}})
    inf.resync_once()
    assert seen == [("add", "a"), ("add", "b"), ("update", "a"), ("update", "b")]

    async def loop() -> None:
        inf.synced.set()
        task = asyncio.create_task(inf._resync_loop())
        while seen.count(("update", "a")) < 3:
            await asyncio.sleep(0.005)
        task.cancel()
    asyncio.run(asyncio.wait_for(loop(), 5))

"""The watch cache without etcd: events are fed as the etcd watch would deliver them."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from apiserver.watchcache import TooOld, WatchCache, Watcher
from kubeling.api.resources import lookup
from kubeling.etcd.types import Event, KeyValue

PREFIX = lookup("", "v1", "configmaps").key_prefix
NS = PREFIX + "d/"


def put(cache: WatchCache, rev: int, name: str, labels: dict | None = None) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "d", "labels": labels or {}}}
    cache._apply(Event("PUT", KeyValue((NS + name).encode(), orjson.dumps(obj), mod_revision=rev)))


def delete(cache: WatchCache, rev: int, name: str) -> None:
    cache._apply(Event("DELETE", KeyValue((NS + name).encode(), mod_revision=rev)))


def watch(cache: WatchCache, since: int | None, accept=None) -> tuple[Watcher, list[tuple]]:
    return cache.watch(PREFIX, NS, False, accept, False, since, False)


def seen(items: list[tuple]) -> list[tuple[str, str, int]]:
    return [(typ, obj["metadata"]["name"], rev) for typ, obj, rev in items]


async def until_waiting(w: Watcher) -> None:
    """Poll (bounded) until a stream task is blocked in next_batch."""
    for _ in range(1000):
        if w._wakeup is not None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the stream never waited")


async def drain(w: Watcher) -> list[tuple]:
    """Everything queued for `w` now (the stream's view)."""
    loop = asyncio.get_running_loop()
    out: list[tuple] = []
    while batch := await w.next_batch(loop.time()):
        out.extend(batch)
    return out


def test_resume_replays_all_history_beyond_the_queue_length():
    """60,000 events fit the default history (100,000) but not one watcher's queue (50,000)."""
    cache = WatchCache(None)   # type: ignore[arg-type]
    n = 60_000
    for i in range(n):
        put(cache, i + 2, f"cm{i}")
    w, first = watch(cache, 1)
    assert len(first) == n
    assert [rev for _, _, rev in first] == list(range(2, n + 2))
    assert first[-1][1]["metadata"]["name"] == f"cm{n - 1}"
    assert not w.closed


def test_resume_older_than_history_is_too_old_never_partial():
    cache = WatchCache(None, history=5, queue_length=2)   # type: ignore[arg-type]
    for rev in range(2, 12):
        put(cache, rev, "a")
    with pytest.raises(TooOld, match=r"too old resource version: 5 \(6\)"):
        watch(cache, 5)
    _, first = watch(cache, 6)   # the oldest resumable: every event after it is kept
    assert [rev for _, _, rev in first] == [7, 8, 9, 10, 11]


def test_initial_state_larger_than_the_queue_is_replayed_whole():
    cache = WatchCache(None, queue_length=10)   # type: ignore[arg-type]
    for i in range(100):
        put(cache, i + 2, f"cm{i:03}")
    w, first = watch(cache, None)
    assert seen(first) == [("ADDED", f"cm{i:03}", 101) for i in range(100)]
    assert not w.closed


async def test_live_events_continue_the_replay_without_gap_or_repeat():
    cache = WatchCache(None, queue_length=10)   # type: ignore[arg-type]
    for rev in range(2, 40):
        put(cache, rev, f"cm{rev}")
    w, first = watch(cache, 20)
    for rev in range(40, 45):
        put(cache, rev, f"cm{rev}")
    delete(cache, 45, "cm44")
    events = seen(first + await drain(w))
    assert [rev for _, _, rev in events] == list(range(21, 46))
    assert events[-2:] == [("ADDED", "cm44", 44), ("DELETED", "cm44", 45)]


async def test_selectors_apply_to_replay_and_live_events_alike():
    cache = WatchCache(None)   # type: ignore[arg-type]

    def keep(o: dict) -> bool:
        return o["metadata"]["labels"].get("keep") == "yes"
    put(cache, 2, "a", {"keep": "yes"})
    w, first = watch(cache, 1, keep)
    put(cache, 3, "a", {"keep": "no"})   # leaves the selector
    put(cache, 4, "a", {"keep": "yes"})  # enters again
    delete(cache, 5, "a")
    assert seen(first) == [("ADDED", "a", 2)]
    assert seen(await drain(w)) == [("DELETED", "a", 3), ("ADDED", "a", 4), ("DELETED", "a", 5)]
    _, replay = watch(cache, 1, keep)
    assert seen(replay) == [("ADDED", "a", 2), ("DELETED", "a", 3), ("ADDED", "a", 4), ("DELETED", "a", 5)]


async def test_a_watcher_too_slow_is_closed_and_its_stream_ends():
    """A full queue must still end the stream (it used to wait for timeoutSeconds)."""
    cache = WatchCache(None, queue_length=3)   # type: ignore[arg-type]
    w, _ = watch(cache, None)
    for rev in range(2, 6):   # one more than the queue holds, while the stream is busy writing
        put(cache, rev, f"cm{rev}")
    assert w.closed
    far = asyncio.get_running_loop().time() + 3600
    assert await asyncio.wait_for(w.next_batch(far), 1) is None
    put(cache, 6, "late")   # nothing more is queued for it
    assert not w.pending


async def test_closing_wakes_a_stream_waiting_for_events():
    """stop() and relists close watchers; a stream blocked waiting must end promptly."""
    cache = WatchCache(None)   # type: ignore[arg-type]
    w, _ = watch(cache, None)
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(w.next_batch(loop.time() + 3600))
    await until_waiting(w)
    put(cache, 2, "a")
    assert seen(await asyncio.wait_for(waiting, 1)) == [("ADDED", "a", 2)]
    waiting = asyncio.create_task(w.next_batch(loop.time() + 3600))
    await until_waiting(w)
    await cache.stop()
    assert await asyncio.wait_for(waiting, 1) is None


async def test_batches_are_bounded_and_the_deadline_ends_an_idle_wait():
    cache = WatchCache(None)   # type: ignore[arg-type]
    w, _ = watch(cache, None)
    for rev in range(2, 12):
        put(cache, rev, f"cm{rev}")
    loop = asyncio.get_running_loop()
    assert [len(await w.next_batch(loop.time(), 4)) for _ in range(3)] == [4, 4, 2]
    assert await asyncio.wait_for(w.next_batch(loop.time() + 0.05), 1) == []

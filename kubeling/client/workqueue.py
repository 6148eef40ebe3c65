"""A de-duplicating work queue with per-key exponential back-off (client-go's rate-limiting queue)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Awaitable, Callable

from .metrics import (WORKQUEUE_ADDS, WORKQUEUE_DEPTH, WORKQUEUE_QUEUE_DURATION, WORKQUEUE_RETRIES,
                      WORKQUEUE_WORK_DURATION)

log = logging.getLogger("kubeling.workqueue")


class WorkQueue:
    def __init__(self, name: str = "", base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self.name = name
        self.base_delay, self.max_delay = base_delay, max_delay
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._wakeup = asyncio.Event()
        self._added_at: dict[str, float] = {}
        self.m_adds, self.m_depth = WORKQUEUE_ADDS.labels(name), WORKQUEUE_DEPTH.labels(name)
        self.m_queue, self.m_work = WORKQUEUE_QUEUE_DURATION.labels(name), WORKQUEUE_WORK_DURATION.labels(name)
        self.m_retries = WORKQUEUE_RETRIES.labels(name)

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        self.m_adds.inc()
        self._added_at.setdefault(key, time.monotonic())
        if key not in self._processing:
            self._queue.append(key)
            self.m_depth.set(len(self._queue))
            self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
        else:
            asyncio.get_running_loop().call_later(delay, self.add, key)

    def add_rate_limited(self, key: str) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.m_retries.inc()
        self.add_after(key, min(self.max_delay, self.base_delay * (2 ** n)))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        while not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        self.m_depth.set(len(self._queue))
        added = self._added_at.pop(key, None)
        if added is not None:
            self.m_queue.observe(time.monotonic() - added)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wakeup.set()


async def run_workers(queue: WorkQueue, sync: Callable[[str], Awaitable[None]], workers: int = 2) -> None:
    """Process keys forever: success forgets the key's back-off, failure re-queues it with back-off."""
    async def worker() -> None:
        while True:
            key = await queue.get()
            started = time.monotonic()
            try:
                await sync(key)
                queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("%s: syncing %s failed: %s", queue.name, key, e)
                queue.add_rate_limited(key)
            finally:
                queue.m_work.observe(time.monotonic() - started)
                queue.done(key)
    await asyncio.gather(*(worker() for _ in range(workers)))

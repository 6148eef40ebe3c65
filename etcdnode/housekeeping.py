"""Leader-only duties: expiring leases and auto-compaction, both decided here and written into the log."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque

from .errors import EtcdError
from .mvcc import MVCCStore
from .raft import RaftNode

log = logging.getLogger("etcdnode.housekeeping")


def parse_retention(value: str, mode: str) -> float:
    """etcd's --auto-compaction-retention: hours (periodic) or revisions, or a Go duration like 5m."""
    value = value.strip()
    if not value or value == "0":
        return 0.0
    if mode == "revision":
        return float(int(value))
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value) * 3600
    return parse_duration(value)


def parse_duration(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {value!r}")
    return sum(float(n) * units[u] for n, u in parts)


class Housekeeper:
    def __init__(self, store: MVCCStore, raft: RaftNode, retention: float, mode: str) -> None:
        self.store = store
        self.raft = raft
        self.retention = retention
        self.mode = mode
        self._samples: deque[tuple[float, int]] = deque()
        self._tasks: list[asyncio.Task] = []
        raft.on_become_leader.append(self._became_leader)

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._leases()))
        if self.retention > 0:
            self._tasks.append(asyncio.create_task(self._compactor()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _became_leader(self) -> None:
        self._samples.clear()

        async def refresh() -> None:
            try:
                await self.raft.submit(("lease_refresh",))
            except EtcdError as e:
                log.warning("lease refresh after election failed: %s", e.message)

        asyncio.ensure_future(refresh())

    async def _leases(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if not self.raft.is_leader():
                continue
            with self.store.lock:
                expired = self.store.expired_leases(time.time())
            if expired:
                try:
                    await self.raft.submit(("lease_expire", expired[:1000]))
                except EtcdError as e:
                    log.warning("lease expiry failed: %s", e.message)

    async def _compactor(self) -> None:
        interval = min(max(self.retention / 10, 0.5), 300.0) if self.mode == "periodic" else 60.0
        while True:
            await asyncio.sleep(interval)
            if not self.raft.is_leader():
                self._samples.clear()
                continue
            with self.store.lock:
                rev, compacted = self.store.revision, self.store.compact_revision
            now = time.monotonic()
            if self.mode == "revision":
                target = rev - int(self.retention)
            else:
                self._samples.append((now, rev))
                target = 0
                while self._samples and now - self._samples[0][0] >= self.retention:
                    target = self._samples.popleft()[1]
            if target > compacted:
                try:
                    await self.raft.submit(("compact", target))
                    log.info("compacted to revision %d", target)
                except EtcdError as e:
                    log.warning("auto-compaction to %d failed: %s", target, e.message)

"""An event recorder that aggregates repeats (count, lastTimestamp) like Kubernetes' recorder.

Like client-go's broadcaster, events are best-effort: they wait in a bounded queue (1,000) that
drops new events when full, and one sink task writes them in order, so a burst of events never
competes with the writes a controller exists for (and repeats are aggregated without races)."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

from kubeling.api.resources import lookup

from .rest import ApiError, Client

log = logging.getLogger("kubeling.events")
EVENTS = lookup("", "v1", "events")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


MAX_QUEUED_EVENTS = 1000   # client-go's maxQueuedEvents


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "") -> None:
        self.client, self.component, self.host = client, component, host
        self._seen: dict[tuple, dict] = {}
        self._queue: asyncio.Queue[tuple[dict, str, str, str]] = asyncio.Queue(MAX_QUEUED_EVENTS)
        self._sink: asyncio.Task | None = None
        self.dropped = 0

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record without waiting (an event must never slow a controller down)."""
        if self._sink is None:
            self._sink = asyncio.create_task(self._run_sink())
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1
            log.debug("event queue full: dropped %s for %s", reason, (obj.get("metadata") or {}).get("name"))

    async def _run_sink(self) -> None:
        while True:
            await self._record(*await self._queue.get())

    async def _record(self, obj: dict, type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        ref = {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
               "uid": meta.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
               "resourceVersion": meta.get("resourceVersion", "")}
        key = (ref["uid"], ref["kind"], type_, reason, message)
        now = _now()
        try:
            prev = self._seen.get(key)
            if prev is not None:
                count = prev.get("count", 1) + 1
                ev = await self.client.patch(EVENTS, prev["metadata"]["name"], {"count": count, "lastTimestamp": now},
                                             ns)
            else:
                ev = await self.client.create(EVENTS, {
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": f"{ref['name']}.{time.time_ns():x}", "namespace": ns},
                    "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                    "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                    "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                    "reportingComponent": self.component, "reportingInstance": self.host}, ns)
            self._seen[key] = ev
            if len(self._seen) > 4096:
                self._seen.pop(next(iter(self._seen)))
        except ApiError as e:
            if e.not_found:
                self._seen.pop(key, None)
            log.debug("event %s for %s/%s not recorded: %s", reason, ns, ref["name"], e)

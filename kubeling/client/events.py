"""An event recorder that aggregates repeats (count, lastTimestamp) like Kubernetes' recorder."""
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


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "") -> None:
        self.client, self.component, self.host = client, component, host
        self._seen: dict[tuple, dict] = {}
        self._tasks: set[asyncio.Task] = set()

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record without waiting (an event must never slow a controller down)."""
        t = asyncio.create_task(self._record(obj, type_, reason, message))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

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

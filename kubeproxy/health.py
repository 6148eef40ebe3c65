"""kube-proxy's /healthz and /livez, as upstream's proxier health server
(pkg/proxy/healthcheck/proxier_health.go): healthy unless a change has been waiting longer than the
timeout (2 x --sync-period, as upstream) for a sync that puts it into the kernel; /healthz also
says whether this node is eligible for traffic (not being deleted, no cluster-autoscaler
ToBeDeleted taint), /livez does not."""
from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
ASGI = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def go_time(t: float | None) -> str:
    """A timestamp as Go's time.Time prints it (upstream's body has `%q` of one); the zero time for never."""
    if t is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")


class ProxierHealth:
    """The proxier tells it about queued changes and finished syncs; the handlers read it."""

    def __init__(self, timeout: float, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self.timeout, self.clock = timeout, clock
        self.last_updated: float | None = None
        self.oldest_pending: float | None = None    # the first change not yet in the kernel
        self.syncing = False
        self.queued_in_sync: float | None = None    # the first change queued after the running sync began
        self.node_eligible = True                   # until the Node says otherwise, as upstream
        self.m_codes = {path: Counter(f"kubeproxy_proxy_{path[1:]}", f"Cumulative proxy {path[1:]} HTTP status",
                                      ["code"], registry=registry) for path in ("/healthz", "/livez")}

    def queued_update(self) -> None:
        """A change the rules do not reflect yet."""
        now = self.clock()
        if self.oldest_pending is None:
            self.oldest_pending = now
        if self.syncing and self.queued_in_sync is None:
            self.queued_in_sync = now

    def sync_started(self) -> None:
        """A sync took its snapshot of the informers: changes queued from now on are not in it."""
        self.syncing, self.queued_in_sync = True, None

    def updated(self) -> None:
        """The sync succeeded: what was pending when it began is live (upstream's Updated)."""
        self.oldest_pending, self.syncing = self.queued_in_sync, False
        self.last_updated = self.clock()

    def sync_failed(self) -> None:
        self.syncing = False

    def sync_node(self, node: dict) -> None:
        """Upstream's SyncNode (for adds, updates and deletes alike): not eligible while being
        deleted or tainted ToBeDeleted."""
        self.node_eligible = not node["metadata"].get("deletionTimestamp") and not any(
            t.get("key") == TO_BE_DELETED_TAINT for t in (node.get("spec") or {}).get("taints") or ())

    def healthy(self) -> tuple[bool, float]:
        """(no change has waited longer than the timeout, now)."""
        now = self.clock()
        return self.oldest_pending is None or now - self.oldest_pending < self.timeout, now

    def answer(self, path: str) -> tuple[int, bytes]:
        """Status and JSON body of /healthz or /livez. A healthy answer's lastUpdated is the current
        time, as upstream's (older releases reported the last sync loop run there)."""
        healthy, now = self.healthy()
        body: dict[str, Any] = {}
        if path == "/healthz":
            healthy = healthy and self.node_eligible
        body["lastUpdated"], body["currentTime"] = go_time(now if healthy else self.last_updated), go_time(now)
        if path == "/healthz":
            body["nodeEligible"] = self.node_eligible
        code = 200 if healthy else 503
        self.m_codes[path].labels(str(code)).inc()
        return code, json.dumps(body).encode()

    def serve_on(self, app: ASGI) -> ASGI:
        """`app` (the component's metrics endpoint) with /healthz and /livez answered from here."""
        async def wrapped(scope: dict, receive: Callable[[], Awaitable[dict]],
                          send: Callable[[dict], Awaitable[None]]) -> None:
            if scope["type"] != "http" or scope["path"] not in self.m_codes:
                return await app(scope, receive, send)
            code, body = self.answer(scope["path"])
            await send({"type": "http.response.start", "status": code,
                        "headers": [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        return wrapped

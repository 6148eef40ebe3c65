"""Namespace controller: a Terminating namespace is emptied of every namespaced kind (built-in, and the
custom ones discovery lists), then finalized."""
from __future__ import annotations

from kubeling.api.resources import RESOURCES, lookup
from kubeling.client import ApiError
from kubeling.client.discovery import custom_resources

from .base import Controller

NAMESPACES = lookup("", "v1", "namespaces")
# one served version per stored kind (views sharing storage would delete the same objects twice)
NAMESPACED = [r for r in RESOURCES if r.namespaced and not r.converted and "deletecollection" in r.verbs]


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.namespaces = self.factory.get(NAMESPACES)
        self.namespaces.add_handler(*self.enqueue_handlers())

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        name = ns["metadata"]["name"]
        remaining = 0
        custom = [r for r in await custom_resources(self.client) if r.namespaced and "deletecollection" in r.verbs]
        for r in NAMESPACED + custom:
            try:
                body = await self.client.list(r, name)
                if body.get("items"):
                    remaining += len(body["items"])
                    await self.client.request("DELETE", self.client.url(r, name))
            except ApiError as e:
                if e.code not in (404, 405):
                    raise
        if remaining:
            self.queue.add_after(key, 1.0)   # pods terminate gracefully; look again
            return
        if (ns.get("spec") or {}).get("finalizers"):
            body = {**ns, "spec": {**ns.get("spec", {}), "finalizers": []}}
            try:
                await self.client.update(NAMESPACES, body, sub="finalize")
            except ApiError as e:
                if not e.not_found:
                    raise

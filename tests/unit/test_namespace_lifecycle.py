"""NamespaceLifecycle against a lagging watch cache: a namespace the store already holds is waited for,
never reported missing (a CI run saw a 404 for a create right after its namespace's)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from apiserver import admission
from kubeling.api.errors import StatusError
from apiserver.handlers import Handler

NS = {"metadata": {"name": "fresh"}, "status": {"phase": "Active"}}


class Store:
    def __init__(self, objects: dict):
        self.objects = objects

    async def get(self, key: str) -> dict | None:
        return self.objects.get(key)

    async def current_revision(self) -> int:
        return 7


class LaggingCache:
    """Holds nothing until someone waits for the store's revision, as a watch cache a moment behind."""
    def __init__(self, store: Store):
        self.store, self.items, self.waited = store, {}, []

    def get(self, key: str) -> dict | None:
        return self.items.get(key)

    async def wait_for(self, rev: int, timeout: float) -> bool:
        self.waited.append(rev)
        self.items.update(self.store.objects)
        return True


def request(namespace: str) -> SimpleNamespace:
    return SimpleNamespace(resource=SimpleNamespace(namespaced=True), namespace=namespace)


def test_a_namespace_in_the_store_but_not_yet_the_cache_is_waited_for():
    store = Store({"/registry/namespaces/fresh": NS})
    cache = LaggingCache(store)
    asyncio.run(Handler(store, cache, None)._namespace_visible(request("fresh")))
    assert cache.waited == [7]
    admission.check_namespace(cache, "fresh")


def test_a_missing_namespace_is_still_not_found():
    store = Store({})
    cache = LaggingCache(store)
    asyncio.run(Handler(store, cache, None)._namespace_visible(request("gone")))
    assert cache.waited == []
    with pytest.raises(StatusError) as e:
        admission.check_namespace(cache, "gone")
    assert e.value.code == 404

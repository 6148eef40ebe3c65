"""Admission plugins that need the cluster's state (upstream's LimitRanger, Priority, ResourceQuota...).

Each module in this package defines `PLUGIN`, an object with `name`, `order` (upstream's plugin order: lower
runs first), `resources` ((group, plural) pairs it admits; empty for every resource) and
`async admit(attrs)`, which may change `attrs.obj` (mutating) and raises a StatusError to refuse. The handler
runs the chain after defaulting and before validation and storage. Adding a plugin is adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubeling.api.resources import Resource


@dataclass
class Attributes:
    operation: str               # CREATE, UPDATE or DELETE
    resource: Resource
    subresource: str | None
    namespace: str | None
    name: str
    obj: dict | None             # the object to be stored (None on DELETE)
    old: dict | None             # the stored object (None on CREATE)
    dry_run: bool
    cache: Any                   # apiserver.watchcache.WatchCache: get(key), list(prefix, namespace)
    storage: Any                 # apiserver.storage.Storage: get/create/update with revisions
    user: Any = None
    warnings: list[str] = field(default_factory=list)


class Plugin(Protocol):
    name: str
    order: int
    resources: frozenset[tuple[str, str]]

    async def admit(self, attrs: Attributes) -> None: ...


def load() -> list[Plugin]:
    """Every plugin module of this package, in upstream's order."""
    found = [importlib.import_module(f"{__name__}.{m.name}").PLUGIN for m in pkgutil.iter_modules(__path__)]
    return sorted(found, key=lambda p: p.order)


async def admit(plugins: list[Plugin], attrs: Attributes) -> None:
    key = (attrs.resource.group, attrs.resource.plural)
    for p in plugins:
        if not p.resources or key in p.resources:
            await p.admit(attrs)

"""Admission plugins that need the cluster's state (upstream's LimitRanger, Priority, ResourceQuota...).

Each module in this package defines `PLUGIN`, an object with `name`, `order` (upstream's plugin order: lower
runs first), `resources` ((group, plural) pairs it admits; empty for every resource), `validating` (True for
plugins that only judge the final object, such as ResourceQuota) and `async admit(attrs)`, which may change
`attrs.obj` and raises a StatusError to refuse; a plugin that books something on admission (a quota charge)
also has `async release(attrs)`, called when the admitted object is then not stored. As upstream, a create runs the mutating plugins after
defaulting, then the object's validation, then the validating plugins, so a quota is charged only for an
object that is valid. Adding a plugin is adding a module.
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
    validating: bool

    async def admit(self, attrs: Attributes) -> None: ...


def load() -> list[Plugin]:
    """Every plugin module of this package, in upstream's order."""
    found = [importlib.import_module(f"{__name__}.{m.name}").PLUGIN for m in pkgutil.iter_modules(__path__)]
    return sorted(found, key=lambda p: p.order)


async def admit(plugins: list[Plugin], attrs: Attributes, validating: bool | None = None) -> None:
    """Run the plugins for attrs: the mutating ones, the validating ones, or (None) all in order."""
    key = (attrs.resource.group, attrs.resource.plural)
    for p in plugins:
        if (validating is None or getattr(p, "validating", False) == validating) and (not p.resources or key in p.resources):
            await p.admit(attrs)


async def release(plugins: list[Plugin], attrs: Attributes) -> None:
    """An admitted create was not stored: plugins that booked something for it give it back."""
    key = (attrs.resource.group, attrs.resource.plural)
    for p in plugins:
        if hasattr(p, "release") and (not p.resources or key in p.resources):
            await p.release(attrs)

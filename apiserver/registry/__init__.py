"""Per-kind behaviour of the one generic store (upstream's pkg/registry: a strategy per kind).

`Strategy` is a kind with nothing special: defaults, validation and version conversion from the tables in
apiserver.api, the status kept apart from the main resource when the kind has a status subresource, generic
finalizer deletion, spec.replicas scale. A kind that needs more has a module in this package whose
`STRATEGIES` maps (group, plural) to a Strategy subclass; custom resources register theirs at run time
(`register`). The handler asks `strategy_for(resource)` and never branches on a kind.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from apiserver.api import conversion, defaults, validation
from kubeling.api.errors import bad_request, invalid_error
from kubeling.api.resources import Resource, storage_resource
from kubeling.api.selectors import selector_to_string

from ..codec import deepcopy

if TYPE_CHECKING:
    from ..handlers import Handler
    from ..request import Reply, Request

DeleteStep = Literal["unchanged", "update", "delete"]

_now: list = [0, ""]


def now_rfc3339() -> str:
    """Second-resolution RFC 3339 'now', formatted once per second (it is on every write)."""
    t = int(time.time())
    if t != _now[0]:
        _now[0], _now[1] = t, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    return _now[1]


class Strategy:
    """The default behaviour; subclasses override the hooks their kind needs."""
    create_on_update = False      # PUT of a missing object creates it (endpoints, leases, events)
    # A kind with no storage (componentstatuses, tokenreviews, metrics.k8s.io), as upstream's custom REST
    # storages: an object with `async get(namespace, name)`, `async list(namespace)` and/or
    # `async create(body)`, and a `warning` ("" for none); set by `serve_computed`.
    rest: Any = None

    def __init__(self, resource: Resource) -> None:
        self.resource = resource

    # ---- versions, defaults, validation -------------------------------------
    def from_storage(self, obj: dict) -> dict:
        """The served form: stored objects carry their version's zero fields already, a converted view
        gets its own (autoscaling/v1 requires `status.currentReplicas`, v2 omits a zero one)."""
        r = self.resource
        if r.converted:
            out = conversion.from_storage(r, obj)
            defaults.fill_zero_fields(r.api_version, r.kind, out)
            return out
        return obj

    def to_storage(self, obj: dict) -> dict:
        return conversion.to_storage(self.resource, obj) if self.resource.converted else obj

    def apply_defaults(self, obj: dict) -> None:
        """Objects are defaulted and validated in their storage version."""
        defaults.apply_defaults(storage_resource(self.resource), obj)

    def validate(self, obj: dict, old: dict | None) -> None:
        causes = validation.validate(storage_resource(self.resource), obj, old)
        if causes:
            r = self.resource
            raise invalid_error(r.group, r.kind, obj.get("metadata", {}).get("name", ""), causes)

    def unknown_fields(self, obj: dict) -> list[str]:
        from apiserver.api import openapi
        return openapi.unknown_fields(self.resource.api_version, self.resource.kind, obj)

    def prune_unknown(self, obj: dict, mode: str) -> list[str]:
        """Drop fields the schema does not know (Kubernetes' decoder ignores them); Strict rejects them."""
        unknown = self.unknown_fields(obj)
        if not unknown:
            return []
        msgs = [f'unknown field "{p.lstrip(".")}"' for p in unknown]
        if mode == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(msgs))
        for p in unknown:
            _delete_path(obj, p)
        return msgs

    def to_table(self, objs: list[dict], now: Any, include_object: str, list_meta: dict | None) -> dict:
        """The meta.k8s.io Table `kubectl get` prints: the kind's columns as upstream's printers."""
        from apiserver.api import tables
        return tables.to_table(self.resource, objs, now, include_object, list_meta)

    # ---- create and update ----------------------------------------------------
    def admit(self, obj: dict) -> None:
        """Built-in, state-free admission run before defaults (pods: the service account token volume)."""

    def prepare_for_create(self, obj: dict, user: dict | None = None) -> None:
        """After defaults, before validation; user is the requester (username, uid, groups, extra)."""

    def prepare_for_update(self, new: dict, old: dict, sub: str | None) -> dict:
        """What a write through the main resource or a subresource may change: a status write changes only
        the status, a main-resource write never the status (when the kind has a status subresource)."""
        if sub == "status":
            merged = deepcopy(old)
            merged["status"] = new.get("status", {})
            return merged
        if "status" in self.resource.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    # ---- objects that own extra store keys (service addresses) -----------------
    def claimed_keys(self, obj: dict) -> set[str]:
        """Store keys the object holds besides its own, released with it."""
        return set()

    def allocate(self, handler: Handler, new: dict, old: dict | None, taken: set[str]) -> tuple[dict, list]:
        """(keys to write with the object, keys to release) for a create (old None) or main-resource update."""
        return {}, []

    def key_taken(self, obj: dict, key: str) -> None:
        """Another writer holds `key`: forget the choice that needed it so allocation picks again."""

    # ---- delete -----------------------------------------------------------------
    def check_delete(self, name: str) -> None:
        """Refuse deleting objects that must exist."""

    def grace_period(self, obj: dict, opts: dict) -> int | None:
        """Seconds the object lingers after a delete (graceful deletion), None to remove it at once."""
        return None

    def mark_for_deletion(self, new: dict, current: dict, finalizers: list[str], grace: int | None,
                          now: Any) -> DeleteStep:
        """Set deletionTimestamp and friends on `new` (a copy of `current`): "update" stores it, "delete"
        removes the object now, "unchanged" answers with the current object."""
        nmeta, meta = new["metadata"], current["metadata"]
        if not finalizers and not grace:
            return "delete"
        if nmeta.get("deletionTimestamp") and not grace and finalizers == list(meta.get("finalizers") or []):
            return "unchanged"
        if not nmeta.get("deletionTimestamp") or (grace is not None and grace < (nmeta.get("deletionGracePeriodSeconds") or 0)):
            nmeta["deletionTimestamp"] = (now + timedelta(seconds=grace or 0)).strftime("%Y-%m-%dT%H:%M:%SZ")
            nmeta["deletionGracePeriodSeconds"] = grace or 0
        if finalizers:
            nmeta["finalizers"] = finalizers
        return "update"

    def finished_deleting(self, obj: dict) -> bool:
        """Deletion started and nothing holds the object any more: remove it from storage."""
        meta = obj["metadata"]
        return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and not meta.get("deletionGracePeriodSeconds")

    # ---- subresources -------------------------------------------------------------
    async def create_subresource(self, handler: Handler, req: Request) -> Reply | None:
        """POST to a subresource this kind implements (pods/binding...); None when it has none by that name."""
        return None

    def scale_of(self, obj: dict) -> dict:
        """The autoscaling/v1 Scale of an object with a scale subresource."""
        meta = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in meta},
                "spec": {"replicas": spec.get("replicas", 0)},
                "status": {"replicas": status.get("replicas", 0), "selector": self.scale_selector(obj)}}

    def scale_selector(self, obj: dict) -> str:
        return selector_to_string((obj.get("spec") or {}).get("selector"))

    def replicas(self, obj: dict) -> Any:
        return (obj.get("spec") or {}).get("replicas")

    def set_replicas(self, obj: dict, replicas: Any) -> None:
        obj.setdefault("spec", {})["replicas"] = replicas


def _delete_path(obj: Any, path: str) -> None:
    """Remove `.a.b[2].c`; keys may themselves contain dots or brackets, so match real keys."""
    _del_key(obj, path[1:] if path.startswith(".") else path)


def _del_key(cur: Any, rest: str) -> bool:
    if not isinstance(cur, dict):
        return False
    if rest in cur:
        cur.pop(rest)
        return True
    for k in sorted(cur, key=len, reverse=True):
        if rest.startswith(k) and len(rest) > len(k) and rest[len(k)] in ".[" and _del_next(cur[k], rest[len(k):]):
            return True
    return False


def _del_next(cur: Any, rest: str) -> bool:
    if rest.startswith("."):
        return _del_key(cur, rest[1:])
    m = re.match(r"\[(\d+)\]", rest)
    if m and isinstance(cur, list) and int(m.group(1)) < len(cur) and m.end() < len(rest):
        return _del_next(cur[int(m.group(1))], rest[m.end():])
    return False


_KINDS: dict[tuple[str, str], type[Strategy]] = {}
_BY_RESOURCE: dict[Resource, Strategy] = {}


def _discover() -> None:
    for m in pkgutil.iter_modules(__path__):
        _KINDS.update(getattr(importlib.import_module(f"{__name__}.{m.name}"), "STRATEGIES", {}))


def strategy_for(r: Resource) -> Strategy:
    s = _BY_RESOURCE.get(r)
    if s is None:
        if not _KINDS:
            _discover()
        s = _BY_RESOURCE[r] = _KINDS.get((r.storage_group, r.storage_plural), Strategy)(r)
    return s


def register(r: Resource, strategy: Strategy) -> None:
    """A kind defined at run time (a custom resource)."""
    _BY_RESOURCE[r] = strategy


def serve_computed(r: Resource, rest: Any) -> None:
    """Serve r from `rest` (computed on each request from this apiserver's state) instead of the store."""
    s = Strategy(r)
    s.rest = rest
    register(r, s)


def unregister(r: Resource) -> None:
    _BY_RESOURCE.pop(r, None)

"""The one generic REST handler: every verb of every kind in the resource table.

Kind-specific behaviour comes from the resource row and the kind's strategy (apiserver/registry),
never from a branch here.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import posixpath
import random
import uuid
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

import orjson

from kubeling.api import errors as E
from kubeling.api.errors import StatusError, bad_request
from kubeling.api.gofmt import go_syntax
from kubeling.api.resources import Resource
from kubeling.api.selectors import parse_field_selector, parse_label_selector

from . import admission, plugins
from .codec import PATCH_TYPES, decode_body, deepcopy, media_type
from .request import Reply, Request, check_dry_run
from .registry import now_rfc3339, strategy_for
from .storage import KeyExists, KeyMissing, StaleRevision, Storage
from .watchcache import TooOld, WatchCache

log = logging.getLogger("apiserver.handlers")

NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _gen_suffix() -> str:
    return "".join(random.choice(NAME_CHARS) for _ in range(5))


def _status_success(r: Resource, name: str, uid: str | None = None, code: int = 200) -> dict:
    details: dict[str, Any] = {"name": name, "kind": r.plural}
    if r.group:
        details["group"] = r.group
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _int_param(req: Request, name: str) -> int | None:
    v = req.q(name)
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{v}" is not an integer') from None


def _encode_continue(rv: int, start_key: str, prefix: str) -> str:
    tok = {"v": "meta.k8s.io/v1", "rv": rv, "start": start_key[len(prefix):] + "\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(tok)).decode().rstrip("=")


def _decode_continue(tok: str, prefix: str) -> tuple[int, str]:
    try:
        d = orjson.loads(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))
        if d.get("v") != "meta.k8s.io/v1" or not isinstance(d.get("rv"), int) or not isinstance(d.get("start"), str):
            raise ValueError
    except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from None
    # A start key may not climb out of the listed prefix (upstream cleans it as a path).
    key = d["start"] if d["start"].startswith("/") else "/" + d["start"]
    if not d["start"] or posixpath.normpath(key) != key:
        raise bad_request(f"continue key is not valid: {d['start']}")
    return d["rv"], prefix + key[1:]


class Handler:
    def __init__(self, storage: Storage, cache: WatchCache, allocator: admission.ServiceAllocator,
                 table_fn: Callable | None = None, proxy: Any = None):
        self.storage = storage
        self.cache = cache
        self.alloc = allocator
        self.proxy = proxy
        self._event_memo: dict[tuple, tuple[dict, bytes]] = {}
        self.sa_signer = None     # ServiceAccount token signing key (set by the cli)
        self.sa_issuer = "https://kubernetes.default.svc.cluster.local"
        self.sa_audiences = [self.sa_issuer]   # --api-audiences: what a TokenRequest without audiences gets
        self.plugins = plugins.load()

    # ---- helpers ------------------------------------------------------------
    def _key(self, req: Request, name: str | None = None) -> str:
        return req.resource.key(req.namespace, name or req.name or "")

    def not_found(self, req: Request, name: str | None = None) -> StatusError:
        return E.not_found(req.resource.group, req.resource.plural, name or req.name or "")

    def _out(self, req: Request, obj: dict) -> dict:
        return strategy_for(req.resource).from_storage(obj)

    def _render_one(self, req: Request, obj: dict) -> Any:
        out = self._out(req, obj)
        if req.target.form == "table":
            return strategy_for(req.resource).to_table([out], datetime.now(timezone.utc), req.q("includeObject") or "PartialObjectMetadata",
                                   {"resourceVersion": out.get("metadata", {}).get("resourceVersion", "")})
        if req.target.form == "partial":
            return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{req.target.table_version}",
                    "metadata": out.get("metadata", {})}
        return out

    async def current(self, req: Request, name: str | None = None, fresh: bool = False,
                       shared: bool = False) -> dict | None:
        """The stored object, from the watch cache unless fresh; shared: the cache's own dict,
        which the caller must not modify."""
        key = self._key(req, name)
        if not fresh:
            cached = self.cache.get(key)
            if cached is not None:
                return cached if shared else deepcopy(cached)
        return await self.storage.get(key)

    # ---- reads --------------------------------------------------------------
    async def get(self, req: Request) -> Reply:
        sub = req.subresource
        if sub in ("log", "exec", "attach", "portforward", "proxy"):
            return await self.proxy.handle(req, self)
        rest = strategy_for(req.resource).rest
        if rest is not None:
            req.warnings.extend(w for w in (rest.warning,) if w)
            return Reply(200, self._render_one(req, await rest.get(req.namespace, req.name or "")))
        obj = None
        if req.q("resourceVersion") == "0":
            cached = self.cache.get(self._key(req))
            obj = deepcopy(cached) if cached else None
        if obj is None:
            obj = await self.storage.get(self._key(req))
        if obj is None:
            raise self.not_found(req)
        if sub == "scale":
            return Reply(200, self._scale_of(req, obj))
        return Reply(200, self._render_one(req, obj))

    def _filters(self, req: Request) -> Callable[[dict], bool] | None:
        ls = parse_label_selector(req.q("labelSelector"))
        fs = parse_field_selector(req.q("fieldSelector"), req.resource.plural)
        if not ls and not fs:
            return None
        return lambda o: ls.matches(o.get("metadata", {}).get("labels")) and fs.matches(o)

    def _list_meta_params(self, req: Request) -> tuple[str, str, int | None, str]:
        rv, match = req.q("resourceVersion"), req.q("resourceVersionMatch")
        limit = _int_param(req, "limit")
        cont = req.q("continue")
        if match and not rv:
            raise bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
        if match and match not in ("Exact", "NotOlderThan"):
            raise bad_request(f'resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"')
        if cont and rv:
            raise bad_request("specifying resource version is not allowed when using continue")
        if rv:
            try:
                int(rv)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv}"') from None
        if match == "Exact" and rv == "0":
            raise bad_request('resourceVersionMatch "Exact" is forbidden for resourceVersion "0"')
        return rv, match, limit, cont

    async def list(self, req: Request) -> Reply:
        if req.flag("watch"):
            return await self.watch(req)
        r = req.resource
        rest = strategy_for(r).rest
        if rest is not None:
            req.warnings.extend(w for w in (rest.warning,) if w)
            accept = self._filters(req)
            items = [o for o in await rest.list(req.namespace) if accept is None or accept(o)]
            return Reply(200, self._render_list(req, items, {}))
        rv, match, limit, cont = self._list_meta_params(req)
        accept = self._filters(req)
        prefix = r.key_prefix + (f"{req.namespace}/" if r.namespaced and req.namespace else "")
        items: list[dict]
        meta: dict[str, Any] = {}
        if cont or (limit and limit > 0 and rv != "0") or match == "Exact":
            items, meta = await self._list_etcd(req, prefix, rv, limit, cont, accept)
        else:
            items, list_rev = await self._list_cache(req, rv)
            if accept is not None:
                items = [o for o in items if accept(o)]
            meta["resourceVersion"] = str(list_rev)
        if r.converted:
            st = strategy_for(r)
            items = [st.from_storage(o) for o in items]
        return Reply(200, self._render_list(req, items, meta))

    def _render_list(self, req: Request, items: list[dict], meta: dict) -> Any:
        r = req.resource
        if req.target.form == "table":
            return strategy_for(r).to_table(items, datetime.now(timezone.utc),
                                   req.q("includeObject") or "PartialObjectMetadata", meta)
        if req.target.form == "partial":
            return {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{req.target.table_version}",
                    "metadata": meta,
                    "items": [{"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{req.target.table_version}",
                               "metadata": o.get("metadata", {})} for o in items]}
        return {"kind": r.list_kind, "apiVersion": r.api_version, "metadata": meta, "items": items}

    async def _list_cache(self, req: Request, rv: str) -> tuple[list[dict], int]:
        ns = req.namespace if req.resource.namespaced else None
        if rv == "0":
            await self.cache.ready.wait()
        else:
            want = int(rv) if rv else await self.storage.current_revision()
            if not await self.cache.wait_for(want, 3.0 if rv else 1.0):
                if rv:
                    raise StatusError(504, "Timeout", f"Too large resource version: {rv}, current: {self.cache.rev}",
                                      details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                           "message": "Too large resource version"}],
                                               "retryAfterSeconds": 1})
                page = await self.storage.list(req.resource.key_prefix + (f"{ns}/" if ns else ""))
                return page.objects, page.revision
        return list(self.cache.list(req.resource.key_prefix, ns)), self.cache.rev

    async def _list_etcd(self, req: Request, prefix: str, rv: str, limit: int | None, cont: str,
                         accept: Callable | None) -> tuple[list[dict], dict]:
        revision = 0
        start = None
        if cont:
            revision, start = _decode_continue(cont, prefix)
        elif rv and rv != "0":
            revision = int(rv)
        items: list[dict] = []
        want = limit if limit and limit > 0 else 0
        meta: dict[str, Any] = {}
        while True:
            page = await self.storage.list(prefix, revision=revision, limit=(want - len(items) if want else 0) or 0,
                                           start=start)
            revision = page.revision
            for o in page.objects:
                if accept is None or accept(o):
                    items.append(o)
            if not page.more or (want and len(items) >= want):
                if page.more and page.last_key:
                    meta["continue"] = _encode_continue(revision, page.last_key, prefix)
                    if accept is None:
                        meta["remainingItemCount"] = page.remaining
                break
            start = page.last_key + "\x00"
        meta["resourceVersion"] = str(revision)
        return items, meta

    async def watch(self, req: Request) -> Reply:
        r = req.resource
        rv = req.q("resourceVersion")
        accept = self._filters(req)
        await self.cache.ready.wait()
        key_prefix = r.key_prefix + (f"{req.namespace}/" if r.namespaced and req.namespace else "")
        exact = False
        fs = parse_field_selector(req.q("fieldSelector"), r.plural)
        name = req.name or fs.exact("metadata.name")
        if name and (req.namespace or not r.namespaced):
            key_prefix, exact = r.key(req.namespace, name), True
        since: int | None = None
        initial = req.flag("sendInitialEvents")
        if rv and rv != "0":
            try:
                since = int(rv)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv}"') from None
        elif not rv:
            # "most recent": consistent with etcd before replaying the current state
            await self.cache.wait_for(await self.storage.current_revision(), 1.0)
        timeout = _int_param(req, "timeoutSeconds")
        if timeout is None:
            timeout = random.randint(1800, 3600)
        bookmarks = req.flag("allowWatchBookmarks")
        try:
            watcher, first = self.cache.watch(r.key_prefix, key_prefix, exact, accept, bookmarks, since, initial)
        except TooOld as e:
            status = StatusError(410, "Expired", f"too old resource version: {e.requested} ({e.oldest})").status()
            async def expired() -> AsyncIterator[bytes]:
                yield orjson.dumps({"type": "ERROR", "object": status}) + b"\n"
            return Reply(200, None, expired())
        return Reply(200, None, self._stream(req, watcher, first, timeout, initial))

    def _event_bytes(self, req: Request, typ: str, obj: dict | None, rev: int) -> bytes:
        r = req.resource
        if typ == "BOOKMARK" or obj is None:
            kind = r.kind
            api = r.api_version
            if req.target.form == "table":
                kind, api = "Table", f"meta.k8s.io/{req.target.table_version}"
            out: dict = {"kind": kind, "apiVersion": api, "metadata": {"resourceVersion": str(rev)}}
            if typ == "BOOKMARK-END":
                out["metadata"]["annotations"] = {"k8s.io/initial-events-end": "true"}
                typ = "BOOKMARK"
            return orjson.dumps({"type": typ, "object": out}) + b"\n"
        if req.target.form == "json" and not (req.resource.converted):
            key = (typ, id(obj), obj.get("metadata", {}).get("resourceVersion"))
            hit = self._event_memo.get(key)
            if hit is not None and hit[0] is obj:
                return hit[1]
            data = orjson.dumps({"type": typ, "object": obj}) + b"\n"
            if len(self._event_memo) > 4096:
                self._event_memo.clear()
            self._event_memo[key] = (obj, data)
            return data
        return orjson.dumps({"type": typ, "object": self._render_one(req, obj)}) + b"\n"

    async def _stream(self, req: Request, watcher, first: list[tuple], timeout: int, initial: bool) -> AsyncIterator[bytes]:
        """The replay, then live events, until `timeout` or until the cache closes the watcher
        (too slow, or relisted): the response then ends at once and the client re-watches."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        chunk = 256   # events per write: a replay of the whole history is not one huge buffer
        try:
            for i in range(0, len(first), chunk):
                if watcher.closed:
                    return
                yield b"".join(self._event_bytes(req, t, o, rev) for t, o, rev in first[i:i + chunk])
            if initial and not watcher.closed:   # at the replay's revision: live events may be queued
                yield self._event_bytes(req, "BOOKMARK-END", None, watcher.last_rev)
            while (batch := await watcher.next_batch(deadline, chunk)) is not None:
                if not batch:
                    if watcher.bookmarks:   # timed out: tell the client where to resume
                        yield self._event_bytes(req, "BOOKMARK", None, self.cache.rev)
                    return
                yield b"".join(self._event_bytes(req, *item) for item in batch)
        finally:
            self.cache.unwatch(watcher)

    # ---- object preparation -------------------------------------------------
    def decode(self, req: Request) -> dict:
        if len(req.body) == 0:
            raise bad_request("the body of the request was empty")
        obj = decode_body(req.body, req.content_type)
        return obj

    def _check_type(self, req: Request, obj: dict, expect_kind: str | None = None,
                    expect_api: str | None = None) -> None:
        r = req.resource
        kind = expect_kind or r.kind
        api = expect_api or r.api_version
        got_api, got_kind = obj.get("apiVersion"), obj.get("kind")
        if got_kind is not None and not isinstance(got_kind, str) or got_api is not None and not isinstance(got_api, str):
            raise bad_request("Object 'Kind' is missing or not a string")
        if got_api and got_api != api:
            raise bad_request(f"the API version in the data ({got_api}) does not match the expected API version ({api})")
        if got_kind and got_kind != kind:
            raise bad_request(f"the kind in the data ({got_kind}) does not match the expected kind ({kind})")
        rest = {k: obj.pop(k) for k in list(obj) if k not in ("apiVersion", "kind")}
        obj.pop("apiVersion", None), obj.pop("kind", None)
        obj["apiVersion"], obj["kind"] = api, kind
        obj.update(rest)
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise bad_request("metadata must be an object")

    def _check_namespace(self, req: Request, obj: dict) -> None:
        meta = obj["metadata"]
        if req.resource.namespaced:
            ns = meta.get("namespace")
            if ns and ns != req.namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = req.namespace
        else:
            meta.pop("namespace", None)

    def _field_validation(self, req: Request, obj: dict) -> None:
        mode = req.q("fieldValidation") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Strict", "Warn"')
        warnings = strategy_for(req.resource).prune_unknown(obj, mode)
        if mode == "Warn":
            req.warnings.extend(warnings)

    def _prepare_create(self, req: Request, obj: dict) -> dict:
        r, st = req.resource, strategy_for(req.resource)
        self._check_type(req, obj)
        self._check_namespace(req, obj)
        self._field_validation(req, obj)
        obj = st.to_storage(obj)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName") and isinstance(meta["generateName"], str):
            meta["name"] = meta["generateName"] + _gen_suffix()
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if r.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if r.namespaced:
            admission.check_namespace(self.cache, req.namespace or "")
        st.admit(obj)
        st.apply_defaults(obj)
        st.prepare_for_create(obj, req.user)
        self._managed(req, None, obj, "Update")
        return obj

    def _managed(self, req: Request, old: dict | None, new: dict, operation: str) -> None:
        from apiserver.api import managedfields
        managedfields.update_managed_fields(old, new, req.manager, operation, req.resource.api_version,
                                            now_rfc3339(),
                                            req.subresource if req.subresource in ("status", "scale", "ephemeralcontainers")
                                            else None)

    # ---- create -------------------------------------------------------------
    async def create(self, req: Request) -> Reply:
        check_dry_run(req)
        rest = strategy_for(req.resource).rest
        if rest is not None:   # a review answered from request data, never stored
            body = self.decode(req)
            self._check_type(req, body)
            return Reply(201, await rest.create(body))
        if req.subresource:
            return await self._create_subresource(req)
        obj = self.decode(req)
        await self._namespace_visible(req)
        obj = self._prepare_create(req, obj)
        return Reply(201, self._out(req, await self._store_new(req, obj)))

    async def _namespace_visible(self, req: Request) -> None:
        """A namespace created a moment ago (even through this apiserver) may not have reached the watch
        cache yet; like upstream's NamespaceLifecycle, a cache miss is checked live against the store and
        then waited for, so a create that follows an acknowledged namespace create never gets 404."""
        if not req.resource.namespaced or not req.namespace:
            return
        key = f"/registry/namespaces/{req.namespace}"
        if self.cache.get(key) is None and await self.storage.get(key) is not None:
            await self.cache.wait_for(await self.storage.current_revision(), 5.0)

    async def _admit(self, req: Request, operation: str, obj: dict | None, old: dict | None,
                     validating: bool | None = None) -> None:
        """The state-dependent admission plugins (apiserver/plugins) for this request."""
        if self.plugins:
            await plugins.admit(self.plugins, self._attributes(req, operation, obj, old), validating)

    def _attributes(self, req: Request, operation: str, obj: dict | None, old: dict | None) -> plugins.Attributes:
        return plugins.Attributes(operation, req.resource, req.subresource, req.namespace,
                                  (obj or old or {}).get("metadata", {}).get("name", ""), obj, old, req.dry_run,
                                  self.cache, self.storage, req.user, req.warnings)

    async def _store_new(self, req: Request, obj: dict) -> dict:
        """Admit, validate and write an object _prepare_create made (mutating admission may change it first)."""
        r, st = req.resource, strategy_for(req.resource)
        name = obj["metadata"].get("name") or ""
        if self.cache.get(r.key(req.namespace, name)) is not None:   # refused before a quota is charged for it
            raise E.already_exists(r.group, r.plural, name)
        await self._admit(req, "CREATE", obj, None, validating=False)
        st.validate(obj, None)
        await self._admit(req, "CREATE", obj, None, validating=True)
        key = r.key(req.namespace, name)
        stored = obj
        taken: set[str] = set()
        # keys the client asked for (a service's address): when another apiserver got one first, allocate()
        # must report it as already allocated rather than this loop quietly picking another
        requested = st.claimed_keys(obj)
        for attempt in range(8):
            extra, _ = st.allocate(self, stored, None, taken)
            if req.dry_run:
                return stored
            try:
                return await self.storage.create(key, stored, extra)
            except KeyExists as e:
                if str(e) == key:
                    if self.plugins:
                        await plugins.release(self.plugins, self._attributes(req, "CREATE", obj, None))
                    raise E.already_exists(r.group, r.plural, name) from None
                taken.add(str(e))
                if str(e) not in requested:
                    st.key_taken(stored, str(e))
        raise StatusError(409, "Conflict", "failed to allocate a unique address for the service; try again")

    async def _create_subresource(self, req: Request) -> Reply:
        reply = await strategy_for(req.resource).create_subresource(self, req)
        if reply is not None:
            return reply
        if req.subresource in ("exec", "attach", "portforward"):
            return await self.proxy.handle(req, self)
        raise E.generic_method_not_allowed()

    # ---- update / patch ------------------------------------------------------
    async def guaranteed_update(self, req: Request, mutate: Callable[[dict], dict | None],
                                 precondition_rv: str | None = None, create: Callable[[], dict] | None = None,
                                 copy_on_write: bool = False) -> tuple[dict, bool]:
        """Read-modify-write with retries on conflicts; returns (object, created). copy_on_write:
        mutate builds a new object without touching its argument, so no private copy is made."""
        r, st = req.resource, strategy_for(req.resource)
        key = self._key(req)
        current = await self.current(req, shared=copy_on_write)
        fresh = False
        for attempt in range(20):
            if current is None:
                if create is not None:
                    obj = create()
                    try:
                        return await self._store_new(req, obj), True
                    except StatusError as e:
                        if e.reason != "AlreadyExists":
                            raise
                        current = await self.current(req, fresh=True)
                        continue
                if not fresh:
                    current, fresh = await self.current(req, fresh=True), True
                    continue
                raise self.not_found(req)
            cur_rv = current["metadata"].get("resourceVersion")
            if precondition_rv and precondition_rv != cur_rv:
                if not fresh:
                    current, fresh = await self.current(req, fresh=True), True
                    continue
                raise E.stale_conflict(r.group, r.plural, req.name or "")
            old = current   # a private copy, or shared with the cache when copy_on_write
            new = mutate(current if copy_on_write else deepcopy(current))
            if new is None:
                return old, False
            if new == old:
                return old, False
            await self._admit(req, "UPDATE", new, old)
            puts, deletes = st.allocate(self, new, old, set()) if req.subresource is None else ({}, [])
            if req.dry_run:
                return new, False
            if st.finished_deleting(new):
                try:
                    await self.storage.delete(key, int(cur_rv), sorted(st.claimed_keys(old)))
                    return new, False
                except StaleRevision as e:
                    current, fresh = e.current, True
                    continue
                except KeyMissing:
                    raise self.not_found(req) from None
            try:
                return await self.storage.update(key, new, int(cur_rv), puts, deletes), False
            except StaleRevision as e:
                current, fresh = e.current, True
            except KeyMissing:
                current, fresh = None, True
                if create is None:
                    raise self.not_found(req) from None
            except KeyExists:
                current, fresh = await self.current(req, fresh=True), True
        raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on {r.plural} "{req.name}": too many conflicting updates')

    def _merge_update(self, req: Request, new: dict, old: dict, record_managed: bool = True) -> dict:
        """Apply what a main-resource, status or scale write may change, then default and validate."""
        r, sub = req.resource, req.subresource
        meta, ometa = new.setdefault("metadata", {}), old["metadata"]
        if not meta.get("uid"):   # a uid that differs is kept for validation to reject (immutable)
            meta["uid"] = ometa.get("uid")
        for k in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in ometa:
                meta[k] = ometa[k]
            else:
                meta.pop(k, None)
        meta.pop("selfLink", None)
        if r.namespaced:
            meta["namespace"] = ometa.get("namespace")
        meta["resourceVersion"] = ometa.get("resourceVersion")
        st = strategy_for(r)
        new = st.prepare_for_update(new, old, sub)
        st.apply_defaults(new)
        if r.has_generation and new.get("spec") != old.get("spec"):
            meta["generation"] = int(ometa.get("generation") or 1) + 1
        # finalizers may only be removed, not added, once deletion started
        if ometa.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(ometa.get("finalizers") or [])
            if added:
                raise E.invalid_error(r.group, r.kind, req.name or "", [E.forbidden(
                    "metadata.finalizers", f"no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {go_syntax(sorted(added), '[]string')}")])
        st.validate(new, old)
        if record_managed:
            self._managed(req, old, new, "Update")
        return new

    async def update(self, req: Request) -> Reply:
        check_dry_run(req)
        r = req.resource
        body = self.decode(req)
        if req.subresource == "scale":
            self._check_type(req, body, "Scale", "autoscaling/v1")
            replicas = (body.get("spec") or {}).get("replicas")
            return await self._set_scale(req, replicas, body.get("metadata", {}).get("resourceVersion"))
        self._check_type(req, body)
        self._check_namespace(req, body)
        name = body["metadata"].get("name")
        if name != req.name:
            raise bad_request(f"the name of the object ({name}) does not match the name on the URL ({req.name})")
        self._field_validation(req, body)
        st = strategy_for(r)
        body = st.to_storage(body)
        rv = body["metadata"].get("resourceVersion") or None

        def mutate(cur: dict) -> dict | None:
            return self._merge_update(req, deepcopy(body), cur)

        create = None
        if st.create_on_update and not req.subresource:
            await self._namespace_visible(req)
            create = lambda: self._prepare_create(req, st.from_storage(deepcopy(body)))
        obj, created = await self.guaranteed_update(req, mutate, rv, create)
        return Reply(201 if created else 200, self._out(req, obj))

    async def patch(self, req: Request) -> Reply:
        check_dry_run(req)
        r = req.resource
        ct = media_type(req.content_type)
        if ct not in PATCH_TYPES:
            raise StatusError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                              "accepted media types include: application/json-patch+json, application/merge-patch+json, "
                              "application/apply-patch+yaml, application/strategic-merge-patch+json")
        if not req.body:
            raise bad_request("the body of the request was empty")
        from apiserver.api import managedfields, patch as patchmod
        force = req.flag("force")
        if ct == "application/apply-patch+yaml":
            if not req.q("fieldManager"):
                raise bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
            applied = managedfields.parse_apply_body(req.body)
            if req.subresource != "scale":
                self._check_type(req, applied)
                if applied["metadata"].get("name") not in (None, req.name):
                    raise bad_request(f"the name of the object ({applied['metadata'].get('name')}) does not match the name on the URL ({req.name})")
                applied["metadata"]["name"] = req.name
                self._check_namespace(req, applied)
                self._field_validation(req, applied)
        elif force:
            raise bad_request("force: Forbidden: may not be specified for non-apply patch")

        if req.subresource == "scale":
            def mutate_scale(cur: dict) -> dict | None:
                scale = self._scale_of(req, cur)
                if ct == "application/apply-patch+yaml":
                    patched = {**scale, "spec": {**scale["spec"], **(applied.get("spec") or {})}}
                else:
                    patched = patchmod.apply_patch(ct, scale, req.body, ("autoscaling/v1", "Scale"))
                replicas = (patched.get("spec") or {}).get("replicas")
                return self._scaled(req, cur, replicas)
            obj, _ = await self.guaranteed_update(req, mutate_scale)
            return Reply(200, self._scale_of(req, obj))

        def mutate(cur: dict) -> dict | None:
            served = strategy_for(r).from_storage(cur)
            if ct == "application/apply-patch+yaml":
                patched = managedfields.server_side_apply(served, applied, req.q("fieldManager"), force,
                                                          now_rfc3339())
            else:
                patched = patchmod.apply_patch(ct, served, req.body, (r.api_version, r.kind))
                if not isinstance(patched, dict):
                    raise bad_request("the patched object is not a JSON object")
                self._check_type(req, patched)
                if patched["metadata"].get("name") != req.name:
                    raise bad_request(f"the name of the object ({patched['metadata'].get('name')}) does not match "
                                      f"the name on the URL ({req.name})")
                self._field_validation(req, patched)
            rv = patched.get("metadata", {}).get("resourceVersion")
            if rv and rv != cur["metadata"].get("resourceVersion"):
                raise E.stale_conflict(r.group, r.plural, req.name or "")
            patched = strategy_for(r).to_storage(patched)
            new = self._merge_update(req, patched, cur) if ct != "application/apply-patch+yaml" else self._merge_apply(req, patched, cur)
            return new

        create = None
        if ct == "application/apply-patch+yaml" and not req.subresource:
            await self._namespace_visible(req)

            def create() -> dict:
                obj = managedfields.server_side_apply(None, deepcopy(applied), req.q("fieldManager"), force,
                                                      now_rfc3339())
                mf = obj.get("metadata", {}).get("managedFields")
                return self._prepare_create_keep_managed(req, obj, mf)
        obj, created = await self.guaranteed_update(req, mutate, None, create)
        return Reply(201 if created else 200, self._out(req, obj))

    def _prepare_create_keep_managed(self, req: Request, obj: dict, managed: Any) -> dict:
        obj = self._prepare_create(req, obj)
        if managed:
            obj["metadata"]["managedFields"] = managed
        return obj

    def _merge_apply(self, req: Request, new: dict, old: dict) -> dict:
        """Server-side apply already computed managedFields; keep them."""
        managed = new.get("metadata", {}).get("managedFields")
        out = self._merge_update(req, new, old, record_managed=False)
        if managed is not None:
            out["metadata"]["managedFields"] = managed
        return out

    # ---- scale --------------------------------------------------------------
    def _scale_of(self, req: Request, obj: dict) -> dict:
        return strategy_for(req.resource).scale_of(obj)

    def _scaled(self, req: Request, cur: dict, replicas: Any) -> dict:
        """cur with its replica count set through the scale subresource (cur itself when unchanged)."""
        st = strategy_for(req.resource)
        if replicas == st.replicas(cur):
            return cur
        if not isinstance(replicas, int) or replicas < 0:
            raise E.invalid_error("autoscaling", "Scale", req.name or "",
                                  [E.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        before = deepcopy(cur)
        st.set_replicas(cur, replicas)
        if req.resource.has_generation:
            cur["metadata"]["generation"] = int(cur["metadata"].get("generation") or 1) + 1
        self._managed(req, before, cur, "Update")   # the scaler now owns .spec.replicas
        return cur

    async def _set_scale(self, req: Request, replicas: Any, rv: str | None) -> Reply:
        def mutate(cur: dict) -> dict | None:
            return self._scaled(req, cur, replicas)
        obj, _ = await self.guaranteed_update(req, mutate, rv or None)
        return Reply(200, self._scale_of(req, obj))

    # ---- delete -------------------------------------------------------------
    def _delete_options(self, req: Request) -> dict:
        opts: dict[str, Any] = {}
        if req.body:
            opts = decode_body(req.body, req.content_type or "application/json")
        check_dry_run(req, opts.get("dryRun"))
        for k in ("gracePeriodSeconds",):
            v = _int_param(req, k)
            if v is not None:
                opts[k] = v
        if req.q("propagationPolicy"):
            opts["propagationPolicy"] = req.q("propagationPolicy")
        if req.q("orphanDependents"):
            opts["orphanDependents"] = req.flag("orphanDependents")
        pp = opts.get("propagationPolicy")
        if pp is not None and pp not in ("Orphan", "Background", "Foreground"):
            raise E.invalid_error("meta.k8s.io", "DeleteOptions", "", [E.not_supported(
                "propagationPolicy", pp, ["Foreground", "Background", "Orphan", "nil"])])
        return opts

    async def delete(self, req: Request) -> Reply:
        opts = self._delete_options(req)
        obj, gone_now = await self.delete_object(req, opts)
        r = req.resource
        if gone_now and not r.returns_deleted_object:
            return Reply(200, _status_success(r, req.name or "", obj["metadata"].get("uid")))
        return Reply(200, self._out(req, obj))

    async def delete_object(self, req: Request, opts: dict) -> tuple[dict, bool]:
        """Delete honouring preconditions, finalizers, propagation and pod graceful termination."""
        r, st = req.resource, strategy_for(req.resource)
        st.check_delete(req.name or "")
        key = self._key(req)
        pre = opts.get("preconditions") or {}
        current = await self.current(req)
        fresh = False
        for attempt in range(20):
            if current is None:
                if not fresh:
                    current, fresh = await self.current(req, fresh=True), True
                    continue
                raise self.not_found(req)
            meta = current["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                if not fresh:
                    current, fresh = await self.current(req, fresh=True), True
                    continue
                raise E.conflict(r.group, r.plural, req.name or "",
                                 f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                if not fresh:
                    current, fresh = await self.current(req, fresh=True), True
                    continue
                raise E.conflict(r.group, r.plural, req.name or "",
                                 f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                 f"ResourceVersion in object meta: {meta.get('resourceVersion')}")
            rv = int(meta["resourceVersion"])
            new = deepcopy(current)
            nmeta = new["metadata"]
            finalizers = list(nmeta.get("finalizers") or [])
            policy = opts.get("propagationPolicy")
            if policy is None and opts.get("orphanDependents") is not None:
                policy = "Orphan" if opts["orphanDependents"] else "Background"
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            step = st.mark_for_deletion(new, current, finalizers, st.grace_period(new, opts), datetime.now(timezone.utc))
            if step == "unchanged":
                return current, False
            if step == "update":
                if req.dry_run or new == current:
                    return new, False
                try:
                    return await self.storage.update(key, new, rv), False
                except StaleRevision as e:
                    current, fresh = e.current, True
                    continue
                except KeyMissing:
                    raise self.not_found(req) from None
            if req.dry_run:
                return current, True
            try:
                rev = await self.storage.delete(key, rv, sorted(st.claimed_keys(current)))
            except StaleRevision as e:
                current, fresh = e.current, True
                continue
            except KeyMissing:
                raise self.not_found(req) from None
            current["metadata"]["resourceVersion"] = str(rev)
            return current, True
        raise StatusError(409, "Conflict", "too many conflicting deletes")

    async def deletecollection(self, req: Request) -> Reply:
        opts = self._delete_options(req)
        items, _ = await self._list_cache(req, "")
        accept = self._filters(req)
        deleted = []
        for obj in items:
            if accept is not None and not accept(obj):
                continue
            sub = Request(req.verb, req.resource, obj["metadata"].get("namespace"), obj["metadata"]["name"], None,
                          req.query, b"", "", req.target, req.user, req.user_agent, dry_run=req.dry_run)
            try:
                o, _ = await self.delete_object(sub, opts)
                deleted.append(o)
            except StatusError as e:
                if e.code != 404:
                    raise
        r = req.resource
        return Reply(200, {"kind": r.list_kind, "apiVersion": r.api_version, "metadata": {}, "items": deleted})

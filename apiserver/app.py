"""The FastAPI application: authentication, routing of API paths to the generic handler, discovery,
OpenAPI, health and metrics."""
from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import FastAPI, Request as HttpRequest, WebSocket
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from kubeling.api import errors as E
from kubeling.api.errors import StatusError
from kubeling.api.resources import Resource, lookup

from . import discovery
from .auth import Authenticator, bearer
from .codec import negotiate, dumps
from .handlers import Handler
from .request import TRUE, Request
from .streaming import Streaming

log = logging.getLogger("apiserver")

PUBLIC = {"/healthz", "/livez", "/readyz", "/version"}
MAX_BODY = 3 * 1024 * 1024
ROOTS_WITH_SLASH = {"/api/", "/apis/", "/version/"}
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["verb", "group", "version", "resource", "subresource", "scope"]
        self.requests = Counter("apiserver_request_total", "Counter of apiserver requests by verb, resource and code.",
                                labels + ["code"], registry=self.registry)
        self.latency = Histogram("apiserver_request_duration_seconds", "Response latency by verb and resource.",
                                 labels, registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2, 5, 10, 30, 60))
        self.watchers = Counter("apiserver_watch_events_total", "Watch events sent, by resource.",
                                ["resource"], registry=self.registry)


def status_response(e: StatusError) -> Response:
    return Response(orjson.dumps(e.status(), option=orjson.OPT_APPEND_NEWLINE), status_code=e.code,
                    media_type="application/json", headers=e.headers)


def parse_api_path(parts: list[str]) -> tuple[Resource, str | None, str | None, str | None] | None:
    """['api','v1','namespaces','ns','pods','x','log'] -> (resource, namespace, name, subresource)."""
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if rest and rest[0] == "watch":   # legacy /watch/ paths
        rest = rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and lookup(group, version, rest[2]) is not None:
        namespace, rest = rest[1], rest[2:]
    r = lookup(group, version, rest[0]) if rest else None
    if r is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if r.plural == "namespaces" and name is not None:
        namespace = None
    if sub is not None and sub not in r.subresources:
        return None
    return r, namespace, name, sub


class FastPath:
    """Resource requests skip FastAPI's routing and middleware stack (a third of the CPU of a create);
    everything else (health, discovery roots, OpenAPI, metrics, websockets) goes through FastAPI."""

    def __init__(self, app: FastAPI, api, streaming: Streaming) -> None:
        self.app = app
        self.api = api
        self.streaming = streaming   # its uvicorn protocol takes SPDY upgrades (cli.py)

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if path in ROOTS_WITH_SLASH:   # upstream's mux serves these with and without the slash
            scope = {**scope, "path": path[:-1], "raw_path": path[:-1].encode()}
        elif scope["type"] == "http" and (path.startswith("/api/") or path.startswith("/apis/")):
            response = await self.api(path[1:], HttpRequest(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header_safe(text: str) -> str:
    """Printable ASCII only; everything else (and quotes, backslashes) escaped."""
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else
                   (f"\\{c}" if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
                   for c in text)


class InFlight:
    """kube-apiserver's --max-requests-inflight / --max-mutating-requests-inflight: beyond them, 429."""

    def __init__(self, readonly: int, mutating: int) -> None:
        self.limits = {False: readonly, True: mutating}
        self.current = {False: 0, True: 0}

    def enter(self, mutating: bool) -> None:
        limit = self.limits[mutating]
        if limit and self.current[mutating] >= limit:
            raise E.too_many_requests()
        self.current[mutating] += 1

    def leave(self, mutating: bool) -> None:
        self.current[mutating] -= 1


def build_app(handler: Handler, authenticator: Authenticator, advertise: str, cache, proxy,
              max_inflight: int = 400, max_mutating_inflight: int = 200) -> FastPath:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    metrics = Metrics()
    inflight = InFlight(max_inflight, max_mutating_inflight)

    def authenticate(req: HttpRequest | WebSocket) -> dict:
        tok = bearer(req.headers.get("authorization"))
        found = authenticator.authenticate(tok) if tok else None
        if found is None:
            raise E.unauthorized()
        return found[0]

    streaming = Streaming(proxy, authenticate)

    def json_reply(obj: Any, code: int = 200, media: str = "application/json") -> Response:
        return Response(orjson.dumps(obj), status_code=code, media_type=media)

    @app.exception_handler(StatusError)
    async def _status(_: HttpRequest, e: StatusError) -> Response:
        return status_response(e)

    @app.get("/healthz")
    @app.get("/livez")
    async def healthz() -> Response:
        return Response(b"ok", media_type="text/plain")

    @app.get("/readyz")
    async def readyz() -> Response:
        if not cache.ready.is_set():
            return Response(b"[-]watch-cache not ready\nreadyz check failed", status_code=500, media_type="text/plain")
        return Response(b"ok", media_type="text/plain")

    @app.get("/version")
    async def version() -> Response:
        return json_reply(discovery.VERSION_INFO)

    @app.get("/metrics")
    async def metrics_endpoint(request: HttpRequest) -> Response:
        authenticate(request)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi/v2")
    async def openapi_v2(request: HttpRequest) -> Response:
        authenticate(request)
        from apiserver.api import openapi
        body, ct = openapi.openapi_v2_response(request.headers.get("accept"))
        return Response(body, media_type=ct)

    @app.get("/openapi/v3")
    async def openapi_v3_root(request: HttpRequest) -> Response:
        authenticate(request)
        from apiserver.api import openapi
        return json_reply(openapi.openapi_v3_index())

    @app.get("/openapi/v3/{path:path}")
    async def openapi_v3(path: str, request: HttpRequest) -> Response:
        authenticate(request)
        from apiserver.api import openapi
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            data = openapi.openapi_v3_bytes("", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            data = openapi.openapi_v3_bytes(parts[1], parts[2])
        else:
            data = None
        if data is None:
            return Response(b"404 page not found\n", status_code=404, media_type="text/plain")
        return Response(data, media_type="application/json",
                        headers={"Cache-Control": "public, immutable" if request.query_params.get("hash") else "no-cache"})

    def discovery_reply(request: HttpRequest, legacy: bool, fallback: Any) -> Response:
        v = discovery.wants_aggregated(request.headers.get("accept"))
        if v:
            return json_reply(discovery.aggregated(legacy, v),
                              media=f"application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList")
        return json_reply(fallback)

    @app.get("/api")
    async def api_root(request: HttpRequest) -> Response:
        authenticate(request)
        return discovery_reply(request, True, discovery.api_versions(advertise))

    @app.get("/apis")
    async def apis_root(request: HttpRequest) -> Response:
        authenticate(request)
        return discovery_reply(request, False, discovery.api_group_list())

    @app.websocket("/api/v1/namespaces/{namespace}/pods/{name}/{sub}")
    async def pod_stream(websocket: WebSocket, namespace: str, name: str, sub: str) -> None:
        try:
            authenticate(websocket)
            if sub == "portforward":
                await proxy.portforward_ws(websocket, namespace, name, list(websocket.query_params.multi_items()))
            elif sub in ("exec", "attach"):
                await proxy.exec_ws(websocket, namespace, name, sub, list(websocket.query_params.multi_items()))
            else:
                raise E.bad_request(f"{sub} does not support websockets")
        except StatusError as e:
            await websocket.send_denial_response(status_response(e))

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def api(path: str, request: HttpRequest) -> Response:
        t0 = time.perf_counter()
        labels = ["", "", "", "", "", ""]
        code = 500
        try:
            resp, labels = await dispatch(path, request)
            code = resp.status_code
            return resp
        except StatusError as e:
            code = e.code
            return status_response(e)
        except Exception as e:  # a bug must still answer with a Status
            log.exception("internal error serving %s %s", request.method, path)
            err = E.internal_error(str(e) or type(e).__name__)
            code = err.code
            return status_response(err)
        finally:
            if labels and labels[0]:
                metrics.requests.labels(*labels, str(code)).inc()
                if labels[0] != "WATCH":
                    metrics.latency.labels(*labels).observe(time.perf_counter() - t0)

    async def read_body(request: HttpRequest) -> bytes:
        cl = request.headers.get("content-length")
        if cl and cl.isdigit() and int(cl) > MAX_BODY:
            raise E.request_entity_too_large(MAX_BODY)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise E.request_entity_too_large(MAX_BODY)
            chunks.append(chunk)
        return b"".join(chunks)

    async def dispatch(path: str, request: HttpRequest) -> tuple[Response, list[str]]:
        user = authenticate(request)
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        method = request.method
        if not parts or parts[0] not in ("api", "apis"):
            raise E.generic_not_found()
        if method == "GET" and len(parts) <= 3 and not (parts[0] == "api" and len(parts) == 3):
            doc = None
            if parts[0] == "api" and len(parts) == 2:
                doc = discovery.resource_list("", parts[1])
            elif parts[0] == "apis" and len(parts) == 2:
                doc = discovery.api_group(parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                doc = discovery.resource_list(parts[1], parts[2])
            if doc is None:
                raise E.generic_not_found()
            return json_reply(doc), []
        parsed = parse_api_path(parts)
        if parsed is None:
            raise E.generic_not_found()
        r, namespace, name, sub = parsed
        query = dict(request.query_params)
        if r.namespaced and namespace is None and name is not None:
            raise E.generic_not_found()
        watch = "watch" in parts[2:4] or query.get("watch", "") in TRUE
        if method == "GET":
            verb = "watch" if watch else ("get" if name else "list")
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = VERBS[method]
        if verb in ("update", "patch") and not name or verb == "create" and name and not sub:
            raise E.generic_method_not_allowed()
        if verb not in r.verbs and not sub:
            raise E.generic_method_not_allowed()
        if r.namespaced and namespace is None and verb in ("create", "deletecollection"):
            raise E.generic_not_found()
        target = negotiate(request.headers.get("accept"))
        mutating = method != "GET"
        if verb != "watch":   # long-running requests are not counted, as upstream
            inflight.enter(mutating)
        try:
            return await serve(request, verb, r, namespace, name, sub, query, target, user, method)
        finally:
            if verb != "watch":
                inflight.leave(mutating)

    async def serve(request: HttpRequest, verb: str, r: Resource, namespace: str | None, name: str | None,
                    sub: str | None, query: dict, target, user: dict, method: str) -> tuple[Response, list[str]]:
        body = await read_body(request) if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        req = Request(verb, r, namespace, name, sub, query, body, request.headers.get("content-type", ""),
                      target, user, request.headers.get("user-agent", ""))
        mverb = verb.upper() if verb not in ("create", "update") else {"create": "POST", "update": "PUT"}[verb]
        if verb == "patch" and "apply-patch" in req.content_type:
            mverb = "APPLY"
        labels = [mverb, r.group, r.version, r.plural, sub or "",
                  "resource" if name else ("namespace" if namespace else "cluster")]
        if verb == "watch":
            reply = await handler.watch(req)
        else:
            reply = await getattr(handler, verb)(req)
        media = "application/json"
        if target.form == "table":
            media = f"application/json;as=Table;v={target.table_version};g=meta.k8s.io"
        elif target.form == "partial":
            media = f"application/json;as=PartialObjectMetadata;v={target.table_version};g=meta.k8s.io"
        headers = {}
        if req.warnings:   # header values must be ASCII: escape what a client sent us
            headers["Warning"] = ", ".join('299 - "' + _header_safe(w) + '"' for w in req.warnings[:20])
        if reply.stream is not None:
            if sub == "log":
                media = "text/plain"
            return StreamingResponse(reply.stream, status_code=reply.code, media_type=media, headers=headers), labels
        data, ct = dumps(reply.body, target)
        if target.form == "yaml":
            media = ct
        return Response(data, status_code=reply.code, media_type=media, headers=headers), labels

    return FastPath(app, api, streaming)

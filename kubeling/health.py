"""The small HTTP endpoint every controller process has: /healthz, /livez, /readyz and Prometheus /metrics."""
from __future__ import annotations

import logging
from typing import Iterator

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
import uvicorn

from .serving import Server

log = logging.getLogger("kubeling.health")


class _Registries:
    """Several registries served as one /metrics: the component's own and kubeling.client's."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self) -> Iterator:
        for r in self.registries:
            yield from r.collect()


def health_server(host: str, port: int, registry: CollectorRegistry) -> Server:
    """The endpoint, already listening (ListenError when host:port is taken), so a process fails
    before it starts any work; `serve()` answers requests."""
    from kubeling.client.metrics import REGISTRY
    served = _Registries(registry, REGISTRY)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    @app.get("/livez")
    @app.get("/readyz")
    async def healthz() -> Response:
        return Response(b"ok", media_type="text/plain")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(served), media_type=CONTENT_TYPE_LATEST)

    server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"))
    server.bind()
    log.info("serving on http://%s (/healthz, /readyz, /metrics)", server.address)
    return server

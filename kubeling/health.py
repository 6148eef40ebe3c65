"""The small HTTP endpoint every controller process has: /healthz, /livez, /readyz and Prometheus /metrics."""
from __future__ import annotations

from typing import Callable

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
import uvicorn

from .serving import Server


class _Registries:
    """Several registries served as one /metrics: the component's own and kubeling.client's."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self):
        for r in self.registries:
            yield from r.collect()


def health_server(host: str, port: int, registry: CollectorRegistry, ready: Callable[[], bool] = lambda: True) -> Server:
    from kubeling.client.metrics import REGISTRY
    served = _Registries(registry, REGISTRY)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    @app.get("/livez")
    async def healthz() -> Response:
        return Response(b"ok", media_type="text/plain")

    @app.get("/readyz")
    async def readyz() -> Response:
        return Response(b"ok", media_type="text/plain") if ready() else Response(b"not ready", status_code=500)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(served), media_type=CONTENT_TYPE_LATEST)

    return Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"))

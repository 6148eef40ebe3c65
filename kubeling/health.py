"""The small HTTP endpoint every controller process has: /healthz, /livez, /readyz and Prometheus /metrics."""
from __future__ import annotations

from typing import Callable

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
import uvicorn

from .serving import Server


def health_server(host: str, port: int, registry: CollectorRegistry, ready: Callable[[], bool] = lambda: True) -> Server:
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
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"))

"""`python -m kubedns`: cluster DNS from Services and EndpointSlices, with CoreDNS's /health
beside the components' /healthz and /metrics."""
from __future__ import annotations

import argparse
import asyncio
import logging
import socket

from fastapi.responses import Response
from prometheus_client import CollectorRegistry

from kubeling.api.resources import lookup
from kubeling.client.informer import InformerFactory
from kubeling.component import load_client, run_main
from kubeling.health import health_server
from kubeling.serving import listen

from .records import Records
from .server import DnsServer, bind_udp, parse_address

log = logging.getLogger("kubedns")
SERVICES, SLICES = lookup("", "v1", "services"), lookup("discovery.k8s.io", "v1", "endpointslices")
SYNC_WAIT = 5.0   # CoreDNS's kubernetes plugin also starts answering after 5 s without synced caches


def _address(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubedns", description="kubeling's cluster DNS: Service and pod names.")
    p.add_argument("--kubeconfig", default="", help="kubeconfig of the apiserver to use (default: the pod's in-cluster config)")
    p.add_argument("--cluster-domain", default="cluster.local", help="the domain this server is authoritative for")
    p.add_argument("--listen", type=_address, default=("0.0.0.0", 53), help="IP:PORT for DNS over UDP and TCP")
    p.add_argument("--upstream", type=_address, help="IP:PORT to forward names outside the domain to (else REFUSED)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address of the health and metrics endpoint")
    p.add_argument("--port", type=int, default=8080, help="port of the plain-HTTP /health, /healthz and /metrics")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    return p


async def _ok() -> Response:
    return Response(b"OK", media_type="text/plain")


async def _run(a: argparse.Namespace) -> int:
    """Bind DNS and health first (a taken port is one line before any work), then watch and answer
    until SIGTERM, which ends the health server's serve() and so everything else."""
    client = load_client(a.kubeconfig, "kubedns/v1.32.0")
    if client is None:
        return 1
    registry = CollectorRegistry()
    records = Records(a.cluster_domain)
    server = DnsServer(records, a.upstream, registry)
    factory = InformerFactory(client)
    sockets: list[socket.socket] = []
    tasks: list[asyncio.Task] = []
    try:
        sockets.append(listen(*a.listen))
        sockets.append(bind_udp(*a.listen))
        health = health_server(a.bind_address, a.port, registry)
        health.config.app.add_api_route("/health", _ok)   # CoreDNS's health plugin
        services, slices = factory.get(SERVICES), factory.get(SLICES)
        services.add_handler(records.set_service, lambda _, new: records.set_service(new), records.delete_service)
        slices.add_handler(records.set_slice, lambda _, new: records.set_slice(new), records.delete_slice)
        factory.start()
        tasks.append(asyncio.create_task(health.serve()))
        try:
            await factory.wait_synced(SYNC_WAIT)
        except TimeoutError:
            log.warning("caches not synced after %gs; answering from what is known", SYNC_WAIT)
        tasks.append(asyncio.create_task(server.serve(sockets[1], sockets[0])))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for informer in factory.informers.values():
            await informer.stop()
        for sock in sockets:
            sock.close()
        await client.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    run_main(_run(a), a.verbosity)

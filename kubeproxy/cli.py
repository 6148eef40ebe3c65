"""`python -m kubeproxy`: flags like kube-proxy's (iptables mode); the proxier's /healthz and /livez
and the metrics on --port."""
from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from kubeling.client import Client
from kubeling.component import load_client, run_main
from kubeling.health import health_server
from kubeling.serving import Server

if TYPE_CHECKING:   # imported when run: --help stays quick
    from .health import ProxierHealth
    from .proxier import Proxier


def duration(text: str) -> float:
    """Seconds from `30`, `30s`, `1m`, `500ms` (kube-proxy takes Go durations)."""
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeproxy", description="kubeling's kube-proxy: Services as iptables rules.")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver to use (not needed with --cleanup)")
    p.add_argument("--hostname-override", required=True, help="this node's name (which endpoints are local)")
    p.add_argument("--proxy-mode", default="iptables", choices=["iptables"])
    p.add_argument("--cluster-cidr", default="", help="pod range; service traffic from outside it is masqueraded")
    p.add_argument("--service-cidr", default="", help="ClusterIP range; unallocated addresses in it are refused")
    p.add_argument("--nodeport-addresses", default="",
                   help="comma-separated CIDRs of the node addresses NodePorts answer on (default: all)")
    p.add_argument("--sync-period", type=duration, default=30.0,
                   help="/healthz fails once a change waits twice this (full syncs: hourly, or when iptables was flushed)")
    p.add_argument("--min-sync-period", type=duration, default=1.0, help="shortest time between two syncs")
    p.add_argument("--masquerade-all", action="store_true", help="SNAT all traffic to cluster IPs")
    p.add_argument("--cleanup", action="store_true", help="remove every rule and chain kube-proxy made, and exit")
    p.add_argument("--bind-address", dest="bind_address", default="0.0.0.0", help="address of /healthz and /metrics")
    p.add_argument("--port", "--healthz-port", type=int, default=10256,
                   help="port of /healthz and /livez (503 once a change has waited 2 x --sync-period) and /metrics")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    return p


async def serve(a: argparse.Namespace, client: Client, registry: CollectorRegistry, proxier: Proxier,
                health: ProxierHealth) -> int:
    """The proxier and its health/metrics endpoint until SIGTERM ends the endpoint (0) or the
    proxier fails (raised). The endpoint is listening (or ListenError raised) before any sync."""
    server: Server | None = None
    tasks: list[asyncio.Task] = []
    try:
        server = health_server(a.bind_address, a.port, registry)
        server.config.app = health.serve_on(server.config.app)
        tasks = [asyncio.create_task(server.serve()), asyncio.create_task(proxier.run())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[1].done() and not tasks[1].cancelled() and tasks[1].exception():
            raise tasks[1].exception()  # type: ignore[misc]
    finally:
        if server is not None:
            server.should_exit = True
        for t in tasks[1:]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    return 0


async def _run(a: argparse.Namespace) -> int:
    from .health import ProxierHealth
    from .proxier import Proxier, cleanup
    tools = ["iptables", "iptables-save", "iptables-restore"] + ([] if a.cleanup else ["conntrack", "ip", "sysctl"])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        print(f"error: {', '.join(missing)} not found (deploy/install-system-packages.sh installs them)",
              file=sys.stderr)
        return 1
    if a.cleanup:
        await cleanup()
        return 0
    if not a.kubeconfig:
        print("error: --kubeconfig is required", file=sys.stderr)
        return 1
    client = load_client(a.kubeconfig, "kube-proxy/v1.32.0")
    if client is None:
        return 1
    registry = CollectorRegistry()
    health = ProxierHealth(2 * a.sync_period, registry)   # upstream's healthz timeout
    proxier = Proxier(client, a.hostname_override, a.cluster_cidr, a.service_cidr,
                      [c for c in a.nodeport_addresses.split(",") if c], a.masquerade_all,
                      a.min_sync_period, registry, health)
    return await serve(a, client, registry, proxier, health)


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    run_main(_run(a), a.verbosity)

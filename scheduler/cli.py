"""`python -m scheduler`: flags like kube-scheduler's, leader election, health and metrics."""
from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import uuid

from prometheus_client import CollectorRegistry

from kubeling.client import Client, load_kubeconfig
from kubeling.client.leaderelection import LeaderElector
from kubeling.health import health_server


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scheduler", description="kubeling's scheduler: binds pods to nodes.")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the apiserver to use")
    p.add_argument("--scheduler-name", default="default-scheduler", help="schedule pods naming this scheduler")
    p.add_argument("--leader-elect", action="store_true", help="run only while holding the kube-scheduler Lease")
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--bind-address", default="127.0.0.1", help="address of the health and metrics endpoint")
    p.add_argument("--port", type=int, default=10259, help="port of the plain-HTTP /healthz and /metrics endpoint")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    return p


async def _run(a: argparse.Namespace) -> int:
    from .scheduler import Scheduler
    try:
        cfg = load_kubeconfig(a.kubeconfig)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    client = Client(cfg, user_agent="kube-scheduler/v1.32.0")
    registry = CollectorRegistry()
    health = health_server(a.bind_address, a.port, registry)
    health_task = asyncio.create_task(health.serve())

    async def lead() -> None:
        await Scheduler(client, a.scheduler_name, registry).run()

    work: asyncio.Task | None = None
    try:
        if a.leader_elect:
            elector = LeaderElector(client, "kube-scheduler", f"{socket.gethostname()}_{uuid.uuid4()}",
                                    lease_duration=a.leader_elect_lease_duration,
                                    renew_deadline=a.leader_elect_renew_deadline,
                                    retry_period=a.leader_elect_retry_period)
            work = asyncio.create_task(elector.run(lead))
        else:
            work = asyncio.create_task(lead())
        await asyncio.wait([work, health_task], return_when=asyncio.FIRST_COMPLETED)
        if work.done() and work.exception():
            raise work.exception()  # type: ignore[misc]
    finally:
        health.should_exit = True
        if work is not None:
            work.cancel()
        await asyncio.gather(*(t for t in (work, health_task) if t is not None), return_exceptions=True)
        await client.close()
    return 0 if health.should_exit or not health.started else 1


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(_run(a)))

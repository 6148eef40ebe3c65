"""What every control-plane process shares: its client from a kubeconfig, the leader-election flags
and loop around its work, the health/metrics endpoint, logging and the event loop."""
from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import uuid
from typing import Awaitable, Callable, Coroutine

from prometheus_client import CollectorRegistry

from kubeling.client import Client, load_kubeconfig
from kubeling.client.leaderelection import LeaderElector
from kubeling.health import health_server


def add_leader_election_flags(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--leader-elect", action="store_true", help=help)
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)


def load_client(kubeconfig: str, user_agent: str, max_connections: int = 100) -> Client | None:
    """The apiserver client, or None after a one-line error for an unusable kubeconfig."""
    try:
        cfg = load_kubeconfig(kubeconfig)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    return Client(cfg, user_agent=user_agent, max_connections=max_connections)


async def run_elected(a: argparse.Namespace, client: Client, lease: str, registry: CollectorRegistry,
                      lead: Callable[[], Awaitable[None]]) -> int:
    """Serve /healthz and /metrics and run `lead` (while holding `lease` with --leader-elect) until
    it ends or SIGTERM arrives; a failure of `lead` is raised."""
    health = health_server(a.bind_address, a.port, registry)
    health_task = asyncio.create_task(health.serve())
    work: asyncio.Task | None = None
    try:
        if a.leader_elect:
            elector = LeaderElector(client, lease, f"{socket.gethostname()}_{uuid.uuid4()}",
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
    return 0


def run_main(main: Coroutine[None, None, int], verbosity: int) -> None:
    """Logging like the other components, uvloop when installed, and the coroutine's exit code."""
    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        import uvloop   # comes with uvicorn[standard]; about a third less CPU per request
        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(main))

"""What every control-plane process shares: its client from a kubeconfig, the leader-election flags
and loop around its work, the health/metrics endpoint, background tasks, logging and the event loop."""
from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import uuid
from typing import Any, Awaitable, Callable, Coroutine

from prometheus_client import CollectorRegistry

from kubeling.client import Client, load_kubeconfig
from kubeling.client.config import in_cluster_config
from kubeling.client.leaderelection import LeaderElector
from kubeling.health import health_server
from kubeling.serving import ListenError, Server


class TaskSet:
    """Fire-and-forget tasks, held until they finish (the event loop keeps only weak references, so an
    unheld task can be garbage-collected mid-flight) and whose failures are logged when they happen
    (not as 'Task exception was never retrieved' whenever the task is collected, or never)."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """Run `coro` in the background; `what` names it in the failure's log line."""
        task = asyncio.create_task(coro, name=what)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            self.log.error("%s failed: %s", task.get_name(), e, exc_info=e)

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


def add_leader_election_flags(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--leader-elect", action="store_true", help=help)
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)


def load_client(kubeconfig: str | None, user_agent: str, max_connections: int = 100) -> Client | None:
    """The apiserver client (the in-cluster config of a pod when no kubeconfig is given), or None
    after a one-line error for an unusable one."""
    try:
        cfg = load_kubeconfig(kubeconfig) if kubeconfig else in_cluster_config()
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    return Client(cfg, user_agent=user_agent, max_connections=max_connections)


async def run_elected(a: argparse.Namespace, client: Client, lease: str, registry: CollectorRegistry,
                      lead: Callable[[], Awaitable[None]]) -> int:
    """Serve /healthz and /metrics and run `lead` (while holding `lease` with --leader-elect) until
    it ends or SIGTERM arrives; a failure of `lead` is raised, and so is ListenError for a taken
    port, before any work starts."""
    health: Server | None = None
    health_task: asyncio.Task | None = None
    work: asyncio.Task | None = None
    try:
        health = health_server(a.bind_address, a.port, registry)
        health_task = asyncio.create_task(health.serve())
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
        if health is not None:
            health.should_exit = True
        if work is not None:
            work.cancel()
        await asyncio.gather(*(t for t in (work, health_task) if t is not None), return_exceptions=True)
        await client.close()
    return 0


def run_main(main: Coroutine[None, None, int], verbosity: int) -> None:
    """Logging like the other components, uvloop when installed, and the coroutine's exit code; an
    address that cannot be listened on is one line and exit code 1, as upstream components do."""
    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        import uvloop   # comes with uvicorn[standard]; about a third less CPU per request
        uvloop.install()
    except ImportError:
        pass
    try:
        code = asyncio.run(main)
    except ListenError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)

"""`python -m scheduler`: flags like kube-scheduler's, leader election, health and metrics."""
from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry

from kubeling.component import add_leader_election_flags, load_client, run_elected, run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scheduler", description="kubeling's scheduler: binds pods to nodes.")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the apiserver to use")
    p.add_argument("--scheduler-name", default="default-scheduler", help="schedule pods naming this scheduler")
    add_leader_election_flags(p, "run only while holding the kube-scheduler Lease")
    p.add_argument("--bind-address", default="127.0.0.1", help="address of the health and metrics endpoint")
    p.add_argument("--port", type=int, default=10259, help="port of the plain-HTTP /healthz and /metrics endpoint")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    return p


async def _run(a: argparse.Namespace) -> int:
    from .scheduler import Scheduler
    client = load_client(a.kubeconfig, "kube-scheduler/v1.32.0")
    if client is None:
        return 1
    registry = CollectorRegistry()

    async def lead() -> None:
        await Scheduler(client, a.scheduler_name, registry).run()
    return await run_elected(a, client, "kube-scheduler", registry, lead)


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    run_main(_run(a), a.verbosity)

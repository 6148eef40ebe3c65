"""`python -m kubelet`: one node (or --hollow-nodes N of them) against the apiserver."""
from __future__ import annotations

import argparse
import asyncio

from prometheus_client import CollectorRegistry, Gauge

from kubeling.api.resources import lookup
from kubeling.client import Client
from kubeling.client.informer import Informer
from kubeling.component import load_client, run_main
from kubeling.health import health_server

from .node import NodeAgent
from .runtime import HollowRuntime

PODS, NODES = lookup("", "v1", "pods"), lookup("", "v1", "nodes")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelet", description="kubeling's node agent.")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--hostname-override", default="node-1", help="node name (with --hollow-nodes: the name prefix)")
    p.add_argument("--runtime", choices=["hollow"], default="hollow",
                   help="container runtime: hollow (simulated containers; docker comes with the kubelet issue)")
    p.add_argument("--hollow-nodes", type=int, default=1, help="run this many nodes in one process (names PREFIX-N)")
    p.add_argument("--node-ip", default="127.0.0.1")
    p.add_argument("--node-labels", default="", help="extra labels, k=v,k2=v2")
    p.add_argument("--cpu", default="4", help="node cpu capacity")
    p.add_argument("--memory", default="8Gi", help="node memory capacity")
    p.add_argument("--max-pods", default="110")
    p.add_argument("--ready-delay", type=float, default=0.5, help="hollow: seconds from start to Ready")
    p.add_argument("--node-lease-duration", type=int, default=40, help="seconds; the Lease is renewed every quarter")
    p.add_argument("--node-status-update-frequency", type=float, default=10.0,
                   help="seconds between checks that the Node's status is what this kubelet reports")
    p.add_argument("--port", type=int, default=10250, help="kubelet API port advertised in the Node")
    p.add_argument("--healthz-bind-address", default="127.0.0.1")
    p.add_argument("--healthz-port", type=int, default=10248, help="plain-HTTP /healthz and /metrics; 0 disables")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    return p


async def _run(a: argparse.Namespace) -> int:
    client = load_client(a.kubeconfig, "kubelet/v1.32.0", max_connections=50)
    if client is None:
        return 1
    try:
        await _serve(a, client)
    finally:
        await client.close()
    return 0


async def _serve(a: argparse.Namespace, client: Client) -> None:
    """Register the nodes and run them until SIGTERM; ListenError for a taken --healthz-port,
    before anything is registered."""
    labels = dict(kv.split("=", 1) for kv in a.node_labels.split(",") if "=" in kv)
    names = [a.hostname_override] if a.hollow_nodes == 1 else [f"{a.hostname_override}-{i}" for i in range(a.hollow_nodes)]
    runtime = HollowRuntime(a.ready_delay)
    agents = {n: NodeAgent(client, n, runtime, node_ip=a.node_ip, cpu=a.cpu, memory=a.memory, pods=a.max_pods,
                           port=a.port, lease_seconds=a.node_lease_duration, labels=labels,
                           status_every=a.node_status_update_frequency) for n in names}
    registry = CollectorRegistry()
    running = Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox", ["node"],
                    registry=registry)
    node_name = Gauge("kubelet_node_name", "The node's name. The count is always 1.", ["node"], registry=registry)
    for name, agent in agents.items():
        node_name.labels(name).set(1)
        running.labels(name).set_function(lambda agent=agent: len(agent.states))
    tasks: list[asyncio.Task] = []
    if a.healthz_port:   # first: it also turns SIGTERM into a clean exit, even while registering
        tasks.append(asyncio.create_task(health_server(a.healthz_bind_address, a.healthz_port, registry).serve()))
    registering = asyncio.gather(*(agent.register() for agent in agents.values()))
    await asyncio.wait([registering, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if not registering.done():
        registering.cancel()
        await asyncio.gather(registering, return_exceptions=True)
        return
    # one watch per node (fieldSelector spec.nodeName), or one shared watch when a process holds many nodes
    if len(agents) == 1:
        informers = [Informer(client, PODS, field_selector=f"spec.nodeName={names[0]}")]
        nodes = Informer(client, NODES, field_selector=f"metadata.name={names[0]}")
    else:
        informers = [Informer(client, PODS, field_selector="spec.nodeName!=")]
        nodes = Informer(client, NODES)
    nodes.start()
    for agent in agents.values():
        agent.nodes = nodes

    def route(fn_name: str):
        def handler(*objs: dict) -> None:
            pod = objs[-1]
            agent = agents.get((pod.get("spec") or {}).get("nodeName", ""))
            if agent is not None:
                getattr(agent, fn_name)(pod)
        return handler
    for inf in informers:
        inf.add_handler(route("pod_changed"), route("pod_changed"), route("pod_deleted"))
        inf.start()
    tasks += [asyncio.create_task(x.heartbeat()) for x in agents.values()]
    tasks += [asyncio.create_task(x.sync_loop()) for x in agents.values()]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    run_main(_run(a), a.verbosity)

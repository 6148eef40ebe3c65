"""`python -m kubelet`: one node on Docker, or --hollow-nodes N simulated ones, against the apiserver."""
from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import logging
import shutil
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from kubeling.api.resources import lookup
from kubeling.client import Client
from kubeling.client.events import EventRecorder
from kubeling.client.informer import Informer
from kubeling.client.workqueue import run_workers
from kubeling.component import load_client, run_main
from kubeling.health import health_server

from . import podnetwork, podroutes
from .auth import KubeletAuth
from .containers import DockerContainers
from .docker_runtime import DockerRuntime
from .hollow import HollowRuntime
from .node import NodeAgent
from .podconfig import ConfigBuilder, DNSSettings
from .podsync import PodSyncer
from .pressure import host_pressure
from .runtime import Runtime, RuntimeUnavailable
from .server import KubeletServer
from .stats import DockerStats

log = logging.getLogger("kubelet")
PODS, NODES, SERVICES = lookup("", "v1", "pods"), lookup("", "v1", "nodes"), lookup("", "v1", "services")
WORKERS = {"docker": 8, "hollow": 2}    # pod syncs at once per node: Docker's wait on the engine


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=False)) if value else ""
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 CIDR: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelet", description="kubeling's node agent.")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver to use (not needed with --cleanup)")
    p.add_argument("--hostname-override", default="node-1", help="node name (with --hollow-nodes: the name prefix)")
    p.add_argument("--runtime", choices=["docker", "hollow"], default="hollow",
                   help="container runtime: docker (the engine at DOCKER_HOST or the default socket) or hollow "
                        "(simulated containers, for scale tests)")
    p.add_argument("--hollow-nodes", type=int, default=1, help="run this many nodes in one process (names PREFIX-N)")
    p.add_argument("--node-ip", default="127.0.0.1")
    p.add_argument("--node-labels", default="", help="extra labels, k=v,k2=v2")
    p.add_argument("--root-dir", default="/var/lib/kubelet", help="pod directories: volumes, hosts, resolv.conf")
    p.add_argument("--pod-cidr", default="", help="pod addresses of this node; else the Node's spec.podCIDR")
    p.add_argument("--cluster-dns", default="", help="comma-separated DNS server IPs for dnsPolicy ClusterFirst pods")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf", help="the resolver file dnsPolicy Default pods get")
    p.add_argument("--pod-infra-container-image", default="registry.k8s.io/pause:3.10",
                   help="the sandbox (pause) image; it must be present on the node")
    p.add_argument("--image-pull-registries", default="",
                   help="comma-separated registries (host[:port]) this node may pull from; images of others are "
                        "never pulled: present ones are used, missing ones are ErrImagePull")
    p.add_argument("--cpu", default=None, help="node cpu capacity (docker: the host's; hollow: 4)")
    p.add_argument("--memory", default=None, help="node memory capacity (docker: the host's; hollow: 8Gi)")
    p.add_argument("--max-pods", default="110")
    p.add_argument("--sync-frequency", type=float, default=60.0,
                   help="seconds between syncs of every pod (configMap and secret volumes are refreshed then)")
    p.add_argument("--ready-delay", type=float, default=0.5, help="hollow: seconds from start to Ready")
    p.add_argument("--node-lease-duration", type=int, default=40, help="seconds; the Lease is renewed every quarter")
    p.add_argument("--node-status-update-frequency", type=float, default=10.0,
                   help="seconds between checks that the Node's status is what this kubelet reports")
    p.add_argument("--port", type=int, default=10250, help="HTTPS port of the kubelet API (logs, exec, attach, "
                   "port-forward, stats), advertised in the Node")
    p.add_argument("--address", default="0.0.0.0", help="IP address the kubelet API serves on (docker runtime)")
    p.add_argument("--cert-dir", default="", help="the kubelet API's serving certificate (self-signed when absent, "
                   "as upstream's); default ROOT_DIR/pki")
    p.add_argument("--client-ca-file", default="", help="CA whose client certificates may use the kubelet API "
                   "(the apiserver's kubelet-client certificate); default: the kubeconfig's cluster CA")
    p.add_argument("--anonymous-auth", default="false", choices=["true", "false"],
                   help="serve the kubelet API to unauthenticated clients (otherwise: a client certificate from "
                        "--client-ca-file or a bearer token the apiserver's TokenReview accepts)")
    p.add_argument("--healthz-bind-address", default="127.0.0.1")
    p.add_argument("--healthz-port", type=int, default=10248, help="plain-HTTP /healthz and /metrics; 0 disables")
    p.add_argument("--non-masquerade-cidr", default="10.0.0.0/8",
                   help="docker: pod traffic to addresses outside this range is masqueraded (pods reach pods unNATed)")
    p.add_argument("--route-pod-cidrs", action="store_true",
                   help="docker, one node per network namespace: route every other node's podCIDR via its "
                        "InternalIP (host-gw), kept current from the Node objects")
    p.add_argument("--cluster-cidr", default="", type=_cidr,
                   help="with --route-pod-cidrs: the pods' whole range, made unreachable here except where a "
                        "node's podCIDR route (or this node's bridge) covers it")
    p.add_argument("--cleanup", action="store_true",
                   help="remove the pod-network iptables rules and pod routes the Docker kubelets on this host made, "
                        "and exit")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    return p


async def _run(a: argparse.Namespace) -> int:
    client = load_client(a.kubeconfig, "kubelet/v1.32.0", max_connections=50)
    if client is None:
        return 1
    try:
        return await _serve(a, client)
    finally:
        await client.close()


def _runtime(a: argparse.Namespace, name: str) -> Runtime:
    if a.runtime == "docker":
        return DockerRuntime(name, a.node_ip, pause_image=a.pod_infra_container_image,
                             pull_registries=tuple(r for r in a.image_pull_registries.split(",") if r),
                             non_masquerade_cidr=a.non_masquerade_cidr)
    return HollowRuntime(name, a.ready_delay)


def _capacity(a: argparse.Namespace, runtime: Runtime) -> dict[str, str]:
    host = runtime.capacity()
    disk = "100Gi"
    if runtime.host_volumes:
        Path(a.root_dir).mkdir(parents=True, exist_ok=True)
        disk = f"{shutil.disk_usage(a.root_dir).total // 1024}Ki"
    return {"cpu": a.cpu or host.get("cpu") or "4", "memory": a.memory or host.get("memory") or "8Gi",
            "pods": a.max_pods, "ephemeral-storage": disk}


async def _serve(a: argparse.Namespace, client: Client) -> int:
    """Register the nodes and run them until SIGTERM; ListenError for a taken --healthz-port,
    before anything is registered; exit code 1 when the runtime cannot be reached."""
    labels = dict(kv.split("=", 1) for kv in a.node_labels.split(",") if "=" in kv)
    names = [a.hostname_override] if a.hollow_nodes == 1 else [f"{a.hostname_override}-{i}" for i in range(a.hollow_nodes)]
    dns = DNSSettings([x for x in a.cluster_dns.split(",") if x], a.cluster_domain, a.resolv_conf)
    recorder = EventRecorder(client, "kubelet", host=names[0]) if a.runtime == "docker" else None
    agents: dict[str, NodeAgent] = {}
    services = Informer(client, SERVICES)     # containers' service variables, one watch for every node here
    services.add_indexer("namespace", lambda svc: [svc["metadata"].get("namespace", "")])
    runtimes = {n: _runtime(a, n) for n in names}
    try:
        for rt in runtimes.values():
            await rt.start()
    except RuntimeUnavailable as e:
        print(f"error: failed to run Kubelet: {e}", file=sys.stderr)
        return 1
    for n, rt in runtimes.items():
        capacity = _capacity(a, rt)
        config = ConfigBuilder(client, a.node_ip, a.root_dir, dns, rt.host_volumes, capacity, services)
        syncer = PodSyncer(client, n, a.node_ip, rt, config, recorder)
        agents[n] = NodeAgent(client, n, rt, syncer, node_ip=a.node_ip, capacity=capacity, port=a.port,
                              lease_seconds=a.node_lease_duration, labels=labels,
                              status_every=a.node_status_update_frequency, pod_cidr=a.pod_cidr)
        if isinstance(rt, DockerRuntime):   # hollow nodes have no host to be short of
            agents[n].pressure = functools.partial(host_pressure, a.root_dir)
    registry = CollectorRegistry()
    running = Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox", ["node"],
                    registry=registry)
    node_name = Gauge("kubelet_node_name", "The node's name. The count is always 1.", ["node"], registry=registry)
    for name, agent in agents.items():
        node_name.labels(name).set(1)
        running.labels(name).set_function(lambda agent=agent: len(agent.syncer.running))
    tasks: list[asyncio.Task] = []
    server, stats = _api_server(a, client, names[0], runtimes[names[0]], agents[names[0]])
    try:
        if server is not None:   # before registering: a taken port is one line, nothing registered
            await server.start()
        if a.healthz_port:   # first: it also turns SIGTERM into a clean exit, even while registering
            tasks.append(asyncio.create_task(health_server(a.healthz_bind_address, a.healthz_port, registry).serve()))
        registering = asyncio.gather(*(agent.register() for agent in agents.values()))
        await asyncio.wait([registering, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if not registering.done():
            registering.cancel()
            await asyncio.gather(registering, return_exceptions=True)
            return 0
        await _run_nodes(a, client, agents, names, tasks, services)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.stop()
            stats.close()
        for rt in runtimes.values():
            await rt.close()
    return 0


def _api_server(a: argparse.Namespace, client: Client, name: str, runtime: Runtime,
                agent: NodeAgent) -> tuple[KubeletServer | None, DockerStats | None]:
    """The kubelet API over the Docker runtime's containers (hollow nodes serve none)."""
    if not isinstance(runtime, DockerRuntime):
        return None, None
    containers = DockerContainers(runtime.api, name)
    stats = DockerStats(containers, name)
    client_ca = Path(a.client_ca_file).read_bytes() if a.client_ca_file else client.config.ca_data
    auth = KubeletAuth(client_ca, client, a.anonymous_auth == "true")
    return KubeletServer(containers, a.address, a.port, Path(a.cert_dir or Path(a.root_dir) / "pki"),
                         pods=lambda: list(agent.syncer.pods.values()), stats=stats.summary, node_name=name,
                         sans=[a.node_ip], auth=auth), stats


async def _run_nodes(a: argparse.Namespace, client: Client, agents: dict[str, NodeAgent], names: list[str],
                     tasks: list[asyncio.Task], services: Informer) -> None:
    """Watch the nodes' pods and Node objects (one watch per node, or one shared watch when a
    process holds many; every Node for --route-pod-cidrs) and the Services, then run heartbeats,
    pod workers, relists and the pod routes until one ends."""
    routes = _pod_routes(a, agents)
    if len(agents) == 1:
        pods = Informer(client, PODS, field_selector=f"spec.nodeName={names[0]}")
        nodes = Informer(client, NODES, field_selector="" if routes else f"metadata.name={names[0]}")
    else:
        pods = Informer(client, PODS, field_selector="spec.nodeName!=")
        nodes = Informer(client, NODES)
    for agent in agents.values():
        agent.nodes = nodes
        if agent.flag_cidr:
            agent.node_changed({})

    def route(fn: str, key: str):
        def handler(*objs: dict) -> None:
            obj = objs[-1]
            agent = agents.get((obj.get("spec") or {}).get("nodeName", "") if key == "pod" else obj["metadata"]["name"])
            if agent is not None:
                getattr(agent.syncer if key == "pod" else agent, fn)(obj)
        return handler
    nodes.add_handler(route("node_changed", "node"), route("node_changed", "node"))
    if routes is not None:
        routes.nodes = nodes
        nodes.add_handler(routes.changed, routes.changed, routes.changed)
        tasks.append(asyncio.create_task(routes.run()))
    pods.add_handler(route("pod_changed", "pod"), route("pod_changed", "pod"), route("pod_deleted", "pod"))
    services.start()     # first: its small list is usually in before the first pod asks for it
    nodes.start()
    pods.start()
    synced = asyncio.create_task(pods.synced.wait())
    try:
        tasks += [asyncio.create_task(x.heartbeat()) for x in agents.values()]
        tasks += [asyncio.create_task(run_workers(x.syncer.queue, x.syncer.sync, WORKERS[a.runtime]))
                  for x in agents.values()]
        tasks += [asyncio.create_task(x.syncer.resync_loop(a.sync_frequency)) for x in agents.values()]
        await asyncio.wait([synced, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if synced.done():
            for agent in agents.values():
                agent.syncer.synced = True      # from now on, runtime pods the API does not have are orphans
                if agent.runtime.relist_period:
                    tasks.append(asyncio.create_task(agent.syncer.relist_loop()))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        synced.cancel()
        await pods.stop()
        await nodes.stop()
        await services.stop()


def _pod_routes(a: argparse.Namespace, agents: dict[str, NodeAgent]) -> podroutes.PodRoutes | None:
    """The host-gw routes of --route-pod-cidrs: a Docker node alone in its network namespace."""
    if not a.route_pod_cidrs:
        return None
    if a.runtime != "docker" or len(agents) != 1:
        log.warning("--route-pod-cidrs ignored: only a single Docker node routes (hollow pods have no network)")
        return None
    (name,) = agents
    return podroutes.PodRoutes(name, None, cluster_cidr=a.cluster_cidr, node_ip=a.node_ip)


async def _cleanup() -> int:
    await podnetwork.cleanup()
    await podroutes.cleanup()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.cleanup:
        run_main(_cleanup(), a.verbosity)
        return
    if not a.kubeconfig:
        parser.error("the following arguments are required: --kubeconfig")
    if a.cluster_cidr and not a.route_pod_cidrs:
        parser.error("--cluster-cidr is only meaningful with --route-pod-cidrs")
    run_main(_run(a), a.verbosity)

"""The kubelet's host-gw pod routes (`--route-pod-cidrs`) in a real network namespace, from Node
objects in a real apiserver.

The reconciler (kubelet/podroutes.PodRoutes with the kubelet's Node informer) runs on an event loop
in a thread of the test process, which reaches the apiserver on 127.0.0.1, and programs a throwaway
`ip netns` namespace through `ip -n NS`. The namespace stands for node-1:

    uplink 192.168.79.1/24 (a veth whose peer is in the namespace too; the other nodes' addresses
                            are on its link), default route via 192.168.79.254
    kbr0   10.244.1.1/24   (a bridge: node-1's own podCIDR, as Docker's bridge would hold it)

Deleting the namespace removes everything; nothing is created in the host's namespace."""
from __future__ import annotations

import asyncio
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Self

import pytest

from kubelet.podroutes import PodRoutes, Route, parse_routes
from kubeling.api.resources import lookup
from kubeling.client import Client, load_kubeconfig
from kubeling.client.informer import Informer
from tests.support.netns import add_or_skip
from tests.support.clusters import REPO, wait_for

NODES = lookup("", "v1", "nodes")
SELF_IP, DEFAULT_GW = "192.168.79.1", "192.168.79.254"
CLUSTER_CIDR = "10.244.0.0/16"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    if check and p.returncode:
        raise AssertionError(f"{' '.join(argv)}: {p.returncode}: {p.stderr}")
    return p


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    ns = f"kl-routes-{uuid.uuid4().hex[:6]}"
    add_or_skip(ns)
    try:
        for argv in (["link", "set", "lo", "up"],
                     ["link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer"],
                     ["addr", "add", f"{SELF_IP}/24", "dev", "uplink"],
                     ["link", "set", "uplink", "up"], ["link", "set", "uplink-peer", "up"],
                     ["route", "add", "default", "via", DEFAULT_GW],
                     ["route", "add", "10.250.0.0/24", "via", "192.168.79.250", "proto", "static"],   # not ours
                     ["link", "add", "kbr0", "type", "bridge"],
                     ["addr", "add", "10.244.1.1/24", "dev", "kbr0"],
                     ["link", "set", "kbr0", "up"]):
            sh("ip", "-n", ns, *argv)
        yield ns
    finally:
        sh("ip", "netns", "del", ns, check=False)


class Reconciler:
    """The kubelet's Node informer and PodRoutes on an event loop of their own, in a thread."""

    def __init__(self, kubeconfig: str, ns: str) -> None:
        self.kubeconfig, self.ns = kubeconfig, ns
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="podroutes", daemon=True)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self) -> None:
        self.client = Client(load_kubeconfig(self.kubeconfig), user_agent="podroutes-test")
        self.nodes = Informer(self.client, NODES)
        # period 30 s as in the kubelet: every change below must come from the Node watch
        self.routes = PodRoutes("node-1", self.nodes, cluster_cidr=CLUSTER_CIDR, node_ip=SELF_IP,
                                ip=("ip", "-n", self.ns), period=30.0)
        self.nodes.add_handler(self.routes.changed, self.routes.changed, self.routes.changed)
        self.nodes.start()
        self.task = asyncio.create_task(self.routes.run())

    async def _stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.nodes.stop()
        await self.client.close()

    def __enter__(self) -> Self:
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def node(name: str, cidr: str, ip: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}


def routes(ns: str) -> set[Route]:
    return set(parse_routes(sh("ip", "-n", ns, "-4", "route", "show", "proto", "117").stdout))


def route_get(ns: str, ip: str) -> str:
    p = sh("ip", "-n", ns, "route", "get", ip, check=False)
    return p.stdout.strip() if p.returncode == 0 else p.stderr.strip()


def wait_routes(ns: str, want: set[Route], what: str) -> None:
    wait_for(lambda: routes(ns) == want, 15, f"{what}: want {sorted(map(str, want))}, have "
             f"{sorted(map(str, routes(ns)))}")


def test_routes_follow_the_nodes(control_plane, netns, caplog):
    api = control_plane
    caplog.set_level("INFO", "kubelet.podroutes")
    unreachable = Route(CLUSTER_CIDR, type="unreachable")
    created: list[str] = []

    def create(name: str, cidr: str, ip: str) -> None:
        code, body, _ = api.http("POST", "/api/v1/nodes", node(name, cidr, ip))
        assert code == 201, body
        created.append(name)

    def patch(name: str, body: dict, sub: str = "") -> None:
        code, out, _ = api.http("PATCH", f"/api/v1/nodes/{name}{sub}", body,
                                content_type="application/merge-patch+json")
        assert code == 200, out

    try:
        create("node-1", "10.244.1.0/24", SELF_IP)
        create("node-2", "10.244.2.0/24", "192.168.79.2")
        create("node-3", "10.244.3.0/24", "192.168.79.3")
        create("node-4", "", "192.168.79.4")            # no podCIDR yet: no route
        create("hollow-0", "10.244.9.0/24", "127.0.0.1")  # a hollow node: never a route
        with Reconciler(str(api.kubeconfig), netns):
            wait_routes(netns, {Route("10.244.2.0/24", via="192.168.79.2"), Route("10.244.3.0/24", via="192.168.79.3"),
                                unreachable}, "routes for node-2 and node-3")
            # node-2's pods through node-2; an unowned cluster address is rejected, not sent to the
            # default route; node-1's own pods stay on its bridge; outside the cluster: the default route
            assert "via 192.168.79.2 dev uplink" in route_get(netns, "10.244.2.7")
            assert "No route to host" in route_get(netns, "10.244.200.1")
            assert "dev kbr0" in route_get(netns, "10.244.1.5")
            assert f"via {DEFAULT_GW}" in route_get(netns, "10.245.0.1")

            patch("node-2", {"status": {"addresses": [{"type": "InternalIP", "address": "192.168.79.22"},
                                                      {"type": "Hostname", "address": "node-2"}]}}, "/status")
            patch("node-4", {"spec": {"podCIDR": "10.244.4.0/24", "podCIDRs": ["10.244.4.0/24"]}})
            wait_routes(netns, {Route("10.244.2.0/24", via="192.168.79.22"), Route("10.244.3.0/24", via="192.168.79.3"),
                                Route("10.244.4.0/24", via="192.168.79.4"), unreachable},
                        "node-2's new address and node-4's podCIDR")
            assert "via 192.168.79.22 dev uplink" in route_get(netns, "10.244.2.7")

            assert api.http("DELETE", "/api/v1/nodes/node-3")[0] == 200
            wait_routes(netns, {Route("10.244.2.0/24", via="192.168.79.22"), Route("10.244.4.0/24", via="192.168.79.4"),
                                unreachable}, "node-3's route gone")
            assert "No route to host" in route_get(netns, "10.244.3.7")

        # a Node deleted while the kubelet is down: the next one removes its route (they carry proto 117)
        assert api.http("DELETE", "/api/v1/nodes/node-4")[0] == 200
        assert Route("10.244.4.0/24", via="192.168.79.4") in routes(netns)
        with Reconciler(str(api.kubeconfig), netns):
            wait_routes(netns, {Route("10.244.2.0/24", via="192.168.79.22"), unreachable}, "node-4's route gone")

        # routes that are not the kubelet's were left alone
        assert "10.250.0.0/24 via 192.168.79.250" in sh("ip", "-n", netns, "route", "show", "proto", "static").stdout
        assert "10.244.1.0/24 dev kbr0" in sh("ip", "-n", netns, "route", "show", "proto", "kernel").stdout
        logged = [r.getMessage() for r in caplog.records]
        for line in ("pod route added: 10.244.2.0/24 via 192.168.79.2 (node node-2)",
                     "pod route added: unreachable 10.244.0.0/16",
                     ("pod route changed: 10.244.2.0/24 via 192.168.79.22 (node node-2) (was 10.244.2.0/24 via "
                      "192.168.79.2)"),
                     "pod route removed: 10.244.3.0/24 via 192.168.79.3",
                     "pod route removed: 10.244.4.0/24 via 192.168.79.4"):
            assert line in logged, logged
    finally:
        for name in created:
            api.http("DELETE", f"/api/v1/nodes/{name}")

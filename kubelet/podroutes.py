"""Host-gw pod routing (`--route-pod-cidrs`): one route per other node, `<its podCIDR> via <its
InternalIP>`, in this kubelet's network namespace, kept current from the Node objects; the node's
own podCIDR is left to its Docker bridge. With a cluster CIDR, `unreachable <cluster CIDR>` too:
an address of the cluster that belongs to no node is rejected here (the more specific routes win),
never sent out through the default route.

Every route this module makes carries `proto 117` (a routing protocol number iproute2's
rt_protos leaves unnamed), so `ip -4 route show proto 117` lists exactly its own: a restarted
kubelet finds them and removes those of Nodes deleted meanwhile, and no other route of the
namespace is touched.
`desired_routes` and `diff` are pure; `PodRoutes` reconciles on Node events and every 30 s, as a
safety net against changes made behind its back.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubeling.command import CommandError, run

if TYPE_CHECKING:
    from kubeling.client.informer import Informer

log = logging.getLogger("kubelet.podroutes")

PROTO = "117"
ROUTE_TYPES = ("unreachable", "blackhole", "prohibit", "throw", "unicast", "local", "broadcast", "multicast", "nat")


@dataclass(frozen=True)
class Route:
    dst: str                 # a network, as ip prints it (10.244.2.0/24)
    via: str = ""            # the gateway of a unicast route
    type: str = ""           # "" (unicast) or "unreachable", ...
    node: str = field(default="", compare=False)   # whose podCIDR it is, for the log

    def argv(self) -> list[str]:
        return [self.type, self.dst] if self.type else [self.dst, "via", self.via]

    def __str__(self) -> str:
        return " ".join(self.argv())


def _net(cidr: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def pod_cidrs(node: dict) -> list[ipaddress.IPv4Network]:
    """The node's IPv4 pod CIDRs (spec.podCIDRs, else spec.podCIDR)."""
    spec = node.get("spec") or {}
    nets = [_net(c) for c in spec.get("podCIDRs") or [spec.get("podCIDR") or ""]]
    return [n for n in nets if n is not None]


def internal_ip(node: dict) -> str:
    """The node's first IPv4 InternalIP, or ""."""
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            try:
                if ipaddress.ip_address(a.get("address", "")).version == 4:
                    return a["address"]
            except ValueError:
                continue
    return ""


def desired_routes(nodes: Iterable[dict], self_name: str, cluster_cidr: str = "",
                   own_ips: Iterable[str] = ()) -> dict[str, Route]:
    """dst -> route: every other node's IPv4 podCIDR via its InternalIP, plus `unreachable
    cluster_cidr`. Left out: this node (its bridge routes its CIDR), nodes without a podCIDR or an
    IPv4 InternalIP, a gateway that is loopback or this node's own address (hollow nodes, or nodes
    sharing this namespace), and a CIDR that overlaps this node's. Two nodes claiming one CIDR: the
    first by name wins."""
    nodes = sorted(nodes, key=lambda n: n["metadata"]["name"])
    own = [c for n in nodes if n["metadata"]["name"] == self_name for c in pod_cidrs(n)]
    own_ips = set(own_ips)
    routes: dict[str, Route] = {}
    for node in nodes:
        name = node["metadata"]["name"]
        gateway = internal_ip(node)
        if name == self_name or not gateway or gateway in own_ips or ipaddress.ip_address(gateway).is_loopback:
            continue
        for net in pod_cidrs(node):
            if any(net.overlaps(o) for o in own) or str(net) in routes:
                continue
            routes[str(net)] = Route(str(net), via=gateway, node=name)
    cluster = _net(cluster_cidr)
    if cluster is not None and str(cluster) not in routes:
        routes[str(cluster)] = Route(str(cluster), type="unreachable")
    return routes


def parse_routes(text: str) -> list[Route]:
    """Routes from `ip -4 route show` output (`10.244.2.0/24 via 192.168.1.3 dev eth0 ...`,
    `unreachable 10.244.0.0/16 ...`); lines it cannot read are skipped."""
    out = []
    for line in text.splitlines():
        words = line.split()
        typ = ""
        if words and words[0] in ROUTE_TYPES:
            typ, words = ("" if words[0] == "unicast" else words[0]), words[1:]
        net = _net(words[0]) if words else None
        if net is None:       # "default", or nothing
            continue
        after = words[words.index("via") + 1:] if "via" in words else []
        if after[:1] == ["inet"]:    # `via inet 1.2.3.4`, as some versions print it
            after = after[1:]
        out.append(Route(str(net), via=after[0] if after else "", type=typ))
    return out


def diff(current: Sequence[Route], desired: dict[str, Route]) -> tuple[list[Route], list[Route]]:
    """(routes to `ip route replace`, routes to `ip route del`): a destination whose route is
    missing or different is replaced in place; one no longer desired is deleted."""
    have = {r.dst: r for r in current}
    key = lambda r: ipaddress.ip_network(r.dst)
    replace = sorted((r for dst, r in desired.items() if have.get(dst) != r), key=key)
    delete = sorted((r for dst, r in have.items() if dst not in desired), key=key)
    return replace, delete


def _relevant(node: dict) -> tuple:
    return (node["metadata"].get("name"), [str(c) for c in pod_cidrs(node)], internal_ip(node))


class PodRoutes:
    """Keeps the routes of `desired_routes(nodes.list(), ...)` in the namespace `ip` acts on
    (`ip=("ip", "-n", NS)` for another one). Call `changed` from the Node informer's handlers and
    run `run()` as a task."""

    def __init__(self, node_name: str, nodes: Informer | None, *, cluster_cidr: str = "", node_ip: str = "",
                 ip: Sequence[str] = ("ip",), period: float = 30.0) -> None:
        self.node_name, self.nodes, self.cluster_cidr = node_name, nodes, cluster_cidr
        self.own_ips = {node_ip} if node_ip else set()
        self.ip, self.period = tuple(ip), period
        self.wake = asyncio.Event()
        self.failing: dict[str, str] = {}      # route -> its last error, logged once until it changes

    def changed(self, *objs: dict) -> None:
        """Informer handler (add, update, delete): reconcile soon, unless an update changed
        neither a podCIDR nor an address (a status heartbeat)."""
        if len(objs) == 2 and _relevant(objs[0]) == _relevant(objs[1]):
            return
        self.wake.set()

    async def current(self) -> list[Route]:
        _, out = await run(*self.ip, "-4", "route", "show", "proto", PROTO)
        return parse_routes(out)

    async def reconcile(self) -> bool:
        """One pass; False when some route could not be changed (each failure is logged)."""
        desired = desired_routes(self.nodes.list(), self.node_name, self.cluster_cidr, self.own_ips)
        current = await self.current()
        replace, delete = diff(current, desired)
        before = {r.dst: r for r in current}
        pending = {str(r) for r in replace + delete}
        self.failing = {k: v for k, v in self.failing.items() if k in pending}
        ok = True
        for r in replace:
            ok &= await self._apply("replace", r, before.get(r.dst))
        for r in delete:
            ok &= await self._apply("del", r, None)
        return ok

    async def _apply(self, verb: str, r: Route, old: Route | None) -> bool:
        whose = f" (node {r.node})" if r.node else ""
        try:
            await run(*self.ip, "route", verb, *r.argv(), "proto", PROTO, ok="No such process" if verb == "del" else "")
        except (CommandError, OSError) as e:
            if self.failing.get(str(r)) != str(e):
                log.error("pod route %s%s: %s", r, whose, e)
            self.failing[str(r)] = str(e)
            return False
        self.failing.pop(str(r), None)
        if verb == "del":
            log.info("pod route removed: %s", r)
        elif old is None:
            log.info("pod route added: %s%s", r, whose)
        else:
            log.info("pod route changed: %s%s (was %s)", r, whose, old)
        return True

    async def run(self) -> None:
        """Reconcile once the Node informer has listed, then on every relevant Node event and at
        least every `period` seconds (sooner, backing off, after a failure). Never raises."""
        await self.nodes.synced.wait()
        log.info("pod routes: each other node's podCIDR via its InternalIP%s",
                 f"; unreachable {self.cluster_cidr}" if self.cluster_cidr else "")
        delay = 1.0
        while True:
            self.wake.clear()
            try:
                ok = await self.reconcile()
            except (CommandError, OSError) as e:
                log.error("pod routes: %s", e)
                ok = False
            except Exception:
                log.exception("pod routes: reconcile failed")
                ok = False
            wait = self.period if ok else min(delay, self.period)
            delay = 1.0 if ok else min(delay * 2, self.period)
            try:
                await asyncio.wait_for(self.wake.wait(), wait)
            except TimeoutError:
                pass


async def cleanup(ip: Sequence[str] = ("ip",)) -> None:
    """Remove every route this module made (`kubelet --cleanup`); nothing to do without `ip`."""
    try:
        await run(*ip, "-4", "route", "flush", "proto", PROTO, check=False)
    except OSError as e:
        log.debug("pod routes cleanup: %s", e)

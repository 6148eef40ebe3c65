"""The kubelet's host-gw pod routes: the routes Node objects call for, and the diff against `ip`."""
from __future__ import annotations

import asyncio

from kubelet import podroutes
from kubelet.podroutes import Route, desired_routes, diff, parse_routes


def node(name: str, cidr: str = "", ip: str = "", *, cidrs: list[str] | None = None, hostname: bool = True) -> dict:
    addresses = ([{"type": "InternalIP", "address": ip}] if ip else []) + \
        ([{"type": "Hostname", "address": name}] if hostname else [])
    spec = {"podCIDR": cidr} if cidr else {}
    if cidrs is not None:
        spec["podCIDRs"] = cidrs
    return {"metadata": {"name": name}, "spec": spec, "status": {"addresses": addresses}}


def test_every_other_node_is_routed_via_its_internal_ip_and_the_cluster_cidr_is_unreachable():
    nodes = [node("node-1", "10.244.1.0/24", "172.30.0.11"), node("node-2", "10.244.2.0/24", "172.30.0.12"),
             node("node-3", "10.244.3.0/24", "172.30.0.13")]
    assert desired_routes(nodes, "node-1", "10.244.0.0/16") == {
        "10.244.2.0/24": Route("10.244.2.0/24", via="172.30.0.12"),
        "10.244.3.0/24": Route("10.244.3.0/24", via="172.30.0.13"),
        "10.244.0.0/16": Route("10.244.0.0/16", type="unreachable")}
    assert desired_routes(nodes, "node-1")["10.244.2.0/24"].node == "node-2"
    assert "10.244.0.0/16" not in desired_routes(nodes, "node-1")


def test_nodes_that_cannot_be_routed_get_no_route():
    nodes = [node("self", "10.244.1.0/24", "172.30.0.11"),
             node("no-cidr", "", "172.30.0.12"),                       # node IPAM has not got to it yet
             node("no-address", "10.244.3.0/24"),
             node("v6-only", "10.244.4.0/24", "fd00::4"),
             node("hollow", "10.244.5.0/24", "127.0.0.1"),             # hollow nodes' default address
             node("same-ns", "10.244.6.0/24", "172.30.0.11"),          # shares this node's namespace
             node("overlap", "10.244.1.128/25", "172.30.0.17"),        # inside this node's own CIDR
             node("bad-cidr", "not-a-cidr", "172.30.0.18"),
             node("ok", "10.244.9.0/24", "172.30.0.19")]
    assert desired_routes(nodes, "self", own_ips=["172.30.0.11"]) == {
        "10.244.9.0/24": Route("10.244.9.0/24", via="172.30.0.19")}


def test_pod_cidrs_win_over_pod_cidr_and_ipv6_ones_are_skipped():
    nodes = [node("a", "10.244.2.0/24", "172.30.0.12", cidrs=["10.244.2.0/24", "fd00:10:244:2::/64"])]
    assert list(desired_routes(nodes, "self")) == ["10.244.2.0/24"]


def test_a_cidr_claimed_twice_goes_to_the_first_node_by_name():
    nodes = [node("node-b", "10.244.2.0/24", "172.30.0.12"), node("node-a", "10.244.2.0/24", "172.30.0.13")]
    assert desired_routes(nodes, "self")["10.244.2.0/24"] == Route("10.244.2.0/24", via="172.30.0.13")


def test_ip_route_show_is_parsed():
    text = ("unreachable 10.244.0.0/16 \n"
            "10.244.2.0/24 via 192.168.78.2 dev d0 \n"
            "10.244.3.0/24 via 192.168.78.3 dev d0 linkdown \n"
            "10.244.4.7 via inet 192.168.78.4 dev d0 metric 5\n"
            "default via 192.168.78.254 dev d0 \n"
            "blackhole 10.99.0.0/16 proto static\n"
            "\n")
    assert parse_routes(text) == [Route("10.244.0.0/16", type="unreachable"),
                                  Route("10.244.2.0/24", via="192.168.78.2"),
                                  Route("10.244.3.0/24", via="192.168.78.3"),
                                  Route("10.244.4.7/32", via="192.168.78.4"),
                                  Route("10.99.0.0/16", type="blackhole")]


def test_the_diff_replaces_missing_and_changed_routes_and_deletes_stale_ones():
    desired = {"10.244.2.0/24": Route("10.244.2.0/24", via="172.30.0.12"),
               "10.244.3.0/24": Route("10.244.3.0/24", via="172.30.0.23"),
               "10.244.10.0/24": Route("10.244.10.0/24", via="172.30.0.20"),
               "10.244.0.0/16": Route("10.244.0.0/16", type="unreachable")}
    current = parse_routes("10.244.2.0/24 via 172.30.0.12 dev eth0\n"     # as wanted
                           "10.244.3.0/24 via 172.30.0.13 dev eth0\n"     # the node's address changed
                           "10.244.4.0/24 via 172.30.0.14 dev eth0\n"     # its Node was deleted
                           "blackhole 10.244.0.0/16\n")                  # the wrong type
    replace, delete = diff(current, desired)
    assert replace == [Route("10.244.0.0/16", type="unreachable"), Route("10.244.3.0/24", via="172.30.0.23"),
                       Route("10.244.10.0/24", via="172.30.0.20")]
    assert delete == [Route("10.244.4.0/24", via="172.30.0.14")]
    assert diff(parse_routes("unreachable 10.244.0.0/16\n10.244.2.0/24 via 172.30.0.12 dev eth0\n"
                             "10.244.3.0/24 via 172.30.0.23 dev eth0\n10.244.10.0/24 via 172.30.0.20 dev eth0\n"),
                desired) == ([], [])


def test_route_argv():
    assert Route("10.244.2.0/24", via="172.30.0.12").argv() == ["10.244.2.0/24", "via", "172.30.0.12"]
    assert Route("10.244.0.0/16", type="unreachable").argv() == ["unreachable", "10.244.0.0/16"]


class FakeNodes:
    def __init__(self, nodes: list[dict]) -> None:
        self.nodes = nodes
        self.synced = asyncio.Event()
        self.synced.set()

    def list(self) -> list[dict]:
        return self.nodes


async def test_reconcile_runs_ip_with_proto_and_logs_each_change(monkeypatch, caplog):
    calls: list[tuple[str, ...]] = []

    async def fake_run(*argv: str, check: bool = True, ok: str = "") -> tuple[int, str]:
        calls.append(argv)
        if "show" in argv:
            return 0, "10.244.2.0/24 via 172.30.0.2 dev eth0 \n10.244.4.0/24 via 172.30.0.14 dev eth0 \n"
        if "10.244.3.0/24" in argv:
            raise podroutes.CommandError("ip route replace 10.244.3.0/24 ...: exit 2: Nexthop has invalid gateway.")
        return 0, ""
    monkeypatch.setattr(podroutes, "run", fake_run)
    nodes = FakeNodes([node("node-1", "10.244.1.0/24", "172.30.0.11"), node("node-2", "10.244.2.0/24", "172.30.0.12"),
                       node("node-3", "10.244.3.0/24", "10.9.9.9")])
    routes = podroutes.PodRoutes("node-1", nodes, cluster_cidr="10.244.0.0/16", ip=("ip", "-n", "x"))
    caplog.set_level("INFO", "kubelet.podroutes")
    assert await routes.reconcile() is False       # node-3's gateway is not reachable
    assert calls == [("ip", "-n", "x", "-4", "route", "show", "proto", "117"),
                     ("ip", "-n", "x", "route", "replace", "unreachable", "10.244.0.0/16", "proto", "117"),
                     ("ip", "-n", "x", "route", "replace", "10.244.2.0/24", "via", "172.30.0.12", "proto", "117"),
                     ("ip", "-n", "x", "route", "replace", "10.244.3.0/24", "via", "10.9.9.9", "proto", "117"),
                     ("ip", "-n", "x", "route", "del", "10.244.4.0/24", "via", "172.30.0.14", "proto", "117")]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "pod route added: unreachable 10.244.0.0/16",
        "pod route changed: 10.244.2.0/24 via 172.30.0.12 (node node-2) (was 10.244.2.0/24 via 172.30.0.2)",
        ("pod route 10.244.3.0/24 via 10.9.9.9 (node node-3): ip route replace 10.244.3.0/24 ...: exit 2: "
         "Nexthop has invalid gateway."),
        "pod route removed: 10.244.4.0/24 via 172.30.0.14"]
    caplog.clear()
    await routes.reconcile()        # the same failure again is not logged again
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_only_updates_that_change_a_cidr_or_an_address_wake_the_reconciler():
    routes = podroutes.PodRoutes("node-1", None)
    a = node("node-2", "10.244.2.0/24", "172.30.0.12")
    heartbeat = {**a, "status": {**a["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
    routes.changed(a, heartbeat)
    assert not routes.wake.is_set()
    routes.changed(a, node("node-2", "10.244.2.0/24", "172.30.0.99"))
    assert routes.wake.is_set()
    routes.wake.clear()
    routes.changed(a)        # an add or a delete
    assert routes.wake.is_set()


def test_the_flag_routes_only_a_single_docker_node(caplog):
    from kubelet.cli import _pod_routes, build_parser
    args = ["--kubeconfig", "k", "--route-pod-cidrs", "--cluster-cidr", "10.244.7.1/16", "--node-ip", "172.30.0.11"]
    docker = build_parser().parse_args([*args, "--runtime", "docker"])
    routes = _pod_routes(docker, {"node-1": None})
    assert (routes.node_name, routes.cluster_cidr, routes.own_ips) == ("node-1", "10.244.0.0/16", {"172.30.0.11"})
    assert _pod_routes(build_parser().parse_args(args), {"node-1": None}) is None        # hollow: no network
    assert "--route-pod-cidrs ignored" in caplog.text
    assert _pod_routes(build_parser().parse_args(["--runtime", "docker"]), {"node-1": None}) is None

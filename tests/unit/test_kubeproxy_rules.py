"""Golden tests of the kube-proxy rule renderer: each case's whole iptables-restore payload is
compared with tests/unit/golden/kubeproxy/<case>.txt (KUBEPROXY_GOLDEN_UPDATE=1 rewrites them), and
the chain names are checked against upstream's hashing."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import subprocess
import uuid

import pytest
from prometheus_client import CollectorRegistry

from kubeproxy.health import ProxierHealth
from kubeproxy.proxier import trigger_time
from kubeproxy.rules import (
    CANARY,
    SERVICE_CHAIN_PREFIXES,
    Cache,
    Options,
    ServicePort,
    build,
    chain,
    chains_in,
    render,
    render_cleanup,
)

GOLDEN = pathlib.Path(__file__).parent / "golden" / "kubeproxy"
OPTS = Options(node_name="node-1", cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/16")


def svc(name: str, ip: str, ports: list[dict], type_: str = "ClusterIP", **spec: object) -> dict:
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"type": type_, "clusterIP": ip, "ports": ports, **spec}}


def eps(name: str, ports: list[dict], endpoints: list[tuple[str, str, dict]], suffix: str = "abcde") -> dict:
    """A slice of `name`'s endpoints: (ip, node, conditions)."""
    return {"metadata": {"namespace": "default", "name": f"{name}-{suffix}",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": ports,
            "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": c} for ip, node, c in endpoints]}


READY = {"ready": True, "serving": True, "terminating": False}
TERMINATING = {"ready": False, "serving": True, "terminating": True}
WEB = [{"name": "", "port": 80, "protocol": "TCP"}]
WEB_EPS = [{"name": "", "port": 8080, "protocol": "TCP"}]
THREE = [("10.244.1.2", "node-1", READY), ("10.244.2.3", "node-2", READY), ("10.244.1.4", "node-1", READY)]

CASES: dict[str, tuple[list[dict], list[dict], Options]] = {
    "clusterip": ([svc("web", "10.96.0.20", WEB)],
                  [eps("web", WEB_EPS, THREE + [("10.244.2.9", "node-2", TERMINATING)])], OPTS),
    "multiport": ([svc("app", "10.96.0.30", [{"name": "http", "port": 80}, {"name": "dns", "port": 53,
                                                                              "protocol": "UDP"}])],
                  [eps("app", [{"name": "http", "port": 8080, "protocol": "TCP"},
                               {"name": "dns", "port": 5353, "protocol": "UDP"}], THREE[:2])], OPTS),
    "affinity": ([svc("sticky", "10.96.0.40", WEB, sessionAffinity="ClientIP",
                      sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})],
                 [eps("sticky", WEB_EPS, THREE[:2])], OPTS),
    "nodeport": ([svc("np", "10.96.0.50", [{"port": 80, "nodePort": 30080}], "NodePort")],
                 [eps("np", WEB_EPS, THREE[:2])],
                 Options(node_name="node-1", cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/16",
                         nodeport_ips=("192.168.50.2", "127.0.0.1"))),
    "local": ([svc("ext", "10.96.0.60", [{"port": 80, "nodePort": 30060}], "NodePort", externalTrafficPolicy="Local"),
               svc("int", "10.96.0.61", WEB, internalTrafficPolicy="Local"),
               svc("remote", "10.96.0.62", [{"port": 80, "nodePort": 30062}], "NodePort",
                   externalTrafficPolicy="Local")],
              [eps("ext", WEB_EPS, THREE), eps("int", WEB_EPS, THREE), eps("remote", WEB_EPS, THREE[1:2])], OPTS),
    "external": ([svc("eip", "10.96.0.90", WEB, externalIPs=["192.0.2.10"]),
                  {**svc("lb", "10.96.0.91", [{"port": 80, "nodePort": 30091}], "LoadBalancer",
                         externalTrafficPolicy="Local"),
                   "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.20"}]}}},
                  svc("eipnone", "10.96.0.92", WEB, externalIPs=["192.0.2.30"])],
                 [eps("eip", WEB_EPS, THREE[:2]), eps("lb", WEB_EPS, THREE[1:2])], OPTS),
    "noendpoint": ([svc("empty", "10.96.0.70", [{"port": 80, "nodePort": 30070}], "NodePort"),
                    svc("notready", "10.96.0.71", WEB), svc("headless", "None", WEB)],
                   [eps("notready", WEB_EPS, [("10.244.1.2", "node-1", {"ready": False})])], OPTS),
    "hairpin": ([svc("self", "10.96.0.80", WEB)], [eps("self", WEB_EPS, THREE[:1])],
                Options(node_name="node-1", cluster_cidr="10.244.0.0/16", masquerade_all=True)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    services, slices, opts = CASES[case]
    got = render(services, slices, opts)
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("KUBEPROXY_GOLDEN_UPDATE"):
        path.write_text(got)
    assert got == path.read_text()


def test_partial_sync_golden() -> None:
    """Only default/int changed: its chains are rewritten; the other services' chains are neither
    declared (so not flushed) nor deleted, but their jumps from KUBE-SERVICES/KUBE-NODEPORTS stay."""
    services, slices, opts = CASES["local"]
    full = render(services, slices, opts)
    got = render(services, slices, opts, existing=chains_in(full), only={"default/int"})
    path = GOLDEN / "partial.txt"
    if os.environ.get("KUBEPROXY_GOLDEN_UPDATE"):
        path.write_text(got)
    assert got == path.read_text()
    assert "-X " not in got and ":KUBE-SVL-PU6BZ4TXEA4AEGOP" in got and ":KUBE-SVC-6LXSDFJTQYGY7FL3" not in got
    assert "-j KUBE-SVC-6LXSDFJTQYGY7FL3" in got


def test_chain_names_match_upstream() -> None:
    """Values from upstream's proxier_test.go (ns1/svc1:p80, tcp, endpoint 10.180.0.1:80)."""
    sp = ServicePort(name="ns1/svc1:p80", protocol="tcp", cluster_ip="172.30.0.41", port=80)
    assert chain("SVC", sp) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert chain("SEP", sp, "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def test_stale_service_chains_deleted_and_cleanup_covers_all() -> None:
    services, slices, opts = CASES["clusterip"]
    first = chains_in(render(services, slices, opts))
    after = render([], [], opts, existing=first)
    for c in first["nat"]:
        if c.startswith(("KUBE-SVC-", "KUBE-SEP-")):
            assert f"-X {c}\n" in after
    cleanup = render_cleanup(first)
    for chains in first.values():
        for c in chains:
            assert f"-X {c}\n" in cleanup


def test_goldens_are_valid_iptables() -> None:
    """Every golden is accepted by the real iptables-restore, in a throwaway network namespace."""
    if shutil.which("iptables-restore") is None or os.geteuid() != 0:
        pytest.skip("needs root and iptables-restore")
    ns = f"kpgold-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True, check=False).returncode != 0:
        pytest.skip("ip netns add is not permitted here")
    try:
        # partial.txt jumps to chains of local.txt's services, so it is loaded after them
        for path in sorted(GOLDEN.glob("*.txt"), key=lambda p: (p.name == "partial.txt", p.name)):
            r = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "--noflush", "-w"],
                               input=path.read_text(), capture_output=True, text=True, check=False)
            assert r.returncode == 0, f"{path.name}: {r.stderr}"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


def test_payload_counts_rules_kept_by_a_partial_sync() -> None:
    """sync_proxy_rules_iptables_total counts every owned rule, those a partial sync leaves in the
    kernel too; _last counts what the payload writes. `chains` is what the kernel holds after."""
    services, slices, opts = CASES["local"]
    full = build(services, slices, opts)
    filt, nat = full.text.split("*nat\n")
    assert full.rules == full.written == {"filter": filt.count("\n-A "), "nat": nat.count("\n-A ")}
    partial = build(services, slices, opts, existing=chains_in(full.text), only={"default/int"})
    assert partial.rules == full.rules and partial.written["nat"] < full.written["nat"]
    assert partial.chains == full.chains == {c for c in chains_in(full.text)["nat"] if c.startswith(SERVICE_CHAIN_PREFIXES)}


def test_cleanup_removes_canaries_and_names_no_empty_table() -> None:
    existing = {"filter": {"INPUT", CANARY, "KUBE-SERVICES"}, "nat": {"PREROUTING", CANARY}, "mangle": {CANARY}}
    assert render_cleanup(existing) == (
        "*filter\n:KUBE-PROXY-CANARY - [0:0]\n:KUBE-SERVICES - [0:0]\n-X KUBE-PROXY-CANARY\n-X KUBE-SERVICES\nCOMMIT\n"
        "*nat\n:KUBE-PROXY-CANARY - [0:0]\n-X KUBE-PROXY-CANARY\nCOMMIT\n"
        "*mangle\n:KUBE-PROXY-CANARY - [0:0]\n-X KUBE-PROXY-CANARY\nCOMMIT\n")
    assert render_cleanup({"filter": {"INPUT"}, "nat": set()}) == "\n"


def test_trigger_time_annotation() -> None:
    def eps_at(value: str) -> dict:
        return {"metadata": {"annotations": {"endpoints.kubernetes.io/last-change-trigger-time": value}}}
    assert trigger_time(eps_at("2026-11-29T09:00:00.123456789Z")) == pytest.approx(1795942800.123456789)
    assert trigger_time(eps_at("2026-11-29T10:00:00+01:00")) == 1795942800.0
    assert trigger_time(eps_at("yesterday")) is None and trigger_time({"metadata": {}}) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1795942800.0

    def __call__(self) -> float:
        return self.now


def test_health_unhealthy_only_when_a_queued_change_is_late() -> None:
    """Upstream's proxierHealthServer: healthy while starting and while synced; a queued change
    makes it unhealthy once it has waited the timeout; a sync that began before the change does
    not clear it, the next one does. /livez ignores the node, /healthz does not."""
    clock, registry = Clock(), CollectorRegistry()
    h = ProxierHealth(60, registry, clock)
    start = "2026-11-29 09:00:00.000000 +0000 UTC"
    assert h.answer("/healthz") == (200, f'{{"lastUpdated": "{start}", "currentTime": "{start}", '
                                         f'"nodeEligible": true}}'.encode())
    h.sync_started()
    clock.now += 1
    h.updated()
    h.queued_update()
    clock.now += 59.9
    assert h.answer("/livez")[0] == 200
    h.sync_started()
    clock.now += 0.05
    h.queued_update()      # after the sync's snapshot: still pending when it ends
    clock.now += 0.05
    h.updated()
    clock.now += 59.96
    code, body = h.answer("/healthz")
    assert code == 503 and json.loads(body)["lastUpdated"] == "2026-11-29 09:01:01.000000 +0000 UTC"
    h.sync_started()
    h.sync_failed()
    assert h.answer("/livez")[0] == 503
    h.sync_started()
    h.updated()
    assert h.answer("/healthz")[0] == 200
    h.sync_node({"metadata": {"name": "node-1"}, "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler"}]}})
    assert h.answer("/healthz")[0] == 503 and h.answer("/livez")[0] == 200
    assert json.loads(h.answer("/healthz")[1])["nodeEligible"] is False
    h.sync_node({"metadata": {"name": "node-1"}})
    assert h.answer("/healthz")[0] == 200
    assert registry.get_sample_value("kubeproxy_proxy_healthz_total", {"code": "503"}) == 3
    assert registry.get_sample_value("kubeproxy_proxy_livez_total", {"code": "200"}) == 2


def test_health_served_in_front_of_the_metrics_app() -> None:
    h = ProxierHealth(60, CollectorRegistry(), Clock())
    sent: list[dict] = []

    async def metrics_app(scope: dict, receive: object, send: object) -> None:
        sent.append({"metrics": scope["path"]})

    async def send(message: dict) -> None:
        sent.append(message)
    app = h.serve_on(metrics_app)
    asyncio.run(app({"type": "http", "path": "/healthz"}, None, send))
    asyncio.run(app({"type": "http", "path": "/metrics"}, None, send))
    assert sent[0]["status"] == 200 and (b"content-type", b"application/json") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["nodeEligible"] is True and sent[2] == {"metrics": "/metrics"}


def test_cached_partial_build_skips_unchanged_shared_chains() -> None:
    """Partial syncs reuse the unchanged services' rendering from the cache, and leave out the
    shared chains whose rules did not change: the rest is the uncached payload line for line. A
    change that alters a shared chain writes it whole; a deleted service leaves the cache."""
    services, slices, opts = CASES["local"]
    cache = Cache()
    full = build(services, slices, opts, cache=cache)
    assert full.text == render(services, slices, opts) and len(cache.services) == 3
    existing = chains_in(full.text)
    moved = [eps("int", WEB_EPS, THREE[1:])] + [s for s in slices if s["metadata"]["name"] != "int-abcde"]
    partial = build(services, moved, opts, existing, {"default/int"}, cache)
    uncached = render(services, moved, opts, existing, {"default/int"})
    assert "*filter" not in partial.text and ":KUBE-SERVICES" not in partial.text
    assert set(partial.text.splitlines()) < set(uncached.splitlines())
    assert ":KUBE-SEP-PY6H3DLGUPPN4SEA - [0:0]" in partial.text   # int's chains are rewritten
    assert partial.rules == build(services, moved, opts).rules and partial.written["nat"] < partial.rules["nat"]
    gone = [s for s in moved if s["metadata"]["name"] != "int-abcde"]   # int loses every endpoint
    emptied = build(services, gone, opts, existing, {"default/int"}, cache).text
    assert set(emptied.splitlines()) <= set(render(services, gone, opts, existing, {"default/int"}).splitlines())
    assert emptied.count(":KUBE-SERVICES - [0:0]") == 2 and '"default/int has no endpoints"' in emptied
    assert ":KUBE-FORWARD" not in emptied and ":KUBE-NODEPORTS" not in emptied
    build(services[:2], gone, opts, existing, {"default/remote"}, cache)
    assert set(cache.services) == {"default/ext", "default/int"}

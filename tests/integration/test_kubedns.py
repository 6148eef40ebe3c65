"""`python -m kubedns` against a real apiserver, queried over UDP and TCP on loopback: Services and
EndpointSlices written through the API are answered within 1 s; names outside the domain go to a
tiny local upstream (never anywhere else)."""
from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from tests.support.clusters import REPO, free_port, wait_for
from tests.support.control_plane import Component

DOMAIN = "cluster.local"


class Upstream(BaseResolver):
    """Every name is 192.0.2.1: proof that the query went upstream."""

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.1"), ttl=60))
        return reply


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    port = free_port()
    servers = [DNSServer(Upstream(), address="127.0.0.1", port=port, tcp=tcp) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    yield port
    for s in servers:
        s.stop()
        s.server.server_close()


def start_kubedns(tmp, kubeconfig, *extra: str, name: str = "kubedns") -> tuple[Component, int, int]:
    dns, health = free_port(), free_port()
    c = Component(tmp, "kubedns", ["--kubeconfig", str(kubeconfig), "--cluster-domain", DOMAIN,
                                   "--listen", f"127.0.0.1:{dns}", "--port", str(health), *extra], name=name).start()
    wait_for(lambda: "serving DNS on" in c.log.read_text() or c.proc.poll() is not None, 30, "kubedns to serve")
    assert c.proc.poll() is None, c.log.read_text()
    return c, dns, health


@pytest.fixture(scope="module")
def kubedns(control_plane, upstream, tmp_path_factory) -> Iterator[int]:
    c, dns, _ = start_kubedns(tmp_path_factory.mktemp("kubedns"), control_plane.kubeconfig,
                              "--upstream", f"127.0.0.1:{upstream}")
    yield dns
    c.stop()
    assert c.proc.returncode == 0, c.log.read_text()[-3000:]


def query(port: int, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp, timeout=5))


def answers(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr)


def within(seconds: float, check: Callable[[], bool], what: str) -> None:
    wait_for(check, seconds, what, interval=0.02)


def create(api, path: str, body: dict) -> dict:
    code, obj, _ = api.http("POST", path, body)
    assert code == 201, obj
    return obj


def service(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def slice_(service_name: str, endpoints: list[dict], ports: list[dict]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-1", "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}


def test_cluster_ip_service_a_srv_ptr_over_udp_and_tcp_and_deletion(control_plane, kubedns, ns):
    svc = create(control_plane, f"/api/v1/namespaces/{ns}/services",
                 service("web", selector={"app": "web"}, ports=[{"name": "http", "port": 80, "protocol": "TCP"}]))
    ip, name = svc["spec"]["clusterIP"], f"web.{ns}.svc.{DOMAIN}"
    within(1, lambda: answers(query(kubedns, name)) == [ip], "the Service's A record")
    for tcp in (False, True):
        reply = query(kubedns, name, tcp=tcp)
        assert (answers(reply), reply.rr[0].ttl, reply.header.aa) == ([ip], 30, 1)
        srv = query(kubedns, f"_http._tcp.{name}", "SRV", tcp=tcp)
        assert answers(srv) == [f"0 100 80 {name}."] and [str(rr.rdata) for rr in srv.ar] == [ip]
        reverse = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
        assert answers(query(kubedns, reverse, "PTR", tcp=tcp)) == [f"{name}."]
    code, _, _ = control_plane.http("DELETE", f"/api/v1/namespaces/{ns}/services/web")
    assert code == 200
    within(1, lambda: query(kubedns, name).header.rcode == RCODE.NXDOMAIN, "NXDOMAIN after the delete")
    reply = query(kubedns, name, tcp=True)
    assert [(QTYPE[rr.rtype], str(rr.rdata.mname)) for rr in reply.auth] == [("SOA", f"ns.dns.{DOMAIN}.")]


def test_headless_service_follows_its_endpoint_slice(control_plane, kubedns, ns):
    create(control_plane, f"/api/v1/namespaces/{ns}/services",
           service("db", clusterIP="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]))
    create(control_plane, f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", slice_("db", [
        {"addresses": ["10.244.1.7"], "hostname": "db-0", "conditions": {"ready": True}},
        {"addresses": ["10.244.2.8"], "hostname": "db-1", "conditions": {"ready": True}}],
        [{"name": "pg", "port": 5432, "protocol": "TCP"}]))
    name = f"db.{ns}.svc.{DOMAIN}"
    within(1, lambda: answers(query(kubedns, name)) == ["10.244.1.7", "10.244.2.8"], "one A per ready endpoint")
    assert answers(query(kubedns, f"db-0.{name}", tcp=True)) == ["10.244.1.7"]
    assert answers(query(kubedns, f"_pg._tcp.{name}", "SRV")) == [f"0 50 5432 db-0.{name}.", f"0 50 5432 db-1.{name}."]
    assert answers(query(kubedns, "8.2.244.10.in-addr.arpa", "PTR")) == [f"db-1.{name}."]
    code, body, _ = control_plane.http("PATCH", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/db-1",
                                       {"endpoints": [{"addresses": ["10.244.1.7"], "hostname": "db-0",
                                                       "conditions": {"ready": True}},
                                                      {"addresses": ["10.244.2.8"], "hostname": "db-1",
                                                       "conditions": {"ready": False}}]},
                                       content_type="application/merge-patch+json")
    assert code == 200, body
    within(1, lambda: answers(query(kubedns, name)) == ["10.244.1.7"], "the not-ready endpoint to go")
    assert query(kubedns, f"db-1.{name}").header.rcode == RCODE.NXDOMAIN


def test_large_headless_answer_is_truncated_over_udp_and_whole_over_tcp(control_plane, kubedns, ns):
    create(control_plane, f"/api/v1/namespaces/{ns}/services", service("big", clusterIP="None"))
    create(control_plane, f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
           slice_("big", [{"addresses": [f"10.244.3.{i}"]} for i in range(1, 61)], []))
    name = f"big.{ns}.svc.{DOMAIN}"
    within(1, lambda: len(query(kubedns, name, tcp=True).rr) == 60, "60 A records over TCP")
    short = query(kubedns, name)
    assert short.header.tc and not short.rr


def test_external_name_pod_records_and_forwarding(control_plane, kubedns, ns):
    create(control_plane, f"/api/v1/namespaces/{ns}/services",
           service("ext", type="ExternalName", externalName="db.example.org"))
    name = f"ext.{ns}.svc.{DOMAIN}"
    within(1, lambda: [(QTYPE[rr.rtype], str(rr.rdata)) for rr in query(kubedns, name).rr] ==
           [("CNAME", "db.example.org.")], "the ExternalName CNAME")
    assert answers(query(kubedns, f"10-244-1-9.{ns}.pod.{DOMAIN}", tcp=True)) == ["10.244.1.9"]
    for tcp in (False, True):
        assert answers(query(kubedns, "www.example.org", tcp=tcp)) == ["192.0.2.1"]


@contextlib.contextmanager
def udp_only_taken() -> Iterator[int]:
    """A port held for UDP whose TCP side is free, so the server's UDP bind is the one that fails
    (an ephemeral UDP port's TCP twin may belong to another test's connection)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            yield port
            return
    raise AssertionError("no UDP port with a free TCP twin in 50 tries")


def test_refused_without_upstream_health_metrics_taken_port_and_sigterm(control_plane, tmp_path):
    c, dns, health = start_kubedns(tmp_path, control_plane.kubeconfig, name="plain")
    try:
        assert query(dns, "www.example.org").header.rcode == RCODE.REFUSED
        assert query(dns, f"nope.default.svc.{DOMAIN}", tcp=True).header.rcode == RCODE.NXDOMAIN
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/health", timeout=10) as r:
            assert r.read() == b"OK"
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert 'coredns_dns_requests_total{proto="udp",type="A"} 1.0' in metrics
        assert 'coredns_dns_responses_total{rcode="REFUSED"} 1.0' in metrics
        assert 'coredns_dns_responses_total{rcode="NXDOMAIN"} 1.0' in metrics
        with udp_only_taken() as udp_port:
            for port, proto in ((dns, "tcp"), (udp_port, "udp")):
                r = subprocess.run([sys.executable, "-m", "kubedns", "--kubeconfig", str(control_plane.kubeconfig),
                                    "--listen", f"127.0.0.1:{port}", "--port", str(free_port())],
                                   check=False, capture_output=True, text=True, cwd=REPO, timeout=60)
                assert (r.returncode, r.stderr.splitlines()) == \
                    (1, [f"error: listen {proto} 127.0.0.1:{port}: bind: address already in use"]), r.stderr
    finally:
        c.proc.send_signal(signal.SIGTERM)
        assert c.proc.wait(15) == 0
    text = c.log.read_text()
    assert "Traceback" not in text and "never retrieved" not in text, text[-2000:]

"""kubedns answers from Service and EndpointSlice dicts: every record shape, as CoreDNS gives it."""
from __future__ import annotations

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from kubedns.records import Records, wire

DOMAIN = "cluster.local"


def svc(name: str, ns: str = "default", **spec) -> dict:
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def eps(service: str, endpoints: list[dict], ports: list[dict], ns: str = "default", name: str = "") -> dict:
    return {"metadata": {"namespace": ns, "name": name or f"{service}-abc",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}


def ask(r: Records, name: str, qtype: str = "A") -> DNSRecord:
    reply = r.answer(DNSRecord.question(name, qtype))
    assert reply is not None
    return reply


def rdata(reply: DNSRecord, qtype: str | None = None) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if qtype is None or QTYPE[rr.rtype] == qtype)


def records() -> Records:
    r = Records(DOMAIN)
    r.set_service(svc("web", clusterIP="10.96.0.5", clusterIPs=["10.96.0.5"],
                      ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]))
    r.set_slice(eps("web", [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}}],
                    [{"name": "http", "port": 8080, "protocol": "TCP"}]))
    r.set_service(svc("db", clusterIP="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]))
    r.set_slice(eps("db", [{"addresses": ["10.244.1.7"], "hostname": "db-0", "conditions": {"ready": True}},
                           {"addresses": ["10.244.2.8"], "conditions": {}},
                           {"addresses": ["10.244.2.9"], "hostname": "db-2", "conditions": {"ready": False}}],
                    [{"name": "pg", "port": 5432, "protocol": "TCP"}]))
    return r


def test_cluster_ip_a_record_with_ttl_30_and_authoritative():
    reply = ask(records(), "web.default.svc.cluster.local")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa
    assert rdata(reply) == ["10.96.0.5"] and reply.rr[0].ttl == 30


def test_names_are_case_insensitive():
    assert rdata(ask(records(), "WEB.Default.SVC.cluster.local")) == ["10.96.0.5"]


def test_headless_one_a_per_ready_endpoint_and_hostname_records():
    r = records()
    assert rdata(ask(r, "db.default.svc.cluster.local")) == ["10.244.1.7", "10.244.2.8"]
    assert rdata(ask(r, "db-0.db.default.svc.cluster.local")) == ["10.244.1.7"]
    assert rdata(ask(r, "10-244-2-8.db.default.svc.cluster.local")) == ["10.244.2.8"]
    assert ask(r, "db-2.db.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN   # not ready


def test_publish_not_ready_addresses_includes_unready_endpoints():
    r = records()
    r.set_service(svc("db", clusterIP="None", publishNotReadyAddresses=True))
    assert rdata(ask(r, "db.default.svc.cluster.local")) == ["10.244.1.7", "10.244.2.8", "10.244.2.9"]


def test_srv_for_named_ports_cluster_ip_targets_the_service_with_its_address_as_additional():
    reply = ask(records(), "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert rdata(reply) == ["0 100 80 web.default.svc.cluster.local."]
    assert [str(rr.rdata) for rr in reply.ar] == ["10.96.0.5"]


def test_srv_for_headless_spreads_weight_over_the_endpoint_names():
    reply = ask(records(), "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert rdata(reply) == ["0 50 5432 10-244-2-8.db.default.svc.cluster.local.",
                            "0 50 5432 db-0.db.default.svc.cluster.local."]
    assert sorted(str(rr.rdata) for rr in reply.ar) == ["10.244.1.7", "10.244.2.8"]


def test_ptr_for_cluster_ip_and_endpoint_addresses():
    r = records()
    assert rdata(ask(r, "5.0.96.10.in-addr.arpa", "PTR")) == ["web.default.svc.cluster.local."]
    assert rdata(ask(r, "7.1.244.10.in-addr.arpa", "PTR")) == ["db-0.db.default.svc.cluster.local."]
    assert records().answer(DNSRecord.question("9.9.9.10.in-addr.arpa", "PTR")) is None   # not ours: forwarded


def test_external_name_is_a_cname():
    r = Records(DOMAIN)
    r.set_service(svc("ext", "prod", type="ExternalName", externalName="db.example.org"))
    for qtype in ("A", "CNAME", "AAAA"):
        reply = ask(r, "ext.prod.svc.cluster.local", qtype)
        assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in reply.rr] == [("CNAME", "db.example.org.")]


def test_pod_a_record_from_the_dashed_address():
    reply = ask(records(), "10-244-1-5.default.pod.cluster.local")
    assert rdata(reply) == ["10.244.1.5"]
    assert ask(records(), "not-an-ip.default.pod.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_unknown_name_inside_the_domain_is_nxdomain_with_coredns_soa():
    reply = ask(records(), "nope.default.svc.cluster.local")
    assert reply.header.rcode == RCODE.NXDOMAIN and not reply.rr
    (soa,) = reply.auth
    assert QTYPE[soa.rtype] == "SOA" and str(soa.rname) == "cluster.local."
    assert str(soa.rdata.mname) == "ns.dns.cluster.local." and str(soa.rdata.rname) == "hostmaster.cluster.local."
    assert soa.rdata.times[1:] == (7200, 1800, 86400, 30)


def test_existing_name_without_the_type_is_nodata_with_soa():
    reply = ask(records(), "web.default.svc.cluster.local", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr and len(reply.auth) == 1


def test_names_outside_the_domain_are_not_answered_here():
    assert records().answer(DNSRecord.question("example.org", "A")) is None


def test_changes_and_deletes_are_followed():
    r = records()
    r.set_service(svc("web", clusterIP="10.96.0.6", ports=[]))
    assert rdata(ask(r, "web.default.svc.cluster.local")) == ["10.96.0.6"]
    assert r.answer(DNSRecord.question("5.0.96.10.in-addr.arpa", "PTR")) is None
    r.delete_slice(eps("db", [], []))
    assert rdata(ask(r, "db.default.svc.cluster.local")) == []
    r.delete_service(svc("web"))
    assert ask(r, "web.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert ask(r, "10-244-1-5.web.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_an_address_in_two_services_keeps_its_records_when_one_goes():
    r = records()
    r.set_service(svc("web2", clusterIP="None"))
    r.set_slice(eps("web2", [{"addresses": ["10.244.1.7"], "hostname": "db-0"}], [], name="web2-x"))
    r.delete_service(svc("web2"))
    assert rdata(ask(r, "7.1.244.10.in-addr.arpa", "PTR")) == ["db-0.db.default.svc.cluster.local."]


def big() -> tuple[Records, DNSRecord]:
    r = Records(DOMAIN)
    r.set_service(svc("big", clusterIP="None"))
    r.set_slice(eps("big", [{"addresses": [f"10.244.0.{i}"]} for i in range(1, 60)], []))
    return r, DNSRecord.question("big.default.svc.cluster.local")


def test_udp_reply_over_512_bytes_is_truncated_and_whole_over_tcp():
    r, q = big()
    reply = r.answer(q)
    assert reply is not None and len(reply.pack()) > 512
    short = DNSRecord.parse(wire(reply, q, udp=True))
    assert short.header.tc and not short.rr and str(short.q.qname) == "big.default.svc.cluster.local."
    whole = DNSRecord.parse(wire(reply, q, udp=False))
    assert not whole.header.tc and len(whole.rr) == 59


def test_edns_payload_size_allows_a_larger_udp_reply():
    r, q = big()
    q.add_ar(EDNS0(udp_len=4096))
    reply = r.answer(q)
    assert reply is not None
    whole = DNSRecord.parse(wire(reply, q, udp=True))
    assert not whole.header.tc and len(whole.rr) == 59

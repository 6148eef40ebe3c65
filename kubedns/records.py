"""The cluster's DNS names from Service and EndpointSlice objects, and the answer to one query, as
CoreDNS's kubernetes plugin gives them. Pure (no I/O), so every record shape is unit-tested from dicts.

Names are kept per Service (what one Service and its slices contribute) and merged per name, so one
watch event recomputes one Service, and a query is one dict lookup.
"""
from __future__ import annotations

import ipaddress
import time

from dnslib import (
    AAAA,
    CNAME,
    EDNS0,
    NS,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    A,
    DNSHeader,
    DNSRecord,
)

TTL = 30                 # the TTL (CoreDNS's kubernetes plugin defaults to 5)
UDP_LIMIT = 512          # RFC 1035's UDP payload without EDNS
Key = tuple[str, str]    # (namespace, service name)
Names = dict[str, dict[int, list[RR]]]   # name -> qtype -> records
SERVICE_LABEL = "kubernetes.io/service-name"


def _fqdn(*labels: str) -> str:
    return ".".join(labels).lower() + "."


def _addr_rr(name: str, ip: str) -> RR:
    if ipaddress.ip_address(ip).version == 6:
        return RR(name, QTYPE.AAAA, rdata=AAAA(ip), ttl=TTL)
    return RR(name, QTYPE.A, rdata=A(ip), ttl=TTL)


def _reverse(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


def _dashed(ip: str) -> str:
    """An address as one label (CoreDNS's name for an endpoint without a hostname)."""
    return ip.replace(".", "-").replace(":", "-")


class Records:
    """Services and EndpointSlices in, DNS answers out, for one cluster domain."""

    def __init__(self, domain: str = "cluster.local") -> None:
        self.domain = domain.strip(".").lower()
        self.zone = self.domain + "."
        self.services: dict[Key, dict] = {}
        self.slices: dict[Key, dict[str, dict]] = {}      # service key -> slice name -> slice
        self._contrib: dict[Key, Names] = {}
        self._owners: dict[str, set[Key]] = {}
        self.names: Names = {}
        self.serial = int(time.time())
        self.generation = 0   # bumped on every change, so cached replies know they are stale

    # ---- objects in ----------------------------------------------------------
    def set_service(self, svc: dict) -> None:
        m = svc["metadata"]
        key = (m["namespace"], m["name"])
        self.services[key] = svc
        self._rebuild(key)

    def delete_service(self, svc: dict) -> None:
        m = svc["metadata"]
        key = (m["namespace"], m["name"])
        self.services.pop(key, None)
        self._rebuild(key)

    def set_slice(self, eps: dict) -> None:
        key = self._slice_key(eps)
        if key is not None:
            self.slices.setdefault(key, {})[eps["metadata"]["name"]] = eps
            self._rebuild(key)

    def delete_slice(self, eps: dict) -> None:
        key = self._slice_key(eps)
        if key is not None:
            group = self.slices.get(key, {})
            group.pop(eps["metadata"]["name"], None)
            if not group:
                self.slices.pop(key, None)
            self._rebuild(key)

    @staticmethod
    def _slice_key(eps: dict) -> Key | None:
        m = eps["metadata"]
        svc = (m.get("labels") or {}).get(SERVICE_LABEL)
        return (m["namespace"], svc) if svc else None

    # ---- names of one Service ------------------------------------------------
    def _endpoints(self, key: Key, svc: dict) -> list[tuple[str, dict, dict]]:
        """(name label, endpoint, slice) for every usable endpoint of the Service: ready ones, or
        all with publishNotReadyAddresses; a missing ready condition means ready (API contract)."""
        everyone = bool(svc["spec"].get("publishNotReadyAddresses"))
        out = []
        for eps in self.slices.get(key, {}).values():
            for ep in eps.get("endpoints") or []:
                if not everyone and (ep.get("conditions") or {}).get("ready") is False:
                    continue
                for ip in ep.get("addresses") or []:
                    out.append((ep.get("hostname") or _dashed(ip), {**ep, "ip": ip}, eps))
        return out

    def _service_names(self, key: Key) -> Names:
        svc = self.services.get(key)
        if svc is None:
            return {}
        spec = svc.get("spec") or {}
        ns, name = key
        base = _fqdn(name, ns, "svc", self.domain)
        names: Names = {base: {}}

        def add(owner: str, rr: RR) -> None:
            names.setdefault(owner, {}).setdefault(rr.rtype, []).append(rr)

        if spec.get("type") == "ExternalName":
            if spec.get("externalName"):
                add(base, RR(base, QTYPE.CNAME, rdata=CNAME(spec["externalName"].rstrip(".") + "."), ttl=TTL))
            return names
        ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]
        endpoints = self._endpoints(key, svc)
        for label, ep, _ in endpoints:
            ep_name = _fqdn(label, name, ns, "svc", self.domain)
            add(ep_name, _addr_rr(ep_name, ep["ip"]))
            add(_reverse(ep["ip"]), RR(_reverse(ep["ip"]), QTYPE.PTR, rdata=PTR(ep_name), ttl=TTL))
        if ips:
            for ip in ips:
                add(base, _addr_rr(base, ip))
                add(_reverse(ip), RR(_reverse(ip), QTYPE.PTR, rdata=PTR(base), ttl=TTL))
            for port in spec.get("ports") or []:
                if port.get("name"):
                    srv = _fqdn(f"_{port['name']}", f"_{port.get('protocol', 'TCP')}", name, ns, "svc", self.domain)
                    add(srv, RR(srv, QTYPE.SRV, rdata=SRV(0, 100, port["port"], base), ttl=TTL))
            return names
        # headless: the endpoints' addresses under the service name, SRV targets the endpoint names
        srvs: dict[str, list[tuple[int, str]]] = {}
        for label, ep, eps in endpoints:
            add(base, _addr_rr(base, ep["ip"]))
            for port in eps.get("ports") or []:
                if port.get("name") and port.get("port"):
                    srv = _fqdn(f"_{port['name']}", f"_{port.get('protocol', 'TCP')}", name, ns, "svc", self.domain)
                    srvs.setdefault(srv, []).append((port["port"], _fqdn(label, name, ns, "svc", self.domain)))
        for srv, targets in srvs.items():
            weight = 100 // len(targets)   # CoreDNS spreads 100 over the records of one priority
            for port_number, target in targets:
                add(srv, RR(srv, QTYPE.SRV, rdata=SRV(0, weight, port_number, target), ttl=TTL))
        return names

    def _rebuild(self, key: Key) -> None:
        old = self._contrib.pop(key, {})
        new = self._service_names(key)
        if new:
            self._contrib[key] = new
        for name in old.keys() - new.keys():
            self._owners[name].discard(key)
        for name in new:
            self._owners.setdefault(name, set()).add(key)
        for name in old.keys() | new.keys():
            owners = self._owners.get(name)
            if not owners:
                self._owners.pop(name, None)
                self.names.pop(name, None)
                continue
            merged: dict[int, list[RR]] = {}
            for owner in sorted(owners):
                for qtype, rrs in self._contrib[owner].get(name, {}).items():
                    merged.setdefault(qtype, []).extend(rrs)
            self.names[name] = merged
        self.serial = int(time.time())
        self.generation += 1

    # ---- answers -------------------------------------------------------------
    def soa(self) -> RR:
        """CoreDNS's SOA for the zone: ns.dns.<zone> hostmaster.<zone>, minimum TTL the record TTL."""
        return RR(self.zone, QTYPE.SOA, ttl=TTL,
                  rdata=SOA(f"ns.dns.{self.zone}", f"hostmaster.{self.zone}", (self.serial, 7200, 1800, 86400, TTL)))

    def inside(self, name: str) -> bool:
        return name == self.zone or name.endswith("." + self.zone)

    def answer(self, request: DNSRecord) -> DNSRecord | None:
        """The authoritative reply to `request`, or None for a name this server does not own (to
        forward, or refuse): outside the domain, or an address it has no PTR for."""
        q = request.q
        name, qtype = str(q.qname).lower(), q.qtype
        reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, aa=1, ra=1, rd=request.header.rd), q=q)
        rrs = self.names.get(name)
        if rrs is None:
            rrs = self._pod(name)
        if rrs is None:
            if not self.inside(name):
                return None
            if name == self.zone:
                rrs = {QTYPE.SOA: [self.soa()],
                       QTYPE.NS: [RR(self.zone, QTYPE.NS, rdata=NS(f"ns.dns.{self.zone}"), ttl=TTL)]}
            else:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.soa())
                return self._edns(request, reply)
        if QTYPE.CNAME in rrs and qtype != QTYPE.CNAME:
            found = rrs[QTYPE.CNAME]
        elif qtype == QTYPE.ANY:
            found = [rr for group in rrs.values() for rr in group]
        else:
            found = rrs.get(qtype, [])
        for rr in found:
            reply.add_answer(rr)
        if not found:
            reply.add_auth(self.soa())
        for rr in found:
            if rr.rtype == QTYPE.SRV:
                target = self.names.get(str(rr.rdata.target).lower(), {})
                for extra in target.get(QTYPE.A, []) + target.get(QTYPE.AAAA, []):
                    reply.add_ar(extra)
        return self._edns(request, reply)

    def _pod(self, name: str) -> Names | None:
        """`a-b-c-d.<ns>.pod.<domain>`, answered from the name alone (CoreDNS's `pods insecure`,
        kubeadm's default): no Pod watch."""
        labels = name[:-len(self.zone) - 1].split(".") if name.endswith("." + self.zone) else []
        if len(labels) != 3 or labels[2] != "pod":
            return None
        for ip in (labels[0].replace("-", "."), labels[0].replace("-", ":")):
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                continue
            rr = _addr_rr(name, ip)
            return {rr.rtype: [rr]}
        return None

    @staticmethod
    def _edns(request: DNSRecord, reply: DNSRecord) -> DNSRecord:
        """An OPT record in the reply when the query had one (RFC 6891)."""
        if any(rr.rtype == QTYPE.OPT for rr in request.ar):
            reply.add_ar(EDNS0(udp_len=4096))
        return reply


def udp_limit(request: DNSRecord) -> int:
    """The largest UDP reply the client accepts: 512 bytes, or its EDNS payload size."""
    sizes = [rr.rclass for rr in request.ar if rr.rtype == QTYPE.OPT]
    return max(UDP_LIMIT, sizes[0]) if sizes else UDP_LIMIT


def refused(request: DNSRecord) -> DNSRecord:
    return DNSRecord(DNSHeader(id=request.header.id, qr=1, ra=1, rd=request.header.rd,
                               rcode=RCODE.REFUSED), q=request.q)


def wire(reply: DNSRecord, request: DNSRecord, udp: bool) -> bytes:
    """The reply's bytes; over UDP one that does not fit the client's limit is sent as a truncated
    reply (TC set, question only) so the client retries over TCP."""
    data = reply.pack()
    if udp and len(data) > udp_limit(request):
        short = DNSRecord(DNSHeader(id=reply.header.id, qr=1, aa=reply.header.aa, ra=1, rd=reply.header.rd,
                                    tc=1, rcode=reply.header.rcode), q=reply.q)
        data = short.pack()
    return data

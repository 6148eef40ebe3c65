"""The one rule renderer: Services + EndpointSlices + node facts -> one `iptables-restore` payload in
kube-proxy 1.32's iptables layout (pkg/proxy/iptables/proxier.go), so `iptables-save` on a kubeling
node reads like on any Kubernetes node. Pure functions: the proxier applies, tests compare goldens."""
from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass, field

from kubeling.client.informer import obj_key

MASQ_MARK = "0x4000"

# (table, chain, built-in chain it is jumped to from, comment, extra match) as upstream's
# iptablesJumpChains; each is inserted at the top of the built-in chain, so INPUT reads bottom-up.
JUMPS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("filter", "KUBE-EXTERNAL-SERVICES", "INPUT", "kubernetes externally-visible service portals",
     ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "KUBE-EXTERNAL-SERVICES", "FORWARD", "kubernetes externally-visible service portals",
     ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "KUBE-NODEPORTS", "INPUT", "kubernetes health check service ports", ()),
    ("filter", "KUBE-SERVICES", "FORWARD", "kubernetes service portals", ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals", ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "KUBE-FORWARD", "FORWARD", "kubernetes forwarding rules", ()),
    ("filter", "KUBE-PROXY-FIREWALL", "INPUT", "kubernetes load balancer firewall",
     ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "KUBE-PROXY-FIREWALL", "OUTPUT", "kubernetes load balancer firewall",
     ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "KUBE-PROXY-FIREWALL", "FORWARD", "kubernetes load balancer firewall",
     ("-m", "conntrack", "--ctstate", "NEW")),
    ("nat", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals", ()),
    ("nat", "KUBE-SERVICES", "PREROUTING", "kubernetes service portals", ()),
    ("nat", "KUBE-POSTROUTING", "POSTROUTING", "kubernetes postrouting rules", ()),
)

# Chains kube-proxy owns outright (flushed and rewritten on every full sync), and the prefixes of
# per-service chains it creates and deletes.
STATIC_CHAINS: dict[str, tuple[str, ...]] = {
    "filter": ("KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"),
    "nat": ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"),
}
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")

# Upstream's canary: an empty chain in each of these tables, made by full syncs; when one is gone,
# someone flushed iptables and the proxier resyncs everything (jumps from the built-in chains too).
CANARY = "KUBE-PROXY-CANARY"
CANARY_TABLES = ("mangle", "nat", "filter")

# Rules of the static chains, before any service's: (table, rule).
STATIC_RULES: tuple[tuple[str, str], ...] = (
    ("filter", "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"),
    ("filter", (f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
                f"-m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT")),
    ("filter", ('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
                "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")),
    ("nat", f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
    ("nat", f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}"),
    ("nat", ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
             "-j MASQUERADE --random-fully")),
    ("nat", f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}"),
)

REJECT = "REJECT --reject-with icmp-port-unreachable"


@dataclass(frozen=True)
class Options:
    """The node-level facts and flags rendering depends on."""
    node_name: str
    cluster_cidr: str = ""              # --cluster-cidr: traffic from outside it is masqueraded
    service_cidr: str = ""              # --service-cidr: unallocated addresses in it are rejected
    nodeport_ips: tuple[str, ...] = ()  # node addresses inside --nodeport-addresses; () = every local address
    masquerade_all: bool = False


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    local: bool

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass
class ServicePort:
    """One port of one Service, as upstream's ServicePortName + servicePortInfo."""
    name: str                   # "ns/svc:port" (":port" only when the port is named)
    protocol: str               # lower case, as in the chain hash and `-p`
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()   # spec.externalIPs
    lb_ips: tuple[str, ...] = ()         # status.loadBalancer.ingress[].ip
    affinity_seconds: int = 0   # ClientIP affinity timeout, 0 = none
    external_local: bool = False
    internal_local: bool = False
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def external(self) -> bool:
        """Reachable from outside the cluster, so externalTrafficPolicy applies (ExternallyAccessible)."""
        return bool(self.node_port or self.external_ips or self.lb_ips)


@functools.lru_cache(maxsize=1 << 16)
def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def chain(prefix: str, sp: ServicePort, endpoint: str = "") -> str:
    """Upstream's portProtoHash / servicePortEndpointChainName: stable across restarts and nodes."""
    return f"KUBE-{prefix}-" + _hash(sp.name + sp.protocol + endpoint)


def _bool(v: object, default: bool) -> bool:
    return default if v is None else bool(v)


def slices_by_service(slices: list[dict]) -> dict[str, list[dict]]:
    """"ns/name" of a Service -> its IPv4 EndpointSlices."""
    out: dict[str, list[dict]] = {}
    for s in slices:
        meta = s["metadata"]
        svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if svc and s.get("addressType", "IPv4") == "IPv4":
            out.setdefault(f"{meta['namespace']}/{svc}", []).append(s)
    return out


def service_ports(services: list[dict], slices: list[dict], node_name: str) -> list[ServicePort]:
    """The service ports kube-proxy programs, each with its endpoints from every slice of its Service."""
    by_service = slices_by_service(slices)
    return sorted((sp for svc in services for sp in ports_of(svc, by_service, node_name)),
                  key=lambda sp: (sp.name, sp.protocol))


def ports_of(svc: dict, by_service: dict[str, list[dict]], node_name: str) -> list[ServicePort]:
    """One Service's ports kube-proxy programs (ClusterIP, NodePort, LoadBalancer with a cluster IP;
    not headless or ExternalName), each with its endpoints from every slice of the Service."""
    spec, meta = svc.get("spec") or {}, svc["metadata"]
    cip = spec.get("clusterIP")
    if not cip or cip == "None" or spec.get("type") == "ExternalName":
        return []
    key = f"{meta['namespace']}/{meta['name']}"
    node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    external_ips = tuple(spec.get("externalIPs") or ())
    lb_ips = tuple(i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
                   if i.get("ip") and spec.get("type") == "LoadBalancer")
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        affinity = int(((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
                       .get("timeoutSeconds") or 10800)
    out: list[ServicePort] = []
    for p in spec.get("ports") or []:
        pname = p.get("name") or ""
        proto = p.get("protocol") or "TCP"
        sp = ServicePort(name=key + (f":{pname}" if pname else ""), protocol=proto.lower(), cluster_ip=cip,
                         port=int(p["port"]), node_port=int(p.get("nodePort") or 0) if node_ports else 0,
                         external_ips=external_ips, lb_ips=lb_ips,
                         affinity_seconds=affinity,
                         external_local=(node_ports or bool(external_ips or lb_ips))
                         and spec.get("externalTrafficPolicy") == "Local",
                         internal_local=spec.get("internalTrafficPolicy") == "Local")
        seen: dict[str, Endpoint] = {}
        for s in by_service.get(key, ()):
            sport = next((x for x in s.get("ports") or [] if (x.get("name") or "") == pname
                          and (x.get("protocol") or "TCP") == proto), None)
            if sport is None or sport.get("port") is None:
                continue
            for e in s.get("endpoints") or []:
                c = e.get("conditions") or {}
                ready = _bool(c.get("ready"), True)
                for ip in e.get("addresses") or []:
                    ep = Endpoint(ip, int(sport["port"]), ready, _bool(c.get("serving"), ready),
                                  _bool(c.get("terminating"), False), e.get("nodeName") == node_name)
                    seen.setdefault(str(ep), ep)
        sp.endpoints = sorted(seen.values(), key=str)
        out.append(sp)
    return out


def categorize(sp: ServicePort) -> tuple[list[Endpoint], list[Endpoint], bool]:
    """Upstream's CategorizeEndpoints: (cluster endpoints, local endpoints, any usable endpoint).
    Ready endpoints are used; serving terminating ones only when none is ready, so a terminating
    endpoint gets no new connection while a ready one exists."""
    def pick(eps: list[Endpoint]) -> list[Endpoint]:
        return [e for e in eps if e.ready] or [e for e in eps if e.serving and e.terminating]
    uses_local = sp.internal_local or sp.external_local
    uses_cluster = not sp.internal_local or (sp.external and not sp.external_local)
    cluster = pick(sp.endpoints) if uses_cluster else []
    local = pick([e for e in sp.endpoints if e.local]) if uses_local else []
    any_usable = bool(pick(sp.endpoints))
    return cluster, local, any_usable


def _probability(n: int) -> str:
    return f"{1.0 / n:0.10f}"


def _to_endpoints(nat: list[str], sp: ServicePort, svc_chain: str, eps: list[Endpoint]) -> None:
    """A policy chain's jumps: affinity checks first, then 1/(n-i) random picks, the last unconditional."""
    if sp.affinity_seconds:
        for e in eps:
            sep = chain("SEP", sp, str(e))
            nat.append(f'-A {svc_chain} -m comment --comment "{sp.name} -> {e}" -m recent --name {sep} '
                       f"--rcheck --seconds {sp.affinity_seconds} --reap -j {sep}")
    for i, e in enumerate(eps):
        stat = f" -m statistic --mode random --probability {_probability(len(eps) - i)}" if i < len(eps) - 1 else ""
        nat.append(f'-A {svc_chain} -m comment --comment "{sp.name} -> {e}"{stat} -j {chain("SEP", sp, str(e))}')


def _service(sp: ServicePort, o: Options, nat_chains: list[str], nat: list[str], filt: list[str]) -> None:
    """Every chain and rule of one service port, in upstream's order."""
    cluster_eps, local_eps, has_eps = categorize(sp)
    svc, svl, ext = chain("SVC", sp), chain("SVL", sp), chain("EXT", sp)
    proto = sp.protocol
    internal_chain, has_internal = (svl, bool(local_eps)) if sp.internal_local else (svc, has_eps)
    external_chain, has_external = (svl, bool(local_eps)) if sp.external_local else (svc, has_eps)
    uses_svc = bool(cluster_eps) and (not sp.internal_local or (sp.external and not sp.external_local))
    uses_svl = bool(local_eps) and (sp.internal_local or sp.external_local)
    uses_ext = has_eps and sp.external
    reachable = {str(e): e for e in (cluster_eps if uses_svc else []) + (local_eps if uses_svl else [])}

    for c, used in ((svc, uses_svc), (svl, uses_svl), (ext, uses_ext)):
        if used:
            nat_chains.append(c)
    nat_chains.extend(chain("SEP", sp, k) for k in sorted(reachable))

    def no_endpoints(local_only: bool) -> tuple[str, str]:
        return (f'"{sp.name} has no local endpoints"', "DROP") if local_only and has_eps else \
            (f'"{sp.name} has no endpoints"', REJECT)

    match = f'-m comment --comment "{sp.name} cluster IP" -m {proto} -p {proto} -d {sp.cluster_ip} --dport {sp.port}'
    if has_internal:
        if o.masquerade_all:
            nat.append(f"-A {internal_chain} {match} -j KUBE-MARK-MASQ")
        elif o.cluster_cidr:
            nat.append(f"-A {internal_chain} {match} ! -s {o.cluster_cidr} -j KUBE-MARK-MASQ")
        nat.append(f"-A KUBE-SERVICES {match} -j {internal_chain}")
    else:
        comment, target = no_endpoints(sp.internal_local)
        filt.append(f"-A KUBE-SERVICES -m comment --comment {comment} -m {proto} -p {proto} "
                    f"-d {sp.cluster_ip} --dport {sp.port} -j {target}")

    # The ways in from outside, in upstream's order: (nat chain of the jump, its comment, the
    # filter rule's extra match, the destination match).
    ways = [("KUBE-SERVICES", f'"{sp.name} {kind}"', "", f"-d {ip} --dport {sp.port}")
            for kind, ips in (("external IP", sp.external_ips), ("loadbalancer IP", sp.lb_ips)) for ip in ips]
    if sp.node_port:
        ways.append(("KUBE-NODEPORTS", sp.name, "-m addrtype --dst-type LOCAL ", f"--dport {sp.node_port}"))
    for nat_chain, nat_comment, local, dest in ways:
        if has_eps:
            nat.append(f"-A {nat_chain} -m comment --comment {nat_comment} -m {proto} -p {proto} {dest} -j {ext}")
        if not has_external:
            comment, target = no_endpoints(sp.external_local)
            filt.append(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {comment} {local}"
                        f"-m {proto} -p {proto} {dest} -j {target}")

    if uses_ext:
        if not sp.external_local:
            nat.append(f'-A {ext} -m comment --comment "masquerade traffic for {sp.name} external destinations" '
                       "-j KUBE-MARK-MASQ")
        else:
            if o.cluster_cidr:
                nat.append(f'-A {ext} -m comment --comment "pod traffic for {sp.name} external destinations" '
                           f"-s {o.cluster_cidr} -j {svc}")
            nat.append(f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {sp.name} external destinations" '
                       "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
            nat.append(f'-A {ext} -m comment --comment "route LOCAL traffic for {sp.name} external destinations" '
                       f"-m addrtype --src-type LOCAL -j {svc}")
        if has_external:
            nat.append(f"-A {ext} -j {external_chain}")

    if uses_svc:
        _to_endpoints(nat, sp, svc, cluster_eps)
    if uses_svl:
        _to_endpoints(nat, sp, svl, local_eps)
    for k in sorted(reachable):
        e, sep = reachable[k], chain("SEP", sp, k)
        nat.append(f"-A {sep} -m comment --comment {sp.name} -s {e.ip} -j KUBE-MARK-MASQ")
        recent = f" -m recent --name {sep} --set" if sp.affinity_seconds else ""
        nat.append(f"-A {sep} -m comment --comment {sp.name}{recent} -m {proto} -p {proto} -j DNAT --to-destination {e}")


@dataclass
class Payload:
    """One sync's `iptables-restore` input and what the kernel holds once it is applied."""
    text: str
    ports: list[ServicePort]
    chains: set[str]          # per-service nat chains present afterwards (declared here, or kept as they are)
    rules: dict[str, int]     # -A rules kube-proxy owns per table afterwards (sync_proxy_rules_iptables_total)
    written: dict[str, int]   # -A rules this payload writes per table (sync_proxy_rules_iptables_last)


def render(services: list[dict], slices: list[dict], o: Options,
           existing: dict[str, set[str]] | None = None, only: set[str] | None = None) -> str:
    """The payload text of `build`."""
    return build(services, slices, o, existing, only).text


@dataclass
class Rendered:
    """One service port's share of a payload."""
    port: ServicePort
    chains: list[str]   # its own nat chains (KUBE-SVC/SVL/EXT/SEP)
    nat: list[str]      # all its nat rules, in upstream's order
    shared: list[str]   # those of `nat` in the shared chains (KUBE-SERVICES, KUBE-NODEPORTS)
    filter: list[str]


def render_port(sp: ServicePort, o: Options) -> Rendered:
    r = Rendered(sp, [], [], [], [])
    _service(sp, o, r.chains, r.nat, r.filter)
    own = set(r.chains)
    r.shared = [line for line in r.nat if line.split(" ", 2)[1] not in own]
    return r


class Cache:
    """Each Service's rendered ports, reused by partial syncs for the services that did not change
    (upstream does not regenerate their chains either); full syncs render everything again."""

    def __init__(self) -> None:
        self.options: Options | None = None
        self.services: dict[str, list[Rendered]] = {}
        self.shared: dict[tuple[str, str], list[str]] = {}   # (table, static chain) -> rules last written


def build(services: list[dict], slices: list[dict], o: Options,
          existing: dict[str, set[str]] | None = None, only: set[str] | None = None,
          cache: Cache | None = None) -> Payload:
    """The payload for `iptables-restore --noflush`: owned chains are declared (so flushed) and
    refilled; per-service chains in `existing` (table -> chain names, from iptables-save) that no
    service uses any more are flushed and deleted. With `only` (service keys "ns/name"), a partial
    sync: other services' own chains are left as they are in the kernel (not even declared), only
    their jumps from the shared chains are written again; their rendering comes from `cache` when
    it has them."""
    if cache is not None and (only is None or cache.options != o):
        cache.options, cache.services = o, {}
    by_service = slices_by_service(slices)
    rendered: list[Rendered] = []
    now: dict[str, list[Rendered]] = {}
    for svc in services:
        key = obj_key(svc)
        done = cache.services.get(key) if cache is not None and only is not None and key not in only else None
        if done is None:
            done = [render_port(sp, o) for sp in ports_of(svc, by_service, o.node_name)]
        now[key] = done
        rendered.extend(done)
    if cache is not None:
        cache.services = now
    rendered.sort(key=lambda r: (r.port.name, r.port.protocol))

    nat_chains: list[str] = []
    kept: set[str] = set()
    skipped = 0
    nat = [r for t, r in STATIC_RULES if t == "nat"]
    filt = [r for t, r in STATIC_RULES if t == "filter"]
    for r in rendered:
        filt += r.filter
        if only is not None and r.port.name.partition(":")[0] not in only:
            kept.update(r.chains)
            nat += r.shared
            skipped += len(r.nat) - len(r.shared)
        else:
            nat_chains += r.chains
            nat += r.nat

    nodeports = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
    if o.nodeport_ips:
        nat.extend(f"-A KUBE-SERVICES {nodeports} -d {ip} -j KUBE-NODEPORTS" for ip in o.nodeport_ips)
    else:
        nat.append(f"-A KUBE-SERVICES {nodeports} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    if o.service_cidr:
        # Not in upstream's iptables mode (its nftables mode does the same): a ClusterIP no service
        # owns, or a port a service does not expose, is refused instead of routed out.
        filt.append(f'-A KUBE-SERVICES -m comment --comment "unallocated service IP" -d {o.service_cidr} -j {REJECT}')

    live = kept.union(nat_chains)
    stale = sorted(c for c in (existing or {}).get("nat", set()) if c.startswith(SERVICE_CHAIN_PREFIXES) and c not in live)
    total = {"filter": len(filt), "nat": len(nat) + skipped}
    static = {"filter": list(STATIC_CHAINS["filter"]), "nat": list(STATIC_CHAINS["nat"])}
    if cache is not None:
        # A partial sync leaves a shared chain alone when its rules are those the last sync wrote
        # (an endpoint change within a service mostly changes none): the restore then costs about
        # half. Upstream rewrites them on every sync; the canary and full syncs cover tampering.
        shared = {(t, c): [r for r in rules if r.split(" ", 2)[1] == c]
                  for t, rules in (("filter", filt), ("nat", nat)) for c in static[t]}
        if only is not None:
            same = {key for key, rules in shared.items() if cache.shared.get(key) == rules}
            static = {t: [c for c in chains if (t, c) not in same] for t, chains in static.items()}
            filt = [r for r in filt if ("filter", r.split(" ", 2)[1]) not in same]
            nat = [r for r in nat if ("nat", r.split(" ", 2)[1]) not in same]
        cache.shared = shared
    lines = []
    if static["filter"] or filt:
        lines += ["*filter", *(f":{c} - [0:0]" for c in static["filter"]), *filt, "COMMIT"]
    # Per-service chains declared in descending name order: with iptables-nft 1.8.9 and --noflush,
    # 10 s -> ~3.5 s at 1,000 services x 10 endpoints (docs/kubeproxy.md).
    lines += ["*nat", *(f":{c} - [0:0]" for c in static["nat"] + sorted(nat_chains + stale, reverse=True))]
    lines += nat + [f"-X {c}" for c in stale] + ["COMMIT"]
    return Payload("\n".join(lines) + "\n", [r.port for r in rendered], live, total,
                   {"filter": len(filt), "nat": len(nat)})


def owned_chains(existing: dict[str, set[str]]) -> dict[str, list[str]]:
    """Every chain kube-proxy made, per table, of those present: what --cleanup deletes."""
    return {t: sorted(c for c in existing.get(t, set())
                      if c in STATIC_CHAINS.get(t, ()) or c == CANARY
                      or (t == "nat" and c.startswith(SERVICE_CHAIN_PREFIXES)))
            for t in ("filter", "nat", "mangle")}


def render_cleanup(existing: dict[str, set[str]]) -> str:
    """The payload deleting every chain kube-proxy made (after its jumps are gone); a table with
    none is not named, so a table nobody loaded is not created."""
    lines: list[str] = []
    for table, chains in owned_chains(existing).items():
        if chains:
            lines += [f"*{table}"] + [f":{c} - [0:0]" for c in chains] + [f"-X {c}" for c in chains] + ["COMMIT"]
    return "\n".join(lines) + "\n"


def jump_rule(comment: str, extra: tuple[str, ...], target: str) -> list[str]:
    """The argv (after `-t T -X CHAIN`) of one jump from a built-in chain, as `iptables -C/-I/-D` take it."""
    return [*extra, "-m", "comment", "--comment", comment, "-j", target]


def chains_in(save: str) -> dict[str, set[str]]:
    """table -> chain names, from `iptables-save` output."""
    out: dict[str, set[str]] = {}
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            out.setdefault(table, set())
        elif line.startswith(":") and table:
            out[table].add(line[1:].split()[0])
    return out

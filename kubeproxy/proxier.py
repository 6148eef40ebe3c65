"""The proxier: Service and EndpointSlice informers feed a sync loop that renders the whole rule set
(kubeproxy.rules) and applies it to the network namespace this process runs in."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubeling.api.resources import lookup
from kubeling.client import Client
from kubeling.client.informer import InformerFactory, obj_key
from kubeling.command import CommandError, run

from . import rules
from .health import ProxierHealth

log = logging.getLogger("kubeproxy")
SERVICES, SLICES = lookup("", "v1", "services"), lookup("discovery.k8s.io", "v1", "endpointslices")
NODES = lookup("", "v1", "nodes")
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
CANARY_INTERVAL = 5.0   # seconds between checks that the canary chains are still there
FULL_SYNC_PERIOD = 3600.0   # upstream's proxyutil.FullSyncPeriod: a full sync at least once an hour
SYNC_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))   # upstream's ExponentialBuckets(0.001, 2, 15)
# upstream's network programming buckets: 0.25 s, 0.5 s, 1-59 s by 1 s, 60-115 s by 5 s, 2-5 min by 30 s
PROGRAMMING_BUCKETS = (0.25, 0.5, *range(1, 60), *range(60, 120, 5), *range(120, 330, 30))


def trigger_time(eps: dict) -> float | None:
    """The EndpointSlice's last-change-trigger-time annotation (RFC 3339, up to nanoseconds) as a
    Unix time; None when absent or unreadable."""
    value = ((eps.get("metadata") or {}).get("annotations") or {}).get(TRIGGER_TIME, "")
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
    if not m:
        return None
    zone = "+00:00" if m[3] == "Z" else m[3]
    return datetime.fromisoformat(m[1] + zone).timestamp() + float(m[2] or 0)


UdpTargets = dict[tuple[str, int], set[str]]


def udp_targets(ports: list[rules.ServicePort]) -> UdpTargets:
    """(cluster IP, node port) of every UDP service port -> the endpoint IPs its rules send to."""
    out: UdpTargets = {}
    for sp in ports:
        if sp.protocol == "udp":
            cluster, local, _ = rules.categorize(sp)
            out[(sp.cluster_ip, sp.node_port)] = {e.ip for e in cluster + local}
    return out


async def clear_udp_conntrack(old: UdpTargets, new: UdpTargets) -> None:
    """UDP has no connection end, so a conntrack entry would keep sending a client's datagrams to
    an endpoint that is gone, or to nowhere after a REJECT: delete the entries of removed endpoints,
    and all of a service's entries when it gets its first endpoint (upstream's deleteUDPEndpoints
    and ClearEntriesForIP/ClearEntriesForPort, with the conntrack tool)."""
    none = "0 flow entries have been deleted"
    for (cip, node_port), eps in new.items():
        was = old.get((cip, node_port), set())
        gone = [("--dst-nat", ep) for ep in sorted(was - eps)]
        for extra in gone if was else [()] if eps else []:
            await run("conntrack", "-D", "-p", "udp", "--orig-dst", cip, *extra, ok=none)
            if node_port:
                await run("conntrack", "-D", "-p", "udp", "--orig-port-dst", str(node_port), *extra, ok=none)
    for (cip, node_port), was in old.items():
        if (cip, node_port) not in new:
            for ep in sorted(was):
                await run("conntrack", "-D", "-p", "udp", "--orig-dst", cip, "--dst-nat", ep, ok=none)


async def existing_chains() -> dict[str, set[str]]:
    """The chains now in every table (one iptables-save), to find the stale ones a sync deletes and
    the owned ones and canaries that are missing."""
    return rules.chains_in((await run("iptables-save"))[1])


async def canaries_present() -> bool:
    """Whether every canary chain is still there (upstream's iptables Monitor)."""
    for table in rules.CANARY_TABLES:
        if (await run("iptables", "-w", "-t", table, "-S", rules.CANARY, check=False))[0]:
            return False
    return True


async def ensure_jumps(existing: dict[str, set[str]]) -> None:
    """The canaries, and the jumps from the built-in chains (and their target chains), before the
    rules are restored as upstream does, so a service is reachable as soon as its rules are live:
    checked with -C and inserted only when missing, so a restart or a resync never duplicates them
    or touches anyone else's rules. Full syncs only, as upstream: a partial one trusts the canary."""
    wanted = [(t, c) for t, chains in rules.STATIC_CHAINS.items() for c in chains]
    for table, c in wanted + [(t, rules.CANARY) for t in rules.CANARY_TABLES]:
        if c not in existing.get(table, set()):   # or not known: made unless there
            await run("iptables", "-w", "-t", table, "-N", c, ok="Chain already exists")
    for table, target, builtin, comment, extra in rules.JUMPS:
        rule = rules.jump_rule(comment, extra, target)
        code, _ = await run("iptables", "-w", "-t", table, "-C", builtin, *rule, check=False)
        if code:
            await run("iptables", "-w", "-t", table, "-I", builtin, *rule)


async def cleanup() -> None:
    """--cleanup: every jump (however many), then every chain kube-proxy made; the namespace is as
    before it ran."""
    for table, target, builtin, comment, extra in rules.JUMPS:
        rule = rules.jump_rule(comment, extra, target)
        while (await run("iptables", "-w", "-t", table, "-C", builtin, *rule, check=False))[0] == 0:
            await run("iptables", "-w", "-t", table, "-D", builtin, *rule)
    await run("iptables-restore", "--noflush", "-w", stdin=rules.render_cleanup(await existing_chains()))


async def local_addresses(cidrs: list[str]) -> tuple[str, ...]:
    """This namespace's IPv4 addresses inside --nodeport-addresses (upstream's GetNodeIPs)."""
    if not cidrs:
        return ()
    _, out = await run("ip", "-4", "-o", "addr", "show")
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    ips = sorted({f.split("/")[0] for line in out.splitlines() for f in line.split()[3:4]})
    return tuple(ip for ip in ips if any(ipaddress.ip_address(ip) in n for n in nets))


class Proxier:
    """Keeps this namespace's rules equal to what the Services and EndpointSlices ask for."""

    def __init__(self, client: Client, node_name: str, cluster_cidr: str, service_cidr: str,
                 nodeport_cidrs: list[str], masquerade_all: bool, min_sync_period: float,
                 registry: CollectorRegistry, health: ProxierHealth) -> None:
        self.node_name, self.cluster_cidr, self.service_cidr = node_name, cluster_cidr, service_cidr
        self.nodeport_cidrs, self.masquerade_all = nodeport_cidrs, masquerade_all
        self.min_sync_period = min_sync_period
        self.health = health
        self.factory = InformerFactory(client)
        self.services, self.slices = self.factory.get(SERVICES), self.factory.get(SLICES)
        self.dirty = asyncio.Event()
        self.services.add_handler(self._service_changed, lambda old, new: self._service_changed(new),
                                  self._service_changed)
        self.slices.add_handler(self._slice_changed, lambda old, new: self._slice_changed(new), self._slice_changed)
        self.factory.get(NODES, field_selector=f"metadata.name={node_name}").add_handler(
            health.sync_node, lambda old, new: health.sync_node(new), health.sync_node)   # delete: as upstream
        self._metrics(registry)
        self.last_sync = self.last_full = 0.0
        self.started = time.time()
        self.initialized = False         # informers synced: changes from now on are queued updates
        self.udp: UdpTargets = {}
        self.changed: set[str] = set()   # services whose chains the next partial sync rewrites
        self.triggers: dict[str, list[float]] = {}   # service -> when its endpoint changes happened
        self.chains: set[str] = set()    # per-service nat chains the last sync left in the kernel
        self.cache = rules.Cache()       # rendered services, reused by partial syncs
        self.full = True                 # next sync rewrites everything (first, periodic, after a failure)

    def _metrics(self, registry: CollectorRegistry) -> None:
        """Upstream's iptables-mode metrics (pkg/proxy/metrics), under their names."""
        def histogram(name: str, doc: str, buckets: tuple = SYNC_BUCKETS) -> Histogram:
            return Histogram(f"kubeproxy_{name}", doc, registry=registry, buckets=buckets)
        self.m_sync = histogram("sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds")
        self.m_sync_full = histogram("sync_full_proxy_rules_duration_seconds",
                                     "SyncProxyRules latency in seconds for full resyncs")
        self.m_sync_partial = histogram("sync_partial_proxy_rules_duration_seconds",
                                        "SyncProxyRules latency in seconds for partial resyncs")
        self.m_programming = histogram("network_programming_duration_seconds",
                                       "In Cluster Network Programming Latency in seconds", PROGRAMMING_BUCKETS)
        self.m_last = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                            "The last time proxy rules were successfully synced", registry=registry)
        self.m_queued = Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                              "The last time a sync of proxy rules was queued", registry=registry)
        self.m_rules = Gauge("kubeproxy_sync_proxy_rules_iptables_total",
                             "Total number of iptables rules owned by kube-proxy", ["table"], registry=registry)
        self.m_written = Gauge("kubeproxy_sync_proxy_rules_iptables_last",
                               "Number of iptables rules written by kube-proxy in last sync", ["table"],
                               registry=registry)
        self.m_failures = Counter("kubeproxy_sync_proxy_rules_iptables_restore_failures",
                                  "Cumulative proxy iptables restore failures", registry=registry)
        self.m_partial_failures = Counter("kubeproxy_sync_proxy_rules_iptables_partial_restore_failures",
                                          "Cumulative proxy iptables partial restore failures", registry=registry)
        self.m_changes = {kind: Counter(f"kubeproxy_sync_proxy_rules_{kind}_changes",
                                        f"Cumulative proxy rules {kind.title()} changes", registry=registry)
                          for kind in ("service", "endpoint")}

    def _queue(self, key: str, kind: str) -> None:
        """The next partial sync rewrites this Service's chains."""
        self.changed.add(key)
        self.m_changes[kind].inc()
        if self.initialized:
            self.health.queued_update()
            self.m_queued.set_to_current_time()
        self.dirty.set()

    def _service_changed(self, svc: dict) -> None:
        self._queue(obj_key(svc), "service")

    def _slice_changed(self, eps: dict) -> None:
        """Also keeps when the change happened, for network_programming_duration_seconds: the
        endpointslice controller's last-change-trigger-time annotation, else (no annotation) when
        this process saw the change; changes from before this process started are not counted."""
        meta = eps["metadata"]
        key = f"{meta['namespace']}/{(meta.get('labels') or {}).get('kubernetes.io/service-name', '')}"
        when = trigger_time(eps) or (time.time() if self.initialized else None)
        if when is not None and when >= self.started:
            self.triggers.setdefault(key, []).append(when)
        self._queue(key, "endpoint")

    async def sync(self) -> None:
        """One sync, applied in one iptables-restore transaction: full, or partial (only the chains
        of services changed since the last sync are rewritten, as upstream's partial syncs)."""
        start = time.monotonic()
        full, self.full = self.full, False
        only, self.changed = (None if full else self.changed), set()
        triggers, self.triggers = self.triggers, {}
        self.health.sync_started()
        try:
            payload = await self._apply(full, only)
        except BaseException:
            self.full = True   # the next sync rewrites everything
            for key, times in triggers.items():
                self.triggers.setdefault(key, []).extend(times)
            self.health.sync_failed()
            raise
        now, took = time.time(), time.monotonic() - start
        self.last_sync = time.monotonic()
        if full:
            self.last_full = self.last_sync
        self.health.updated()
        for times in triggers.values():
            for t in times:
                self.m_programming.observe(max(0.0, now - t))
        self.m_last.set(now)
        for table in ("filter", "nat"):
            self.m_rules.labels(table).set(payload.rules[table])
            self.m_written.labels(table).set(payload.written[table])
        self.m_sync.observe(took)
        (self.m_sync_full if full else self.m_sync_partial).observe(took)
        log.debug("%s sync of proxy rules in %.3fs", "full" if full else "partial", took)

    async def _apply(self, full: bool, only: set[str] | None) -> rules.Payload:
        """Render and restore. A full sync ensures the canaries and jumps first; a partial one
        trusts what the last sync left (the canary check forces a full sync when someone removed
        it), so it runs no other iptables command. Only this process's first sync reads the
        kernel's chains (iptables-save: a previous process's stale chains); later ones know what
        the last sync left (a restore is all or nothing), so they delete no chain they did not make
        (iptables-save takes ~2 s at 11,000 chains with iptables-nft 1.8.9)."""
        opts = rules.Options(node_name=self.node_name, cluster_cidr=self.cluster_cidr,
                             service_cidr=self.service_cidr, masquerade_all=self.masquerade_all,
                             nodeport_ips=await local_addresses(self.nodeport_cidrs))
        existing = await existing_chains() if full and not self.last_full else {"nat": self.chains}
        payload = rules.build(self.services.list(), self.slices.list(), opts, existing, only, self.cache)
        if full:
            await ensure_jumps(existing)
        try:
            await run("iptables-restore", "--noflush", "-w", stdin=payload.text)
        except CommandError:
            (self.m_failures if full else self.m_partial_failures).inc()
            raise
        self.chains = payload.chains
        udp = udp_targets(payload.ports)
        await clear_udp_conntrack(self.udp, udp)
        self.udp = udp
        return payload

    async def watch_canary(self) -> None:
        """Every CANARY_INTERVAL, a full sync when a canary chain is gone (upstream watches the
        mangle one every sync period; here any of the three, so flushing nat alone is noticed too)."""
        while True:
            await asyncio.sleep(CANARY_INTERVAL)
            # not while a sync runs (the first one makes the canaries) or a full one is due anyway
            if not self.health.syncing and not self.full and not await canaries_present():
                log.info("iptables canary %s deleted: full resync", rules.CANARY)
                self.full = True
                self.health.queued_update()
                self.dirty.set()

    async def run(self) -> None:
        """Sync after every change (no closer than --min-sync-period); a full sync first, after a
        failure, when the canary is gone and at least once an hour (upstream's FullSyncPeriod:
        --sync-period no longer makes full syncs, it sets the health timeout)."""
        if not self.nodeport_cidrs:
            # localhost NodePorts, as upstream's default --iptables-localhost-nodeports
            await run("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
        self.factory.start()
        await self.factory.wait_synced()
        self.initialized = True
        canary = asyncio.create_task(self.watch_canary())
        try:
            await self._loop()
        finally:
            canary.cancel()

    async def _loop(self) -> None:
        while True:
            self.dirty.clear()
            try:
                await self.sync()
            except CommandError as e:
                # the rules are stale until a sync succeeds: say so and try again soon, as upstream does
                log.error("sync failed, retrying: %s", e)
                self.dirty.set()
                await asyncio.sleep(1)
                continue
            due = self.last_full + FULL_SYNC_PERIOD - time.monotonic()
            try:
                await asyncio.wait_for(self.dirty.wait(), max(due, 0))
            except TimeoutError:
                pass
            if time.monotonic() >= self.last_full + FULL_SYNC_PERIOD:
                self.full = True
            wait = self.min_sync_period - (time.monotonic() - self.last_sync)
            if wait > 0:
                await asyncio.sleep(wait)

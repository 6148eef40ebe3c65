"""The proxier: Service and EndpointSlice informers feed a sync loop that renders the whole rule set
(kubeproxy.rules) and applies it to the network namespace this process runs in."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

from prometheus_client import CollectorRegistry, Histogram

from kubeling.api.resources import lookup
from kubeling.client import Client
from kubeling.client.informer import InformerFactory, obj_key

from . import rules

log = logging.getLogger("kubeproxy")
SERVICES, SLICES = lookup("", "v1", "services"), lookup("discovery.k8s.io", "v1", "endpointslices")


class CommandError(RuntimeError):
    """An iptables (or ip) command that failed: its argv and stderr."""


async def run(*argv: str, stdin: str | None = None, check: bool = True, ok: str = "") -> tuple[int, str]:
    """One command off the event loop; (exit code, stdout), CommandError on failure when `check`
    (a failure whose stderr contains `ok` is no failure)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if check and proc.returncode and not (ok and ok in err.decode()):
        raise CommandError(f"{' '.join(argv)}: exit {proc.returncode}: {err.decode().strip()}")
    return proc.returncode or 0, out.decode()


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
    """The chains now in the filter and nat tables, to find the stale ones a sync deletes."""
    _, out = await run("iptables-save", "-t", "filter")
    _, nat = await run("iptables-save", "-t", "nat")
    return rules.chains_in(out + nat)


async def ensure_jumps(existing: dict[str, set[str]]) -> None:
    """The jumps from the built-in chains (and their target chains), before the rules are restored
    as upstream does, so a service is reachable as soon as its rules are live: checked with -C and
    inserted only when missing, so a restart or a resync never duplicates them or touches anyone
    else's rules."""
    for table, chains in rules.STATIC_CHAINS.items():
        for c in chains:
            if c not in existing.get(table, set()):
                await run("iptables", "-w", "-t", table, "-N", c)
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
                 nodeport_cidrs: list[str], masquerade_all: bool, sync_period: float, min_sync_period: float,
                 registry: CollectorRegistry) -> None:
        self.node_name, self.cluster_cidr, self.service_cidr = node_name, cluster_cidr, service_cidr
        self.nodeport_cidrs, self.masquerade_all = nodeport_cidrs, masquerade_all
        self.sync_period, self.min_sync_period = sync_period, min_sync_period
        self.factory = InformerFactory(client)
        self.services, self.slices = self.factory.get(SERVICES), self.factory.get(SLICES)
        self.dirty = asyncio.Event()
        self.services.add_handler(self._service_changed, lambda old, new: self._service_changed(new),
                                  self._service_changed)
        self.slices.add_handler(self._slice_changed, lambda old, new: self._slice_changed(new), self._slice_changed)
        self.m_sync = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                "SyncProxyRules latency in seconds.", registry=registry,
                                buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512,
                                         1.024, 2.048, 4.096, 8.192, 16.384))
        self.last_sync = 0.0
        self.udp: UdpTargets = {}
        self.changed: set[str] = set()   # services whose chains the next partial sync rewrites
        self.full = True                 # next sync rewrites everything (first, periodic, after a failure)

    def _service_changed(self, svc: dict) -> None:
        """The next partial sync rewrites this Service's chains."""
        self.changed.add(obj_key(svc))
        self.dirty.set()

    def _slice_changed(self, eps: dict) -> None:
        meta = eps["metadata"]
        self.changed.add(f"{meta['namespace']}/{(meta.get('labels') or {}).get('kubernetes.io/service-name', '')}")
        self.dirty.set()

    async def sync(self) -> None:
        """One sync, applied in one iptables-restore transaction: full, or partial (only the chains
        of services changed since the last sync are rewritten, as upstream's partial syncs)."""
        start = time.monotonic()
        only, self.changed = (None if self.full else self.changed), set()
        self.full = True   # until this sync succeeds
        opts = rules.Options(node_name=self.node_name, cluster_cidr=self.cluster_cidr,
                             service_cidr=self.service_cidr, masquerade_all=self.masquerade_all,
                             nodeport_ips=await local_addresses(self.nodeport_cidrs))
        services, slices = self.services.list(), self.slices.list()
        existing = await existing_chains()
        payload = rules.render(services, slices, opts, existing, only)
        await ensure_jumps(existing)
        await run("iptables-restore", "--noflush", "-w", stdin=payload)
        udp = udp_targets(rules.service_ports(services, slices, self.node_name))
        await clear_udp_conntrack(self.udp, udp)
        self.udp = udp
        self.full = False
        self.last_sync = time.monotonic()
        self.m_sync.observe(self.last_sync - start)
        log.debug("%s sync of proxy rules in %.3fs", "full" if only is None else "partial", self.last_sync - start)

    async def run(self) -> None:
        """Sync after every change (no closer than --min-sync-period) and every --sync-period."""
        if not self.nodeport_cidrs:
            # localhost NodePorts, as upstream's default --iptables-localhost-nodeports
            await run("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
        self.factory.start()
        await self.factory.wait_synced()
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
            try:
                await asyncio.wait_for(self.dirty.wait(), self.sync_period)
            except TimeoutError:
                self.full = True
            wait = self.min_sync_period - (time.monotonic() - self.last_sync)
            if wait > 0:
                await asyncio.sleep(wait)

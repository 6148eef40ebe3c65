"""What a CNI bridge plugin does for pods on this node's Docker bridge, beyond Docker's own rules.

Docker isolates its bridge networks from each other and masquerades everything that leaves one;
Kubernetes wants pods to reach pods on every node without NAT. So, per pod CIDR, in chains this
module owns (shared by every kubelet on the host, one rule per CIDR):
- filter KUBELET-POD-FORWARD, jumped to from DOCKER-USER (Docker's place for rules of others):
  forwarded traffic to the pod CIDR is accepted before Docker's isolation drops it;
- nat KUBELET-POD-MASQ, jumped to from POSTROUTING: traffic from the pod CIDR to outside
  --non-masquerade-cidr is masqueraded (the network is created with Docker's masquerade off),
  as upstream kubelet's `--non-masquerade-cidr` did;
- hairpin mode on every port of the pod bridge (upstream's `--hairpin-mode=hairpin-veth`), so a
  pod reaches itself through its Service (kube-proxy DNATs the packet back out of the port it came in).
`cleanup()` removes all of it (`kubelet --cleanup`, `make clean`, tests).
"""
from __future__ import annotations

import logging
from pathlib import Path

from kubeling.command import CommandError, run

log = logging.getLogger("kubelet.podnetwork")

FORWARD_CHAIN, MASQ_CHAIN = "KUBELET-POD-FORWARD", "KUBELET-POD-MASQ"
# (table, chain, the chains it is jumped to from: the first that exists)
CHAINS = (("filter", FORWARD_CHAIN, ("DOCKER-USER", "FORWARD")), ("nat", MASQ_CHAIN, ("POSTROUTING",)))
SYSFS = Path("/sys/class/net")


def rules(cidr: str, non_masquerade_cidr: str) -> list[tuple[str, list[str]]]:
    """(table, rule spec appended to its chain) for one pod CIDR."""
    comment = ["-m", "comment", "--comment", f"kubelet pod network {cidr}"]
    return [("filter", ["-A", FORWARD_CHAIN, "-d", cidr, *comment, "-j", "ACCEPT"]),
            ("nat", ["-A", MASQ_CHAIN, "-s", cidr, "!", "-d", non_masquerade_cidr, *comment, "-j", "MASQUERADE"])]


async def _iptables(table: str, *args: str, check: bool = True, ok: str = "") -> int:
    return (await run("iptables", "-w", "-t", table, *args, check=check, ok=ok))[0]


async def _ensure(table: str, spec: list[str]) -> None:
    """Append the rule unless it is there (`-C`): idempotent across kubelet restarts and kubelets."""
    if await _iptables(table, "-C", *spec[1:], check=False):
        await _iptables(table, *spec)


async def ensure(cidr: str, non_masquerade_cidr: str) -> None:
    """Chains, their jumps and this CIDR's rules; safe to call again at any time."""
    for table, chain, parents in CHAINS:
        await _iptables(table, "-N", chain, ok="already exists")
        for parent in parents:
            if await _iptables(table, "-S", parent, check=False) == 0:
                break
        if await _iptables(table, "-C", parent, "-j", chain, check=False):
            await _iptables(table, "-I", parent, "-j", chain)
    for table, spec in rules(cidr, non_masquerade_cidr):
        await _ensure(table, spec)


async def remove(cidr: str, non_masquerade_cidr: str) -> None:
    """Take one CIDR's rules out; the chains go too once no CIDR is left in them."""
    for table, spec in rules(cidr, non_masquerade_cidr):
        while await _iptables(table, "-D", *spec[1:], check=False) == 0:
            pass
    for table, chain, parents in CHAINS:
        _, listing = await run("iptables", "-w", "-t", table, "-S", chain, check=False)
        if listing.strip() == f"-N {chain}":
            await _drop_chain(table, chain, parents)


async def cleanup() -> None:
    """Remove the jumps and the chains (every CIDR's rules with them); absent ones are fine."""
    for table, chain, parents in CHAINS:
        await _drop_chain(table, chain, parents)


async def _drop_chain(table: str, chain: str, parents: tuple[str, ...]) -> None:
    for parent in parents:
        while await _iptables(table, "-D", parent, "-j", chain, check=False) == 0:
            pass
    await _iptables(table, "-F", chain, check=False)
    await _iptables(table, "-X", chain, check=False)


def bridge_of(network: dict) -> str:
    """The Linux bridge behind a Docker bridge network (Docker names it br-<id[:12]> unless told)."""
    return (network.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{network['Id'][:12]}"


def set_hairpin(bridge: str) -> int:
    """Hairpin mode on every port of the bridge; how many were changed. Blocking (sysfs): call off the loop."""
    changed = 0
    for port in (SYSFS / bridge / "brif").glob("*"):
        flag = port / "hairpin_mode"
        try:
            if flag.read_text().strip() != "1":
                flag.write_text("1")
                changed += 1
        except OSError as e:    # a port that went away meanwhile
            log.debug("hairpin on %s: %s", port.name, e)
    return changed


__all__ = ["CommandError", "bridge_of", "cleanup", "ensure", "remove", "rules", "set_hairpin"]

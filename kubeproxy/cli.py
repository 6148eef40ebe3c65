"""`python -m kubeproxy`: flags like kube-proxy's (iptables mode), health and metrics on --port."""
from __future__ import annotations

import argparse
import re
import shutil
import sys

from prometheus_client import CollectorRegistry

from kubeling.component import load_client, run_elected, run_main


def duration(text: str) -> float:
    """Seconds from `30`, `30s`, `1m`, `500ms` (kube-proxy takes Go durations)."""
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeproxy", description="kubeling's kube-proxy: Services as iptables rules.")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver to use (not needed with --cleanup)")
    p.add_argument("--hostname-override", required=True, help="this node's name (which endpoints are local)")
    p.add_argument("--proxy-mode", default="iptables", choices=["iptables"])
    p.add_argument("--cluster-cidr", default="", help="pod range; service traffic from outside it is masqueraded")
    p.add_argument("--service-cidr", default="", help="ClusterIP range; unallocated addresses in it are refused")
    p.add_argument("--nodeport-addresses", default="",
                   help="comma-separated CIDRs of the node addresses NodePorts answer on (default: all)")
    p.add_argument("--sync-period", type=duration, default=30.0)
    p.add_argument("--min-sync-period", type=duration, default=1.0)
    p.add_argument("--masquerade-all", action="store_true", help="SNAT all traffic to cluster IPs")
    p.add_argument("--cleanup", action="store_true", help="remove every rule and chain kube-proxy made, and exit")
    p.add_argument("--bind-address", dest="bind_address", default="0.0.0.0", help="address of /healthz and /metrics")
    p.add_argument("--port", "--healthz-port", type=int, default=10256, help="port of /healthz and /metrics")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    p.set_defaults(leader_elect=False)
    return p


async def _run(a: argparse.Namespace) -> int:
    from .proxier import Proxier, cleanup
    tools = ["iptables", "iptables-save", "iptables-restore"] + ([] if a.cleanup else ["conntrack", "ip", "sysctl"])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        print(f"error: {', '.join(missing)} not found (deploy/install-system-packages.sh installs them)",
              file=sys.stderr)
        return 1
    if a.cleanup:
        await cleanup()
        return 0
    if not a.kubeconfig:
        print("error: --kubeconfig is required", file=sys.stderr)
        return 1
    client = load_client(a.kubeconfig, "kube-proxy/v1.32.0")
    if client is None:
        return 1
    registry = CollectorRegistry()
    proxier = Proxier(client, a.hostname_override, a.cluster_cidr, a.service_cidr,
                      [c for c in a.nodeport_addresses.split(",") if c], a.masquerade_all,
                      a.sync_period, a.min_sync_period, registry)
    return await run_elected(a, client, "kube-proxy", registry, proxier.run)


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    run_main(_run(a), a.verbosity)

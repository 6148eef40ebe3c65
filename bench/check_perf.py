#!/usr/bin/env python3
"""`etcdctl check perf` (etcd's own health benchmark: 60 s of 150 puts/s from 50 clients, load "s")
against a 3-member etcdnode cluster, the same with --unsafe-no-fsync, and real etcd 3.4, in one run.

    .venv/bin/python bench/check_perf.py [--load s]

Prints one table: throughput, slowest request, standard deviation and etcdctl's verdict for each.
etcdctl's thresholds: throughput >= 90% of the target, slowest request < 500 ms, stddev < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.clusters import EtcdCluster, EtcdnodeCluster  # noqa: E402

STORES = [  # (column, cluster class, extra flags)
    ("etcdnode", EtcdnodeCluster, []),
    ("etcdnode --unsafe-no-fsync", EtcdnodeCluster, ["--unsafe-no-fsync"]),
    ("etcd 3.4", EtcdCluster, []),
]


def check_perf(cluster, load: str) -> dict:
    endpoints = ",".join(u.removeprefix("http://") for u in cluster.client_urls)
    p = subprocess.run(["etcdctl", "--endpoints", endpoints, "check", "perf", "--load", load],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "ETCDCTL_API": "3"})
    out = p.stdout.replace("\r", "\n")

    def number(pattern: str) -> str:
        m = re.search(pattern, out)
        return m.group(1) if m else "?"

    return {"throughput": number(r"Throughput is (\d+)"), "slowest": number(r"Slowest request took[^0-9]*([\d.]+)s"),
            "stddev": number(r"Stddev[^0-9]*([\d.]+)s"), "verdict": "PASS" if p.returncode == 0 else "FAIL"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", default="s", choices=["s", "m", "l", "xl"], help="etcdctl check perf --load")
    args = ap.parse_args()
    if not shutil.which("etcdctl") or not shutil.which("etcd"):
        sys.exit("bench: etcd and etcdctl 3.4 are needed: run `make deps` (Debian packages etcd-server, etcd-client)")
    rows = []
    for name, cls, flags in STORES:
        with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
            cluster = cls(Path(tmp), size=3, **({"extra_args": flags} if flags else {}))
            cluster.start_all()
            try:
                rows.append((name, check_perf(cluster, args.load)))
            finally:
                cluster.stop()
        print(f"{name}: done", file=sys.stderr)
    print(f"etcdctl check perf --load {args.load}, 3 members each on loopback")
    print()
    print(f"| {'store':<28} | {'writes/s':>8} | {'slowest (s)':>11} | {'stddev (s)':>10} | verdict |")
    print(f"|{'-' * 30}|{'-' * 10}|{'-' * 13}|{'-' * 12}|---------|")
    for name, r in rows:
        print(f"| {name:<28} | {r['throughput']:>8} | {r['slowest']:>11} | {r['stddev']:>10} | {r['verdict']:<7} |")


if __name__ == "__main__":
    main()

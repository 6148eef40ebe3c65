#!/usr/bin/env python3
"""Store benchmark: the same workload, through the same client, against a 3-member etcdnode
cluster and a 3-member real etcd 3.4 cluster, both on loopback, in one run.

    .venv/bin/python bench/store.py [--rounds 3] [--puts 10000]

Prints one table: puts/s and p50/p99 latency with 1 client (through the leader and through a
follower) and 64 clients (256-byte values),
linearizable gets/s with 64 clients, watch delivery latency (put -> event) p50/p99, the
fail-over time (leader killed under writes -> first write acknowledged by the survivors), puts
through etcd's native gRPC API (grpc.aio and the generated stubs) next to the JSON gateway, and
the ratio etcdnode / etcd for each. Like is compared with like: both sync their log before
they acknowledge. A last column runs etcdnode with --unsafe-no-fsync; etcd 3.4 has no such
flag (it came in 3.5), so that column has no anchor. Each figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from etcdnode.etcdserverpb import rpc_pb2, rpc_pb2_grpc  # noqa: E402
from kubeling.etcd import EtcdClient, EtcdError  # noqa: E402
from tests.support.clusters import EtcdCluster, EtcdnodeCluster  # noqa: E402

VALUE = b"x" * 256


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))] * 1000


async def load(op, total: int, clients: int) -> dict:
    """Run op(worker, i) total times from `clients` concurrent tasks; rate and latency."""
    lat: list[float] = []

    async def worker(w: int) -> None:
        for i in range(total // clients):
            t = time.perf_counter()
            await op(w, i)
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    elapsed = time.perf_counter() - t0
    return {"rate": len(lat) / elapsed, "p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}


async def watch_latency(client: EtcdClient, writer: EtcdClient, prefix: str, count: int) -> dict:
    sent: dict[bytes, float] = {}
    lat: list[float] = []
    async with client.watch(prefix + "/", prefix=True) as w:
        async def produce() -> None:
            for i in range(count):
                key = f"{prefix}/{i}".encode()
                sent[key] = time.perf_counter()
                await writer.put(key, VALUE)
                await asyncio.sleep(0.002)

        producer = asyncio.create_task(produce())
        async for resp in w:
            now = time.perf_counter()
            for ev in resp.events:
                lat.append(now - sent[ev.kv.key])
            if len(lat) >= count:
                break
        await producer
    return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}


async def run_suite(cluster, args: argparse.Namespace, tag: str) -> dict:
    urls = cluster.client_urls
    leader = cluster.leader()
    # one client's puts through the leader and through a follower, which forwards them (an etcd
    # client does not pick the leader, so it gets either): the first endpoint's role varies by round
    r: dict = {}
    for role, idx in (("put1", leader), ("put1f", (leader + 1) % len(urls))):
        async with EtcdClient([urls[idx]]) as one:
            await one.put("warmup", VALUE)
            r[role] = await load(lambda w, i: one.put(f"{tag}/{role}/{i}", VALUE), args.puts // 10, 1)
    # clients talk to different members like the apiserver would: writes to one, watch on another
    async with EtcdClient(urls) as client, EtcdClient(urls[1:] + urls[:1]) as other:
        r["put64"] = await load(lambda w, i: client.put(f"{tag}/p64/{w}/{i}", VALUE), args.puts, 64)
        r["get64"] = await load(lambda w, i: client.get(f"{tag}/p64/{w}/{i % 10}"), args.puts, 64)
        r["watch"] = await watch_latency(other, client, f"{tag}/w", args.watch_events)
    async with grpc.aio.insecure_channel(urls[0].removeprefix("http://")) as channel:
        kv = rpc_pb2_grpc.KVStub(channel)
        r["grpc64"] = await load(
            lambda w, i: kv.Put(rpc_pb2.PutRequest(key=f"{tag}/g64/{w}/{i}".encode(), value=VALUE)), args.puts, 64)
    return r


async def failover(cluster) -> dict:
    """Seconds from SIGKILL of the leader to the first write the survivors acknowledge."""
    leader = cluster.leader()
    survivors = [u for i, u in enumerate(cluster.client_urls) if i != leader]
    async with EtcdClient(survivors, timeout=2) as c:
        await c.put("failover/before", VALUE)
        killed = time.perf_counter()
        cluster.kill(leader)
        while True:
            try:
                await c.put("failover/after", VALUE)
                return {"seconds": time.perf_counter() - killed}
            except (EtcdError, OSError):
                await asyncio.sleep(0.005)


def median_of(rounds: list[dict], section: str, field: str) -> float:
    return statistics.median(r[section][field] for r in rounds)


ROWS = [
    ("put, 1 client via the leader", "put1", "rate", "ops/s"),
    ("put, 1 client via the leader p50", "put1", "p50", "ms"),
    ("put, 1 client via the leader p99", "put1", "p99", "ms"),
    ("put, 1 client via a follower p50", "put1f", "p50", "ms"),
    ("put, 1 client via a follower p99", "put1f", "p99", "ms"),
    ("put, 64 clients", "put64", "rate", "ops/s"),
    ("put, 64 clients p50", "put64", "p50", "ms"),
    ("put, 64 clients p99", "put64", "p99", "ms"),
    ("linearizable get, 64 clients", "get64", "rate", "ops/s"),
    ("linearizable get p99", "get64", "p99", "ms"),
    ("put via gRPC, 64 clients", "grpc64", "rate", "ops/s"),
    ("put via gRPC, 64 clients p99", "grpc64", "p99", "ms"),
    ("watch delivery p50", "watch", "p50", "ms"),
    ("watch delivery p99", "watch", "p99", "ms"),
    ("fail-over: leader kill -> next write", "failover", "seconds", "s"),
]

STORES = [  # (column, cluster class, extra flags)
    ("etcdnode", EtcdnodeCluster, []),
    ("etcd", EtcdCluster, []),
    ("etcdnode --unsafe-no-fsync", EtcdnodeCluster, ["--unsafe-no-fsync"]),
]


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--puts", type=int, default=6400, help="puts (and gets) in the 64-client runs")
    ap.add_argument("--watch-events", type=int, default=500)
    args = ap.parse_args()
    if not shutil.which("etcd"):
        sys.exit("bench: real etcd is needed as the anchor: run `make deps` (Debian package etcd-server)")
    results: dict[str, list[dict]] = {name: [] for name, _, _ in STORES}
    for rnd in range(args.rounds):
        for name, cls, flags in STORES:
            with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
                cluster = cls(Path(tmp), size=3, **({"extra_args": flags} if flags else {}))
                cluster.start_all()
                try:
                    r = await run_suite(cluster, args, f"r{rnd}")
                    r["failover"] = await failover(cluster)
                    results[name].append(r)
                finally:
                    cluster.stop()
            print(f"round {rnd + 1}/{args.rounds} {name}: done", file=sys.stderr)
    print(f"machine: {machine()}")
    print(f"3 members each on loopback, 256-byte values, median of {args.rounds} rounds, same client (kubeling.etcd)")
    print()
    print(f"| {'metric':<42} | {'etcdnode':>10} | {'etcd 3.4':>10} | {'ratio':>6} | {'etcdnode no-fsync':>17} |")
    print(f"|{'-' * 44}|{'-' * 12}|{'-' * 12}|{'-' * 8}|{'-' * 19}|")
    for label, section, field, unit in ROWS:
        a, b, n = (median_of(results[name], section, field) for name, _, _ in STORES)
        ratio = a / b if b else float("nan")
        fmt = "{:>10.0f}" if unit == "ops/s" else "{:>10.2f}"
        print(f"| {label + ' (' + unit + ')':<42} | {fmt.format(a)} | {fmt.format(b)} | {ratio:>6.2f} | "
              f"{fmt.format(n):>17} |")
    print()
    print("etcd 3.4 has no --unsafe-no-fsync (added in 3.5): the last column has no anchor.")


if __name__ == "__main__":
    asyncio.run(main())

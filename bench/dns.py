#!/usr/bin/env python3
"""kubedns benchmark: queries per second over UDP against 1,000 Services.

    .venv/bin/python bench/dns.py [--services 1000] [--seconds 10] [--window 32]

A 3-member etcdnode store, one apiserver and `python -m kubedns` on loopback; the Services are
created through the API, then one client keeps `--window` A queries for random Service names in
flight over UDP for `--seconds`. Prints queries/s, latency p50/p99, and queries per CPU-second of
the kubedns process (its own utime+stime), the figure comparable to a per-core rate. Anchor:
CoreDNS's published ~30k qps per core, measured on bigger server machines with a C load generator
(dnsperf), not on a shared 2-core box with the Python client competing for the same cores.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

import orjson
from dnslib import DNSRecord

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import Client, pct, print_rows
from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer, Component


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Load(asyncio.DatagramProtocol):
    """`window` queries in flight; each reply (matched by its id) sends the next."""

    def __init__(self, queries: list[bytes], window: int, until: float) -> None:
        self.queries, self.window, self.until = queries, window, until
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for slot in range(self.window):
            self._send(slot)

    def _send(self, slot: int) -> None:
        assert self.transport is not None
        self.sent[slot] = time.perf_counter()
        self.transport.sendto(struct.pack("!H", slot) + random.choice(self.queries)[2:])

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        slot = struct.unpack("!H", data[:2])[0]
        now = time.perf_counter()
        self.latencies.append(now - self.sent.pop(slot))
        if now < self.until:
            self._send(slot)
        elif not self.sent and not self.done.done():
            self.done.set_result(None)


async def run(a: argparse.Namespace) -> list[tuple[str, str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-dns-"))
    store = EtcdnodeCluster(tmp / "store", 3).start_all()
    api = ApiServer(tmp / "api", store.client_urls).start()
    dns_port = free_port()
    kubedns = Component(tmp, "kubedns", ["--kubeconfig", str(api.kubeconfig), "--listen", f"127.0.0.1:{dns_port}",
                                         "--port", str(free_port())])
    try:
        c = Client(api, 32)
        await c.post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": "bench"}}))
        todo = iter(range(a.services))

        async def creator() -> None:
            for i in todo:
                await c.post("/api/v1/namespaces/bench/services", orjson.dumps(
                    {"metadata": {"name": f"svc-{i}"}, "spec": {"ports": [{"name": "http", "port": 80}]}}))
        await asyncio.gather(*(creator() for _ in range(16)))
        await c.http.close()
        kubedns.start()
        assert kubedns.proc is not None
        last = DNSRecord.question(f"svc-{a.services - 1}.bench.svc.cluster.local")

        def ready() -> bool:
            try:
                return bool(DNSRecord.parse(last.send("127.0.0.1", dns_port, timeout=1)).rr)
            except OSError:
                return False
        wait_for(ready, 60, "kubedns to answer for the last Service")
        queries = [DNSRecord.question(f"svc-{i}.bench.svc.cluster.local").pack() for i in range(a.services)]
        cpu0, t0 = cpu_seconds(kubedns.proc.pid), time.perf_counter()
        load = Load(queries, a.window, t0 + a.seconds)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: load, remote_addr=("127.0.0.1", dns_port))
        try:
            await asyncio.wait_for(load.done, a.seconds + 10)
        finally:
            transport.close()
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(kubedns.proc.pid) - cpu0
    finally:
        kubedns.stop()
        api.stop()
        store.stop()
    n = len(load.latencies)
    return [(f"A queries over UDP, {a.services} Services, window {a.window} (q/s)", f"{n / elapsed:.0f}",
             "CoreDNS ~30k q/s per core (published, on bigger machines, dnsperf)"),
            ("query latency p50 / p99 (ms)", f"{pct(load.latencies, 0.5):.2f} / {pct(load.latencies, 0.99):.2f}", ""),
            ("queries per kubedns CPU-second", f"{n / cpu:.0f}" if cpu else "n/a",
             "the per-core figure; the Python client shares the cores")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--window", type=int, default=32, help="queries kept in flight")
    a = p.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    rows = asyncio.run(run(a))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print_rows(rows)


if __name__ == "__main__":
    main()

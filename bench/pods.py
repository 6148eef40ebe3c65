#!/usr/bin/env python3
"""Pod startup: create -> Running and Ready (seen through a watch) for pods on two Docker-runtime
kubelets on this machine's engine; then, with --hollow-nodes, a scale run of hollow nodes.

    .venv/bin/python bench/pods.py [--pods 30] [--hollow-nodes 0 --hollow-pods 30000]

A 3-member etcdnode store, an apiserver, the scheduler and the kubelets on loopback. Anchors:
Kubernetes' pod startup SLO (p99 <= 5 s, excluding image pulls; the images are local here) and, for
the hollow run, kubemark's ~220 MB per hollow node and KWOK's 1,000 nodes / 100,000 pods.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubelet import podnetwork  # noqa: E402
from bench.api import Client, pct, print_rows, watch_pods  # noqa: E402
from tests.support.clusters import EtcdnodeCluster, free_port  # noqa: E402
from tests.support.control_plane import ApiServer, Component  # noqa: E402


def ready(pod: dict) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def raw_docker_pairs(n: int, threads: int = 16) -> float:
    """Seconds the engine alone takes to start n pause+nginx pairs (nginx joining the pause container's
    network, as a pod's), `threads` at a time: the ceiling for a burst of n pods on this machine."""
    import docker
    from concurrent.futures import ThreadPoolExecutor
    api = docker.from_env().api
    made: list[str] = []

    def pair(i: int) -> None:
        sandbox = api.create_container("kubeling/pause:3.10", labels={"io.kubeling.test": "1"})["Id"]
        made.append(sandbox)
        api.start(sandbox)
        app = api.create_container("nginx", labels={"io.kubeling.test": "1"}, host_config=api.create_host_config(
            network_mode=f"container:{sandbox}", init=True))["Id"]
        made.append(app)
        api.start(app)
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(pair, range(n)))
        return time.perf_counter() - t0
    finally:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda c: api.remove_container(c, force=True), made))


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB)."""
    out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True, text=True)
    return sum(int(x) for x in out.stdout.split()) / 1024


def free_cidrs(n: int) -> list[str]:
    taken = []
    for net in subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True).stdout.split():
        out = subprocess.run(["docker", "network", "inspect", net, "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"],
                             capture_output=True, text=True).stdout
        taken += [ipaddress.ip_network(s, strict=False) for s in out.split()]
    cidrs = []
    for i in range(256):
        cidr = ipaddress.ip_network(f"10.251.{i}.0/24")
        if not any(cidr.overlaps(t) for t in taken):
            cidrs.append(str(cidr))
            if len(cidrs) == n:
                return cidrs
    raise SystemExit("no free 10.251.N.0/24 for the bench nodes")


def cleanup(nodes: list[str]) -> None:
    for node in nodes:
        label = f"label=kubeling.io/node={node}"
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", label], capture_output=True,
                              text=True).stdout.split()
        if nets:
            subprocess.run(["docker", "network", "rm", *nets], capture_output=True)


async def startup(api: ApiServer, c: Client, ns: str, n: int, image: str, interval: float) -> list[float]:
    """Create n pods, one every `interval` seconds (0: all at once), and measure each to Ready."""
    await c.post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": ns}}))
    # what the controller-manager (not run here) puts in every namespace: pods mount both
    await c.post(f"/api/v1/namespaces/{ns}/serviceaccounts", orjson.dumps({"metadata": {"name": "default"}}))
    await c.post(f"/api/v1/namespaces/{ns}/configmaps", orjson.dumps(
        {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": api.ca.read_text()}}))
    seen: dict[str, float] = {}
    created: dict[str, float] = {}
    watcher = asyncio.create_task(watch_pods(api, c, ns, n, seen, ready))
    await asyncio.sleep(0.5)   # the watch is established before the first create
    for i in range(n):
        name = f"p{i}"
        if interval and i:
            await asyncio.sleep(interval)   # pacing the load, not synchronisation
        created[name] = time.perf_counter()
        await c.post(f"/api/v1/namespaces/{ns}/pods", orjson.dumps({"metadata": {"name": name}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}]}}))
    await asyncio.wait_for(watcher, 600)
    return [seen[k] - created[k] for k in created]


async def main_async(a: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pods-"))
    store = EtcdnodeCluster(tmp / "store", 3).start_all()
    procs: list[Component] = []
    run = secrets.token_hex(3)   # node names of their own: an interrupted run's leftovers never clash
    nodes = [f"bench-{run}-{i}" for i in (1, 2)]
    rows = []
    api = None
    cidrs: list[str] = []
    try:
        api = ApiServer(tmp / "api", store.client_urls).start()
        kc = str(api.kubeconfig)
        c = Client(api, 16)
        procs.append(Component(tmp, "scheduler", ["--kubeconfig", kc, "--port", str(free_port())]).start())
        cidrs = free_cidrs(2)
        for node, cidr in zip(nodes, cidrs):
            procs.append(Component(tmp, "kubelet", [
                "--kubeconfig", kc, "--runtime", "docker", "--hostname-override", node, "--node-ip", "127.0.0.1",
                "--root-dir", str(tmp / node), "--pod-cidr", cidr, "--port", str(free_port()),
                "--healthz-port", str(free_port())], name=node).start())
        await asyncio.sleep(3)   # nodes registered, informers synced
        for label, interval in (("one per second", 1.0), ("all at once", 0.0)):
            lat = await startup(api, c, f"startup-{int(interval * 1000)}", a.pods, "nginx", interval)
            rows.append((f"{a.pods} nginx pods on 2 Docker nodes, {label}: create -> Ready p50 / p99 (s)",
                         f"{pct(lat, 0.5) / 1000:.2f} / {pct(lat, 0.99) / 1000:.2f}",
                         "SLO p99 <= 5 s (no pulls); target p99 <= 1.5 s"))
        for p in procs[1:]:
            p.stop()
        cleanup(nodes)
        for node in nodes:   # gone for good: else the scheduler (no node-lifecycle controller here) binds to them
            assert api.http("DELETE", f"/api/v1/nodes/{node}")[0] == 200
        raw = raw_docker_pairs(a.pods)
        rows.append((f"  anchor: the engine alone starting {a.pods} pause+nginx pairs, 16 at a time (s)",
                     f"{raw:.2f}", f"= {a.pods / raw:.1f} pods/s, this machine's ceiling for the burst"))
        if a.hollow_nodes:
            hollow = Component(tmp, "kubelet", ["--kubeconfig", kc, "--runtime", "hollow", "--hostname-override", "h",
                                                "--hollow-nodes", str(a.hollow_nodes), "--healthz-port", "0"],
                               name="hollow").start()
            procs.append(hollow)
            procs.append(Component(tmp, "controllers", ["--kubeconfig", kc, "--port", str(free_port()),
                                                         "--controllers", "replicaset,deployment"]).start())
            await asyncio.sleep(10)
            await c.post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": "scale"}}))
            seen: dict[str, float] = {}
            watcher = asyncio.create_task(watch_pods(api, c, "scale", a.hollow_pods, seen, ready))
            await asyncio.sleep(0.5)
            t0 = time.perf_counter()
            await c.post("/apis/apps/v1/namespaces/scale/deployments", orjson.dumps({
                "metadata": {"name": "big"}, "spec": {"replicas": a.hollow_pods,
                                                      "selector": {"matchLabels": {"app": "big"}},
                                                      "template": {"metadata": {"labels": {"app": "big"}}, "spec": {
                                                          "containers": [{"name": "c", "image": "pause"}]}}}}))
            while not watcher.done():   # a crashed kubelet would leave the watch waiting forever
                await asyncio.wait([watcher], timeout=5)
                if hollow.proc.poll() is not None:
                    raise SystemExit(f"the hollow kubelet exited: {hollow.log.read_text()[-2000:]}")
            took = max(seen.values()) - t0
            rows.append((f"{a.hollow_pods} pods on {a.hollow_nodes} hollow nodes: all Ready (s)", f"{took:.0f}",
                         "KWOK: 1,000 nodes / 100,000 pods"))
            rows.append(("memory MB: apiserver / store (3) / hollow kubelet",
                         f"{rss_mb(api.proc.pid):.0f} / {sum(rss_mb(p.pid) for p in store.procs if p):.0f} / "
                         f"{rss_mb(hollow.proc.pid):.0f}",
                         f"kubemark ~220 MB per hollow node ({220 * a.hollow_nodes / 1024:.0f} GB for these)"))
        await c.http.close()
    finally:
        for p in procs:
            p.stop()
        cleanup(nodes)
        for cidr in cidrs:       # the kubelets' pod-network rules
            await podnetwork.remove(cidr, "10.0.0.0/8")
        if api is not None:
            api.stop()
        store.stop()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {datetime.now():%Y-%m-%d}")
    print_rows(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pods", type=int, default=30)
    p.add_argument("--hollow-nodes", type=int, default=0)
    p.add_argument("--hollow-pods", type=int, default=30000)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()

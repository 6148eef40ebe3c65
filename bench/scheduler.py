#!/usr/bin/env python3
"""Scheduler benchmark: 1,000 Node objects, 10,000 pods with requests created in bulk; pods bound
per second and p99 creation -> binding; then a 1,000-replica Deployment until every pod is bound.

    .venv/bin/python bench/scheduler.py [--nodes 1000] [--pods 10000] [--replicas 1000]

A 3-member etcdnode store, one apiserver, the scheduler and the controller-manager on loopback.
Anchor: Kubernetes' scheduler_perf SchedulingBasic threshold, 680 pods/s at 5,000 nodes (on far
larger machines); kube-scheduler's default client QPS is 50.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import Client, pct, print_rows, watch_pods  # noqa: E402
from tests.support.clusters import EtcdnodeCluster, free_port  # noqa: E402
from tests.support.control_plane import ApiServer, Component  # noqa: E402


def node(i: int) -> bytes:
    name = f"bench-node-{i}"
    return orjson.dumps({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                         "status": {"capacity": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                                    "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                                    "conditions": [{"type": "Ready", "status": "True"}]}})


def pod(name: str) -> bytes:
    return orjson.dumps({"metadata": {"name": name}, "spec": {"containers": [{
        "name": "c", "image": "pause", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}})


def is_bound(pod: dict) -> bool:
    return bool(pod.get("spec", {}).get("nodeName"))


async def main_async(a: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sched-"))
    store = EtcdnodeCluster(tmp / "store", 3).start_all()
    api = ApiServer(tmp / "api", store.client_urls).start()
    kc = str(api.kubeconfig)
    procs = []
    try:
        c = Client(api, 64)
        sem = asyncio.Semaphore(50)

        async def post(path: str, body: bytes) -> None:
            async with sem:
                await c.post(path, body)
        await asyncio.gather(*(post("/api/v1/nodes", node(i)) for i in range(a.nodes)))
        await c.post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": "sched"}}))
        procs.append(Component(tmp, "scheduler", ["--kubeconfig", kc, "--port", str(free_port())]).start())
        await asyncio.sleep(3)   # informers synced
        created: dict[str, float] = {}
        bound: dict[str, float] = {}
        watcher = asyncio.create_task(watch_pods(api, c, "sched", a.pods, bound, is_bound))
        await asyncio.sleep(0.5)

        async def make(i: int) -> None:
            name = f"p{i}"
            async with sem:
                await c.post("/api/v1/namespaces/sched/pods", pod(name))
            created[name] = time.perf_counter()
        t0 = time.perf_counter()
        await asyncio.gather(*(make(i) for i in range(a.pods)))
        t_created = time.perf_counter()
        await asyncio.wait_for(watcher, 600)
        t_bound = max(bound.values())
        lat = [bound[n] - created[n] for n in bound if n in created]
        rate = a.pods / (t_bound - t0)
        during = sum(1 for t in bound.values() if t <= t_created)
        phases = (f"{during / (t_created - t0):.0f} / {(a.pods - during) / max(1e-9, t_bound - t_created):.0f}")
        events = orjson.loads(await c.get("/api/v1/namespaces/sched/events?fieldSelector=reason%3DScheduled"))
        # a 1,000-replica Deployment through the controller-manager
        procs.append(Component(tmp, "controllers", ["--kubeconfig", kc, "--port", str(free_port()),
                                                     "--controllers", "replicaset,deployment"]).start())
        await c.post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": "deploy"}}))
        await asyncio.sleep(3)
        dbound: dict[str, float] = {}
        dwatch = asyncio.create_task(watch_pods(api, c, "deploy", a.replicas, dbound, is_bound))
        await asyncio.sleep(0.5)
        d0 = time.perf_counter()
        await c.post("/apis/apps/v1/namespaces/deploy/deployments", orjson.dumps({
            "metadata": {"name": "big"}, "spec": {"replicas": a.replicas, "selector": {"matchLabels": {"app": "big"}},
                                                  "template": {"metadata": {"labels": {"app": "big"}}, "spec": {
                                                      "containers": [{"name": "c", "image": "pause", "resources": {
                                                          "requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}))
        await asyncio.wait_for(dwatch, 600)
        deploy_s = max(dbound.values()) - d0
        await c.http.close()
    finally:
        for p in procs:
            p.stop()
        api.stop()
        store.stop()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = [
        (f"{a.pods} pods on {a.nodes} nodes: bound/s", f"{rate:.0f}",
         "scheduler_perf SchedulingBasic threshold 680/s (5,000 nodes, big machines)"),
        ("bound/s while pods are created / after", phases, "the creates compete for the same 2 cores"),
        ("creation -> bound p50 / p99 (ms)", f"{pct(lat, 0.5):.0f} / {pct(lat, 0.99):.0f}",
         f"creates took {t_created - t0:.1f} s ({a.pods / (t_created - t0):.0f}/s)"),
        (f"{a.replicas}-replica Deployment, all bound (s)", f"{deploy_s:.1f}", "target <= 10 s"),
        ("Scheduled events written when all were bound", f"{len(events['items'])}",
         "best effort: a full queue (1,000) drops, as client-go's recorder does"),
    ]
    print_rows(rows)


def main() -> None:
    gc.set_threshold(50_000, 50, 100)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--replicas", type=int, default=1000)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()

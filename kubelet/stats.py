"""/stats/summary (the kubelet's Summary API, what metrics-server reads): the node's CPU and memory
from /proc, each running pod container's from Docker's stats.

Docker's stats call answers with two samples about a second apart (cpu_stats and precpu_stats),
which gives usageNanoCores without keeping state; the calls for all containers run at once in a
pool of their own, so a summary takes about a second whatever the number of containers. The node's
CPU rate is measured over the same interval.
"""
from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.errors

from .containers import DockerContainers
from .docker_runtime import L_CONTAINER, L_NAME, L_NODE, L_NS, L_TYPE, L_UID, SANDBOX
from .streams import format_time, parse_time

MIN_INTERVAL = 0.25     # seconds between the node's two CPU samples when no container slows the call


def _node_cpu() -> tuple[float, int]:
    """(time, CPU nanoseconds spent by the node since boot: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]     # user nice system idle iowait irq softirq steal
    return time.time(), busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _node_memory() -> dict[str, int]:
    with open("/proc/meminfo") as f:
        info = {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f)}
    usage = info["MemTotal"] - info["MemFree"]
    return {"availableBytes": info.get("MemAvailable", info["MemFree"]), "usageBytes": usage,
            "workingSetBytes": max(usage - info.get("Inactive(file)", 0), 0)}


def _boot_time() -> float:
    with open("/proc/stat") as f:
        return float(next(line.split()[1] for line in f if line.startswith("btime ")))


def _cpu(now: float, rate: float | None, total: int) -> dict[str, Any]:
    cpu: dict[str, Any] = {"time": format_time(now), "usageCoreNanoSeconds": total}
    if rate is not None:
        cpu["usageNanoCores"] = int(rate)
    return cpu


class DockerStats:
    """The Summary of one node whose pods run on Docker; `summary` is KubeletServer's `stats`."""

    def __init__(self, containers: DockerContainers, node_name: str, pool_size: int = 32) -> None:
        self.containers = containers
        self.node_name = node_name
        self.pool = ThreadPoolExecutor(pool_size, thread_name_prefix="kubelet-stats")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    async def _container(self, entry: dict) -> dict | None:
        """One container's stats, None when it stopped or went meanwhile."""
        try:
            s = await self._run(self.containers.api.stats, entry["Id"], stream=False)
        except docker.errors.APIError as e:
            if e.status_code in (404, 409):     # removed, or being removed
                return None
            raise
        if s.get("read", "").startswith("0001-"):     # Docker's zero time: not running any more
            return None
        read = parse_time(s["read"])
        cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
        total = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
        before = int((pre.get("cpu_usage") or {}).get("total_usage") or 0)
        rate = None
        if before and not s.get("preread", "").startswith("0001-"):
            elapsed = read - parse_time(s["preread"])
            rate = (total - before) / elapsed if elapsed > 0 else None
        mem = s.get("memory_stats") or {}
        detail = mem.get("stats") or {}
        usage = int(mem.get("usage") or 0)
        inactive = int(detail.get("total_inactive_file", detail.get("inactive_file", 0)))
        labels = entry.get("Labels") or {}
        return {"name": labels.get(L_CONTAINER, ""), "startTime": format_time(entry.get("Created", 0)),
                "cpu": _cpu(read, rate, total),
                "memory": {"time": format_time(read), "usageBytes": usage, "workingSetBytes": max(usage - inactive, 0),
                           "rssBytes": int(detail.get("total_rss", detail.get("anon", 0))),
                           "pageFaults": int(detail.get("total_pgfault", detail.get("pgfault", 0))),
                           "majorPageFaults": int(detail.get("total_pgmajfault", detail.get("pgmajfault", 0)))}}

    async def summary(self) -> dict:
        labels = [f"{L_NODE}={self.containers.node}"] if self.containers.node else [L_UID]
        entries = await self._run(self.containers.api.containers, filters={"label": labels, "status": "running"})
        first_t, first_cpu = await self._run(_node_cpu)
        app = [e for e in entries if (e.get("Labels") or {}).get(L_TYPE) != SANDBOX]
        stats = await asyncio.gather(*(self._container(e) for e in app))
        then, node_cpu = await self._run(_node_cpu)
        if then - first_t < MIN_INTERVAL:
            await asyncio.sleep(MIN_INTERVAL)
            then, node_cpu = await self._run(_node_cpu)
        memory = await self._run(_node_memory)
        pods: dict[str, dict] = {}
        for entry in entries:
            tags = entry.get("Labels") or {}
            pod = pods.setdefault(tags.get(L_UID, ""), {
                "podRef": {"name": tags.get(L_NAME, ""), "namespace": tags.get(L_NS, ""), "uid": tags.get(L_UID, "")},
                "startTime": format_time(entry.get("Created", 0)), "containers": []})
            if tags.get(L_TYPE) == SANDBOX:
                pod["startTime"] = format_time(entry.get("Created", 0))
        for entry, st in zip(app, stats):
            if st is not None:
                pods[(entry.get("Labels") or {}).get(L_UID, "")]["containers"].append(st)
        for pod in pods.values():
            cs = pod["containers"]
            rates = [c["cpu"].get("usageNanoCores") for c in cs]
            pod["cpu"] = _cpu(then, sum(rates) if cs and None not in rates else None,
                              sum(c["cpu"]["usageCoreNanoSeconds"] for c in cs))
            pod["memory"] = {"time": format_time(then), **{k: sum(c["memory"][k] for c in cs) for k in (
                "usageBytes", "workingSetBytes", "rssBytes", "pageFaults", "majorPageFaults")}}
        return {"node": {"nodeName": self.node_name, "startTime": format_time(await self._run(_boot_time)),
                         "cpu": _cpu(then, (node_cpu - first_cpu) / (then - first_t), node_cpu),
                         "memory": {"time": format_time(then), **memory}},
                "pods": sorted(pods.values(), key=lambda p: (p["podRef"]["namespace"], p["podRef"]["name"]))}


# /metrics/resource: (metric, type, help, scope, stats field, scale), upstream's stable names
RESOURCE_METRICS = (
    ("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds",
     "node", ("cpu", "usageCoreNanoSeconds"), 1e-9),
    ("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes",
     "node", ("memory", "workingSetBytes"), 1),
    ("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds",
     "pod", ("cpu", "usageCoreNanoSeconds"), 1e-9),
    ("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes",
     "pod", ("memory", "workingSetBytes"), 1),
    ("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the container in core-seconds",
     "container", ("cpu", "usageCoreNanoSeconds"), 1e-9),
    ("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes",
     "container", ("memory", "workingSetBytes"), 1),
)


def _scoped(summary: dict, scope: str) -> list[tuple[str, dict]]:
    """(Prometheus labels, stats) of every node, pod or container in a Summary."""
    if scope == "node":
        return [("", summary.get("node") or {})]
    out = []
    for p in summary.get("pods") or []:
        ref = p.get("podRef") or {}
        where = f'namespace="{ref.get("namespace", "")}",pod="{ref.get("name", "")}"'
        if scope == "pod":
            out.append((f"{{{where}}}", p))
        else:
            out += [(f'{{container="{c.get("name", "")}",{where}}}', c) for c in p.get("containers") or []]
    return out


def resource_metrics(summary: dict) -> str:
    """The kubelet's /metrics/resource (Prometheus text) from a Summary."""
    lines = []
    for metric, kind, help_text, scope, (group, field), scale in RESOURCE_METRICS:
        lines += [f"# HELP {metric} [STABLE] {help_text}", f"# TYPE {metric} {kind}"]
        for labels, stats in _scoped(summary, scope):
            lines.append(f"{metric}{labels} {((stats.get(group) or {}).get(field) or 0) * scale:g}")
    lines += ["# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise",
              "# TYPE scrape_error gauge", "scrape_error 0"]
    return "\n".join(lines) + "\n"

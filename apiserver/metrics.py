"""metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics, as metrics-server serves them, read on demand
from each node's kubelet (`/stats/summary`), so `kubectl top` and the HPA see real usage.

Upstream runs metrics-server as an aggregated API that scrapes kubelets every 15 s; here the
apiserver asks the kubelets of the nodes a request concerns, with a short cache so an HPA sync and
a `kubectl top` in the same seconds cost one scrape.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any

import aiohttp

from kubeling.api import errors as E
from kubeling.api.resources import lookup

from .proxy import kubelet_base

log = logging.getLogger("apiserver.metrics")
NODES, PODS = lookup("", "v1", "nodes"), lookup("", "v1", "pods")
SCRAPE_TIMEOUT = 5.0
FRESH_FOR = 5.0          # seconds a node's summary is reused
DEFAULT_WINDOW = "10s"   # the kubelet's CPU usage is a rate over its last sampling interval


def _cpu(stats: dict | None) -> str:
    return f"{int((stats or {}).get('usageNanoCores') or 0)}n"


def _memory(stats: dict | None) -> str:
    return f"{int((stats or {}).get('workingSetBytes') or 0) // 1024}Ki"


def _meta(name: str, namespace: str | None, labels: dict | None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["creationTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if labels:
        meta["labels"] = labels
    return meta


def node_metrics(node: dict, summary: dict) -> dict:
    """NodeMetrics of one node from its kubelet's summary."""
    n = summary.get("node") or {}
    cpu, mem = n.get("cpu") or {}, n.get("memory") or {}
    return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": _meta(node["metadata"]["name"], None, node["metadata"].get("labels")),
            "timestamp": cpu.get("time") or mem.get("time") or "", "window": DEFAULT_WINDOW,
            "usage": {"cpu": _cpu(cpu), "memory": _memory(mem)}}


def pod_metrics(pod: dict, stats: dict) -> dict:
    """PodMetrics of one pod from its entry in the kubelet's summary."""
    containers = [{"name": c.get("name", ""), "usage": {"cpu": _cpu(c.get("cpu")), "memory": _memory(c.get("memory"))}}
                  for c in stats.get("containers") or []]
    cpu = stats.get("cpu") or {}
    meta = pod["metadata"]
    return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": _meta(meta["name"], meta.get("namespace"), meta.get("labels")),
            "timestamp": cpu.get("time") or "", "window": DEFAULT_WINDOW, "containers": containers}


class ResourceMetrics:
    """Scrapes kubelets for the two metrics kinds (`.nodes` and `.pods` are what the handler serves)."""

    def __init__(self, cache, proxy) -> None:
        self.cache, self.proxy = cache, proxy
        self._summaries: dict[str, tuple[float, dict | None]] = {}
        self.nodes = _Kind(self, "nodes")
        self.pods = _Kind(self, "pods")

    async def summary(self, node: dict) -> dict | None:
        """The node's stats summary, or None when its kubelet does not answer (the node then has no
        metrics, as with metrics-server)."""
        name = node["metadata"]["name"]
        hit = self._summaries.get(name)
        if hit is not None and time.monotonic() - hit[0] < FRESH_FOR:
            return hit[1]
        base = kubelet_base(node)
        data = None
        if base is not None:
            try:
                async with self.proxy.session().get(f"{base}/stats/summary",
                                                    timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)) as resp:
                    if resp.status == 200:
                        data = await resp.json(content_type=None)
                    else:
                        log.info("kubelet of %s answered %d to /stats/summary", name, resp.status)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as e:
                log.info("kubelet of %s unreachable for metrics: %s", name, e or type(e).__name__)
        self._summaries[name] = (time.monotonic(), data)
        return data

    def _nodes(self) -> list[dict]:
        return list(self.cache.list(NODES.key_prefix, None))

    async def node_list(self, names: set[str] | None = None) -> list[tuple[dict, dict]]:
        nodes = [n for n in self._nodes() if names is None or n["metadata"]["name"] in names]
        summaries = await asyncio.gather(*(self.summary(n) for n in nodes))
        return [(n, s) for n, s in zip(nodes, summaries) if s is not None]

    async def pod_list(self, namespace: str | None) -> list[dict]:
        pods = {(p["metadata"].get("namespace"), p["metadata"]["name"]): p
                for p in self.cache.list(PODS.key_prefix, namespace)
                if (p.get("spec") or {}).get("nodeName") and (p.get("status") or {}).get("phase") == "Running"}
        out = []
        for _, summary in await self.node_list({p["spec"]["nodeName"] for p in pods.values()}):
            for stats in summary.get("pods") or []:
                ref = stats.get("podRef") or {}
                pod = pods.get((ref.get("namespace"), ref.get("name")))
                if pod is not None and stats.get("containers"):
                    out.append(pod_metrics(pod, stats))
        out.sort(key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"]))
        return out


class _Kind:
    """One served kind over the shared scraper."""

    warning = ""

    def __init__(self, owner: ResourceMetrics, plural: str) -> None:
        self.owner, self.plural = owner, plural

    async def list(self, namespace: str | None) -> list[dict]:
        if self.plural == "nodes":
            return [node_metrics(n, s) for n, s in await self.owner.node_list()]
        return await self.owner.pod_list(namespace)

    async def get(self, namespace: str | None, name: str) -> dict:
        items = await self.list(namespace)
        for m in items:
            if m["metadata"]["name"] == name:
                return m
        raise E.not_found("metrics.k8s.io", self.plural, name)

"""HorizontalPodAutoscaler (autoscaling/v2): desired = ceil(current x usage / target) with the 10 %
tolerance, min/max, scale-down stabilization, conditions; scales through the scale subresource.

Pod usage comes from a MetricsSource: the metrics.k8s.io API (served once kubelets report stats)
or, for tests and hollow clusters, the `metrics.kubeling.io/cpu` and `/memory` pod annotations.
"""
from __future__ import annotations

import math
import time
from collections import deque

from kubeling.api import quantity
from kubeling.api.resources import lookup
from kubeling.api.selectors import parse_label_selector
from kubeling.client import ApiError

from .base import Controller
from .replicaset import pod_ready

HPA, PODS = lookup("autoscaling", "v2", "horizontalpodautoscalers"), lookup("", "v1", "pods")
TARGETS = {("apps/v1", "Deployment"): lookup("apps", "v1", "deployments"),
           ("apps/v1", "ReplicaSet"): lookup("apps", "v1", "replicasets")}
TOLERANCE = 0.1


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class AnnotationMetrics:
    """Stand-in metrics source: usage written on pods as annotations (cpu in cores or millicores)."""

    def __init__(self, pods_informer) -> None:
        self.pods = pods_informer

    async def usage(self, namespace: str, selector: str, resource: str) -> dict[str, int]:
        sel = parse_label_selector(selector)
        out = {}
        for p in self.pods.list(namespace):
            v = (p["metadata"].get("annotations") or {}).get(f"metrics.kubeling.io/{resource}")
            if v is not None and sel.matches(p["metadata"].get("labels")):
                out[p["metadata"]["name"]] = quantity.milli(v) if resource == "cpu" else quantity.value(v)
        return out


class ApiMetrics:
    """metrics.k8s.io/v1beta1 PodMetrics through the apiserver."""

    def __init__(self, client) -> None:
        self.client = client

    async def usage(self, namespace: str, selector: str, resource: str) -> dict[str, int]:
        from urllib.parse import quote
        url = f"{self.client.config.server}/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods?labelSelector={quote(selector)}"
        body = await self.client.request("GET", url)
        out = {}
        for item in body.get("items") or []:
            total = sum(quantity.milli(c["usage"][resource]) if resource == "cpu" else quantity.value(c["usage"][resource])
                        for c in item.get("containers") or [] if resource in c.get("usage", {}))
            out[item["metadata"]["name"]] = total
        return out


class HPAController(Controller):
    name = "horizontalpodautoscaling"
    workers = 2

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.hpas = self.factory.get(HPA)
        self.pods = self.factory.get(PODS)
        self.hpas.add_handler(*self.enqueue_handlers())
        source = getattr(self.opts, "hpa_metrics_source", "annotations")
        self.metrics = AnnotationMetrics(self.pods) if source == "annotations" else ApiMetrics(self.client)
        self.sync_period = getattr(self.opts, "horizontal_pod_autoscaler_sync_period", 15.0)
        self.window = getattr(self.opts, "horizontal_pod_autoscaler_downscale_stabilization", 300.0)
        self.recommendations: dict[str, deque] = {}

    async def sync(self, key: str) -> None:
        hpa = self.hpas.get(key)
        if hpa is None:
            self.recommendations.pop(key, None)
            return
        self.queue.add_after(key, self.sync_period)
        ns, spec = hpa["metadata"]["namespace"], hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        target = TARGETS.get((ref.get("apiVersion", "apps/v1"), ref.get("kind")))
        conds: dict[str, dict] = {}
        if target is None:
            conds["AbleToScale"] = self._cond(hpa, "AbleToScale", "False", "FailedGetScale",
                                              f"the HPA controller was unable to get the target's current scale: "
                                              f"no scale subresource for {ref.get('kind')}")
            return await self._status(hpa, None, None, [], conds)
        try:
            scale = await self.client.get(target, ref["name"], ns, "scale")
        except ApiError as e:
            conds["AbleToScale"] = self._cond(hpa, "AbleToScale", "False", "FailedGetScale",
                                              f"the HPA controller was unable to get the target's current scale: {e}")
            return await self._status(hpa, None, None, [], conds)
        current = scale["spec"].get("replicas", 0)
        selector = scale["status"].get("selector", "")
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
        proposals, current_metrics = [], []
        for m in spec.get("metrics") or []:
            if m.get("type") != "Resource":
                continue
            res = m["resource"]["name"]
            tgt = m["resource"].get("target") or {}
            usage = await self.metrics.usage(ns, selector, res)
            pods = [p for p in self.pods.list(ns) if p["metadata"]["name"] in usage and pod_ready(p)
                    and not p["metadata"].get("deletionTimestamp")]
            if not pods:
                continue
            if tgt.get("type") == "Utilization":
                reqs = {p["metadata"]["name"]: sum(
                    (quantity.milli if res == "cpu" else quantity.value)(
                        ((c.get("resources") or {}).get("requests") or {}).get(res))
                    for c in p["spec"].get("containers") or []) for p in pods}
                total_req = sum(reqs.values())
                if not total_req:
                    continue
                util = 100 * sum(usage[p["metadata"]["name"]] for p in pods) / total_req
                ratio = util / tgt.get("averageUtilization", 80)
                current_metrics.append({"type": "Resource", "resource": {"name": res, "current": {
                    "averageUtilization": int(util), "averageValue": _fmt(res, sum(usage.values()) / len(pods))}}})
            else:
                avg = sum(usage[p["metadata"]["name"]] for p in pods) / len(pods)
                want = (quantity.milli if res == "cpu" else quantity.value)(tgt.get("averageValue"))
                ratio = avg / want if want else 1.0
                current_metrics.append({"type": "Resource", "resource": {"name": res, "current": {
                    "averageValue": _fmt(res, avg)}}})
            proposals.append(current if abs(ratio - 1) <= TOLERANCE else math.ceil(ratio * len(pods)))
        if not proposals:
            conds["ScalingActive"] = self._cond(hpa, "ScalingActive", "False", "FailedGetResourceMetric",
                                                "the HPA was unable to compute the replica count: no metrics returned")
            return await self._status(hpa, current, current, [], conds)
        desired = max(proposals)
        # scale-down stabilization: the highest recommendation of the window wins
        now = time.time()
        recs = self.recommendations.setdefault(key, deque())
        recs.append((now, desired))
        while recs and recs[0][0] < now - self.window:
            recs.popleft()
        stabilized = max(r for _, r in recs) if desired < current else desired
        limited = min(max(stabilized, lo), hi)
        conds["AbleToScale"] = self._cond(hpa, "AbleToScale", "True", "ScaleDownStabilized" if stabilized != desired
                                          else "SucceededRescale" if limited != current else "ReadyForNewScale",
                                          "recommended size matches current size" if limited == current
                                          else f"the HPA controller was able to update the target scale to {limited}")
        conds["ScalingActive"] = self._cond(hpa, "ScalingActive", "True", "ValidMetricFound",
                                            "the HPA was able to successfully calculate a replica count")
        conds["ScalingLimited"] = self._cond(hpa, "ScalingLimited", "True" if limited != stabilized else "False",
                                             "TooManyReplicas" if stabilized > hi else "TooFewReplicas"
                                             if stabilized < lo else "DesiredWithinRange",
                                             "the desired replica count is more than the maximum replica count"
                                             if stabilized > hi else "the desired replica count is less than the "
                                             "minimum replica count" if stabilized < lo
                                             else "the desired count is within the acceptable range")
        if limited != current:
            await self.client.patch(target, ref["name"], {"spec": {"replicas": limited}}, ns, "scale")
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {limited}; reason: "
                                f"{'cpu resource utilization (percentage of request) above target' if limited > current else 'All metrics below target'}")
        await self._status(hpa, current, limited, current_metrics, conds, rescaled=limited != current)

    def _cond(self, hpa: dict, typ: str, status: str, reason: str, message: str) -> dict:
        prev = next((c for c in (hpa.get("status") or {}).get("conditions") or [] if c.get("type") == typ), None)
        ts = prev["lastTransitionTime"] if prev and prev.get("status") == status else _now()
        return {"type": typ, "status": status, "lastTransitionTime": ts, "reason": reason, "message": message}

    async def _status(self, hpa: dict, current, desired, metrics: list, conds: dict, rescaled: bool = False) -> None:
        old = hpa.get("status") or {}
        status = {"currentReplicas": current or 0, "desiredReplicas": desired or 0,
                  "conditions": list(conds.values())}
        if metrics:
            status["currentMetrics"] = metrics
        status["lastScaleTime"] = _now() if rescaled else old.get("lastScaleTime")
        if status["lastScaleTime"] is None:
            status.pop("lastScaleTime")
        status["observedGeneration"] = hpa["metadata"].get("generation", 1)
        same = {k: v for k, v in old.items() if k != "conditions"} == {k: v for k, v in status.items() if k != "conditions"} \
            and [(c.get("type"), c.get("status"), c.get("reason")) for c in old.get("conditions") or []] == \
            [(c["type"], c["status"], c["reason"]) for c in status["conditions"]]
        if same:
            return
        try:
            await self.client.update(HPA, {**hpa, "status": status}, hpa["metadata"]["namespace"], "status")
        except ApiError as e:
            if e.conflict:
                self.queue.add(f"{hpa['metadata']['namespace']}/{hpa['metadata']['name']}")
            elif not e.not_found:
                raise


def _fmt(res: str, v: float) -> str:
    return f"{int(v)}m" if res == "cpu" else str(int(v))

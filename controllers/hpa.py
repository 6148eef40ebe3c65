"""HorizontalPodAutoscaler (autoscaling/v2): desired = ceil(current x usage / target) with the 10 %
tolerance, min/max, scale-down stabilization, conditions; scales through the scale subresource.

Pod usage comes from a MetricsSource: the metrics.k8s.io API (served once kubelets report stats)
or, for tests and hollow clusters, the `metrics.kubeling.io/cpu` and `/memory` pod annotations.
"""
from __future__ import annotations

import math
import time

from kubeling.api import quantity
from kubeling.api.resources import lookup
from kubeling.api.selectors import parse_label_selector
from kubeling.client import ApiError

from .base import Controller
from .hpa_rules import History, normalize, record_scale
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
        self.history: dict[str, History] = {}

    async def sync(self, key: str) -> None:
        hpa = self.hpas.get(key)
        if hpa is None:
            self.history.pop(key, None)
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
                                              f"the HPA controller was unable to get the target's current scale: "
                                              f"{e.status.get('message') or e}")
            return await self._status(hpa, None, None, [], conds)
        current = scale["spec"].get("replicas", 0)
        selector = scale["status"].get("selector", "")
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
        conds["AbleToScale"] = self._cond(hpa, "AbleToScale", "True", "SucceededGetScale",
                                          "the HPA controller was able to get the target's current scale")
        behavior = spec.get("behavior")
        history = self.history.setdefault(key, History())
        now = time.time()
        current_metrics: list[dict] = []
        if current == 0 and lo != 0:
            conds["ScalingActive"] = self._cond(hpa, "ScalingActive", "False", "ScalingDisabled",
                                                "scaling is disabled since the replica count of the target is zero")
            return await self._status(hpa, current, 0, [], conds)
        if current > hi or current < lo:
            desired = hi if current > hi else lo
            reason = f"Current number of replicas {'above' if current > hi else 'below'} Spec.{'Max' if current > hi else 'Min'}Replicas"
        else:
            proposal, metric, current_metrics, failure = await self._recommend(ns, selector, spec, current)
            if proposal is None:
                conds["ScalingActive"] = self._cond(hpa, "ScalingActive", "False", "FailedGetResourceMetric",
                                                    f"the HPA was unable to compute the replica count: {failure}")
                self.recorder.event(hpa, "Warning", "FailedGetResourceMetric", failure)
                return await self._status(hpa, current, current, current_metrics, conds)
            conds["ScalingActive"] = self._cond(hpa, "ScalingActive", "True", "ValidMetricFound",
                                                f"the HPA was able to successfully calculate a replica count from "
                                                f"{metric}")
            reason = f"{metric} above target" if proposal > current else "All metrics below target"
            out = normalize(current, proposal, lo, hi, behavior, history, now, self.window)
            desired = out.replicas
            conds["AbleToScale"] = self._cond(hpa, "AbleToScale", "True", out.able_reason, out.able_message)
            conds["ScalingLimited"] = self._cond(hpa, "ScalingLimited", "True" if out.limited else "False",
                                                 out.limit_reason, out.limit_message)
        if desired != current:
            try:
                await self.client.patch(target, ref["name"], {"spec": {"replicas": desired}}, ns, "scale")
            except ApiError as e:
                conds["AbleToScale"] = self._cond(hpa, "AbleToScale", "False", "FailedUpdateScale",
                                                  f"the HPA controller was unable to update the target scale: "
                                                  f"{e.status.get('message') or e}")
                self.recorder.event(hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; "
                                    f"error: {e.status.get('message') or e}")
                return await self._status(hpa, current, current, current_metrics, conds)
            record_scale(behavior, history, now, current, desired)
            conds["AbleToScale"] = self._cond(hpa, "AbleToScale", "True", "SucceededRescale",
                                              f"the HPA controller was able to update the target scale to {desired}")
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        await self._status(hpa, current, desired, current_metrics, conds, rescaled=desired != current)

    async def _recommend(self, ns: str, selector: str, spec: dict, current: int
                         ) -> tuple[int | None, str, list[dict], str]:
        """The largest replica proposal over the Resource metrics: (proposal, metric name, current
        metrics, failure message when none could be computed)."""
        best, best_metric, statuses, failure = None, "", [], "no metrics configured"
        for m in spec.get("metrics") or []:
            if m.get("type") != "Resource":
                continue
            res = m["resource"]["name"]
            tgt = m["resource"].get("target") or {}
            utilization = tgt.get("type") == "Utilization"
            try:
                usage = await self.metrics.usage(ns, selector, res)
            except ApiError as e:
                failure = (f"failed to get {res} utilization: unable to get metrics for resource {res}: unable to "
                           f"fetch metrics from resource metrics API: {e.status.get('message') or e}")
                continue
            pods = [p for p in self.pods.list(ns) if p["metadata"]["name"] in usage and pod_ready(p)
                    and not p["metadata"].get("deletionTimestamp")]
            if not pods:
                failure = (f"failed to get {res} utilization: unable to get metrics for resource {res}: "
                           f"no metrics returned from resource metrics API")
                continue
            total = sum(usage[p["metadata"]["name"]] for p in pods)
            current_value = {"averageValue": _fmt(res, total / len(pods))}
            if utilization:
                total_req = sum((quantity.milli if res == "cpu" else quantity.value)(
                    ((c.get("resources") or {}).get("requests") or {}).get(res))
                    for p in pods for c in p["spec"].get("containers") or [])
                if not total_req:
                    failure = f"failed to get {res} utilization: missing request for {res}"
                    continue
                util = 100 * total / total_req
                ratio = util / tgt.get("averageUtilization", 80)
                current_value = {"averageUtilization": int(util), **current_value}
                name = f"{res} resource utilization (percentage of request)"
            else:
                want = (quantity.milli if res == "cpu" else quantity.value)(tgt.get("averageValue"))
                ratio = (total / len(pods)) / want if want else 1.0
                name = f"{res} resource"
            statuses.append({"type": "Resource", "resource": {"name": res, "current": current_value}})
            proposal = current if abs(ratio - 1) <= TOLERANCE else math.ceil(ratio * len(pods))
            if best is None or proposal > best:
                best, best_metric = proposal, name
        return best, best_metric, statuses, failure

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

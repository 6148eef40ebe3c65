"""Conversion between the served versions of kinds that share one storage record.

Two kinds are served in two versions but stored once:

* Event: stored as core/v1, also served as events.k8s.io/v1 (renamed fields);
* HorizontalPodAutoscaler: stored as autoscaling/v2, also served as autoscaling/v1.
  v1 can only say "target CPU utilization"; everything else v2 holds travels in
  the ``autoscaling.alpha.kubernetes.io/*`` annotations in the autoscaling/v1
  metric shape, so a read-modify-write through v1 keeps what v2 wrote.  That is
  how Kubernetes does it (pkg/apis/autoscaling/v1/conversion.go), annotation
  names and JSON layout included, so clients that read them see the same thing.

Conversion maps the keys that are present and never invents zero values: the
serialized shape of absent fields is the storage layer's business, and it keeps
round trips lossless.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

from kubeling.api.resources import Resource

Obj = dict[str, Any]

METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP_ANNOTATIONS = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION)
DEFAULT_CPU_UTILIZATION = 80


def storage_api_version(resource: Resource) -> str:
    """apiVersion of the stored record (the served one when storage is not shared)."""
    if not resource.storage:
        return resource.api_version
    group, version = resource.storage[0], resource.storage_version or resource.version
    return f"{group}/{version}" if group else version


def to_storage(resource: Resource, obj: Obj) -> Obj:
    """Served version -> stored version (unchanged for kinds with their own storage)."""
    if not resource.storage:
        return obj
    target = storage_api_version(resource)
    conv = _CONVERTERS.get((resource.api_version, target, resource.kind))
    out = conv[0](copy.deepcopy(obj)) if conv else dict(obj)
    return _typed(out, target, resource.kind)


def from_storage(resource: Resource, obj: Obj) -> Obj:
    """Stored version -> served version, with the served apiVersion and kind."""
    if not resource.storage:
        return obj
    source = storage_api_version(resource)
    conv = _CONVERTERS.get((resource.api_version, source, resource.kind))
    out = conv[1](copy.deepcopy(obj)) if conv else dict(obj)
    return _typed(out, resource.api_version, resource.kind)


def _typed(obj: Obj, api_version: str, kind: str) -> Obj:
    """apiVersion and kind first, like the wire form."""
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": api_version, "kind": kind, **rest}


def _rename(src: Obj, pairs: tuple[tuple[str, str], ...], drop_empty: tuple[str, ...] = ()) -> Obj:
    """Copy src renaming keys by pairs (absent keys stay absent); drop "" for omitempty strings."""
    names = dict(pairs)
    out = {names.get(k, k): v for k, v in src.items()}
    for k in drop_empty:
        if out.get(k) == "":
            del out[k]
    return out


# --- Event: events.k8s.io/v1 <-> core/v1 -------------------------------------------

_EVENT_FIELDS = (  # (events.k8s.io/v1, core/v1)
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
)
# events.k8s.io/v1 declares these omitempty, core/v1 does not always.
_EVENT_OMITEMPTY = ("note", "reportingController", "reportingInstance", "action", "reason", "type")


def _event_to_core(obj: Obj) -> Obj:
    return _rename(obj, _EVENT_FIELDS)


def _event_from_core(obj: Obj) -> Obj:
    return _rename(obj, tuple((b, a) for a, b in _EVENT_FIELDS), _EVENT_OMITEMPTY)


# --- HorizontalPodAutoscaler: autoscaling/v1 <-> autoscaling/v2 ------------------------

def _pick(src: Obj | None, *pairs: tuple[str, str]) -> Obj:
    """{dst: src[key]} for the pairs whose key is present in src."""
    src = src or {}
    return {dst: src[key] for key, dst in pairs if key in src}


def _metric_ident(m: Obj, selector_key: str) -> Obj:
    return _pick(m, ("metricName", "name"), (selector_key, "selector"))


def _v2_target_to_v1(src: Obj, *pairs: tuple[str, str]) -> Obj:
    return _pick(src.get("target"), *pairs)


def _metric_spec_v2_to_v1(m: Obj) -> Obj:
    """One v2 MetricSpec in the autoscaling/v1 (v2beta1-like) annotation layout."""
    t = m.get("type")
    out: Obj = {"type": t}
    if t == "Object" and "object" in m:
        s = m["object"]
        out["object"] = {**({"target": s["describedObject"]} if "describedObject" in s else {}),
                         **_pick(s.get("metric"), ("name", "metricName")),
                         **_v2_target_to_v1(s, ("value", "targetValue")),
                         **_pick(s.get("metric"), ("selector", "selector")),
                         **_v2_target_to_v1(s, ("averageValue", "averageValue"))}
    elif t == "Pods" and "pods" in m:
        s = m["pods"]
        out["pods"] = {**_pick(s.get("metric"), ("name", "metricName")),
                       **_v2_target_to_v1(s, ("averageValue", "targetAverageValue")),
                       **_pick(s.get("metric"), ("selector", "selector"))}
    elif t in ("Resource", "ContainerResource") and _field(t) in m:
        s = m[_field(t)]
        out[_field(t)] = {**_pick(s, ("name", "name")),
                          **_v2_target_to_v1(s, ("averageUtilization", "targetAverageUtilization"),
                                             ("averageValue", "targetAverageValue")),
                          **_pick(s, ("container", "container"))}
    elif t == "External" and "external" in m:
        s = m["external"]
        out["external"] = {**_pick(s.get("metric"), ("name", "metricName"), ("selector", "metricSelector")),
                           **_v2_target_to_v1(s, ("value", "targetValue"), ("averageValue", "targetAverageValue"))}
    return out


def _metric_spec_v1_to_v2(m: Obj) -> Obj:
    t = m.get("type")
    out: Obj = {"type": t}
    if t == "Object" and "object" in m:
        s = m["object"]
        target = {"type": "AverageValue" if "averageValue" in s else "Value",
                  **_pick(s, ("targetValue", "value"), ("averageValue", "averageValue"))}
        out["object"] = {**({"describedObject": s["target"]} if "target" in s else {}),
                         "target": target, "metric": _metric_ident(s, "selector")}
    elif t == "Pods" and "pods" in m:
        s = m["pods"]
        out["pods"] = {"metric": _metric_ident(s, "selector"),
                       "target": {"type": "AverageValue", **_pick(s, ("targetAverageValue", "averageValue"))}}
    elif t in ("Resource", "ContainerResource") and _field(t) in m:
        s = m[_field(t)]
        kind = "Utilization" if "targetAverageUtilization" in s else "AverageValue"
        out[_field(t)] = {**_pick(s, ("name", "name")),
                          "target": {"type": kind, **_pick(s, ("targetAverageUtilization", "averageUtilization"),
                                                           ("targetAverageValue", "averageValue"))},
                          **_pick(s, ("container", "container"))}
    elif t == "External" and "external" in m:
        s = m["external"]
        out["external"] = {"metric": _metric_ident(s, "metricSelector"),
                           "target": {"type": "Value" if "targetValue" in s else "AverageValue",
                                      **_pick(s, ("targetValue", "value"), ("targetAverageValue", "averageValue"))}}
    return out


def _metric_status_v2_to_v1(m: Obj) -> Obj:
    t = m.get("type")
    out: Obj = {"type": t}
    if t == "Object" and "object" in m:
        s = m["object"]
        out["object"] = {**({"target": s["describedObject"]} if "describedObject" in s else {}),
                         **_pick(s.get("metric"), ("name", "metricName")),
                         **_pick(s.get("current"), ("value", "currentValue")),
                         **_pick(s.get("metric"), ("selector", "selector")),
                         **_pick(s.get("current"), ("averageValue", "averageValue"))}
    elif t == "Pods" and "pods" in m:
        s = m["pods"]
        out["pods"] = {**_pick(s.get("metric"), ("name", "metricName")),
                       **_pick(s.get("current"), ("averageValue", "currentAverageValue")),
                       **_pick(s.get("metric"), ("selector", "selector"))}
    elif t in ("Resource", "ContainerResource") and _field(t) in m:
        s = m[_field(t)]
        out[_field(t)] = {**_pick(s, ("name", "name")),
                          **_pick(s.get("current"), ("averageUtilization", "currentAverageUtilization"),
                                  ("averageValue", "currentAverageValue")),
                          **_pick(s, ("container", "container"))}
    elif t == "External" and "external" in m:
        s = m["external"]
        out["external"] = {**_pick(s.get("metric"), ("name", "metricName"), ("selector", "metricSelector")),
                           **_pick(s.get("current"), ("value", "currentValue"),
                                   ("averageValue", "currentAverageValue"))}
    return out


def _metric_status_v1_to_v2(m: Obj) -> Obj:
    t = m.get("type")
    out: Obj = {"type": t}
    if t == "Object" and "object" in m:
        s = m["object"]
        out["object"] = {"metric": _metric_ident(s, "selector"),
                         "current": _pick(s, ("currentValue", "value"), ("averageValue", "averageValue")),
                         **({"describedObject": s["target"]} if "target" in s else {})}
    elif t == "Pods" and "pods" in m:
        s = m["pods"]
        out["pods"] = {"metric": _metric_ident(s, "selector"),
                       "current": _pick(s, ("currentAverageValue", "averageValue"))}
    elif t in ("Resource", "ContainerResource") and _field(t) in m:
        s = m[_field(t)]
        out[_field(t)] = {**_pick(s, ("name", "name")),
                          "current": _pick(s, ("currentAverageValue", "averageValue"),
                                           ("currentAverageUtilization", "averageUtilization")),
                          **_pick(s, ("container", "container"))}
    elif t == "External" and "external" in m:
        s = m["external"]
        out["external"] = {"metric": _metric_ident(s, "metricSelector"),
                           "current": _pick(s, ("currentValue", "value"), ("currentAverageValue", "averageValue"))}
    return out


def _field(metric_type: str) -> str:
    return metric_type[0].lower() + metric_type[1:]


def _is_cpu_utilization(m: Obj, key: str) -> bool:
    res = m.get("resource") or {}
    return (m.get("type") == "Resource" and res.get("name") == "cpu"
            and (res.get(key) or {}).get("averageUtilization") is not None)


# The behavior annotation holds Go's *internal* type marshalled without json tags,
# so its keys are the Go field names; nil pointers are written as null.
_BEHAVIOR_RULES = (("stabilizationWindowSeconds", "StabilizationWindowSeconds"), ("selectPolicy", "SelectPolicy"),
                   ("policies", "Policies"))
_BEHAVIOR_POLICY = (("type", "Type"), ("value", "Value"), ("periodSeconds", "PeriodSeconds"))
_DEFAULT_RULES = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
}


def _behavior_encode(behavior: Obj) -> str:
    def rules(r: Obj | None) -> Obj | None:
        if r is None:
            return None
        out: Obj = {go: r.get(js) for js, go in _BEHAVIOR_RULES}
        if out["Policies"] is not None:
            out["Policies"] = [{go: p.get(js, "" if js == "type" else 0) for js, go in _BEHAVIOR_POLICY}
                               for p in out["Policies"]]
        return out
    return _go_json({"ScaleUp": rules(behavior.get("scaleUp")), "ScaleDown": rules(behavior.get("scaleDown"))})


def _behavior_decode(text: str) -> Obj | None:
    """Go's case-insensitive json.Unmarshal of the internal behavior; None if unusable or empty."""
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None

    def get(d: Obj, go: str) -> Any:
        return next((v for k, v in d.items() if k.lower() == go.lower()), None)

    out: Obj = {}
    for js, go in (("scaleUp", "ScaleUp"), ("scaleDown", "ScaleDown")):
        r = get(raw, go)
        if not isinstance(r, dict):
            continue
        rules: Obj = {}
        for rjs, rgo in _BEHAVIOR_RULES:
            v = get(r, rgo)
            if v is not None:
                rules[rjs] = ([{pjs: get(p, pgo) for pjs, pgo in _BEHAVIOR_POLICY} for p in v]
                              if rjs == "policies" else v)
        out[js] = rules
    if not out:
        return None
    for side, defaults in _DEFAULT_RULES.items():  # upstream fills a missing side with the defaults
        out.setdefault(side, copy.deepcopy(defaults))
    return out


def _go_json(value: Any) -> str:
    """Compact JSON like Go's encoding/json (no spaces, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _annotations(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _set_annotations(obj: Obj, annotations: dict[str, str]) -> None:
    meta = obj.setdefault("metadata", {})
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)


def _json_list(text: str | None) -> list[Obj] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _hpa_from_v2(obj: Obj) -> Obj:
    """autoscaling/v2 (stored) -> autoscaling/v1."""
    spec, status = obj.get("spec") or {}, obj.get("status")
    metrics, current = spec.get("metrics") or [], (status or {}).get("currentMetrics") or []
    conditions = (status or {}).get("conditions") or []
    ann = {k: v for k, v in _annotations(obj).items() if k not in ROUND_TRIP_ANNOTATIONS}
    others = [_metric_spec_v2_to_v1(m) for m in metrics if not _is_cpu_utilization(m, "target")]
    if others:
        ann[METRICS_ANNOTATION] = _go_json(others)
    if current:
        ann[CURRENT_METRICS_ANNOTATION] = _go_json([_metric_status_v2_to_v1(m) for m in current])
    if spec.get("behavior") is not None:
        ann[BEHAVIOR_ANNOTATION] = _behavior_encode(spec["behavior"])
    if conditions:
        ann[CONDITIONS_ANNOTATION] = _go_json(conditions)
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    _set_annotations(out, ann)
    if "spec" in obj:
        v1spec = _pick(spec, ("scaleTargetRef", "scaleTargetRef"), ("minReplicas", "minReplicas"),
                       ("maxReplicas", "maxReplicas"))
        cpu = next((m for m in metrics if _is_cpu_utilization(m, "target")), None)
        if cpu:
            v1spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
        out["spec"] = v1spec
    if status is not None:
        v1status = _pick(status, ("observedGeneration", "observedGeneration"), ("lastScaleTime", "lastScaleTime"),
                         ("currentReplicas", "currentReplicas"), ("desiredReplicas", "desiredReplicas"))
        for m in current:  # the last CPU utilization wins, as upstream
            if _is_cpu_utilization(m, "current"):
                v1status["currentCPUUtilizationPercentage"] = m["resource"]["current"]["averageUtilization"]
        out["status"] = v1status
    return out


def _hpa_to_v2(obj: Obj) -> Obj:
    """autoscaling/v1 -> autoscaling/v2 (stored), lifting the round-trip annotations back into fields."""
    ann = _annotations(obj)
    spec, status = obj.get("spec") or {}, obj.get("status")
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    _set_annotations(out, {k: v for k, v in ann.items() if k not in ROUND_TRIP_ANNOTATIONS})

    v2spec = _pick(spec, ("scaleTargetRef", "scaleTargetRef"), ("minReplicas", "minReplicas"),
                   ("maxReplicas", "maxReplicas"))
    metrics = [_metric_spec_v1_to_v2(m) for m in _json_list(ann.get(METRICS_ANNOTATION)) or []]
    cpu = spec.get("targetCPUUtilizationPercentage")
    if cpu is not None:  # the CPU target goes after the annotated metrics, as upstream
        metrics.append({"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}})
    if not metrics:  # v1's implicit default, made explicit
        metrics = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    v2spec["metrics"] = metrics
    behavior = _behavior_decode(ann[BEHAVIOR_ANNOTATION]) if BEHAVIOR_ANNOTATION in ann else None
    if behavior:
        v2spec["behavior"] = behavior
    out["spec"] = v2spec

    if status is not None or CURRENT_METRICS_ANNOTATION in ann or CONDITIONS_ANNOTATION in ann:
        status = status or {}
        v2status = _pick(status, ("observedGeneration", "observedGeneration"), ("lastScaleTime", "lastScaleTime"),
                         ("currentReplicas", "currentReplicas"), ("desiredReplicas", "desiredReplicas"))
        current = _json_list(ann.get(CURRENT_METRICS_ANNOTATION))
        if current is not None:  # the annotation has more information than the CPU percentage
            v2status["currentMetrics"] = [_metric_status_v1_to_v2(m) for m in current]
        elif status.get("currentCPUUtilizationPercentage") is not None:
            v2status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
        conditions = _json_list(ann.get(CONDITIONS_ANNOTATION))
        if conditions is not None:
            v2status["conditions"] = conditions
        out["status"] = v2status
    return out


Converter = tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]  # (to storage, from storage)

# (served apiVersion, stored apiVersion, kind) -> converters
_CONVERTERS: dict[tuple[str, str, str], Converter] = {
    ("events.k8s.io/v1", "v1", "Event"): (_event_to_core, _event_from_core),
    ("autoscaling/v1", "autoscaling/v2", "HorizontalPodAutoscaler"): (_hpa_to_v2, _hpa_from_v2),
}

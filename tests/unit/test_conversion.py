"""Conversion between served versions sharing one storage record: lossless round trips."""
from __future__ import annotations

import copy
import json

from apiserver.api.conversion import (BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION, CURRENT_METRICS_ANNOTATION,
                                     METRICS_ANNOTATION, from_storage, to_storage)
from kubeling.api.resources import lookup

CORE_EVENTS = lookup("", "v1", "events")
EVENTS = lookup("events.k8s.io", "v1", "events")
HPA_V1 = lookup("autoscaling", "v1", "horizontalpodautoscalers")
HPA_V2 = lookup("autoscaling", "v2", "horizontalpodautoscalers")
PODS = lookup("", "v1", "pods")

META = {"name": "web.17a1", "namespace": "default", "uid": "u-1", "resourceVersion": "12",
        "creationTimestamp": "2024-05-01T11:50:00Z"}

CORE_EVENT = {
    "apiVersion": "v1", "kind": "Event", "metadata": META,
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "p-1", "apiVersion": "v1",
                       "resourceVersion": "9", "fieldPath": "spec.containers{app}"},
    "reason": "Started", "message": "Started container app",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:55:00Z", "count": 2,
    "type": "Normal", "eventTime": None, "reportingComponent": "kubelet", "reportingInstance": "node-1",
}


def test_event_core_to_events_view():
    served = from_storage(EVENTS, CORE_EVENT)
    assert served == {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": META,
        "regarding": CORE_EVENT["involvedObject"], "reason": "Started", "note": "Started container app",
        "deprecatedSource": {"component": "kubelet", "host": "node-1"},
        "deprecatedFirstTimestamp": "2024-05-01T11:50:00Z", "deprecatedLastTimestamp": "2024-05-01T11:55:00Z",
        "deprecatedCount": 2, "type": "Normal", "eventTime": None, "reportingController": "kubelet",
        "reportingInstance": "node-1"}
    assert to_storage(EVENTS, served) == CORE_EVENT


def test_event_written_through_events_api_round_trips():
    new = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": META,
           "eventTime": "2024-05-01T11:50:00.123456Z", "series": {"count": 3,
                                                                  "lastObservedTime": "2024-05-01T11:58:00.000000Z"},
           "reportingController": "example.com/controller", "reportingInstance": "ctl-0", "action": "Scale",
           "reason": "ScaledUp", "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
           "related": {"kind": "ReplicaSet", "name": "web-1"}, "note": "scaled to 3", "type": "Normal"}
    stored = to_storage(EVENTS, new)
    assert stored["apiVersion"] == "v1" and stored["involvedObject"] == new["regarding"]
    assert stored["message"] == "scaled to 3" and stored["reportingComponent"] == "example.com/controller"
    assert stored["series"] == new["series"] and stored["action"] == "Scale" and stored["related"] == new["related"]
    assert from_storage(EVENTS, stored) == new


def test_event_omitempty_strings_dropped_in_events_view():
    sparse = {**CORE_EVENT, "reportingComponent": "", "reportingInstance": ""}
    served = from_storage(EVENTS, sparse)
    assert "reportingController" not in served and "reportingInstance" not in served


def test_kinds_without_shared_storage_are_untouched():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert to_storage(PODS, pod) is pod and from_storage(PODS, pod) is pod
    assert to_storage(CORE_EVENTS, CORE_EVENT) is CORE_EVENT


HPA_META = {"name": "web", "namespace": "default", "uid": "h-1", "resourceVersion": "33", "generation": 2,
            "creationTimestamp": "2024-05-01T11:00:00Z", "annotations": {"team": "web"}}
SCALE_TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                  "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]},
}
CONDITIONS = [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2024-05-01T11:01:00Z",
               "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
              {"type": "ScalingActive", "status": "True", "lastTransitionTime": "2024-05-01T11:01:00Z",
               "reason": "ValidMetricFound", "message": "the HPA was able to successfully calculate a replica count"}]

STORED_HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": HPA_META,
    "spec": {
        "scaleTargetRef": SCALE_TARGET, "minReplicas": 2, "maxReplicas": 10,
        "metrics": [
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                            "averageValue": "100Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                            "averageValue": "1k"}}},
            {"type": "Object", "object": {"describedObject": {"apiVersion": "networking.k8s.io/v1",
                                                              "kind": "Ingress", "name": "main"},
                                          "metric": {"name": "hits", "selector": {"matchLabels": {"v": "1"}}},
                                          "target": {"type": "Value", "value": "10k"}}},
            {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                                              "target": {"type": "AverageValue", "averageValue": "30"}}},
            {"type": "ContainerResource", "containerResource": {
                "name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 70}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                         "averageUtilization": 50}}},
        ],
        "behavior": BEHAVIOR,
    },
    "status": {
        "observedGeneration": 2, "lastScaleTime": "2024-05-01T11:30:00Z", "currentReplicas": 3,
        "desiredReplicas": 4,
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "60Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "800"}}},
            {"type": "Object", "object": {"metric": {"name": "hits", "selector": {"matchLabels": {"v": "1"}}},
                                          "current": {"value": "9k"},
                                          "describedObject": {"apiVersion": "networking.k8s.io/v1",
                                                              "kind": "Ingress", "name": "main"}}},
            {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                                              "current": {"averageValue": "12"}}},
            {"type": "ContainerResource", "containerResource": {
                "name": "cpu", "container": "app", "current": {"averageValue": "120m", "averageUtilization": 60}}},
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "250m",
                                                                          "averageUtilization": 42}}},
        ],
        "conditions": CONDITIONS,
    },
}


def test_hpa_v2_seen_through_v1():
    v1 = from_storage(HPA_V1, STORED_HPA)
    assert v1["apiVersion"] == "autoscaling/v1" and v1["kind"] == "HorizontalPodAutoscaler"
    assert v1["spec"] == {"scaleTargetRef": SCALE_TARGET, "minReplicas": 2, "maxReplicas": 10,
                          "targetCPUUtilizationPercentage": 50}
    assert v1["status"] == {"observedGeneration": 2, "lastScaleTime": "2024-05-01T11:30:00Z", "currentReplicas": 3,
                            "desiredReplicas": 4, "currentCPUUtilizationPercentage": 42}
    ann = v1["metadata"]["annotations"]
    assert ann["team"] == "web"
    metrics = json.loads(ann[METRICS_ANNOTATION])
    assert metrics[0] == {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}
    assert metrics[1] == {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "1k"}}
    assert metrics[2] == {"type": "Object", "object": {
        "target": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"}, "metricName": "hits",
        "targetValue": "10k", "selector": {"matchLabels": {"v": "1"}}}}
    assert metrics[3] == {"type": "External", "external": {
        "metricName": "queue", "metricSelector": {"matchLabels": {"q": "a"}}, "targetAverageValue": "30"}}
    assert metrics[4] == {"type": "ContainerResource", "containerResource": {
        "name": "cpu", "targetAverageUtilization": 70, "container": "app"}}
    assert len(metrics) == 5  # the CPU utilization target is the v1 field, not an annotation
    current = json.loads(ann[CURRENT_METRICS_ANNOTATION])
    assert current[-1] == {"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 42,
                                                            "currentAverageValue": "250m"}}
    assert json.loads(ann[CONDITIONS_ANNOTATION]) == CONDITIONS
    # the behavior travels as Go's internal type: Go field names, no json tags
    assert json.loads(ann[BEHAVIOR_ANNOTATION]) == {
        "ScaleUp": {"StabilizationWindowSeconds": 0, "SelectPolicy": "Max",
                    "Policies": [{"Type": "Pods", "Value": 4, "PeriodSeconds": 15},
                                 {"Type": "Percent", "Value": 100, "PeriodSeconds": 15}]},
        "ScaleDown": {"StabilizationWindowSeconds": 300, "SelectPolicy": "Min",
                      "Policies": [{"Type": "Percent", "Value": 10, "PeriodSeconds": 60}]}}
    assert ann[BEHAVIOR_ANNOTATION].startswith('{"ScaleUp":{"StabilizationWindowSeconds":0,')


def test_hpa_v2_round_trip_through_v1_is_lossless():
    original = copy.deepcopy(STORED_HPA)
    assert to_storage(HPA_V1, from_storage(HPA_V1, STORED_HPA)) == STORED_HPA
    assert STORED_HPA == original  # inputs are not mutated


def test_hpa_v1_round_trip_is_lossless():
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "web", "namespace": "default"},
          "spec": {"scaleTargetRef": SCALE_TARGET, "minReplicas": 1, "maxReplicas": 5,
                   "targetCPUUtilizationPercentage": 60}}
    stored = to_storage(HPA_V1, v1)
    assert stored == {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                      "metadata": {"name": "web", "namespace": "default"},
                      "spec": {"scaleTargetRef": SCALE_TARGET, "minReplicas": 1, "maxReplicas": 5,
                               "metrics": [{"type": "Resource", "resource": {
                                   "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]}}
    assert from_storage(HPA_V1, stored) == v1
    # a v1 object read back (annotations included) and written again keeps everything
    served = from_storage(HPA_V1, STORED_HPA)
    assert from_storage(HPA_V1, to_storage(HPA_V1, served)) == served


def test_hpa_v1_defaults_and_edge_cases():
    bare = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "w"},
            "spec": {"scaleTargetRef": SCALE_TARGET, "maxReplicas": 3}}
    # v1's implicit 80% CPU default becomes explicit in storage
    assert to_storage(HPA_V1, bare)["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    status_only = {**bare, "status": {"currentReplicas": 2, "desiredReplicas": 2,
                                      "currentCPUUtilizationPercentage": 35}}
    assert to_storage(HPA_V1, status_only)["status"]["currentMetrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35}}}]
    # a half-given behavior gets upstream's defaults for the missing side; junk annotations are ignored
    half = {**bare, "metadata": {"name": "w", "annotations": {
        BEHAVIOR_ANNOTATION: '{"scaleDown":{"stabilizationWindowSeconds":60}}', METRICS_ANNOTATION: "not json"}}}
    stored = to_storage(HPA_V1, half)
    assert stored["spec"]["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 60}
    assert stored["spec"]["behavior"]["scaleUp"]["policies"][0] == {"type": "Pods", "value": 4, "periodSeconds": 15}
    assert "annotations" not in stored["metadata"]
    # the v2 view is the stored form itself
    assert from_storage(HPA_V2, STORED_HPA) == STORED_HPA and to_storage(HPA_V2, STORED_HPA) == STORED_HPA

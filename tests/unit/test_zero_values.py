"""The fields Go always serialises (apiserver/api/zero_fields.py, applied by defaults.fill_zero_fields)."""
from __future__ import annotations

import json

import pytest
from kubernetes.client import ApiClient

from apiserver.registry import strategy_for
from apiserver.api import defaults
from kubeling.api.resources import RESOURCES, lookup
from apiserver.api.zero_fields import FIELDS, ROOTS

META = {"name": "x", "namespace": "d", "uid": "u1", "creationTimestamp": "2024-05-01T10:00:00Z"}
LABELS = {"app": "x"}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def served(group: str, version: str, plural: str, body: dict) -> dict:
    """body as a create stores it and a GET serves it (defaults in the storage version)."""
    r = lookup(group, version, plural)
    obj = strategy_for(r).to_storage({"apiVersion": r.api_version, "kind": r.kind, "metadata": dict(META), **body})
    strategy_for(r).apply_defaults(obj)
    return strategy_for(r).from_storage(obj)


class _Response:
    def __init__(self, obj: dict) -> None:
        self.data = json.dumps(obj)


def read_with_python_client(obj: dict, model: str):
    """What the official client does with a response body (raises ValueError on a missing required field)."""
    return ApiClient().deserialize(_Response(obj), model)


def test_a_new_daemonset_has_the_status_counters_upstream_shows():
    ds = served("apps", "v1", "daemonsets", {"spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}})
    assert ds["status"] == {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0,
                            "numberReady": 0}
    assert ds["spec"]["template"]["metadata"]["creationTimestamp"] is None
    assert ds["spec"]["template"]["spec"]["containers"][0]["resources"] == {}
    assert read_with_python_client(ds, "V1DaemonSet").status.number_ready == 0


CLIENT_READS = [
    ("apps", "v1", "deployments", "V1Deployment", {"spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}}),
    ("apps", "v1", "replicasets", "V1ReplicaSet", {"spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}}),
    ("batch", "v1", "jobs", "V1Job", {"spec": {"template": {**TEMPLATE, "spec": {**TEMPLATE["spec"],
                                                                                    "restartPolicy": "Never"}}}}),
    ("autoscaling", "v2", "horizontalpodautoscalers", "V2HorizontalPodAutoscaler",
     {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}}),
    ("autoscaling", "v1", "horizontalpodautoscalers", "V1HorizontalPodAutoscaler",
     {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}}),
    ("", "v1", "namespaces", "V1Namespace", {}),
    ("", "v1", "services", "V1Service", {"spec": {"ports": [{"port": 80}]}}),
    ("", "v1", "pods", "V1Pod", {"spec": TEMPLATE["spec"], "status": {
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "c", "image": "nginx", "state": {"running": {}}}]}}),
    ("", "v1", "nodes", "V1Node", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    ("", "v1", "events", "CoreV1Event", {"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R"}),
    # events.k8s.io/v1 requires eventTime on create (a core event without one breaks this client upstream too)
    ("events.k8s.io", "v1", "events", "EventsV1Event", {"regarding": {"kind": "Pod", "name": "p"}, "reason": "R",
                                                        "eventTime": "2024-05-01T10:00:00.000000Z"}),
    ("coordination.k8s.io", "v1", "leases", "V1Lease", {}),
    ("", "v1", "configmaps", "V1ConfigMap", {}),
]


@pytest.mark.parametrize("group,version,plural,model,body", CLIENT_READS, ids=[c[3] for c in CLIENT_READS])
def test_the_python_client_reads_a_minimal_object_of_every_kind(group, version, plural, model, body):
    read_with_python_client(served(group, version, plural, body), model)


def test_the_table_covers_every_served_kind():
    # every served kind with a 1.32 schema (metrics.k8s.io is aggregated upstream and not in it)
    assert set(ROOTS) == {(r.api_version, r.kind) for r in RESOURCES if r.group != "metrics.k8s.io"}
    for zeros, nested in FIELDS.values():
        assert all(child in FIELDS for child, _ in nested.values())


def test_zero_values_follow_the_go_types():
    svc = served("", "v1", "services", {"spec": {"ports": [{"port": 80}]}})
    assert svc["status"] == {"loadBalancer": {}}                         # non-pointer struct, omitempty or not
    node = served("", "v1", "nodes", {})
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    assert set(node["status"]["nodeInfo"].values()) == {""}               # required strings
    hpa = served("autoscaling", "v2", "horizontalpodautoscalers",
                 {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}})
    assert hpa["status"] == {"desiredReplicas": 0, "currentMetrics": None}   # `+optional` without omitempty
    hpa_v1 = served("autoscaling", "v1", "horizontalpodautoscalers",
                    {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}})
    assert hpa_v1["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    event = served("", "v1", "events", {"involvedObject": {"kind": "Pod", "name": "p"}})
    assert {k: event[k] for k in ("eventTime", "firstTimestamp", "reportingComponent", "reportingInstance", "source")} \
        == {"eventTime": None, "firstTimestamp": None, "reportingComponent": "", "reportingInstance": "", "source": {}}
    pod = served("", "v1", "pods", {"spec": {"containers": [{"name": "c", "image": "i", "env": [
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}]}})
    assert pod["spec"]["containers"][0]["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"   # Quantity


def test_list_items_are_filled_and_given_values_kept():
    pod = served("", "v1", "pods", {"spec": TEMPLATE["spec"], "status": {
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:01Z"}],
        "containerStatuses": [{"name": "c", "ready": True, "restartCount": None}]}})
    assert pod["status"]["conditions"] == [{"type": "Ready", "status": "True", "lastProbeTime": None,
                                            "lastTransitionTime": "2024-05-01T10:00:01Z"}]
    cs = pod["status"]["containerStatuses"][0]
    assert cs == {"name": "c", "ready": True, "restartCount": 0, "image": "", "imageID": "", "state": {},
                  "lastState": {}}
    ds = served("apps", "v1", "daemonsets", {"spec": {"selector": None, "template": TEMPLATE}})
    assert ds["spec"]["selector"] is None          # a nil pointer stays null


def test_fill_zero_fields_ignores_unknown_kinds():
    obj = {"spec": {}}
    defaults.fill_zero_fields("example.com/v1", "Widget", obj)
    assert obj == {"spec": {}}

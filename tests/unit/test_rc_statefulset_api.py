"""ReplicationController and StatefulSet API machinery: defaults, validation messages, table cells."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

from apiserver.api import defaults, tables, validation
from kubeling.api.resources import lookup

RC, STS = lookup("", "v1", "replicationcontrollers"), lookup("apps", "v1", "statefulsets")
NOW = datetime(2024, 1, 1, 0, 10, tzinfo=timezone.utc)


def template(labels: dict) -> dict:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}


def rc(**spec) -> dict:
    obj = {"metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": {"template": template({"app": "web"}), **spec}}
    defaults.apply_defaults(RC, obj)
    return obj


def sts(**spec) -> dict:
    obj = {"metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": {"serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                    "template": template({"app": "web"}), **spec}}
    defaults.apply_defaults(STS, obj)
    return obj


def messages(resource, obj: dict, old: dict | None = None) -> list[str]:
    return [c.render() for c in validation.validate(resource, obj, old)]


def test_rc_defaults_take_the_template_labels():
    obj = rc()
    assert obj["spec"]["selector"] == {"app": "web"} and obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    mine = rc(selector={"tier": "x"})
    assert mine["spec"]["selector"] == {"tier": "x"}


def test_rc_validation():
    assert messages(RC, rc()) == []
    assert messages(RC, rc(selector={"app": "other"})) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        '`selector` does not match template `labels`']
    assert messages(RC, rc(replicas=-2)) == ["spec.replicas: Invalid value: -2: must be greater than or equal to 0"]
    bare = {"metadata": {"name": "web"}, "spec": {}}
    defaults.apply_defaults(RC, bare)
    assert messages(RC, bare) == ["spec.selector: Required value", "spec.template: Required value"]


def test_statefulset_defaults():
    spec = sts(volumeClaimTemplates=[{"metadata": {"name": "www"}, "spec": {}}])["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert (spec["replicas"], spec["revisionHistoryLimit"]) == (1, 10)
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"]["phase"] == "Pending"
    assert sts(updateStrategy={"type": "OnDelete"})["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_statefulset_validation():
    assert messages(STS, sts()) == []
    assert messages(STS, sts(podManagementPolicy="Sometimes")) == [
        "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'"]
    assert messages(STS, sts(updateStrategy={"type": "Never"})) == [
        "spec.updateStrategy: Invalid value: apps.StatefulSetUpdateStrategy{Type:\"Never\", "
        "RollingUpdate:*apps.RollingUpdateStatefulSetStrategy(nil)}: must be 'RollingUpdate' or 'OnDelete'"]
    assert messages(STS, sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}})) == [
        "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"]
    assert messages(STS, sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep"})) == [
        'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: '
        '"Retain", "Delete"']
    assert messages(STS, sts(selector={})) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset"]
    no_service = sts()
    del no_service["spec"]["serviceName"]
    assert messages(STS, no_service) == []


def test_statefulset_updates_only_the_mutable_fields():
    old = sts()
    new = copy.deepcopy(old)
    new["spec"].update(replicas=5, minReadySeconds=3, template=template({"app": "web", "v": "2"}),
                       updateStrategy={"type": "OnDelete"})
    defaults.apply_defaults(STS, new)
    assert messages(STS, new, old) == []
    new["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "www"}, "spec": {}}]
    assert messages(STS, new, old) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]


def test_table_cells():
    obj = rc(replicas=3)
    obj["status"] = {"replicas": 2, "readyReplicas": 1}
    assert [c["name"] for c in tables.column_definitions(RC)] == [
        "Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]
    assert tables.row_cells(RC, obj, NOW) == ["web", 3, 2, 1, "10m", "c", "nginx:1", "app=web"]
    obj = sts(replicas=2)
    obj["status"] = {"readyReplicas": 1}
    assert [(c["name"], c["priority"]) for c in tables.column_definitions(STS)] == [
        ("Name", 0), ("Ready", 0), ("Age", 0), ("Containers", 1), ("Images", 1)]
    assert tables.row_cells(STS, obj, NOW) == ["web", "1/2", "10m", "c", "nginx:1"]

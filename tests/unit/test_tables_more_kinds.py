"""Server-side Table rows for the networking, storage, RBAC, certificates, flow-control and
admission kinds, as Kubernetes 1.32's printers (and kube-aggregator's APIService table) print them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubeling.api.resources import lookup
from apiserver.api.tables import column_definitions, row_cells

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
CREATED = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def obj(name: str = "x", annotations: dict | None = None, **fields) -> dict:
    meta = {"name": name, "creationTimestamp": CREATED}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, **fields}


def headers(group: str, plural: str) -> list[str]:
    return [c["name"] for c in column_definitions(lookup(group, "v1", plural)) if c["priority"] == 0]


def wide_headers(group: str, plural: str) -> list[str]:
    return [c["name"] for c in column_definitions(lookup(group, "v1", plural)) if c["priority"] > 0]


def cells(group: str, plural: str, o: dict) -> list:
    return row_cells(lookup(group, "v1", plural), o, NOW)


NET, STORAGE, RBAC = "networking.k8s.io", "storage.k8s.io", "rbac.authorization.k8s.io"


@pytest.mark.parametrize("group, plural, expected", [
    (NET, "ingresses", ["Name", "Class", "Hosts", "Address", "Ports", "Age"]),
    (NET, "ingressclasses", ["Name", "Controller", "Parameters", "Age"]),
    (NET, "networkpolicies", ["Name", "Pod-Selector", "Age"]),
    (STORAGE, "storageclasses", ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion",
                                 "Age"]),
    (STORAGE, "csidrivers", ["Name", "AttachRequired", "PodInfoOnMount", "StorageCapacity", "TokenRequests",
                             "RequiresRepublish", "Modes", "Age"]),
    (STORAGE, "csinodes", ["Name", "Drivers", "Age"]),
    (STORAGE, "volumeattachments", ["Name", "Attacher", "PV", "Node", "Attached", "Age"]),
    (RBAC, "roles", ["Name", "Created At"]),
    (RBAC, "clusterroles", ["Name", "Created At"]),
    (RBAC, "rolebindings", ["Name", "Role", "Age"]),
    (RBAC, "clusterrolebindings", ["Name", "Role", "Age"]),
    ("certificates.k8s.io", "certificatesigningrequests",
     ["Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"]),
    ("apiregistration.k8s.io", "apiservices", ["Name", "Service", "Available", "Age"]),
    ("flowcontrol.apiserver.k8s.io", "flowschemas",
     ["Name", "PriorityLevel", "MatchingPrecedence", "DistinguisherMethod", "Age", "MissingPL"]),
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations",
     ["Name", "Type", "NominalConcurrencyShares", "Queues", "HandSize", "QueueLengthLimit", "Age"]),
    ("node.k8s.io", "runtimeclasses", ["Name", "Handler", "Age"]),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ["Name", "Webhooks", "Age"]),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", ["Name", "Webhooks", "Age"]),
    ("", "podtemplates", ["Name", "Containers", "Images", "Pod Labels"]),
])
def test_columns(group, plural, expected):
    assert headers(group, plural) == expected


def test_binding_wide_columns():
    assert wide_headers(RBAC, "rolebindings") == ["Users", "Groups", "ServiceAccounts"]
    assert wide_headers(RBAC, "clusterrolebindings") == ["Users", "Groups", "ServiceAccounts"]


@pytest.mark.parametrize("spec, status, expected", [
    ({"rules": [{"host": "foo.bar.com"}]}, {}, ["<none>", "foo.bar.com", "", "80"]),
    ({"ingressClassName": "nginx", "rules": [{"host": "a"}, {"host": "b"}], "tls": [{"hosts": ["a"]}]},
     {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"hostname": "lb.example.com"}, {"ip": "10.0.0.1"}]}},
     ["nginx", "a,b", "10.0.0.1,10.0.0.2,lb.example.com", "80, 443"]),
    ({"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}, {}, ["<none>", "*", "", "80"]),
    ({"rules": [{"host": "a"}, {"host": "b"}, {"host": "c"}, {"host": "d"}, {}]}, {},
     ["<none>", "a,b,c + 2 more...", "", "80"]),
])
def test_ingress(spec, status, expected):
    assert cells(NET, "ingresses", obj("web", spec=spec, status=status)) == ["web", *expected, "5m"]


def test_ingress_class_parameters():
    plain = obj("nginx", spec={"controller": "k8s.io/ingress-nginx"})
    assert cells(NET, "ingressclasses", plain) == ["nginx", "k8s.io/ingress-nginx", "<none>", "5m"]
    params = obj("c", spec={"controller": "example.com/c", "parameters": {
        "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb", "scope": "Cluster"}})
    assert cells(NET, "ingressclasses", params)[2] == "IngressParameters.k8s.example.com/external-lb"


@pytest.mark.parametrize("selector, expected", [
    ({}, "<none>"),
    ({"matchLabels": {"role": "db", "app": "x"}}, "app=x,role=db"),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}, "tier in (a,b)"),
])
def test_network_policy_selector(selector, expected):
    assert cells(NET, "networkpolicies", obj("np", spec={"podSelector": selector})) == ["np", expected, "5m"]


def test_storage_class():
    sc = obj("standard", annotations={"storageclass.kubernetes.io/is-default-class": "true"},
             provisioner="rancher.io/local-path", volumeBindingMode="WaitForFirstConsumer", allowVolumeExpansion=True)
    assert cells(STORAGE, "storageclasses", sc) == [
        "standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", True, "5m"]
    other = obj("slow", provisioner="example.com/x", reclaimPolicy="Retain")
    assert cells(STORAGE, "storageclasses", other) == ["slow", "example.com/x", "Retain", "Immediate", False, "5m"]


def test_csi_kinds():
    drv = obj("csi.example.com", spec={"tokenRequests": [{"audience": "a"}, {"audience": "b"}],
                                       "volumeLifecycleModes": ["Persistent", "Ephemeral"]})
    assert cells(STORAGE, "csidrivers", drv) == [
        "csi.example.com", True, False, False, "a,b", False, "Persistent,Ephemeral", "5m"]
    assert cells(STORAGE, "csidrivers", obj("d", spec={"attachRequired": False}))[1:7] == [
        False, False, False, "<unset>", False, "<none>"]
    node = obj("node-1", spec={"drivers": [{"name": "a", "nodeID": "n"}]})
    assert cells(STORAGE, "csinodes", node) == ["node-1", 1, "5m"]
    va = obj("csi-123", spec={"attacher": "csi.example.com", "nodeName": "node-1",
                              "source": {"persistentVolumeName": "pv-1"}}, status={"attached": True})
    assert cells(STORAGE, "volumeattachments", va) == ["csi-123", "csi.example.com", "pv-1", "node-1", True, "5m"]


def test_bindings():
    rb = obj("read-pods", roleRef={"apiGroup": RBAC, "kind": "Role", "name": "pod-reader"}, subjects=[
        {"kind": "User", "name": "jane"}, {"kind": "User", "name": "joe"}, {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "ns1"}])
    assert cells(RBAC, "rolebindings", rb) == ["read-pods", "Role/pod-reader", "5m", "jane, joe", "devs",
                                               "ns1/default"]
    crb = obj("cluster-admin", roleRef={"kind": "ClusterRole", "name": "cluster-admin"},
              subjects=[{"kind": "Group", "name": "system:masters"}])
    assert cells(RBAC, "clusterrolebindings", crb) == ["cluster-admin", "ClusterRole/cluster-admin", "5m", "",
                                                       "system:masters", ""]


def test_roles_print_created_at():
    role = obj("pod-reader", rules=[{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])
    assert cells(RBAC, "roles", role) == ["pod-reader", CREATED]


@pytest.mark.parametrize("spec, status, expected", [
    ({"signerName": "kubernetes.io/kube-apiserver-client", "username": "admin"}, {},
     ["kubernetes.io/kube-apiserver-client", "admin", "<none>", "Pending"]),
    ({"signerName": "example.com/s", "username": "u", "expirationSeconds": 86400},
     {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Y2VydA=="},
     ["example.com/s", "u", "24h", "Approved,Issued"]),
    ({"username": "u", "expirationSeconds": 600},
     {"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]},
     ["<none>", "u", "10m", "Denied,Failed"]),
])
def test_csr(spec, status, expected):
    assert cells("certificates.k8s.io", "certificatesigningrequests", obj("csr-1", spec=spec, status=status)) == [
        "csr-1", "5m", *expected]


@pytest.mark.parametrize("spec, conditions, expected", [
    ({"group": "apps", "version": "v1"}, [{"type": "Available", "status": "True", "reason": "Local"}],
     ["Local", "True"]),
    ({"service": {"namespace": "kube-system", "name": "metrics-server"}},
     [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}],
     ["kube-system/metrics-server", "False (MissingEndpoints)"]),
    ({}, [], ["Local", "Unknown"]),
])
def test_apiservice(spec, conditions, expected):
    svc = obj("v1.apps", spec=spec, status={"conditions": conditions})
    assert cells("apiregistration.k8s.io", "apiservices", svc) == ["v1.apps", *expected, "5m"]


def test_flow_control():
    fs = obj("exempt", spec={"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
             status={"conditions": [{"type": "Dangling", "status": "False"}]})
    group = "flowcontrol.apiserver.k8s.io"
    assert cells(group, "flowschemas", fs) == ["exempt", "exempt", 1, "<none>", "5m", "False"]
    fs2 = obj("wl", spec={"priorityLevelConfiguration": {"name": "workload-low"}, "matchingPrecedence": 9000,
                          "distinguisherMethod": {"type": "ByUser"}})
    assert cells(group, "flowschemas", fs2) == ["wl", "workload-low", 9000, "ByUser", "5m", "?"]
    limited = obj("workload-low", spec={"type": "Limited", "limited": {
        "nominalConcurrencyShares": 100, "limitResponse": {
            "type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}})
    assert cells(group, "prioritylevelconfigurations", limited) == ["workload-low", "Limited", 100, 128, 6, 50, "5m"]
    rejecting = obj("catch-all", spec={"type": "Limited", "limited": {"nominalConcurrencyShares": 5,
                                                                      "limitResponse": {"type": "Reject"}}})
    assert cells(group, "prioritylevelconfigurations", rejecting)[2:6] == [5, "<none>", "<none>", "<none>"]
    exempt = obj("exempt", spec={"type": "Exempt", "exempt": {}})
    assert cells(group, "prioritylevelconfigurations", exempt)[1:6] == ["Exempt", "<none>", "<none>", "<none>",
                                                                         "<none>"]


def test_runtime_class_webhooks_and_pod_templates():
    assert cells("node.k8s.io", "runtimeclasses", obj("gvisor", handler="runsc")) == ["gvisor", "runsc", "5m"]
    hooks = obj("hooks", webhooks=[{"name": "a.example.com"}, {"name": "b.example.com"}])
    assert cells("admissionregistration.k8s.io", "validatingwebhookconfigurations", hooks) == ["hooks", 2, "5m"]
    assert cells("admissionregistration.k8s.io", "mutatingwebhookconfigurations", obj("none")) == ["none", 0, "5m"]
    tpl = obj("t", template={"metadata": {"labels": {"b": "2", "a": "1"}}, "spec": {"containers": [
        {"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]}})
    assert cells("", "podtemplates", tpl) == ["t", "web,side", "nginx,busybox", "a=1,b=2"]


def test_flow_schema_list_is_ordered_by_precedence_then_name():
    from apiserver.api.tables import to_table
    schemas = [obj(name, spec={"priorityLevelConfiguration": {"name": "p"}, "matchingPrecedence": precedence})
               for name, precedence in (("catch-all", 10000), ("kube-scheduler", 800), ("exempt", 1),
                                        ("kube-controller-manager", 800))]
    tbl = to_table(lookup("flowcontrol.apiserver.k8s.io", "v1", "flowschemas"), schemas, NOW, list_meta={})
    assert [row["cells"][0] for row in tbl["rows"]] == ["exempt", "kube-controller-manager", "kube-scheduler",
                                                        "catch-all"]

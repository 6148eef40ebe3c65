"""CustomResourceDefinitions with the real kubectl and the official client: a cert-manager-like
Certificate CRD is established and served at once, its objects are validated, defaulted and pruned by
the schema, printed with the CRD's columns, scaled and status-updated through subresources, and deleted
with the CRD."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

CRD = (Path(__file__).parent / "data" / "certificate-crd.yaml").read_text()
BASE = "/apis/certs.example.com/v1/namespaces/{ns}/certificates"


def _cert(name: str, **spec) -> str:
    body = {"secretName": f"{name}-tls", "issuerRef": {"name": "ca"}, **spec}
    return json.dumps({"apiVersion": "certs.example.com/v1", "kind": "Certificate", "metadata": {"name": name},
                       "spec": body})


def _until(fn, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture(scope="module")
def crd(control_plane):
    control_plane.kubectl("apply", "-f", "-", input=CRD)
    control_plane.kubectl("wait", "--for", "condition=established", "--timeout=30s",
                          "crd/certificates.certs.example.com")
    yield
    control_plane.kubectl("delete", "crd", "certificates.certs.example.com", "--ignore-not-found", "--wait=false")


def test_the_definition_is_established_and_discoverable(control_plane, crd):
    kc = control_plane.kubectl
    crd_obj = json.loads(kc("get", "crd", "certificates.certs.example.com", "-o", "json").stdout)
    conds = {c["type"]: (c["status"], c["reason"]) for c in crd_obj["status"]["conditions"]}
    assert conds["NamesAccepted"] == ("True", "NoConflicts")
    assert conds["Established"] == ("True", "InitialNamesAccepted")
    assert crd_obj["status"]["acceptedNames"]["kind"] == "Certificate"
    assert crd_obj["status"]["storedVersions"] == ["v1"]
    resources = kc("api-resources", "--api-group=certs.example.com").stdout
    assert "certificates" in resources and "cert,certs" in resources and "Certificate" in resources
    assert "KIND:       Certificate" in kc("explain", "certificates.spec").stdout or \
        "Certificate" in kc("explain", "certificates").stdout
    assert "issuerRef" in kc("explain", "certificates.spec").stdout


def test_objects_are_defaulted_printed_and_read_in_every_version(control_plane, crd, ns):
    kc = control_plane.kubectl
    kc("apply", "-n", ns, "-f", "-", input=_cert("web", dnsNames=["web.example.com"]))
    obj = json.loads(kc("get", "-n", ns, "certificate", "web", "-o", "json").stdout)
    assert obj["spec"]["duration"] == "2160h" and obj["spec"]["replicas"] == 1
    assert obj["spec"]["issuerRef"]["kind"] == "Issuer"
    assert obj["metadata"]["generation"] == 1
    out = kc("get", "-n", ns, "certs").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "SECRET", "AGE"]
    assert out[1].split()[:2] == ["web", "web-tls"]
    wide = kc("get", "-n", ns, "cert", "web", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "SECRET", "ISSUER", "AGE"]
    beta = control_plane.http("GET", f"/apis/certs.example.com/v1beta1/namespaces/{ns}/certificates/web")[1]
    assert beta["apiVersion"] == "certs.example.com/v1beta1" and beta["spec"]["secretName"] == "web-tls"
    assert "web" in kc("get", "-n", ns, "certs-example").stdout   # its category


def test_schema_errors_are_upstreams_and_unknown_fields_are_pruned(control_plane, crd, ns):
    kc = control_plane.kubectl
    bad = kc("apply", "-n", ns, "-f", "-", input=_cert("bad", replicas="three", usages=["signing"]), check=False)
    assert bad.returncode != 0
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"' in bad.stderr
    assert 'spec.usages[0]: Unsupported value: "signing"' in bad.stderr
    missing = control_plane.http("POST", BASE.format(ns=ns), {
        "apiVersion": "certs.example.com/v1", "kind": "Certificate", "metadata": {"name": "m"},
        "spec": {"secretName": "x"}})
    assert missing[0] == 422 and missing[1]["details"]["causes"][0]["field"] == "spec.issuerRef"
    code, body, hdrs = control_plane.http("POST", BASE.format(ns=ns), json.loads(_cert("extra", colour="blue")))
    assert code == 201 and "colour" not in body["spec"]
    assert 'unknown field \\"spec.colour\\"' in {k.lower(): v for k, v in hdrs.items()}["warning"]
    strict = control_plane.http("POST", BASE.format(ns=ns) + "?fieldValidation=Strict",
                                json.loads(_cert("strict", colour="blue")))
    assert strict[0] == 400 and 'unknown field "spec.colour"' in strict[1]["message"]


def test_status_and_scale_subresources(control_plane, crd, ns):
    cp, kc = control_plane, control_plane.kubectl
    kc("apply", "-n", ns, "-f", "-", input=_cert("scaled"))
    obj = cp.http("GET", BASE.format(ns=ns) + "/scaled")[1]
    obj["status"] = {"replicas": 1, "selector": "app=web", "conditions": [{"type": "Ready", "status": "True"}]}
    obj["spec"]["secretName"] = "ignored-by-status"
    code, out, _ = cp.http("PUT", BASE.format(ns=ns) + "/scaled/status", obj)
    assert code == 200 and out["status"]["replicas"] == 1 and out["spec"]["secretName"] == "scaled-tls"
    assert kc("get", "-n", ns, "cert", "scaled", "--no-headers").stdout.split()[1] == "True"
    kc("scale", "-n", ns, "certificate/scaled", "--replicas=3")
    scale = cp.http("GET", BASE.format(ns=ns) + "/scaled/scale")[1]
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 1, "selector": "app=web"}
    obj = cp.http("GET", BASE.format(ns=ns) + "/scaled")[1]
    assert obj["spec"]["replicas"] == 3 and obj["status"]["replicas"] == 1 and obj["metadata"]["generation"] == 2


def test_the_official_dynamic_client_watch_and_selectors(control_plane, crd, ns):
    from kubernetes import client, config, dynamic
    api = client.ApiClient(config.load_kube_config(config_file=str(control_plane.kubeconfig)) or None)
    dyn = dynamic.DynamicClient(api)
    certs = dyn.resources.get(api_version="certs.example.com/v1", kind="Certificate")
    certs.create(body=json.loads(_cert("dyn")) | {"metadata": {"name": "dyn", "labels": {"tier": "edge"}}},
                 namespace=ns)
    got = certs.get(namespace=ns, label_selector="tier=edge")
    assert [i.metadata.name for i in got.items] == ["dyn"]
    rv = got.metadata.resourceVersion
    certs.patch(namespace=ns, name="dyn", body={"spec": {"commonName": "dyn.example.com"}},
                content_type="application/merge-patch+json")
    events = [e for e in certs.watch(namespace=ns, resource_version=rv, timeout=5)]
    assert any(e["type"] == "MODIFIED" and e["object"].spec.commonName == "dyn.example.com" for e in events)
    applied = control_plane.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=_cert("ssa")).stdout
    assert "serverside-applied" in applied


def test_deleting_the_definition_deletes_its_objects(control_plane, ns):
    kc = control_plane.kubectl
    crd = CRD.replace("certificates.certs.example.com", "certificates.gone.example.com").replace(
        "group: certs.example.com", "group: gone.example.com").replace("categories: [certs-example]", "")
    kc("apply", "-f", "-", input=crd)
    kc("wait", "--for", "condition=established", "--timeout=30s", "crd/certificates.gone.example.com")
    for name in ("a", "b"):
        kc("apply", "-n", ns, "-f", "-", input=_cert(name).replace("certs.example.com", "gone.example.com"))
    kc("delete", "crd", "certificates.gone.example.com", "--timeout=30s")
    assert _until(lambda: control_plane.http(
        "GET", f"/apis/gone.example.com/v1/namespaces/{ns}/certificates")[0] == 404)
    assert _until(lambda: control_plane.http("GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1.gone.example.com")[0]
                  == 404)
    kc("apply", "-f", "-", input=crd)   # the objects are gone, not hidden: a new definition sees none
    kc("wait", "--for", "condition=established", "--timeout=30s", "crd/certificates.gone.example.com")
    assert json.loads(kc("get", "-n", ns, "certificates.gone.example.com", "-o", "json").stdout)["items"] == []
    kc("delete", "crd", "certificates.gone.example.com", "--timeout=30s")


def test_crd_validation_errors(control_plane):
    bad = CRD.replace("name: certificates.certs.example.com", "name: certs.certs.example.com")
    out = control_plane.kubectl("apply", "-f", "-", input=bad, check=False)
    assert 'metadata.name: Invalid value: "certs.certs.example.com": must be spec.names.plural+"."+spec.group' in out.stderr
    noschema = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "things.x.example.com"},
                "spec": {"group": "x.example.com", "scope": "Namespaced",
                         "names": {"plural": "things", "kind": "Thing"},
                         "versions": [{"name": "v1", "served": True, "storage": True}]}}
    code, body, _ = control_plane.http("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", noschema)
    assert code == 422
    assert "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required" in body["message"]


def test_deleting_a_namespace_deletes_its_custom_objects(control_plane, crd, tmp_path):
    from tests.support.clusters import free_port
    from tests.support.control_plane import Component
    cp = control_plane
    assert cp.http("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": "crd-ns-gone"}})[0] == 201
    cp.kubectl("apply", "-n", "crd-ns-gone", "-f", "-", input=_cert("doomed"))
    controllers = Component(tmp_path, "controllers", ["--kubeconfig", str(cp.kubeconfig), "--port", str(free_port()),
                                                      "--controllers", "namespace"]).start()
    try:
        cp.kubectl("delete", "namespace", "crd-ns-gone", "--wait=false")
        assert _until(lambda: cp.http("GET", "/api/v1/namespaces/crd-ns-gone")[0] == 404, 30), \
            cp.http("GET", "/api/v1/namespaces/crd-ns-gone")
        assert cp.http("GET", "/apis/certs.example.com/v1/namespaces/crd-ns-gone/certificates/doomed")[0] == 404
    finally:
        controllers.stop()


def test_a_definition_registers_its_group_versions_as_local_api_services(control_plane, crd):
    services = json.loads(control_plane.kubectl("get", "apiservices", "-o", "json").stdout)["items"]
    mine = {s["metadata"]["name"]: s for s in services if s["spec"].get("group") == "certs.example.com"}
    assert set(mine) == {"v1.certs.example.com", "v1beta1.certs.example.com"}
    assert mine["v1.certs.example.com"]["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"] == "true"
    row = [r for r in control_plane.kubectl("get", "apiservice", "v1.certs.example.com").stdout.splitlines()][1]
    assert row.split()[:3] == ["v1.certs.example.com", "Local", "True"]


def test_objects_owned_by_a_custom_object_are_garbage_collected(control_plane, crd, ns, tmp_path):
    from tests.support.clusters import free_port
    from tests.support.control_plane import Component
    cp = control_plane
    cp.kubectl("apply", "-n", ns, "-f", "-", input=_cert("owner"))
    owner = cp.http("GET", BASE.format(ns=ns) + "/owner")[1]
    ref = {"apiVersion": "certs.example.com/v1", "kind": "Certificate", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    for name, refs in (("owned", [ref]), ("kept", [])):
        code, body, _ = cp.http("POST", f"/api/v1/namespaces/{ns}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": refs}})
        assert code == 201, body
    controllers = Component(tmp_path, "controllers", ["--kubeconfig", str(cp.kubeconfig), "--port", str(free_port()),
                                                      "--controllers", "garbagecollector"]).start()
    try:
        # the collector leaves an object whose custom owner exists alone
        assert not _until(lambda: cp.http("GET", f"/api/v1/namespaces/{ns}/configmaps/owned")[0] == 404, 3)
        cp.kubectl("delete", "-n", ns, "certificate", "owner")
        assert _until(lambda: cp.http("GET", f"/api/v1/namespaces/{ns}/configmaps/owned")[0] == 404, 30)
        assert cp.http("GET", f"/api/v1/namespaces/{ns}/configmaps/kept")[0] == 200
    finally:
        controllers.stop()

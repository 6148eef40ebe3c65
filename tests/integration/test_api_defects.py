"""Defects found trying the API as a user (issue 9): dry runs that wrote, system namespaces that could
be deleted, paths and Status shapes clients depend on, 5xx on bad patches, validation holes."""
from __future__ import annotations

import base64
import json
import ssl
import urllib.request

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.support.clusters import wait_for
from tests.support.control_plane import plain_kubectl

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)


def py_client(api) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(api.kubeconfig))


def raw(api, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, bytes]:
    """The exact bytes of an answer (Status bodies are compared verbatim by clients)."""
    req = urllib.request.Request(api.url + path, data=body, method=method,
                                 headers={"Authorization": f"Bearer {api.token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=str(api.ca)), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---- 1. dry runs write nothing -------------------------------------------------------------------

def test_kubectl_delete_dry_run_server_deletes_nothing(control_plane, ns):
    kc = control_plane.kubectl
    kc("-n", ns, "create", "configmap", "keep", "--from-literal=a=b")
    kc("-n", ns, "create", "deployment", "web", "--image=nginx")
    out = kc("-n", ns, "delete", "configmap", "keep", "--dry-run=server").stdout
    assert out.strip() == 'configmap "keep" deleted (server dry run)'
    kc("-n", ns, "delete", "deployment", "web", "--dry-run=server")
    kc("delete", "namespace", ns, "--dry-run=server")
    assert kc("-n", ns, "get", "configmap", "keep", "-o", "name").stdout.strip() == "configmap/keep"
    assert kc("-n", ns, "get", "deployment", "web", "-o", "name").stdout.strip() == "deployment.apps/web"
    phase = kc("get", "namespace", ns, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Active"


def test_dry_run_from_the_delete_options_body_and_every_verb(control_plane, ns):
    http = control_plane.http
    base = f"/api/v1/namespaces/{ns}/configmaps"
    assert http("POST", base, {"metadata": {"name": "cm"}, "data": {"a": "1"}})[0] == 201
    code, body, _ = http("DELETE", f"{base}/cm", {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]})
    assert code == 200 and body["status"] == "Success"
    code, body, _ = http("DELETE", f"{base}?labelSelector=", {"dryRun": ["All"]})
    assert code == 200
    assert http("POST", f"{base}?dryRun=All", {"metadata": {"name": "new"}})[0] == 201
    assert http("PUT", f"{base}/cm?dryRun=All", {"metadata": {"name": "cm"}, "data": {"a": "2"}})[0] == 200
    assert http("PATCH", f"{base}/cm?dryRun=All", b'{"data":{"a":"3"}}',
                content_type="application/merge-patch+json")[0] == 200
    code, body, _ = http("GET", base)
    assert [(o["metadata"]["name"], o["data"]) for o in body["items"]] == [("cm", {"a": "1"})]


@pytest.mark.parametrize("method,suffix,kind", [("POST", "", "CreateOptions"), ("PUT", "/cm", "UpdateOptions"),
                                                 ("PATCH", "/cm", "PatchOptions"), ("DELETE", "/cm", "DeleteOptions")])
def test_an_unknown_dry_run_value_is_refused_and_writes_nothing(control_plane, ns, method, suffix, kind):
    base = f"/api/v1/namespaces/{ns}/configmaps"
    assert control_plane.http("POST", base, {"metadata": {"name": "cm"}, "data": {"a": "1"}})[0] == 201
    body = b'{"data":{"a":"2"}}' if method == "PATCH" else json.dumps(
        {"metadata": {"name": "cm" if suffix else "other"}, "data": {"a": "2"}}).encode()
    code, out, _ = control_plane.http(method, f"{base}{suffix}?dryRun=bogus", body,
                                      content_type="application/merge-patch+json" if method == "PATCH"
                                      else "application/json")
    assert code == 422, out
    assert out["message"] == (f'{kind}.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
                              '[]string{"bogus"}: supported values: "All"')
    items = control_plane.http("GET", base)[1]["items"]
    assert [(o["metadata"]["name"], o["data"]) for o in items] == [("cm", {"a": "1"})]


# ---- 2. system namespaces ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_system_namespaces_may_not_be_deleted(control_plane, name):
    p = control_plane.kubectl("delete", "namespace", name, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == (f'Error from server (Forbidden): namespaces "{name}" is forbidden: '
                                "this namespace may not be deleted")
    assert control_plane.kubectl("get", "ns", name, "-o", "jsonpath={.status.phase}").stdout == "Active"


def test_apiserver_recreates_system_objects(control_plane):
    """Namespaces lost from storage and the kubernetes Service, Endpoints and EndpointSlice come back."""
    http = control_plane.http
    for path in ("/api/v1/namespaces/default/services/kubernetes", "/api/v1/namespaces/default/endpoints/kubernetes",
                 "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"):
        assert http("DELETE", path)[0] == 200, path
    key = base64.b64encode(b"/registry/namespaces/kube-public").decode()
    req = urllib.request.Request(control_plane.store.client_urls[0] + "/v3/kv/deleterange",
                                 data=json.dumps({"key": key}).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()

    def back() -> bool:
        svc = http("GET", "/api/v1/namespaces/default/services/kubernetes")
        ep = http("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
        eps = http("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        ns = http("GET", "/api/v1/namespaces/kube-public")
        return all(r[0] == 200 for r in (svc, ep, eps, ns))
    wait_for(back, 40, "system objects re-created")
    svc = http("GET", "/api/v1/namespaces/default/services/kubernetes")[1]
    assert svc["spec"]["clusterIP"] == "10.96.0.1" and svc["spec"]["ports"][0]["port"] == 443
    ep = http("GET", "/api/v1/namespaces/default/endpoints/kubernetes")[1]
    assert ep["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]
    assert ep["subsets"][0]["ports"] == [{"name": "https", "port": control_plane.port, "protocol": "TCP"}]
    eps = http("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")[1]
    assert eps["endpoints"][0]["addresses"] == ["127.0.0.1"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"


# ---- 3. paths with a trailing slash --------------------------------------------------------------

def test_python_client_version_and_discovery_calls(control_plane):
    api = py_client(control_plane)
    assert client.VersionApi(api).get_code().git_version.startswith("v1.32")
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch", "coordination.k8s.io"} <= groups


# ---- 4. Status bodies ----------------------------------------------------------------------------

def test_status_bodies_are_upstreams_bytes(control_plane, ns):
    code, body = raw(control_plane, "GET", "/api/v1/namespaces/default/nosuchthings")
    assert code == 404
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server '
                    b'could not find the requested resource","reason":"NotFound","details":{},"code":404}\n')
    code, body = raw(control_plane, "GET", f"/api/v1/namespaces/{ns}/configmaps/nope")
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps '
                    b'\\"nope\\" not found","reason":"NotFound","details":{"name":"nope","kind":"configmaps"},'
                    b'"code":404}\n')
    code, body = raw(control_plane, "GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    assert json.loads(body)["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_python_client_error_text_embeds_the_status_verbatim(control_plane, ns):
    core = client.CoreV1Api(py_client(control_plane))
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("nope", ns)
    assert e.value.status == 404 and e.value.body.endswith("}\n")
    assert list(json.loads(e.value.body)) == ["kind", "apiVersion", "metadata", "status", "message", "reason",
                                              "details", "code"]


@pytest.mark.parametrize("version", ["1.27", "1.32", "1.33"])
def test_kubectl_debug_adds_an_ephemeral_container(control_plane, ns, version):
    binary = plain_kubectl(version)
    if binary is None:
        pytest.skip(f"kubectl {version} is not installed")
    control_plane.kubectl("-n", ns, "run", "target", "--image=busybox", "--", "sleep", "1000")
    p = control_plane.kubectl("-n", ns, "debug", "target", "--image=busybox", "--container=dbg", "--", "true",
                              binary=binary, check=False)
    assert "panic" not in p.stderr and "nil pointer" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr
    pod = control_plane.http("GET", f"/api/v1/namespaces/{ns}/pods/target")[1]
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["dbg"]
    assert pod["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"


def test_ephemeral_containers_may_not_be_removed(control_plane, ns):
    control_plane.kubectl("-n", ns, "run", "target", "--image=busybox")
    path = f"/api/v1/namespaces/{ns}/pods/target/ephemeralcontainers"
    add = {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}
    assert control_plane.http("PATCH", path, json.dumps(add).encode(),
                              content_type="application/strategic-merge-patch+json")[0] == 200
    code, body, _ = control_plane.http("PATCH", path, b'{"spec":{"ephemeralContainers":[]}}',
                                       content_type="application/merge-patch+json")
    assert code == 422
    assert body["message"] == ('Pod "target" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral '
                               'containers "dbg" may not be removed')


# ---- 7. malformed patches are 4xx ----------------------------------------------------------------

def test_unknown_patch_directive_is_a_bad_request(control_plane, ns):
    control_plane.kubectl("-n", ns, "create", "configmap", "cm", "--from-literal=a=b")
    p = control_plane.kubectl("-n", ns, "patch", "configmap", "cm", "--type=strategic", "-p",
                              '{"data":{"$patch":"bogus"}}', check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == ('Error from server (BadRequest): unknown patch type: bogus in map: '
                                'map[$patch:bogus]')


# ---- 8. validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,path", [
    ("clusterIP", "999.1.1.1", "spec.clusterIPs[0]"),
    ("clusterIP", "10.96.1.256", "spec.clusterIPs[0]"),
    ("externalIPs", ["300.0.0.1"], "spec.externalIPs[0]"),
    ("loadBalancerIP", "1.2.3", "spec.loadBalancerIP"),
])
def test_service_ips_must_be_valid(control_plane, ns, field, value, path):
    svc = {"metadata": {"name": "bad"}, "spec": {"ports": [{"port": 80}], field: value,
                                                 **({"type": "LoadBalancer"} if field == "loadBalancerIP" else {})}}
    code, body, _ = control_plane.http("POST", f"/api/v1/namespaces/{ns}/services", svc)
    assert code == 422, body
    shown = value[0] if isinstance(value, list) else value
    assert (f'{path}: Invalid value: "{shown}": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
            in body["message"])
    assert control_plane.http("GET", f"/api/v1/namespaces/{ns}/services/bad")[0] == 404


def test_cluster_ip_outside_the_service_range(control_plane, ns):
    svc = {"metadata": {"name": "out"}, "spec": {"ports": [{"port": 80}], "clusterIP": "10.97.0.5"}}
    code, body, _ = control_plane.http("POST", f"/api/v1/namespaces/{ns}/services", svc)
    assert code == 422
    assert body["message"] == ('Service "out" is invalid: spec.clusterIPs: Invalid value: []string{"10.97.0.5"}: '
                               "failed to allocate IP 10.97.0.5: the provided IP (10.97.0.5) is not in the valid "
                               "range. The range of valid IPs is 10.96.0.0/16")


def test_endpoint_addresses_must_be_valid(control_plane, ns):
    ep = {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "999.1.1.1"}], "ports": [{"port": 80}]}]}
    code, body, _ = control_plane.http("POST", f"/api/v1/namespaces/{ns}/endpoints", ep)
    assert code == 422 and 'subsets[0].addresses[0].ip: Invalid value: "999.1.1.1"' in body["message"]
    eps = {"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [],
           "endpoints": [{"addresses": ["10.1.2.300"]}]}
    code, body, _ = control_plane.http("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", eps)
    assert code == 422
    assert 'endpoints[0].addresses[0]: Invalid value: "10.1.2.300": must be a valid IPv4 address' in body["message"]


def test_metadata_uid_is_immutable(control_plane, ns):
    control_plane.kubectl("-n", ns, "create", "configmap", "cm", "--from-literal=a=b")
    uid = control_plane.http("GET", f"/api/v1/namespaces/{ns}/configmaps/cm")[1]["metadata"]["uid"]
    code, body, _ = control_plane.http("PATCH", f"/api/v1/namespaces/{ns}/configmaps/cm",
                                       b'{"metadata":{"uid":"not-the-uid"}}',
                                       content_type="application/merge-patch+json")
    assert code == 422
    assert body["message"] == ('ConfigMap "cm" is invalid: metadata.uid: Invalid value: "not-the-uid": '
                               "field is immutable")
    assert control_plane.http("GET", f"/api/v1/namespaces/{ns}/configmaps/cm")[1]["metadata"]["uid"] == uid


# ---- 20. continue tokens -------------------------------------------------------------------------

def test_a_continue_token_cannot_climb_out_of_its_prefix(control_plane, ns):
    for i in range(3):
        control_plane.kubectl("-n", ns, "create", "configmap", f"cm{i}")
    code, page, _ = control_plane.http("GET", f"/api/v1/namespaces/{ns}/configmaps?limit=1")
    assert code == 200 and page["metadata"]["continue"]
    code, page2, _ = control_plane.http("GET", f"/api/v1/namespaces/{ns}/configmaps?limit=5&continue="
                                        + page["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in page2["items"]] == ["cm1", "cm2"]
    rv = int(page["metadata"]["resourceVersion"])
    for start in ("../secrets/x", f"{ns}/../../secrets/", "a//b"):
        tok = base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
                                       .encode()).decode().rstrip("=")
        code, body, _ = control_plane.http("GET", f"/api/v1/namespaces/{ns}/configmaps?limit=5&continue={tok}")
        assert code == 400, (start, body)
        assert body["message"] == f"continue key is not valid: {start}"


# ---- 18. delete answers ----------------------------------------------------------------------------

def test_delete_answers_what_the_python_client_expects(control_plane, ns):
    """The client deserializes a delete's body as the type upstream's OpenAPI names: the object for the
    kinds whose store returns it, a Status for the rest."""
    core = client.CoreV1Api(py_client(control_plane))
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sa")))
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm")))
    core.create_namespaced_service(ns, client.V1Service(metadata=client.V1ObjectMeta(name="svc"),
                                                        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
    sa = core.delete_namespaced_service_account("sa", ns)
    assert isinstance(sa, client.V1ServiceAccount) and sa.metadata.name == "sa"
    svc = core.delete_namespaced_service("svc", ns)
    assert isinstance(svc, client.V1Service) and svc.metadata.name == "svc"
    status = core.delete_namespaced_config_map("cm", ns)
    assert status.status == "Success" and status.details.name == "cm" and status.details.kind == "configmaps"


# ---- 13. componentstatuses ---------------------------------------------------------------------------

def test_kubectl_get_componentstatuses(control_plane):
    p = control_plane.kubectl("get", "componentstatuses")
    assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"controller-manager", "scheduler", "etcd-0", "etcd-1", "etcd-2"}
    for i in range(3):
        assert rows[f"etcd-{i}"].split() == [f"etcd-{i}", "Healthy", "ok"]
    # the test cluster's scheduler and controller-manager are not at the default ports on this host
    for name, port in (("scheduler", 10259), ("controller-manager", 10257)):
        assert rows[name].split()[1:3] == ["Healthy", "ok"] or rows[name].split(None, 2)[1:] == [
            "Unhealthy", f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused']
    one = control_plane.http("GET", "/api/v1/componentstatuses/etcd-1")[1]
    assert one == {"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": "etcd-1"},
                   "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]}
    assert control_plane.http("GET", "/api/v1/componentstatuses/nope")[0] == 404


def test_a_create_right_after_its_namespace_never_404s(control_plane, tmp_path):
    """A namespace acknowledged by one apiserver may not have reached another's watch cache yet; the
    create that follows must still succeed (a CI run saw 404 here). Checked through a second apiserver,
    whose cache lags the first's writes, for create, create-on-update and server-side apply."""
    from tests.support.control_plane import ApiServer
    other = ApiServer(tmp_path / "other", control_plane.store.client_urls, cert_dir=control_plane.cert_dir,
                      tokens=control_plane.tokens, name="other").start()
    try:
        for i in range(15):
            name = f"fresh-{i}"
            assert control_plane.http("POST", "/api/v1/namespaces", {"metadata": {"name": name}})[0] == 201
            code, body, _ = other.http("POST", f"/api/v1/namespaces/{name}/serviceaccounts",
                                       {"metadata": {"name": "default"}})
            assert code == 201, body
            assert control_plane.http("POST", "/api/v1/namespaces", {"metadata": {"name": f"{name}-b"}})[0] == 201
            code, body, _ = other.http("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{name}-b/leases/l",
                                       {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}})
            assert code == 201, body
    finally:
        other.stop()
        for i in range(15):
            control_plane.http("DELETE", f"/api/v1/namespaces/fresh-{i}")
            control_plane.http("DELETE", f"/api/v1/namespaces/fresh-{i}-b")

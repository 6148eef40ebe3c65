"""The apiserver's REST semantics over real HTTPS, against a 3-member etcdnode store."""
from __future__ import annotations

import json
import ssl
import subprocess
import threading
import urllib.request

from tests.support.clusters import wait_for

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": name}}, "data": data}


def test_anonymous_is_unauthorized_except_health(control_plane):
    code, body, _ = control_plane.http("GET", "/api/v1/namespaces", auth=False)
    assert code == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert control_plane.http("GET", path, auth=False)[0] == 200, path
    code, body, _ = control_plane.http("GET", "/api/v1/namespaces", auth=False,
                                       headers={"Authorization": "Bearer wrong"})
    assert code == 401


def test_curl_lists_namespaces_with_the_ca(control_plane):
    out = subprocess.run(["curl", "-s", "--cacert", str(control_plane.ca), "-H",
                          f"Authorization: Bearer {control_plane.token}", control_plane.url + "/api/v1/namespaces"],
                         capture_output=True, text=True, check=True).stdout
    body = json.loads(out)
    assert body["kind"] == "NamespaceList"
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= {n["metadata"]["name"] for n in body["items"]}


def test_create_get_update_conflict_delete(control_plane, ns):
    api = control_plane
    code, created, _ = api.http("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("a", k="v"))
    assert code == 201
    meta = created["metadata"]
    assert meta["namespace"] == ns and meta["uid"] and meta["creationTimestamp"] and int(meta["resourceVersion"]) > 0
    code, body, _ = api.http("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("a", k="v"))
    assert code == 409 and body["reason"] == "AlreadyExists" and body["message"] == 'configmaps "a" already exists'
    code, got, _ = api.http("GET", f"/api/v1/namespaces/{ns}/configmaps/a")
    assert code == 200 and got["data"] == {"k": "v"} and got["metadata"]["resourceVersion"] == meta["resourceVersion"]
    got["data"]["k"] = "v2"
    code, updated, _ = api.http("PUT", f"/api/v1/namespaces/{ns}/configmaps/a", got)
    assert code == 200 and int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    got["data"]["k"] = "stale"  # still carries the old resourceVersion
    code, body, _ = api.http("PUT", f"/api/v1/namespaces/{ns}/configmaps/a", got)
    assert code == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    code, body, _ = api.http("DELETE", f"/api/v1/namespaces/{ns}/configmaps/a")
    assert code == 200 and body["status"] == "Success" and body["details"]["name"] == "a"
    code, body, _ = api.http("GET", f"/api/v1/namespaces/{ns}/configmaps/a")
    assert code == 404 and body["reason"] == "NotFound" and body["message"] == 'configmaps "a" not found'


def test_missing_namespace_and_generate_name(control_plane):
    code, body, _ = control_plane.http("POST", "/api/v1/namespaces/nope/configmaps", cm("x"))
    assert code == 404 and body["message"] == 'namespaces "nope" not found'
    code, body, _ = control_plane.http("POST", "/api/v1/namespaces/default/configmaps",
                                       {"metadata": {"generateName": "gen-"}, "data": {}})
    assert code == 201 and body["metadata"]["name"].startswith("gen-") and len(body["metadata"]["name"]) == 9
    control_plane.http("DELETE", f"/api/v1/namespaces/default/configmaps/{body['metadata']['name']}")


def test_label_and_field_selectors_and_pagination(control_plane, ns):
    api = control_plane
    for i in range(7):
        obj = cm(f"c{i}")
        obj["metadata"]["labels"] = {"tier": "a" if i % 2 else "b", "n": str(i)}
        assert api.http("POST", f"/api/v1/namespaces/{ns}/configmaps", obj)[0] == 201
    base = f"/api/v1/namespaces/{ns}/configmaps"

    def names(q: str) -> list[str]:
        code, body, _ = api.http("GET", base + "?" + q)
        assert code == 200, body
        assert isinstance(body["items"], list)
        return [o["metadata"]["name"] for o in body["items"]]

    assert names("labelSelector=tier%3Da") == ["c1", "c3", "c5"]
    assert names("labelSelector=tier!%3Da") == ["c0", "c2", "c4", "c6"]
    assert names("labelSelector=n+in+(1,2,9)") == ["c1", "c2"]
    assert names("labelSelector=n+notin+(1,2),tier%3Db") == ["c0", "c4", "c6"]
    assert names("labelSelector=tier") == [f"c{i}" for i in range(7)]
    assert names("labelSelector=!tier") == []
    assert names("fieldSelector=metadata.name%3Dc3") == ["c3"]
    assert names("fieldSelector=metadata.name!%3Dc3&labelSelector=tier%3Da") == ["c1", "c5"]
    assert names("labelSelector=nothing%3Dhere") == []
    code, body, _ = api.http("GET", base + "?fieldSelector=spec.bogus%3D1")
    assert code == 400 and body["reason"] == "BadRequest" and "field label not supported" in body["message"]
    # limit/continue walks the whole list at one revision
    seen, token, rvs = [], "", set()
    while True:
        code, body, _ = api.http("GET", base + "?limit=3" + (f"&continue={token}" if token else ""))
        assert code == 200
        seen += [o["metadata"]["name"] for o in body["items"]]
        rvs.add(body["metadata"]["resourceVersion"])
        token = body["metadata"].get("continue", "")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == 7 - len(seen)
    assert seen == [f"c{i}" for i in range(7)] and len(rvs) == 1
    code, body, _ = api.http("GET", base + "?limit=2&continue=garbage")
    assert code == 400


def _watch_lines(api, path: str, count: int, timeout: float = 15) -> list[dict]:
    ctx = ssl.create_default_context(cafile=str(api.ca))
    req = urllib.request.Request(api.url + path, headers={"Authorization": f"Bearer {api.token}"})
    out = []
    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
        for line in r:
            out.append(json.loads(line))
            if len(out) >= count:
                break
    return out


def test_watch_from_resource_version_with_selectors(control_plane, ns):
    api = control_plane
    base = f"/api/v1/namespaces/{ns}/configmaps"
    code, first, _ = api.http("POST", base, cm("w1"))
    rv = first["metadata"]["resourceVersion"]
    obj = cm("w2")
    obj["metadata"]["labels"] = {"keep": "yes"}
    api.http("POST", base, obj)
    obj = api.http("GET", base + "/w2")[1]
    obj["metadata"]["labels"] = {"keep": "no"}
    api.http("PUT", base + "/w2", obj)
    api.http("DELETE", base + "/w1")
    events = _watch_lines(api, base + f"?watch=true&resourceVersion={rv}", 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w2"), ("MODIFIED", "w2"), ("DELETED", "w1")]
    # the same history through a selector: w2 leaving keep=yes arrives as DELETED
    events = _watch_lines(api, base + f"?watch=true&resourceVersion={rv}&labelSelector=keep%3Dyes", 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w2"), ("DELETED", "w2")]
    # rv unset: synthetic ADDED for what exists now
    events = _watch_lines(api, base + "?watch=true", 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "w2"


def test_watch_live_events_and_bookmark_at_timeout(control_plane, ns):
    api = control_plane
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv = api.http("GET", base)[1]["metadata"]["resourceVersion"]
    result: list = []
    t = threading.Thread(target=lambda: result.extend(
        _watch_lines(api, base + f"?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=3", 10)))
    t.start()
    wait_for(lambda: api.http("POST", base, cm("live"))[0] == 201, 5, "create")
    t.join(20)
    types = [e["type"] for e in result]
    assert types[0] == "ADDED" and types[-1] == "BOOKMARK"
    assert int(result[-1]["object"]["metadata"]["resourceVersion"]) >= int(result[0]["object"]["metadata"]["resourceVersion"])


def test_bad_input_answers_4xx_status_and_writes_nothing(control_plane, ns):
    api = control_plane
    base = f"/api/v1/namespaces/{ns}/configmaps"
    cases = [
        (b"{not json", "application/json", 400),
        (b"a: [b", "application/yaml", 400),
        (b"k8s\x00\x0a\x03garbage", "application/vnd.kubernetes.protobuf", 400),
        (b"[]", "application/json", 400),
        (json.dumps({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}).encode(), "application/json", 400),
        (json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).encode(), "application/json", 400),
        (json.dumps({"metadata": {"name": "Bad_Name"}}).encode(), "application/json", 422),
        (b"x" * (4 * 1024 * 1024), "application/json", 413),
        (b"{}", "text/html", 415),
    ]
    for body, ctype, want in cases:
        code, status, _ = api.http("POST", base, body, content_type=ctype)
        assert code == want, (body[:60], ctype, status)
        assert status["kind"] == "Status" and status["status"] == "Failure" and status["code"] == want
    assert api.http("GET", base)[1]["items"] == []
    code, body, _ = api.http("GET", "/apis/nope.example.com/v1/widgets")
    assert code == 404 and body["reason"] == "NotFound"
    code, body, _ = api.http("PATCH", base + "/missing", b"{}", content_type="application/merge-patch+json")
    assert code == 404


def test_invalid_object_reports_field_causes(control_plane, ns):
    code, body, _ = control_plane.http("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "c"}]}}}})
    assert code == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Deployment.apps "web" is invalid: ')
    fields = {c["field"] for c in body["details"]["causes"]}
    assert "spec.template.spec.containers[0].image" in fields
    assert "spec.template.metadata.labels" in fields


def test_services_get_unique_cluster_ips_and_node_ports(control_plane, ns):
    api = control_plane
    base = f"/api/v1/namespaces/{ns}/services"
    ips, ports = set(), set()
    for i in range(5):
        code, svc, _ = api.http("POST", base, {"metadata": {"name": f"s{i}"}, "spec": {
            "type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}})
        assert code == 201, svc
        assert svc["spec"]["clusterIP"].startswith("10.96.") and svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
        assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
        assert svc["spec"]["ports"][0]["protocol"] == "TCP" and svc["spec"]["ports"][0]["targetPort"] == 80
        ips.add(svc["spec"]["clusterIP"])
        ports.add(svc["spec"]["ports"][0]["nodePort"])
    assert len(ips) == 5 and len(ports) == 5
    taken = next(iter(ports))
    code, body, _ = api.http("POST", base, {"metadata": {"name": "dup"}, "spec": {
        "type": "NodePort", "ports": [{"port": 80, "nodePort": taken}]}})
    assert code == 422 and "provided port is already allocated" in body["message"]
    code, body, _ = api.http("POST", base, {"metadata": {"name": "out"}, "spec": {"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}})
    assert code == 422 and "is not in the valid range" in body["message"]
    # deleting releases: the same nodePort can be requested again
    s0 = api.http("GET", base + "/s0")[1]
    assert api.http("DELETE", base + "/s0")[0] == 200
    code, again, _ = api.http("POST", base, {"metadata": {"name": "again"}, "spec": {
        "type": "NodePort", "clusterIP": s0["spec"]["clusterIP"],
        "ports": [{"port": 80, "nodePort": s0["spec"]["ports"][0]["nodePort"]}]}})
    assert code == 201, again


def test_pod_binding_status_and_graceful_delete(control_plane, ns):
    api = control_plane
    base = f"/api/v1/namespaces/{ns}/pods"
    code, pod, _ = api.http("POST", base, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    assert code == 201 and pod["status"]["phase"] == "Pending"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["containers"][0]["imagePullPolicy"] == "Always" and spec["serviceAccountName"] == "default"
    assert {t["key"] for t in spec["tolerations"]} == {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}}
    assert api.http("POST", base + "/p/binding", binding)[0] == 201
    code, body, _ = api.http("POST", base + "/p/binding", binding)
    assert code == 409 and 'is already assigned to node "n1"' in body["message"]
    pod = api.http("GET", base + "/p")[1]
    assert pod["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in pod["status"]["conditions"])
    pod["status"]["phase"] = "Running"
    pod["spec"]["nodeName"] = "ignored-by-status"
    code, upd, _ = api.http("PUT", base + "/p/status", pod)
    assert code == 200 and upd["status"]["phase"] == "Running" and upd["spec"]["nodeName"] == "n1"
    # a bound pod is deleted gracefully: it stays with a deletionTimestamp until grace 0
    code, body, _ = api.http("DELETE", base + "/p")
    assert code == 200 and body["metadata"]["deletionTimestamp"] and body["metadata"]["deletionGracePeriodSeconds"] == 30
    assert api.http("GET", base + "/p")[0] == 200
    assert api.http("DELETE", base + "/p?gracePeriodSeconds=0")[0] == 200
    assert api.http("GET", base + "/p")[0] == 404


def test_finalizers_hold_deletion_until_removed(control_plane, ns):
    api = control_plane
    base = f"/api/v1/namespaces/{ns}/configmaps"
    obj = cm("fin")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    api.http("POST", base, obj)
    code, body, _ = api.http("DELETE", base + "/fin")
    assert code == 200
    cur = api.http("GET", base + "/fin")[1]
    assert cur["metadata"]["deletionTimestamp"]
    code, _, _ = api.http("PATCH", base + "/fin", {"metadata": {"finalizers": None}},
                          content_type="application/merge-patch+json")
    assert code == 200
    assert api.http("GET", base + "/fin")[0] == 404


def test_scale_subresource_and_generation(control_plane, ns):
    api = control_plane
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    dep = {"metadata": {"name": "d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
           "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
    code, created, _ = api.http("POST", base, dep)
    assert code == 201 and created["metadata"]["generation"] == 1
    assert created["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert created["spec"]["revisionHistoryLimit"] == 10 and created["spec"]["progressDeadlineSeconds"] == 600
    code, scale, _ = api.http("GET", base + "/d/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=d"
    code, scale, _ = api.http("PATCH", base + "/d/scale", {"spec": {"replicas": 5}}, content_type="application/merge-patch+json")
    assert code == 200 and scale["spec"]["replicas"] == 5
    cur = api.http("GET", base + "/d")[1]
    assert cur["spec"]["replicas"] == 5 and cur["metadata"]["generation"] == 2
    # metadata-only changes do not bump generation
    api.http("PATCH", base + "/d", {"metadata": {"labels": {"x": "y"}}}, content_type="application/merge-patch+json")
    assert api.http("GET", base + "/d")[1]["metadata"]["generation"] == 2


def test_tables(control_plane, ns):
    api = control_plane
    api.http("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("t1", a="1", b="2"))
    code, table, hdrs = api.http("GET", f"/api/v1/namespaces/{ns}/configmaps",
                                 headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    assert code == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["t1", 2]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_metrics_count_requests(control_plane):
    code, text, _ = control_plane.http("GET", "/metrics")
    assert code == 200
    assert 'apiserver_request_total{code="200",group="",resource="namespaces"' in text or \
           "apiserver_request_total{" in text
    assert "apiserver_request_duration_seconds_bucket" in text


def test_discovery(control_plane):
    code, body, _ = control_plane.http("GET", "/api/v1")
    assert code == 200 and body["kind"] == "APIResourceList"
    pods = next(r for r in body["resources"] if r["name"] == "pods")
    assert pods["namespaced"] and pods["kind"] == "Pod" and "watch" in pods["verbs"] and pods["shortNames"] == ["po"]
    assert any(r["name"] == "pods/log" for r in body["resources"])
    code, body, _ = control_plane.http("GET", "/apis")
    groups = {g["name"]: g for g in body["groups"]}
    assert groups["autoscaling"]["preferredVersion"]["version"] == "v2"
    assert {"apps", "batch", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io"} <= set(groups)
    code, body, hdrs = control_plane.http("GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert body["kind"] == "APIGroupDiscoveryList"
    assert "as=APIGroupDiscoveryList" in {k.lower(): v for k, v in hdrs.items()}["content-type"]


def test_deletecollection_and_exact_resource_version(control_plane, ns):
    api = control_plane
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(3):
        api.http("POST", base, cm(f"d{i}"))
    rv = api.http("GET", base)[1]["metadata"]["resourceVersion"]
    code, body, _ = api.http("DELETE", base + "?labelSelector=app+in+(d0,d1)")
    assert code == 200 and sorted(o["metadata"]["name"] for o in body["items"]) == ["d0", "d1"]
    assert [o["metadata"]["name"] for o in api.http("GET", base)[1]["items"]] == ["d2"]
    code, body, _ = api.http("GET", base + f"?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert code == 200 and [o["metadata"]["name"] for o in body["items"]] == ["d0", "d1", "d2"]
    assert body["metadata"]["resourceVersion"] == rv
    code, body, _ = api.http("GET", base + "?resourceVersionMatch=Exact")
    assert code == 400 and body["reason"] == "BadRequest"


def test_events_are_served_in_both_versions(control_plane, ns):
    api = control_plane
    ev = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
          "reason": "Started", "message": "Started container", "type": "Normal", "count": 2,
          "source": {"component": "kubelet", "host": "n1"}}
    assert api.http("POST", f"/api/v1/namespaces/{ns}/events", ev)[0] == 201
    code, new, _ = api.http("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events/e1")
    assert code == 200 and new["apiVersion"] == "events.k8s.io/v1"
    assert new["regarding"]["name"] == "p" and new["note"] == "Started container" and new["deprecatedCount"] == 2
    code, body, _ = api.http("GET", f"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dp")
    assert [e["metadata"]["name"] for e in body["items"]] == ["e1"]


def test_method_not_allowed_and_not_found_paths(control_plane, ns):
    api = control_plane
    code, body, _ = api.http("PUT", f"/api/v1/namespaces/{ns}/configmaps", cm("x"))
    assert code == 405 and body["reason"] == "MethodNotAllowed"
    code, body, _ = api.http("GET", f"/api/v1/namespaces/{ns}/configmaps/x/status")
    assert code == 404 and body["reason"] == "NotFound"
    code, body, _ = api.http("GET", "/api/v2/pods")
    assert code == 404


def test_too_many_requests_beyond_the_inflight_limit(control_plane, tmp_path):
    """With room for one mutating request, concurrent writers see some 429 TooManyRequests."""
    import concurrent.futures
    from tests.support.control_plane import ApiServer
    api = ApiServer(tmp_path / "limited", control_plane.store.client_urls, cert_dir=control_plane.cert_dir,
                    tokens=control_plane.tokens, extra_args=["--max-mutating-requests-inflight", "1"],
                    name="limited").start()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda i: api.http("POST", "/api/v1/namespaces/default/configmaps",
                                                     cm(f"burst-{i}"))[0], range(64)))
        assert 201 in codes and 429 in codes and set(codes) <= {201, 429}
    finally:
        api.stop()

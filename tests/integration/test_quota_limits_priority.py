"""ResourceQuota, LimitRange and PriorityClass admission, the quota controller and scheduler preemption,
driven through kubectl and the REST API against real processes (one hollow node with 1 cpu)."""
from __future__ import annotations

import itertools

import pytest

from tests.support.clusters import wait_for
from tests.support.hollow import hollow_cluster

_names = itertools.count()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with hollow_cluster(tmp_path_factory.mktemp("quota"), "resourcequota", ready_delay=0.1, store_size=1,
                        kubelet_args=["--hostname-override", "small", "--cpu", "1"]) as api:
        yield api


@pytest.fixture
def ns(cluster, request):
    name = f"q{next(_names)}-" + "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:30]
    code, body, _ = cluster.http("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    return name


def pod(name: str, cpu: str | None = None, **spec) -> dict:
    res = {"requests": {"cpu": cpu}} if cpu else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": res}], **spec}}


def create_pod(api, ns: str, body: dict) -> tuple[int, dict]:
    code, out, _ = api.http("POST", f"/api/v1/namespaces/{ns}/pods", body)
    return code, out


def get(api, path: str) -> dict:
    code, body, _ = api.http("GET", path)
    assert code == 200, body
    return body


def used(api, ns: str, name: str = "q") -> dict | None:
    return (get(api, f"/api/v1/namespaces/{ns}/resourcequotas/{name}").get("status") or {}).get("used")


def test_quota_refuses_the_pod_that_would_exceed_it_and_follows_deletes(cluster, ns):
    cluster.kubectl("-n", ns, "create", "quota", "q", "--hard=pods=2,requests.cpu=1")
    wait_for(lambda: used(cluster, ns) == {"pods": "0", "requests.cpu": "0"}, 30, "the controller's first count")
    for name in ("a", "b"):
        assert create_pod(cluster, ns, pod(name, "100m"))[0] == 201
    assert used(cluster, ns) == {"pods": "2", "requests.cpu": "200m"}
    code, body = create_pod(cluster, ns, pod("x", "100m"))
    assert code == 403 and body["reason"] == "Forbidden"
    assert body["message"] == 'pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    code, body = create_pod(cluster, ns, pod("y"))
    assert body["message"] == 'pods "y" is forbidden: failed quota: q: must specify requests.cpu for: c'
    out = cluster.kubectl("-n", ns, "get", "quota").stdout.splitlines()
    assert out[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert "pods: 2/2, requests.cpu: 200m/1" in out[1]
    cluster.kubectl("-n", ns, "delete", "pod", "a", "--grace-period=0", "--force")
    wait_for(lambda: used(cluster, ns) == {"pods": "1", "requests.cpu": "100m"}, 30, "usage given back")
    assert create_pod(cluster, ns, pod("c", "100m"))[0] == 201
    described = cluster.kubectl("describe", "ns", ns).stdout
    assert "Resource Quotas" in described and "requests.cpu" in described


def test_limit_range_defaults_and_bounds_containers(cluster, ns):
    cluster.kubectl("-n", ns, "apply", "-f", "-", input="""
apiVersion: v1
kind: LimitRange
metadata: {name: lr}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 200m}
    min: {cpu: 100m}
""")
    assert create_pod(cluster, ns, pod("plain"))[0] == 201
    got = get(cluster, f"/api/v1/namespaces/{ns}/pods/plain")
    assert got["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                         "requests": {"cpu": "200m", "memory": "128Mi"}}
    assert got["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == \
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    code, body = create_pod(cluster, ns, pod("tiny", "50m"))
    assert code == 403
    assert body["message"] == 'pods "tiny" is forbidden: minimum cpu usage per Container is 100m, but request is 50m'
    assert cluster.kubectl("-n", ns, "get", "limits").stdout.split()[:3] == ["NAME", "CREATED", "AT"]


def test_priority_classes(cluster, ns):
    out = cluster.kubectl("get", "priorityclasses").stdout.splitlines()
    assert out[0].split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    assert any(line.split()[:3] == ["system-node-critical", "2000001000", "false"] for line in out)
    code, body = create_pod(cluster, ns, pod("x", priorityClassName="foo"))
    assert (code, body["message"]) == (403, 'pods "x" is forbidden: no PriorityClass with name foo was found')
    cluster.kubectl("create", "priorityclass", f"{ns}-mid", "--value=1000")
    assert create_pod(cluster, ns, pod("mid", priorityClassName=f"{ns}-mid"))[0] == 201
    spec = get(cluster, f"/api/v1/namespaces/{ns}/pods/mid")["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (1000, "PreemptLowerPriority")
    p = cluster.kubectl("patch", "priorityclass", f"{ns}-mid", "-p", '{"value": 5}', check=False)
    assert "value: Forbidden: may not be changed in an update." in p.stderr


def test_high_priority_pod_preempts_a_low_priority_one(cluster, ns):
    for name, value in (("low", 10), ("high", 100000)):
        cluster.kubectl("create", "priorityclass", f"{ns}-{name}", f"--value={value}")
    assert create_pod(cluster, ns, pod("victim", "800m", priorityClassName=f"{ns}-low"))[0] == 201
    wait_for(lambda: get(cluster, f"/api/v1/namespaces/{ns}/pods/victim")["spec"].get("nodeName"), 30, "victim bound")
    assert create_pod(cluster, ns, pod("never", "800m", priorityClassName=f"{ns}-high", preemptionPolicy="Never"))[0] \
        == 403   # the class decides the policy
    assert create_pod(cluster, ns, pod("boss", "800m", priorityClassName=f"{ns}-high"))[0] == 201

    def victim_marked():
        code, body, _ = cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/victim")
        return code == 404 or any(c["type"] == "DisruptionTarget" and c["reason"] == "PreemptionByScheduler"
                                  for c in (body.get("status") or {}).get("conditions") or [])
    wait_for(victim_marked, 30, "the victim marked for preemption")
    wait_for(lambda: get(cluster, f"/api/v1/namespaces/{ns}/pods/boss")["spec"].get("nodeName"), 60, "boss scheduled")
    assert cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/victim")[0] == 404
    events = get(cluster, f"/api/v1/namespaces/{ns}/events")["items"]
    assert any(e["reason"] == "Preempted" and e["involvedObject"]["name"] == "victim" for e in events)

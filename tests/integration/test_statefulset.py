"""StatefulSets end to end on hollow nodes: ordered creation, stable names and claims, partitioned
rolling updates with kubectl rollout, scale-down, table columns and validation messages."""
from __future__ import annotations

import json

import pytest

from tests.support.clusters import wait_for
from tests.support.hollow import hollow_cluster, namespace

READY_DELAY = 0.5    # long enough to see web-1 wait for web-0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with hollow_cluster(tmp_path_factory.mktemp("sts"), "statefulset,nodeipam", ready_delay=READY_DELAY) as api:
        yield api


@pytest.fixture
def ns(cluster, request):
    return namespace(cluster, request)


def statefulset(name: str = "web", replicas: int = 2, image: str = "nginx:1", **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": {
        "replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "nginx", "image": image}]}}, **spec}}


def create(api, ns: str, body: dict) -> dict:
    """kubectl apply, as a user would (client-side validation against the served OpenAPI included)."""
    return json.loads(api.kubectl("-n", ns, "apply", "-o", "json", "-f", "-", input=json.dumps(body)).stdout)


def pods(api, ns: str) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in api.http("GET", f"/api/v1/namespaces/{ns}/pods")[1]["items"]}


def ready(pod: dict | None) -> bool:
    return pod is not None and not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def ready_since(pod: dict) -> str:
    return next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")


def all_ready(api, ns: str, names: list[str], image: str | None = None) -> dict[str, dict] | None:
    ps = pods(api, ns)
    ok = set(ps) == set(names) and all(ready(ps[n]) for n in names) and (
        image is None or all(ps[n]["spec"]["containers"][0]["image"] == image for n in names))
    return ps if ok else None


def test_ordered_creation_stable_identity_and_claims(cluster, ns):
    create(cluster, ns, statefulset(volumeClaimTemplates=[{"metadata": {"name": "www"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]))
    first = wait_for(lambda: (ps := pods(cluster, ns)).get("web-0") and ps, 30, "web-0")
    if not ready(first["web-0"]):
        assert "web-1" not in first                 # OrderedReady: web-1 waits for web-0
    ps = wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1"]), 30, "web-0 and web-1 ready")
    assert ready_since(ps["web-0"]) <= ps["web-1"]["metadata"]["creationTimestamp"]
    for i in (0, 1):
        p = ps[f"web-{i}"]
        assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == (f"web-{i}", "web")
        labels = p["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
        assert labels["controller-revision-hash"].startswith("web-")
        assert {"name": "www", "persistentVolumeClaim": {"claimName": f"www-web-{i}"}} in p["spec"]["volumes"]
    claims = {c["metadata"]["name"]: c for c in
              cluster.http("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims")[1]["items"]}
    assert set(claims) == {"www-web-0", "www-web-1"}
    assert claims["www-web-0"]["metadata"]["labels"] == {"app": "web"}

    old_uid = ps["web-0"]["metadata"]["uid"]
    code, _, _ = cluster.http("DELETE", f"/api/v1/namespaces/{ns}/pods/web-0")
    assert code == 200
    back = wait_for(lambda: (p := all_ready(cluster, ns, ["web-0", "web-1"])) and
                    p["web-0"]["metadata"]["uid"] != old_uid and p, 60, "web-0 recreated")
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}} in back["web-0"]["spec"]["volumes"]
    kept = cluster.http("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/www-web-0")[1]
    assert kept["metadata"]["uid"] == claims["www-web-0"]["metadata"]["uid"]

    cluster.kubectl("-n", ns, "label", "pod", "web-1", "statefulset.kubernetes.io/pod-name-",
                    "apps.kubernetes.io/pod-index=7", "--overwrite")
    wait_for(lambda: {k: v for k, v in pods(cluster, ns)["web-1"]["metadata"]["labels"].items() if "/pod-" in k} ==
             {"statefulset.kubernetes.io/pod-name": "web-1", "apps.kubernetes.io/pod-index": "1"}, 30,
             "web-1's identity labels restored")

    sts = wait_for(lambda: (s := cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/web")[1])
                   .get("status", {}).get("readyReplicas") == 2 and s, 30, "status readyReplicas 2")
    st = sts["status"]
    assert (st["replicas"], st["currentReplicas"], st["updatedReplicas"], st["availableReplicas"]) == (2, 2, 2, 2)
    assert st["currentRevision"] == st["updateRevision"] and st["observedGeneration"] == 1
    out = cluster.kubectl("-n", ns, "get", "sts").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "AGE"] and out[1].split()[:2] == ["web", "2/2"]
    wide = cluster.kubectl("-n", ns, "get", "statefulset", "web", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert wide[1].split()[-2:] == ["nginx", "nginx:1"]


def test_partitioned_rolling_update_rollout_status_history_undo(cluster, ns):
    k = cluster.kubectl
    create(cluster, ns, statefulset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}))
    wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1"]), 30, "two ready pods")
    k("-n", ns, "rollout", "status", "statefulset/web", "--timeout=30s")
    k("-n", ns, "set", "image", "statefulset/web", "nginx=nginx:2")
    done = k("-n", ns, "rollout", "status", "statefulset/web", "--timeout=60s").stdout
    assert "partitioned roll out complete: 1 new pods have been updated..." in done
    ps = wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1"]), 30, "two ready pods")
    assert ps["web-1"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert ps["web-0"]["spec"]["containers"][0]["image"] == "nginx:1"      # below the partition
    sts = json.loads(k("-n", ns, "get", "sts", "web", "-o", "json").stdout)
    assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
    assert (sts["status"]["currentReplicas"], sts["status"]["updatedReplicas"]) == (1, 1)

    k("-n", ns, "patch", "statefulset", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1"], "nginx:2"), 60, "both pods on nginx:2")
    done = k("-n", ns, "rollout", "status", "statefulset/web", "--timeout=60s").stdout
    assert "partitioned roll out complete: 2 new pods have been updated..." in done
    history = k("-n", ns, "rollout", "history", "statefulset/web").stdout.split()
    assert history[:3] == ["statefulset.apps/web", "REVISION", "CHANGE-CAUSE"] and history[3::2] == ["1", "2"]
    k("-n", ns, "rollout", "undo", "statefulset/web")
    wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1"], "nginx:1"), 60, "both pods back on nginx:1")
    history = k("-n", ns, "rollout", "history", "statefulset/web").stdout.split()
    assert history[3::2] == ["2", "3"]       # revision 1 came back as revision 3
    assert k("-n", ns, "rollout", "undo", "statefulset/web", "--to-revision=3").stdout == (
        "statefulset.apps/web skipped rollback (current template already matches revision 3)\n")
    revs = cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")[1]["items"]
    assert len(revs) == 2 and all(r["metadata"]["ownerReferences"][0]["name"] == "web" for r in revs)


def test_scale_down_highest_ordinal_first_and_parallel(cluster, ns):
    k = cluster.kubectl
    create(cluster, ns, statefulset(replicas=3, podManagementPolicy="Parallel"))
    wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1", "web-2"]), 30, "three ready pods")
    k("-n", ns, "scale", "statefulset", "web", "--replicas=1")
    wait_for(lambda: all_ready(cluster, ns, ["web-0"]), 60, "only web-0 left")
    k("-n", ns, "scale", "statefulset", "web", "--replicas=2")
    wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1"]), 30, "web-1 back")


def test_claim_retention_policy_owner_references(cluster, ns):
    """whenDeleted=Delete: the set owns the claims; whenScaled=Delete: a scaled-down pod owns its
    claim, so the garbage collector removes the claim with the pod (upstream's mechanism)."""
    create(cluster, ns, statefulset(
        podManagementPolicy="Parallel", volumeClaimTemplates=[{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"}))
    ps = wait_for(lambda: all_ready(cluster, ns, ["web-0", "web-1"]), 30, "two ready pods")

    def owners(claim: str) -> list[tuple[str, str]]:
        c = cluster.http("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")[1]
        return [(r["kind"], r["name"]) for r in c["metadata"].get("ownerReferences") or []]
    assert owners("www-web-0") == owners("www-web-1") == [("StatefulSet", "web")]
    cluster.kubectl("-n", ns, "scale", "sts", "web", "--replicas=1")
    wait_for(lambda: owners("www-web-1") == [("Pod", "web-1")], 30, "www-web-1 owned by web-1")
    assert owners("www-web-0") == [("StatefulSet", "web")]
    assert ps["web-1"]["metadata"]["uid"] == next(
        r["uid"] for r in cluster.http("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/www-web-1")[1]
        ["metadata"]["ownerReferences"])


def test_orphan_member_is_adopted_and_kept_on_delete_strategy(cluster, ns):
    code, orphan, _ = cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", {"metadata": {
        "name": "web-0", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:0"}]}})
    assert code == 201, orphan
    create(cluster, ns, statefulset(updateStrategy={"type": "OnDelete"}))
    ps = wait_for(lambda: (p := all_ready(cluster, ns, ["web-0", "web-1"])) and
                  p["web-0"]["metadata"].get("ownerReferences") and p, 30, "web-0 adopted, web-1 created")
    assert ps["web-0"]["metadata"]["uid"] == orphan["metadata"]["uid"]
    assert ps["web-0"]["spec"]["containers"][0]["image"] == "nginx:0"     # OnDelete: kept as it is
    assert ps["web-0"]["metadata"]["ownerReferences"][0]["name"] == "web"
    assert ps["web-1"]["spec"]["containers"][0]["image"] == "nginx:1"


def test_revision_name_taken_by_another_owner_raises_collision_count(cluster, ns):
    probe = statefulset(replicas=0)                     # web's template under another name
    probe["metadata"]["name"] = "probe"
    create(cluster, ns, probe)
    probe_rev = wait_for(lambda: cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/probe")[1]
                         .get("status", {}).get("updateRevision"), 30, "the probe's revision")
    taken = "web-" + probe_rev.removeprefix("probe-")     # the name web's identical template hashes to
    code, out, _ = cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/controllerrevisions", {
        "metadata": {"name": taken}, "data": {"spec": {}}, "revision": 1})
    assert code == 201, out
    create(cluster, ns, statefulset(replicas=1))
    st = wait_for(lambda: (s := cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/web")[1]
                           .get("status", {})).get("readyReplicas") == 1 and s, 30, "web ready")
    assert st["collisionCount"] == 1 and st["updateRevision"] != taken
    assert pods(cluster, ns)["web-0"]["metadata"]["labels"]["controller-revision-hash"] == st["updateRevision"]


def test_validation_messages(cluster, ns):
    def reject(body: dict) -> str:
        code, out, _ = cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/statefulsets", body)
        assert code == 422, out
        return out["message"]

    bad = statefulset()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert reject(bad) == ('StatefulSet.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
                           'map[string]string{"app":"other"}: `selector` does not match template `labels`')
    assert reject(statefulset(replicas=-1)) == ('StatefulSet.apps "web" is invalid: spec.replicas: Invalid value: '
                                                '-1: must be greater than or equal to 0')
    assert reject(statefulset(podManagementPolicy="Sometimes")) == (
        'StatefulSet.apps "web" is invalid: spec.podManagementPolicy: Invalid value: "Sometimes": '
        "must be 'OrderedReady' or 'Parallel'")
    no_service = statefulset(replicas=0)
    del no_service["spec"]["serviceName"]
    stored = create(cluster, ns, no_service)           # the 1.32 server does not require serviceName
    assert stored["spec"]["podManagementPolicy"] == "OrderedReady"
    assert stored["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert stored["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert stored["spec"]["revisionHistoryLimit"] == 10
    out = cluster.kubectl("-n", ns, "patch", "sts", "web", "-p", '{"spec":{"serviceName":"other"}}', check=False)
    assert out.returncode == 1
    assert out.stderr == (
        "The StatefulSet \"web\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than "
        "'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
        "'minReadySeconds' are forbidden\n")


def test_python_client_round_trip(cluster, ns):
    from kubernetes import client, config
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    body = client.V1StatefulSet(metadata=client.V1ObjectMeta(name="db"), spec=client.V1StatefulSetSpec(
        replicas=1, service_name="db", selector=client.V1LabelSelector(match_labels={"app": "db"}),
        template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "db"}), spec=client.V1PodSpec(
            containers=[client.V1Container(name="db", image="postgres:16")])),
        volume_claim_templates=[client.V1PersistentVolumeClaim(metadata=client.V1ObjectMeta(name="data"),
                                                               spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], resources=client.V1VolumeResourceRequirements(
                requests={"storage": "1Gi"})))]))
    made = apps.create_namespaced_stateful_set(ns, body)
    assert made.spec.volume_claim_templates[0].spec.volume_mode == "Filesystem"
    assert made.spec.update_strategy.rolling_update.partition == 0
    sts = wait_for(lambda: (s := apps.read_namespaced_stateful_set("db", ns)).status.ready_replicas == 1 and s,
                   30, "db ready")
    assert sts.status.current_revision == sts.status.update_revision
    apps.patch_namespaced_stateful_set_scale("db", ns, {"spec": {"replicas": 2}})
    wait_for(lambda: apps.read_namespaced_stateful_set("db", ns).status.ready_replicas == 2, 30, "db-1 ready")
    revs = apps.list_namespaced_controller_revision(ns).items
    assert [r.revision for r in revs] == [1] and revs[0].metadata.name == sts.status.update_revision

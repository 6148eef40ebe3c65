"""Objects as the official Python client reads them (get, list, watch), and upstream's message texts.

A real apiserver on etcdnode, no controllers: statuses stay at what the apiserver itself writes, the
zero values Kubernetes 1.32 serialises."""
from __future__ import annotations

import json

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)

LABELS = {"app": "a"}


@pytest.fixture(scope="module")
def api_client(control_plane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(control_plane.kubeconfig))


def template(restart: str = "Always") -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=LABELS),
        spec=client.V1PodSpec(restart_policy=restart, containers=[client.V1Container(name="c", image="nginx")]))


def meta(name: str = "x") -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name)


def read_every_way(create, read, list_, name: str, *ns: str):
    """Create, get, list and watch one object with the client's typed models; each read must deserialize."""
    created = create(*ns)
    got = read(name, *ns)
    assert [o.metadata.name for o in list_(*ns).items] == [name]
    for event in watch.Watch().stream(list_, *ns, timeout_seconds=10):
        assert event["type"] == "ADDED" and event["object"].metadata.name == name
        break
    else:
        pytest.fail("the watch ended without the object")
    return created, got


def raw(control_plane, path: str) -> dict:
    code, body, _ = control_plane.http("GET", path)
    assert code == 200, body
    return body


def test_a_new_daemonset_reads_with_upstream_zero_status(control_plane, api_client, ns):
    apps = client.AppsV1Api(api_client)
    ds = client.V1DaemonSet(metadata=meta("ds"), spec=client.V1DaemonSetSpec(
        selector=client.V1LabelSelector(match_labels=LABELS), template=template()))
    created, got = read_every_way(lambda n: apps.create_namespaced_daemon_set(n, ds), apps.read_namespaced_daemon_set,
                                  apps.list_namespaced_daemon_set, "ds", ns)
    assert created.status == got.status == client.V1DaemonSetStatus(
        current_number_scheduled=0, desired_number_scheduled=0, number_misscheduled=0, number_ready=0)
    # what `kubectl get ds -o json` shows upstream for a DaemonSet no controller has seen
    obj = raw(control_plane, f"/apis/apps/v1/namespaces/{ns}/daemonsets/ds")
    assert obj["status"] == {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0,
                             "numberReady": 0}
    assert obj["spec"]["template"]["metadata"]["creationTimestamp"] is None


def test_workloads_read_with_the_python_client(control_plane, api_client, ns):
    apps, batch = client.AppsV1Api(api_client), client.BatchV1Api(api_client)
    selector = client.V1LabelSelector(match_labels=LABELS)
    deploy = client.V1Deployment(metadata=meta("d"), spec=client.V1DeploymentSpec(selector=selector, template=template()))
    read_every_way(lambda n: apps.create_namespaced_deployment(n, deploy), apps.read_namespaced_deployment,
                   apps.list_namespaced_deployment, "d", ns)
    rs = client.V1ReplicaSet(metadata=meta("rs"), spec=client.V1ReplicaSetSpec(selector=selector, template=template()))
    _, got = read_every_way(lambda n: apps.create_namespaced_replica_set(n, rs), apps.read_namespaced_replica_set,
                            apps.list_namespaced_replica_set, "rs", ns)
    assert got.status.replicas == 0
    job = client.V1Job(metadata=meta("j"), spec=client.V1JobSpec(template=template("Never")))
    read_every_way(lambda n: batch.create_namespaced_job(n, job), batch.read_namespaced_job,
                   batch.list_namespaced_job, "j", ns)
    assert raw(control_plane, f"/apis/batch/v1/namespaces/{ns}/jobs/j")["status"] == {}


def test_autoscalers_read_in_both_versions(control_plane, api_client, ns):
    v2 = client.AutoscalingV2Api(api_client)
    hpa = client.V2HorizontalPodAutoscaler(metadata=meta("h"), spec=client.V2HorizontalPodAutoscalerSpec(
        scale_target_ref=client.V2CrossVersionObjectReference(kind="Deployment", name="d"), max_replicas=3))
    _, got = read_every_way(lambda n: v2.create_namespaced_horizontal_pod_autoscaler(n, hpa),
                            v2.read_namespaced_horizontal_pod_autoscaler,
                            v2.list_namespaced_horizontal_pod_autoscaler, "h", ns)
    assert got.status.desired_replicas == 0
    v1 = client.AutoscalingV1Api(api_client)
    assert v1.read_namespaced_horizontal_pod_autoscaler("h", ns).status.current_replicas == 0
    assert [h.status.desired_replicas for h in v1.list_namespaced_horizontal_pod_autoscaler(ns).items] == [0]
    base = f"/apis/autoscaling/{{}}/namespaces/{ns}/horizontalpodautoscalers/h"
    assert raw(control_plane, base.format("v2"))["status"] == {"currentMetrics": None, "desiredReplicas": 0}
    assert raw(control_plane, base.format("v1"))["status"] == {"currentReplicas": 0, "desiredReplicas": 0}


def test_core_kinds_read_with_the_python_client(control_plane, api_client, ns):
    core = client.CoreV1Api(api_client)
    svc = client.V1Service(metadata=meta("s"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]))
    read_every_way(lambda n: core.create_namespaced_service(n, svc), core.read_namespaced_service,
                   core.list_namespaced_service, "s", ns)
    assert raw(control_plane, f"/api/v1/namespaces/{ns}/services/s")["status"] == {"loadBalancer": {}}
    pod = client.V1Pod(metadata=meta("p"), spec=template().spec)
    read_every_way(lambda n: core.create_namespaced_pod(n, pod), core.read_namespaced_pod,
                   core.list_namespaced_pod, "p", ns)
    assert core.read_namespace(ns).status.phase == "Active"
    node_name = f"{ns}-node"
    node = client.V1Node(metadata=client.V1ObjectMeta(name=node_name, labels={"t": ns}))
    try:
        created = core.create_node(node)
        assert created.status.daemon_endpoints.kubelet_endpoint.port == 0
        assert created.status.node_info.kubelet_version == ""
        assert core.read_node(node_name).metadata.name == node_name
        assert [n.metadata.name for n in core.list_node(label_selector=f"t={ns}").items] == [node_name]
        for event in watch.Watch().stream(core.list_node, label_selector=f"t={ns}", timeout_seconds=10):
            assert event["object"].status.daemon_endpoints.kubelet_endpoint.port == 0
            break
        status = raw(control_plane, f"/api/v1/nodes/{node_name}")["status"]
        assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
        assert status["nodeInfo"] == dict.fromkeys(
            ("architecture", "bootID", "containerRuntimeVersion", "kernelVersion", "kubeProxyVersion",
             "kubeletVersion", "machineID", "operatingSystem", "osImage", "systemUUID"), "")
    finally:
        core.delete_node(node_name)


def _status_message(excinfo: pytest.ExceptionInfo) -> tuple[int, str, list[str]]:
    body = json.loads(excinfo.value.body)
    return body["code"], body["message"], [c["message"] for c in body["details"]["causes"]]


def test_a_selector_mismatch_message_shows_the_labels_as_go_does(api_client, ns):
    apps = client.AppsV1Api(api_client)
    bad = client.V1Deployment(metadata=meta("bad"), spec=client.V1DeploymentSpec(
        selector=client.V1LabelSelector(match_labels={"app": "a"}),
        template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "b"}), spec=template().spec)))
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment(ns, bad)
    assert _status_message(e) == (422, 'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid '
                                       'value: map[string]string{"app":"b"}: `selector` does not match template `labels`',
                                  ['Invalid value: map[string]string{"app":"b"}: `selector` does not match template '
                                   '`labels`'])


def test_an_allocated_cluster_ip_message_shows_the_ips_as_go_does(api_client, ns):
    core = client.CoreV1Api(api_client)

    def service(name: str) -> client.V1Service:
        return client.V1Service(metadata=meta(name), spec=client.V1ServiceSpec(
            cluster_ip="10.96.200.200", ports=[client.V1ServicePort(port=80)]))
    core.create_namespaced_service(ns, service("first"))
    core.list_namespaced_service(ns)     # a consistent list: the apiserver's cache holds "first" from here on
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(ns, service("second"))
    assert _status_message(e) == (422, 'Service "second" is invalid: spec.clusterIPs: Invalid value: '
                                       '[]string{"10.96.200.200"}: failed to allocate IP 10.96.200.200: provided IP '
                                       'is already allocated',
                                  ['Invalid value: []string{"10.96.200.200"}: failed to allocate IP 10.96.200.200: '
                                   'provided IP is already allocated'])

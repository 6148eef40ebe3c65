"""An HPA on real CPU: busybox loops burn CPU in Docker containers, the kubelet reports it
(/stats/summary), the apiserver serves it as metrics.k8s.io, and the controller-manager scales the
Deployment up; when the pods go idle it scales back down (stabilization window shortened)."""
from __future__ import annotations

import pytest

from tests.integration.test_docker_kubelet import cluster, ns  # noqa: F401
from tests.support.clusters import free_port, wait_for
from tests.support.control_plane import Component


@pytest.fixture
def control_loops(cluster, tmp_path):
    kc = str(cluster.kubeconfig)
    procs = [Component(tmp_path, "scheduler", ["--kubeconfig", kc, "--port", str(free_port())]).start(),
             Component(tmp_path, "controllers", [
                 "--kubeconfig", kc, "--port", str(free_port()),
                 "--controllers", "replicaset,deployment,horizontalpodautoscaling",
                 "--horizontal-pod-autoscaler-sync-period", "3",
                 "--horizontal-pod-autoscaler-downscale-stabilization", "0"]).start()]
    yield procs
    for p in procs:
        p.stop()


def deployment(script: str) -> dict:
    return {"metadata": {"name": "burn"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "burn"}},
        "template": {"metadata": {"labels": {"app": "burn"}}, "spec": {
            "nodeSelector": {"kubernetes.io/hostname": "NODE"}, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "burn", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", script],
                            "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "100m"}}}]}}}}


def test_hpa_scales_on_real_cpu_up_and_back_down(cluster, ns, control_loops):
    body = deployment("while true; do :; done")
    body["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"] = cluster.node
    assert cluster.http("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body)[0] == 201
    cluster.kubectl("-n", ns, "autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1", "--max=3")

    def replicas() -> int:
        return cluster.http("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/burn")[1]["spec"]["replicas"]
    wait_for(lambda: replicas() == 3, 120, "the HPA scaled the burning Deployment to 3")
    hpa = cluster.http("GET", f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/burn")[1]
    cpu = hpa["status"]["currentMetrics"][0]["resource"]["current"]
    assert cpu["averageUtilization"] > 50, hpa["status"]
    shown = cluster.kubectl("-n", ns, "get", "hpa", "burn", "--no-headers").stdout.split()
    assert shown[2] == "cpu:" and shown[3].endswith("%/50%") and int(shown[3].split("%")[0]) > 50, shown
    # the pods go idle: back to one replica
    patch = b'{"spec":{"template":{"spec":{"containers":[{"name":"burn","command":["sleep","3600"]}]}}}}'
    code, _, _ = cluster.http("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/burn", patch,
                              content_type="application/strategic-merge-patch+json")
    assert code == 200
    wait_for(lambda: replicas() == 1, 180, "the HPA scaled the idle Deployment back to 1")

"""metrics.k8s.io objects from a kubelet's stats summary, as metrics-server builds them."""
from __future__ import annotations

from apiserver.metrics import node_metrics, pod_metrics
from apiserver.proxy import kubelet_base

NODE = {"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        "status": {"addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
SUMMARY = {
    "node": {"nodeName": "node-1", "cpu": {"time": "2026-11-29T07:00:00Z", "usageNanoCores": 250000000},
             "memory": {"time": "2026-11-29T07:00:00Z", "workingSetBytes": 1048576 * 300 + 512}},
    "pods": [{"podRef": {"name": "web", "namespace": "default", "uid": "u1"},
              "cpu": {"time": "2026-11-29T07:00:01Z", "usageNanoCores": 1500000},
              "containers": [{"name": "nginx", "cpu": {"usageNanoCores": 1500000},
                              "memory": {"workingSetBytes": 4096 * 1024}}]}],
}


def test_node_metrics_are_nanocores_and_kibibytes():
    m = node_metrics(NODE, SUMMARY)
    assert (m["kind"], m["apiVersion"]) == ("NodeMetrics", "metrics.k8s.io/v1beta1")
    assert m["metadata"]["name"] == "node-1" and m["metadata"]["labels"] == NODE["metadata"]["labels"]
    assert m["usage"] == {"cpu": "250000000n", "memory": "307200Ki"}
    assert m["timestamp"] == "2026-11-29T07:00:00Z" and m["window"] == "10s"


def test_pod_metrics_list_their_containers():
    pod = {"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}}}
    m = pod_metrics(pod, SUMMARY["pods"][0])
    assert m["metadata"]["namespace"] == "default" and m["metadata"]["labels"] == {"app": "web"}
    assert m["containers"] == [{"name": "nginx", "usage": {"cpu": "1500000n", "memory": "4096Ki"}}]


def test_kubelet_address_prefers_the_internal_ip():
    assert kubelet_base(NODE) == "https://10.0.0.5:10250"
    assert kubelet_base({"status": {"addresses": [{"type": "InternalIP", "address": "fd00::5"}],
                                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}}}}) == "https://[fd00::5]:11250"
    assert kubelet_base({"status": {}}) is None

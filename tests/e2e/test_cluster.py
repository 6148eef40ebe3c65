"""The docker compose cluster end to end (`make up`, deploy/compose.yaml), driven with the real
kubectl as a user would, through the seed documents' workflow. The cluster is brought up once for
every e2e module (`deploy/cluster.sh up`, the session fixture in conftest.py); each test works in a
namespace of its own and deletes it."""
from __future__ import annotations

import ipaddress
import json
import urllib.request

import pytest

from tests.support.clusters import wait_for
from tests.support.compose import NODES, kubectl

pytestmark = pytest.mark.e2e


def pods(ns: str, selector: str) -> list[dict]:
    return json.loads(kubectl("-n", ns, "get", "pods", "-l", selector, "-o", "json"))["items"]


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def exec_in(ns: str, pod: str, script: str, check: bool = False) -> str:
    return kubectl("-n", ns, "exec", pod, "--", "sh", "-c", script, check=check)


def test_nodes_are_ready_with_labels_and_a_node_selector_places_a_pod(cluster, ns):
    out = kubectl("get", "nodes", "--show-labels")
    assert "node-1" in out and "node-2" in out and "kubernetes.io/hostname=node-1" in out
    kubectl("label", "nodes", "node-1", "disktype=ssd", "--overwrite")
    try:
        kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ssd"},
            "spec": {"nodeSelector": {"disktype": "ssd"},
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}))
        wait_for(lambda: kubectl("-n", ns, "get", "pod", "ssd", "-o", "jsonpath={.spec.nodeName}") == "node-1", 60,
                 "the pod on node-1")
    finally:
        kubectl("label", "nodes", "node-1", "disktype-", check=False)


def test_a_deployment_spreads_over_both_nodes_and_pods_reach_each_other(cluster, ns):
    kubectl("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=3")
    wait_for(lambda: (p := pods(ns, "app=web")) and len(p) == 3 and all(map(ready, p)), 180, "3 nginx pods Ready")
    placed = {p["spec"]["nodeName"]: p["status"]["podIP"] for p in pods(ns, "app=web")}
    assert set(placed) == set(NODES), placed
    nets = {ipaddress.ip_network(json.loads(kubectl("get", "node", n, "-o", "json"))["spec"]["podCIDR"]) for n in NODES}
    assert len(nets) == 2 and all(any(ipaddress.ip_address(ip) in net for net in nets) for ip in placed.values())
    kubectl("-n", ns, "run", "client", "--image=busybox", "--restart=Never", "--overrides",
            json.dumps({"spec": {"nodeName": "node-1"}}), "--", "sleep", "3600")
    wait_for(lambda: ready(json.loads(kubectl("-n", ns, "get", "pod", "client", "-o", "json"))), 90, "client Ready")
    other = placed["node-2"]
    assert "nginx" in exec_in(ns, "client", f"wget -qO- http://{other}/"), "a pod on node-1 reaches one on node-2"


def test_services_by_cluster_ip_dns_name_and_node_port(cluster, ns):
    kubectl("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=2")
    kubectl("-n", ns, "expose", "deployment", "web", "--port=80", "--type=NodePort")
    wait_for(lambda: (p := pods(ns, "app=web")) and len(p) == 2 and all(map(ready, p)), 180, "2 nginx pods Ready")
    kubectl("-n", ns, "run", "client", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    wait_for(lambda: ready(json.loads(kubectl("-n", ns, "get", "pod", "client", "-o", "json"))), 90, "client Ready")
    svc = json.loads(kubectl("-n", ns, "get", "svc", "web", "-o", "json"))
    ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    wait_for(lambda: "nginx" in exec_in(ns, "client", f"wget -qO- http://{ip}/"), 60, "the ClusterIP answered")
    wait_for(lambda: "nginx" in exec_in(ns, "client", f"wget -qO- http://web.{ns}.svc.cluster.local/"), 60,
             "the DNS name answered")
    for node, address in NODES.items():
        def answer(address=address):
            try:
                with urllib.request.urlopen(f"http://{address}:{port}/", timeout=3) as r:
                    return b"nginx" in r.read()
            except OSError:
                return False
        wait_for(answer, 60, f"the NodePort on {node} answered from the host")


def test_configmap_as_env_and_volume_follows_edits(cluster, ns):
    kubectl("-n", ns, "create", "configmap", "cm-demo3", "--from-literal=db.host=localhost",
            "--from-literal=db.port=3306")
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cm"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                 "envFrom": [{"configMapRef": {"name": "cm-demo3"}}],
                                 "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
                 "volumes": [{"name": "cfg", "configMap": {"name": "cm-demo3"}}]}}))
    wait_for(lambda: ready(json.loads(kubectl("-n", ns, "get", "pod", "cm", "-o", "json"))), 90, "the pod Ready")
    assert exec_in(ns, "cm", "cat /etc/cfg/db.port") == "3306"
    # a shell drops variables whose names are not shell identifiers: read the process's own environment
    assert "db.host=localhost" in exec_in(ns, "cm", "tr '\\0' '\\n' < /proc/1/environ")
    kubectl("-n", ns, "patch", "configmap", "cm-demo3", "-p", '{"data":{"db.port":"3307"}}')
    wait_for(lambda: exec_in(ns, "cm", "cat /etc/cfg/db.port") == "3307", 120, "the edit reached the file")


def test_logs_exec_and_describe(cluster, ns):
    kubectl("-n", ns, "run", "talker", "--image=busybox", "--restart=Never", "--",
            "sh", "-c", "echo hello-from-talker; exec sleep 3600")
    wait_for(lambda: "hello-from-talker" in kubectl("-n", ns, "logs", "talker", check=False), 90, "the log line")
    assert exec_in(ns, "talker", "echo $((6 * 7))", check=True).strip() == "42"
    described = kubectl("-n", ns, "describe", "pod", "talker")
    assert "Started" in described and "Scheduled" in described

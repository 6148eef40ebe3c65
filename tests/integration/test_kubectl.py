"""The seed documents' kubectl commands, with the real kubectl, against etcdnode + apiserver."""
from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.support.clusters import wait_for
from tests.support.control_plane import KUBECTL, plain_kubectl

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)

NGINX = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deploy
  labels:
    k8s-app: nginx-demo
spec:
  replicas: 3
  minReadySeconds: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.7.9
        ports:
        - containerPort: 80
"""


@pytest.fixture(scope="module", params=["dispatcher", "1.32"])
def kubectl(request, control_plane):
    """Run kubectl (the PATH dispatcher and the plain 1.32 binary) against the control plane."""
    binary = KUBECTL if request.param == "dispatcher" else plain_kubectl("1.32")
    if binary is None:
        pytest.skip("plain kubectl 1.32 is not installed")

    def run(*args: str, **kw) -> subprocess.CompletedProcess:
        return control_plane.kubectl(*args, binary=binary, **kw)
    run.flavour = request.param
    return run


def test_get_namespaces_and_api_resources(kubectl):
    out = kubectl("get", "ns").stdout
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    assert "kube-system" in out and "Active" in out
    res = kubectl("api-resources").stdout
    assert "deployments" in res and "deploy" in res and "apps/v1" in res
    assert "horizontalpodautoscalers" in res and "hpa" in res


def test_create_deployment_get_describe(kubectl, ns):
    out = kubectl("-n", ns, "create", "deployment", "kubernetes-bootcamp",
                  "--image=gcr.io/google-samples/kubernetes-bootcamp:v1").stdout
    assert out.strip() == "deployment.apps/kubernetes-bootcamp created"
    dep = json.loads(kubectl("-n", ns, "get", "deploy", "kubernetes-bootcamp", "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "gcr.io/google-samples/kubernetes-bootcamp:v1"
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "kubernetes-bootcamp"}}
    table = kubectl("-n", ns, "get", "deployments").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["kubernetes-bootcamp", "0/1", "0", "0"]
    assert "kubernetes-bootcamp" in kubectl("-n", ns, "describe", "deployment", "kubernetes-bootcamp").stdout


def test_run_pod_get_describe_label_replace(kubectl, ns):
    out = kubectl("-n", ns, "run", "nginx-app", "--image=nginx:alpine", "--port=8180").stdout
    assert out.strip() == "pod/nginx-app created"
    lines = kubectl("-n", ns, "get", "pods").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["nginx-app", "0/1", "Pending", "0"]
    wide = kubectl("-n", ns, "get", "pods", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[5:] == ["IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    desc = kubectl("-n", ns, "describe", "pods", "nginx-app").stdout
    assert "Name:" in desc and "nginx-app" in desc and "nginx:alpine" in desc and "8180/TCP" in desc
    assert kubectl("-n", ns, "label", "pod", "nginx-app", "app=v1").stdout.strip() == "pod/nginx-app labeled"
    pod = json.loads(kubectl("-n", ns, "get", "pod", "nginx-app", "-o", "json").stdout)
    assert pod["metadata"]["labels"]["app"] == "v1"
    old_uid = pod["metadata"]["uid"]
    manifest = kubectl("get", "pod", "nginx-app", "-n", ns, "-o", "yaml").stdout
    out = kubectl("replace", "--force", "-f", "-", input=manifest).stdout
    assert 'pod "nginx-app" deleted' in out and "pod/nginx-app replaced" in out
    pod = json.loads(kubectl("-n", ns, "get", "pod", "nginx-app", "-o", "json").stdout)
    assert pod["metadata"]["uid"] != old_uid and pod["metadata"]["labels"]["app"] == "v1"


def test_services_by_label(kubectl, ns):
    kubectl("-n", ns, "create", "service", "clusterip", "kubernetes-bootcamp", "--tcp=8080:8080")
    kubectl("-n", ns, "label", "service", "kubernetes-bootcamp", "run=kubernetes-bootcamp")
    lines = kubectl("-n", ns, "get", "services").stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert lines[1].split()[:5][:2] == ["kubernetes-bootcamp", "ClusterIP"] and "8080/TCP" in lines[1]
    out = kubectl("-n", ns, "delete", "service", "-l", "run=kubernetes-bootcamp").stdout
    assert out.strip() == 'service "kubernetes-bootcamp" deleted'
    assert "No resources found" in kubectl("-n", ns, "get", "services").stderr


def test_node_labels(kubectl, control_plane):
    name = f"node01-{kubectl.flavour.replace('.', '')}"
    code, body, _ = control_plane.http("POST", "/api/v1/nodes", {"metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name}}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert code == 201, body
    out = kubectl("get", "nodes", "--show-labels").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "LABELS"]
    assert kubectl("label", "nodes", name, "disktype=ssd").stdout.strip() == f"node/{name} labeled"
    assert "disktype=ssd" in kubectl("get", "nodes", name, "--show-labels").stdout
    p = kubectl("label", "nodes", name, "disktype=hdd", check=False)
    assert p.returncode != 0 and "already has a value (ssd)" in p.stderr
    kubectl("label", "nodes", name, "disktype=hdd", "--overwrite")
    assert "disktype=hdd" in kubectl("get", "nodes", name, "--show-labels").stdout
    kubectl("label", "nodes", name, "disktype-")
    assert "disktype" not in kubectl("get", "nodes", name, "--show-labels").stdout


def test_configmap_like_the_seed(kubectl, ns):
    out = kubectl("-n", ns, "create", "configmap", "cm-demo3", "--from-literal=db.host=localhost",
                  "--from-literal=db.port=3306").stdout
    assert out.strip() == "configmap/cm-demo3 created"
    doc = yaml.safe_load(kubectl("-n", ns, "get", "configmap", "cm-demo3", "-o", "yaml").stdout)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "ConfigMap"
    assert doc["data"] == {"db.host": "localhost", "db.port": "3306"}
    assert doc["metadata"]["name"] == "cm-demo3" and doc["metadata"]["namespace"] == ns
    assert doc["metadata"]["resourceVersion"].isdigit() and doc["metadata"]["uid"]
    assert doc["metadata"]["creationTimestamp"]


def test_secret_generic(kubectl, ns):
    assert kubectl("-n", ns, "create", "secret", "generic", "s1", "--from-literal=password=s3cr3t").stdout.strip() \
        == "secret/s1 created"
    lines = kubectl("-n", ns, "get", "secrets").stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "DATA", "AGE"] and lines[1].split()[:3] == ["s1", "Opaque", "1"]
    sec = json.loads(kubectl("-n", ns, "get", "secret", "s1", "-o", "json").stdout)
    assert sec["data"] == {"password": "czNjcjN0"} and sec["type"] == "Opaque"


def test_apply_twice_then_configured_scale_autoscale(kubectl, ns):
    assert kubectl("-n", ns, "apply", "-f", "-", input=NGINX).stdout.strip() == "deployment.apps/nginx-deploy created"
    assert kubectl("-n", ns, "apply", "-f", "-", input=NGINX).stdout.strip() == "deployment.apps/nginx-deploy unchanged"
    edited = NGINX.replace("nginx:1.7.9", "nginx:1.9.1")
    assert kubectl("-n", ns, "apply", "-f", "-", input=edited).stdout.strip() == "deployment.apps/nginx-deploy configured"
    dep = json.loads(kubectl("-n", ns, "get", "deploy", "nginx-deploy", "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.9.1"
    assert dep["spec"]["minReadySeconds"] == 5 and dep["metadata"]["generation"] == 2
    assert kubectl("-n", ns, "scale", "deployment", "nginx-deploy", "--replicas=5").stdout.strip() == \
        "deployment.apps/nginx-deploy scaled"
    assert json.loads(kubectl("-n", ns, "get", "deploy", "nginx-deploy", "-o", "json").stdout)["spec"]["replicas"] == 5
    out = kubectl("-n", ns, "autoscale", "deployment", "nginx-deploy", "--cpu-percent=10", "--min=1", "--max=10").stdout
    assert out.strip() == "horizontalpodautoscaler.autoscaling/nginx-deploy autoscaled"
    hpa = json.loads(kubectl("-n", ns, "get", "hpa.v2.autoscaling", "nginx-deploy", "-o", "json").stdout)
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 10
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 10
    lines = kubectl("-n", ns, "get", "hpa").stdout.splitlines()
    assert lines[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]


def test_server_side_apply(kubectl, ns):
    out = kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=NGINX).stdout
    assert out.strip() == "deployment.apps/nginx-deploy serverside-applied"
    dep = json.loads(kubectl("-n", ns, "get", "deploy", "nginx-deploy", "-o", "json", "--show-managed-fields").stdout)
    managers = {m["manager"]: m for m in dep["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    out = kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=NGINX.replace("replicas: 3", "replicas: 2")).stdout
    assert "serverside-applied" in out
    assert json.loads(kubectl("-n", ns, "get", "deploy", "nginx-deploy", "-o", "json").stdout)["spec"]["replicas"] == 2
    kubectl("-n", ns, "scale", "deployment", "nginx-deploy", "--replicas=4")
    p = kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=NGINX.replace("replicas: 3", "replicas: 2"), check=False)
    assert p.returncode != 0 and 'conflict with "kubectl' in p.stderr and ".spec.replicas" in p.stderr
    kubectl("-n", ns, "apply", "--server-side", "--force-conflicts", "-f", "-", input=NGINX.replace("replicas: 3", "replicas: 2"))
    assert json.loads(kubectl("-n", ns, "get", "deploy", "nginx-deploy", "-o", "json").stdout)["spec"]["replicas"] == 2


def test_explain(kubectl):
    out = kubectl("explain", "deployment.spec").stdout
    assert "KIND:" in out and "Deployment" in out and "replicas" in out and "template" in out


def test_get_watch_prints_changes(kubectl, ns, control_plane):
    binary = KUBECTL if kubectl.flavour == "dispatcher" else plain_kubectl("1.32")
    import os
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig), "HOME": str(control_plane.tmp)}
    proc = subprocess.Popen([binary, "-n", ns, "get", "configmaps", "-w"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines: list[str] = []
        import threading
        t = threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True)
        t.start()
        kubectl("-n", ns, "create", "configmap", "watched", "--from-literal=a=b")
        wait_for(lambda: any(line.startswith("watched") for line in lines), 20, "kubectl get -w to print the new configmap")
        assert lines[0].split()[:3] == ["NAME", "DATA", "AGE"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_delete_waits_until_gone(kubectl, ns, control_plane):
    kubectl("-n", ns, "create", "configmap", "gone", "--from-literal=a=b")
    out = kubectl("-n", ns, "delete", "configmap", "gone").stdout
    assert out.strip() == 'configmap "gone" deleted'
    assert control_plane.http("GET", f"/api/v1/namespaces/{ns}/configmaps/gone")[0] == 404
    p = kubectl("-n", ns, "get", "configmap", "gone", check=False)
    assert p.returncode == 1 and 'configmaps "gone" not found' in p.stderr


def test_logs_and_exec_without_a_node_give_kubernetes_errors(kubectl, ns):
    kubectl("-n", ns, "run", "lonely", "--image=busybox")
    p = kubectl("-n", ns, "logs", "lonely", check=False)
    assert p.returncode == 1 and "pod lonely does not have a host assigned" in p.stderr
    p = kubectl("-n", ns, "exec", "lonely", "--", "ls", check=False, timeout=30)
    assert p.returncode == 1 and "does not have a host assigned" in p.stderr

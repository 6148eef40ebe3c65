"""The kubelet API of a real `--runtime docker` kubelet process, reached the way users reach it:
kubectl logs, exec, port-forward and top, and the official Python client, through the apiserver
(which presents its kubelet-client certificate); direct callers need a token TokenReview accepts."""
from __future__ import annotations

import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest
from kubernetes import client, config
from kubernetes.stream import stream

from tests.integration.test_docker_kubelet import busybox, cluster, create_pod, ns, ready, status_when  # noqa: F401
from tests.support.clusters import free_port, wait_for
from tests.support.control_plane import plain_kubectl


def kubelet_port(cluster) -> int:
    node = cluster.http("GET", f"/api/v1/nodes/{cluster.node}")[1]
    return node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]


def direct(cluster, path: str, token: str | None = None) -> int:
    """Status of a GET straight to the kubelet (its certificate is its own: not verified here)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    req = urllib.request.Request(f"https://127.0.0.1:{kubelet_port(cluster)}{path}",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture
def web(cluster, ns):
    create_pod(cluster, ns, "web", [{"name": "nginx", "image": "nginx", "imagePullPolicy": "IfNotPresent"}])
    status_when(cluster, ns, "web", ready, "nginx Running and Ready")
    return "web"


def test_only_the_apiserver_and_reviewed_tokens_may_use_the_kubelet_api(cluster, ns):
    assert direct(cluster, "/pods") == 401
    assert direct(cluster, "/pods", "not-a-token") == 401
    assert direct(cluster, "/pods", cluster.token) == 200
    assert direct(cluster, "/healthz") == 200
    assert cluster.http("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "reader"}})[0] == 201
    foreign = cluster.kubectl("-n", ns, "create", "token", "reader", "--audience", "elsewhere").stdout.strip()
    own = cluster.kubectl("-n", ns, "create", "token", "reader").stdout.strip()
    assert direct(cluster, "/pods", foreign) == 401
    assert direct(cluster, "/pods", own) == 200


def test_kubectl_logs_exec_and_top(cluster, ns, web):
    out = cluster.kubectl("-n", ns, "logs", web, "--tail", "1").stdout
    assert "start worker process" in out or "ready for start up" in out, out
    p = cluster.kubectl("-n", ns, "exec", web, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (p.returncode, p.stdout, "err" in p.stderr) == (3, "out\n", True)
    old = plain_kubectl("1.27")
    if old is not None:   # SPDY/3.1 all the way to the apiserver
        p = cluster.kubectl("-n", ns, "exec", "-i", web, "--", "cat", input="through spdy\n", binary=old)
        assert p.stdout == "through spdy\n"

    def top() -> str | None:
        p = cluster.kubectl("-n", ns, "top", "pods", "--no-headers", check=False)
        return p.stdout if p.returncode == 0 and web in p.stdout else None
    row = wait_for(top, 30, "kubectl top pods shows the pod").split()
    assert row[0] == web and row[1].endswith("m") and row[2].endswith("Mi")


def test_node_pressure_conditions_and_resource_metrics(cluster, ns, web):
    node = cluster.http("GET", f"/api/v1/nodes/{cluster.node}")[1]
    conds = {c["type"]: c for c in node["status"]["conditions"]}
    assert conds["MemoryPressure"]["reason"] in ("KubeletHasSufficientMemory", "KubeletHasInsufficientMemory")
    assert conds["DiskPressure"]["reason"] in ("KubeletHasNoDiskPressure", "KubeletHasDiskPressure")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    req = urllib.request.Request(f"https://127.0.0.1:{kubelet_port(cluster)}/metrics/resource",
                                 headers={"Authorization": f"Bearer {cluster.token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        text = r.read().decode()
    assert "node_cpu_usage_seconds_total " in text and "scrape_error 0" in text
    assert f'container_memory_working_set_bytes{{container="nginx",namespace="{ns}",pod="{web}"}}' in text


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_kubectl_port_forward_to_nginx(cluster, ns, web, version):
    binary = plain_kubectl(version)
    if binary is None:
        pytest.skip(f"kubectl {version} is not installed")
    local = free_port()
    env_args = ["--kubeconfig", str(cluster.kubeconfig)]
    pf = subprocess.Popen([binary, *env_args, "-n", ns, "port-forward", f"pod/{web}", f"{local}:80"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def page() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5) as r:
                    return r.read().decode()
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                return None
        assert "Welcome to nginx!" in wait_for(page, 30, "nginx through port-forward")
    finally:
        pf.terminate()
        pf.wait(10)


def test_python_client_exec(cluster, ns):
    create_pod(cluster, ns, "box", [busybox("sh", "exec sleep 3600")])
    status_when(cluster, ns, "box", ready, "busybox Running")
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    resp = stream(core.connect_get_namespaced_pod_exec, "box", ns, command=["sh", "-c", "read x; echo got $x; exit 2"],
                  stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    resp.write_stdin("hello\n")
    resp.run_forever(timeout=20)
    assert resp.read_stdout().strip() == "got hello" and resp.returncode == 2


def test_stdin_stays_open_across_attaches_unless_stdin_once(cluster, ns):
    """`stdin: true` keeps the container's stdin open for every attach; `stdinOnce` closes it after the first."""
    create_pod(cluster, ns, "tty", [busybox("keep", "exec cat", stdin=True),
                                    busybox("once", "exec cat", stdin=True, stdinOnce=True)])
    status_when(cluster, ns, "tty", ready, "stdin pod Running")
    for name, once in (("keep", False), ("once", True)):
        ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=io.kubernetes.pod.namespace={ns}",
                              "--filter", f"label=io.kubernetes.container.name={name}"],
                             capture_output=True, text=True, check=True).stdout.split()
        out = subprocess.run(["docker", "inspect", "-f", "{{.Config.OpenStdin}} {{.Config.StdinOnce}}", *ids],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == ["true", str(once).lower()], (name, out)

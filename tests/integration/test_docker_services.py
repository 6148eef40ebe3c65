"""Services carrying real traffic between Docker pods: two Docker-runtime kubelets (two pod bridges on
this host's engine), the controller-manager (endpoints), kube-proxy programming this host's iptables
and kubedns behind kube-system/kube-dns, as `make up` runs them. Pods reach a Service by ClusterIP
and by DNS name across both nodes, reach themselves through it (hairpin), and the host reaches a
NodePort on the node address. Teardown removes the containers, networks and every iptables rule made."""
from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import urllib.request

import pytest

from kubelet import podnetwork
from kubeling.launcher import dns_objects, host_ip
from tests.integration.test_docker_kubelet import (
    engine_up,
    free_cidr,
    remove_node_objects,
)
from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer, Component

DNS_IP = "10.96.0.10"
NON_MASQUERADE = "10.0.0.0/8"


def iptables_save(table: str) -> str:
    return subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    if not engine_up():
        pytest.skip("no Docker engine (bash deploy/install-docker.sh && bash deploy/build-images.sh)")
    tmp = tmp_path_factory.mktemp("docker-services")
    before = {t: iptables_save(t) for t in ("nat", "filter")}
    tag = secrets.token_hex(3)
    nodes = [f"sa-{tag}", f"sb-{tag}"]
    cidrs: list[str] = []
    ip = host_ip()
    store = EtcdnodeCluster(tmp / "store", size=1)
    api = None
    procs: list[Component] = []
    try:
        store.start_all()
        api = ApiServer(tmp / "api", store.client_urls).start()
        kc = str(api.kubeconfig)
        procs.append(Component(tmp, "controllers", ["--kubeconfig", kc, "--controllers", "*",
                                                    "--root-ca-file", str(api.ca)]).start())
        for node in nodes:
            cidrs.append(free_cidr_besides(cidrs))
            procs.append(Component(tmp, "kubelet", [
                "--kubeconfig", kc, "--hostname-override", node, "--node-ip", ip, "--runtime", "docker",
                "--root-dir", str(tmp / node), "--cluster-dns", DNS_IP, "--cluster-domain", "cluster.local",
                "--pod-cidr", cidrs[-1], "--healthz-port", str(free_port()), "--port", str(free_port()),
                "--node-status-update-frequency", "2", "--sync-frequency", "2"], name=f"kubelet-{node}").start())
        procs.append(Component(tmp, "kubeproxy", [
            "--kubeconfig", kc, "--hostname-override", nodes[0], "--cluster-cidr", "10.250.0.0/16",
            "--service-cidr", "10.96.0.0/16", "--port", str(free_port()), "--min-sync-period", "0s"]).start())
        dns_port = free_port()
        procs.append(Component(tmp, "kubedns", [
            "--kubeconfig", kc, "--listen", f"{ip}:{dns_port}", "--bind-address", "127.0.0.1",
            "--port", str(free_port())]).start())
        for path, obj in dns_objects(ip, DNS_IP, dns_port, free_port()):
            code, body, _ = api.http("POST", path, obj)
            assert code == 201, body.get("message")
        for node in nodes:
            wait_for(lambda n=node: api.http("GET", f"/api/v1/nodes/{n}")[0] == 200, 60, f"{node} registered")
        api.nodes, api.node_ip, api.procs = nodes, ip, procs
        yield api
    finally:
        for p in procs:
            p.stop()
        subprocess.run([sys.executable, "-m", "kubeproxy", "--hostname-override", nodes[0], "--cleanup"],
                       check=False, capture_output=True, timeout=60)
        for node in nodes:
            remove_node_objects(node)
        for cidr in cidrs:
            asyncio.run(podnetwork.remove(cidr, NON_MASQUERADE))
        if api is not None:
            api.stop()
        store.stop()
    for table, text in before.items():
        assert not {line for line in iptables_save(table).splitlines() if not line.startswith("#")} - \
            {line for line in text.splitlines() if not line.startswith("#")} - {"COMMIT"}, f"{table} rules left behind"


def free_cidr_besides(taken: list[str]) -> str:
    """free_cidr() looks at the engine's networks; the first node's is not made yet when the second asks."""
    while (cidr := free_cidr()) in taken:
        pass
    return cidr


@pytest.fixture
def ns(net, request):
    name = "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:30] + "-" + secrets.token_hex(2)
    assert net.http("POST", "/api/v1/namespaces", {"metadata": {"name": name}})[0] == 201
    wait_for(lambda: net.http("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200, 30,
             "the default ServiceAccount")
    yield name
    net.http("DELETE", f"/api/v1/namespaces/{name}")


def pod(net, ns: str, name: str, node: str, script: str, labels: dict | None = None) -> None:
    body = {"metadata": {"name": name, "labels": labels or {}}, "spec": {
        "nodeName": node, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", script]}]}}
    code, resp, _ = net.http("POST", f"/api/v1/namespaces/{ns}/pods", body)
    assert code == 201, resp


WEB = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"


def ready(net, ns: str, name: str) -> str:
    def check():
        st = net.http("GET", f"/api/v1/namespaces/{ns}/pods/{name}")[1].get("status") or {}
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or [])
        return st.get("podIP") if ok else None
    return wait_for(check, 90, f"pod {name} Ready")


def service(net, ns: str, name: str, selector: dict, **spec) -> dict:
    body = {"metadata": {"name": name}, "spec": {"selector": selector, **spec,
                                                 "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
    code, resp, _ = net.http("POST", f"/api/v1/namespaces/{ns}/services", body)
    assert code == 201, resp
    return resp


def run_in(net, ns: str, pod_name: str, command: str) -> str:
    """A command in the pod through the API (kubectl exec), its stdout."""
    return net.kubectl("-n", ns, "exec", pod_name, "--", "sh", "-c", command, check=False).stdout


def fetch_until(net, ns: str, client: str, url: str, want, what: str) -> set[str]:
    """Poll a URL from inside a pod until the set of answers satisfies `want`."""
    seen: set[str] = set()

    def done():
        out = run_in(net, ns, client, f"for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -qO- {url}; done")
        seen.update(line.strip() for line in out.splitlines() if line.strip())
        return want(seen)
    wait_for(done, 60, what, interval=0.5)
    return seen


def test_pods_reach_a_service_by_cluster_ip_and_dns_name_across_nodes(net, ns):
    a, b = net.nodes
    pod(net, ns, "web-a", a, WEB, {"app": "web"})
    pod(net, ns, "web-b", b, WEB, {"app": "web"})
    pod(net, ns, "client", b, "exec sleep 3600")
    for name in ("web-a", "web-b", "client"):
        ready(net, ns, name)
    svc = service(net, ns, "web", {"app": "web"})
    ip = svc["spec"]["clusterIP"]
    both = {"web-a", "web-b"}
    assert fetch_until(net, ns, "client", f"http://{ip}", lambda s: both <= s, "the ClusterIP spread over both") == both
    fetch_until(net, ns, "client", f"http://web.{ns}.svc.cluster.local", lambda s: both <= s, "the DNS name answered")
    fetch_until(net, ns, "client", "http://web", lambda s: bool(s & both), "the short name (search path) answered")
    out = run_in(net, ns, "client", "nslookup web")
    assert ip in out and f"web.{ns}.svc.cluster.local" in out, out
    nat = iptables_save("nat")
    assert f'"{ns}/web cluster IP"' in nat and "-j KUBE-SVC-" in nat


def test_a_pod_reaches_itself_through_its_service(net, ns):
    pod(net, ns, "solo", net.nodes[0], WEB, {"app": "solo"})
    ready(net, ns, "solo")
    ip = service(net, ns, "solo", {"app": "solo"})["spec"]["clusterIP"]
    assert fetch_until(net, ns, "solo", f"http://{ip}", lambda s: "solo" in s, "the hairpin answered") == {"solo"}


def test_the_host_reaches_a_nodeport_on_the_node_address(net, ns):
    pod(net, ns, "np", net.nodes[1], WEB, {"app": "np"})
    ready(net, ns, "np")
    port = service(net, ns, "np", {"app": "np"}, type="NodePort")["spec"]["ports"][0]["nodePort"]

    def answer():
        try:
            with urllib.request.urlopen(f"http://{net.node_ip}:{port}/", timeout=3) as r:
                return r.read().decode().strip()
        except OSError:
            return None
    assert wait_for(answer, 30, "the NodePort answered") == "np"


def test_pod_to_pod_keeps_the_source_address(net, ns):
    """No NAT between pods on different nodes (Docker would masquerade leaving a bridge)."""
    a, b = net.nodes
    pod(net, ns, "caller", b, "exec sleep 3600")
    pod(net, ns, "logger", a, "exec httpd -f -vv -p 8080 -h /")
    logger_ip, caller_ip = ready(net, ns, "logger"), ready(net, ns, "caller")

    def logged():
        run_in(net, ns, "caller", f"timeout 3 wget -qO- http://{logger_ip}:8080/ >/dev/null 2>&1")
        return caller_ip in net.kubectl("-n", ns, "logs", "logger", check=False).stdout
    wait_for(logged, 30, "the caller's own address in the server's log")

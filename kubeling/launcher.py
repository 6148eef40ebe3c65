"""Starting and stopping a local cluster's processes in the background (used by `make dev`/`make down`).

Processes are plain `python -m <component>` children in their own sessions; their pids
and logs live in the run directory so a later `kubeling down` can find them.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .client.blocking import request
from .client.config import ClientConfig


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"


DEFAULT_STORE = [Member("n1", 2379, 2380), Member("n2", 12379, 12380), Member("n3", 22379, 22380)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return json.loads(r.read()).get("health") == "true"
    except (OSError, ValueError):
        return False


def _ready(url: str, ca: Path) -> bool:
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
        with urllib.request.urlopen(url + "/readyz", timeout=2, context=ctx) as r:
            return r.read().strip() == b"ok"
    except (OSError, ValueError):
        return False


APISERVER_PORT = 6443
KUBELET_PORT, KUBELET_HEALTHZ_PORT = 10250, 10248   # node-N uses these plus 10 * (N - 1)
CLUSTER_CIDR, SERVICE_CIDR, CLUSTER_DNS = "10.244.0.0/16", "10.96.0.0/16", "10.96.0.10"
DNS_PORT, DNS_METRICS_PORT = 10053, 9153        # kubedns on the host, behind kube-system/kube-dns


def host_ip() -> str:
    """The address of the interface with the default route (no packet is sent), else Docker's
    bridge: the nodes' InternalIP, which pods reach (unlike 127.0.0.1) and NodePorts answer on."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("203.0.113.1", 9))     # TEST-NET-3: only the route lookup happens
            return sock.getsockname()[0]
        except OSError:
            pass
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True,
                         check=False).stdout.split()
    return out[3].split("/")[0] if len(out) > 3 else "127.0.0.1"


def _resolver() -> str | None:
    """The host's first nameserver, where kubedns forwards names outside the cluster domain."""
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
                return parts[1]
    except OSError:
        pass
    return None


def dns_objects(ip: str, cluster_ip: str = CLUSTER_DNS, port: int = DNS_PORT,
                metrics_port: int = DNS_METRICS_PORT) -> list[tuple[str, dict]]:
    """kube-system/kube-dns as CoreDNS's: a Service on the fixed ClusterIP the kubelets give pods,
    its endpoints being kubedns on the host (no selector, so the endpoints are written here)."""
    meta = {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true"}}
    ports = [("dns", "UDP", 53, port), ("dns-tcp", "TCP", 53, port), ("metrics", "TCP", 9153, metrics_port)]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
        "clusterIP": cluster_ip, "ports": [{"name": n, "protocol": pr, "port": p, "targetPort": t} for n, pr, p, t in ports]}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": [{
        "addresses": [{"ip": ip}], "ports": [{"name": n, "protocol": pr, "port": t} for n, pr, _, t in ports]}]}
    slice_meta = {**meta, "name": "kube-dns-host",
                  "labels": {**meta["labels"], "kubernetes.io/service-name": "kube-dns",
                             "endpointslice.kubernetes.io/managed-by": "kubeling-launcher"}}
    endpoint_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": slice_meta,
                      "addressType": "IPv4", "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                      "ports": [{"name": n, "protocol": pr, "port": t} for n, pr, _, t in ports]}
    return [("/api/v1/namespaces/kube-system/services", service),
            ("/api/v1/namespaces/kube-system/endpoints", endpoints),
            ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", endpoint_slice)]


class Launcher:
    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run = Path(run_dir).resolve()
        self.pid_file = self.run / "pids.json"

    def _pids(self) -> dict[str, int]:
        try:
            return json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, pids: dict[str, int]) -> None:
        self.pid_file.write_text(json.dumps(pids, indent=1))

    def start(self, name: str, args: list[str]) -> int:
        """Start `python -m ARGS` detached unless a process of that name is already running."""
        pids = self._pids()
        if name in pids and _alive(pids[name]):
            return pids[name]
        log = open(self.run / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        pids[name] = proc.pid
        self._save(pids)
        return proc.pid

    def up(self, members: list[Member] = DEFAULT_STORE, timeout: float = 30.0) -> list[str]:
        (self.run / "logs").mkdir(parents=True, exist_ok=True)
        secret = self.run / "peer-password"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(24) + "\n")
            secret.chmod(0o600)
        cluster = ",".join(f"{m.name}=127.0.0.1:{m.peer_port}" for m in members)
        client_urls = ",".join(f"{m.name}={m.client_url}" for m in members)   # for etcdctl's --cluster
        for m in members:
            self.start(m.name, [
                "etcdnode", "--name", m.name, "--data-dir", str(self.run / "data" / m.name),
                "--listen-client-urls", m.client_url, "--initial-cluster", cluster,
                "--initial-cluster-client-urls", client_urls, "--peer-password-file", str(secret), "--auto-compaction-retention", "1",
            ])
        deadline = time.monotonic() + timeout
        for m in members:
            while not _healthy(m.client_url):
                pid = self._pids().get(m.name)
                if pid is None or not _alive(pid) or time.monotonic() > deadline:
                    tail = (self.run / "logs" / f"{m.name}.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"kubeling: error: {m.name} did not become healthy; its log ends:\n{tail}")
                time.sleep(0.2)
        return [m.client_url for m in members]

    def _wait(self, name: str, check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            pid = self._pids().get(name)
            if pid is None or not _alive(pid) or time.monotonic() > deadline:
                tail = (self.run / "logs" / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"kubeling: error: {name} did not become ready; its log ends:\n{tail}")
            time.sleep(0.2)

    def up_apiserver(self, etcd_urls: list[str], port: int = APISERVER_PORT, timeout: float = 60.0) -> Path:
        """Start an apiserver on the store; write an admin token and kubeconfig; return the kubeconfig path.
        It listens on every address and advertises the host's, so pods reach it as kubernetes.default."""
        from .kubeconfig import write
        tokens = self.run / "tokens.csv"
        if not tokens.exists():
            tokens.write_text(f'{secrets.token_urlsafe(32)},admin,admin,"system:masters"\n')
            tokens.chmod(0o600)
        certs = self.run / "pki"
        self.start("apiserver", [
            "apiserver", "--etcd-servers", ",".join(etcd_urls), "--bind-address", "0.0.0.0",
            "--secure-port", str(port), "--cert-dir", str(certs), "--token-auth-file", str(tokens),
            "--service-cluster-ip-range", SERVICE_CIDR, "--service-node-port-range", "30000-32767",
            "--advertise-address", host_ip(),
        ])
        url = f"https://127.0.0.1:{port}"
        self._wait("apiserver", lambda: (certs / "ca.crt").exists() and _ready(url, certs / "ca.crt"), timeout)
        kubeconfig = self.run / "kubeconfig"
        token = tokens.read_text().split(",", 1)[0]
        write(kubeconfig, url, (certs / "ca.crt").read_bytes(), token)
        return kubeconfig

    def _api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """One request to the cluster's apiserver as admin; (status, decoded body)."""
        token = (self.run / "tokens.csv").read_text().split(",", 1)[0]
        cfg = ClientConfig(f"https://127.0.0.1:{APISERVER_PORT}", token, (self.run / "pki" / "ca.crt").read_bytes())
        return request(cfg, method, path, body, timeout=5)

    def up_network(self, kubeconfig: Path, ip: str, node: str = "node-1") -> None:
        """kube-proxy for this host (every Docker node here shares its network namespace, so one
        kube-proxy programs it, named for the first node) and kubedns behind kube-system/kube-dns."""
        kc = str(kubeconfig)
        self.start("kube-proxy", ["kubeproxy", "--kubeconfig", kc, "--hostname-override", node,
                                  "--cluster-cidr", CLUSTER_CIDR, "--service-cidr", SERVICE_CIDR])
        upstream = _resolver()
        self.start("kubedns", ["kubedns", "--kubeconfig", kc, "--cluster-domain", "cluster.local",
                               "--listen", f"{ip}:{DNS_PORT}", "--bind-address", ip, "--port", str(DNS_METRICS_PORT),
                               *(["--upstream", f"{upstream}:53"] if upstream else [])])
        for path, obj in dns_objects(ip):
            name = obj["metadata"]["name"]
            code, body = self._api("POST", path, obj)
            if code == 409 and obj["kind"] != "Service":    # a new host address: the endpoints follow it
                code, body = self._api("PUT", f"{path}/{name}", obj)
            if code not in (200, 201, 409):
                raise SystemExit(f"kubeling: error: creating {obj['kind']} kube-system/{name}: {body.get('message', code)}")

    def up_control_loops(self, kubeconfig: Path, docker_nodes: int = 2, hollow_nodes: int = 0) -> None:
        """Scheduler and controller-manager (leader-elected), one Docker-runtime kubelet per node on this
        machine's engine (node-1, node-2, ...: each its own podCIDR from node IPAM and its own ports),
        and optionally one process holding simulated (hollow) nodes."""
        kc = str(kubeconfig)
        self.start("scheduler", ["scheduler", "--kubeconfig", kc, "--leader-elect"])
        self.start("controllers", ["controllers", "--kubeconfig", kc, "--leader-elect", "--controllers", "*",
                                   "--allocate-node-cidrs", "--cluster-cidr", CLUSTER_CIDR,
                                   "--root-ca-file", str(self.run / "pki" / "ca.crt")])
        for i in range(1, docker_nodes + 1):
            name = f"node-{i}"
            self.start(f"kubelet-{name}", [
                "kubelet", "--kubeconfig", kc, "--runtime", "docker", "--hostname-override", name,
                "--node-ip", host_ip(), "--root-dir", str(self.run / "kubelet" / name),
                "--cluster-dns", CLUSTER_DNS, "--cluster-domain", "cluster.local",
                "--port", str(KUBELET_PORT + 10 * (i - 1)), "--healthz-port", str(KUBELET_HEALTHZ_PORT + 10 * (i - 1)),
            ])
        if hollow_nodes:
            self.start("kubelet-hollow", ["kubelet", "--kubeconfig", kc, "--runtime", "hollow", "--hostname-override",
                                          "hollow", "--hollow-nodes", str(hollow_nodes), "--healthz-port", "0"])

    def wait_nodes(self, names: list[str], timeout: float = 60.0) -> None:
        """Until every named Node is Ready (a Docker node is once its pod network exists)."""
        def ready() -> set[str]:
            try:
                items = self._api("GET", "/api/v1/nodes")[1].get("items") or []
            except (OSError, ValueError):
                return set()
            return {n["metadata"]["name"] for n in items
                    if any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in (n.get("status") or {}).get("conditions") or [])}
        for name in names:
            self._wait(f"kubelet-{name}", lambda: name in ready(), timeout)

    def down(self, grace: float = 10.0) -> list[str]:
        pids = self._pids()
        for pid in pids.values():
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for pid in pids.values():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.pid_file.exists():
            self.pid_file.unlink()
        return list(pids)

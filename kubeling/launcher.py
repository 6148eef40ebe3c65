"""Starting and stopping a local cluster's processes in the background (used by `make up`/`make down`).

Processes are plain `python -m <component>` children in their own sessions; their pids
and logs live in the run directory so a later `kubeling down` can find them.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path


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
        for m in members:
            self.start(m.name, [
                "etcdnode", "--name", m.name, "--data-dir", str(self.run / "data" / m.name),
                "--listen-client-urls", m.client_url, "--initial-cluster", cluster,
                "--peer-password-file", str(secret), "--auto-compaction-retention", "1",
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
        """Start an apiserver on the store; write an admin token and kubeconfig; return the kubeconfig path."""
        from .kubeconfig import write
        tokens = self.run / "tokens.csv"
        if not tokens.exists():
            tokens.write_text(f'{secrets.token_urlsafe(32)},admin,admin,"system:masters"\n')
            tokens.chmod(0o600)
        certs = self.run / "pki"
        self.start("apiserver", [
            "apiserver", "--etcd-servers", ",".join(etcd_urls), "--bind-address", "127.0.0.1",
            "--secure-port", str(port), "--cert-dir", str(certs), "--token-auth-file", str(tokens),
            "--service-cluster-ip-range", "10.96.0.0/16", "--service-node-port-range", "30000-32767",
            "--advertise-address", "127.0.0.1",
        ])
        url = f"https://127.0.0.1:{port}"
        self._wait("apiserver", lambda: (certs / "ca.crt").exists() and _ready(url, certs / "ca.crt"), timeout)
        kubeconfig = self.run / "kubeconfig"
        token = tokens.read_text().split(",", 1)[0]
        write(kubeconfig, url, (certs / "ca.crt").read_bytes(), token)
        return kubeconfig

    def up_control_loops(self, kubeconfig: Path, docker_nodes: int = 2, hollow_nodes: int = 0) -> None:
        """Scheduler and controller-manager (leader-elected), one Docker-runtime kubelet per node on this
        machine's engine (node-1, node-2, ...: each its own podCIDR from node IPAM and its own ports),
        and optionally one process holding simulated (hollow) nodes."""
        kc = str(kubeconfig)
        self.start("scheduler", ["scheduler", "--kubeconfig", kc, "--leader-elect"])
        self.start("controllers", ["controllers", "--kubeconfig", kc, "--leader-elect", "--controllers", "*",
                                   "--allocate-node-cidrs", "--cluster-cidr", "10.244.0.0/16",
                                   "--root-ca-file", str(self.run / "pki" / "ca.crt")])
        for i in range(1, docker_nodes + 1):
            name = f"node-{i}"
            self.start(f"kubelet-{name}", [
                "kubelet", "--kubeconfig", kc, "--runtime", "docker", "--hostname-override", name,
                "--node-ip", "127.0.0.1", "--root-dir", str(self.run / "kubelet" / name),
                "--cluster-dns", "10.96.0.10", "--cluster-domain", "cluster.local",
                "--port", str(KUBELET_PORT + 10 * (i - 1)), "--healthz-port", str(KUBELET_HEALTHZ_PORT + 10 * (i - 1)),
            ])
        if hollow_nodes:
            self.start("kubelet-hollow", ["kubelet", "--kubeconfig", kc, "--runtime", "hollow", "--hostname-override",
                                          "hollow", "--hollow-nodes", str(hollow_nodes), "--healthz-port", "0"])

    def wait_nodes(self, names: list[str], timeout: float = 60.0) -> None:
        """Until every named Node is Ready (a Docker node is once its pod network exists)."""
        url = f"https://127.0.0.1:{APISERVER_PORT}/api/v1/nodes"
        token = (self.run / "tokens.csv").read_text().split(",", 1)[0]
        ctx = ssl.create_default_context(cafile=str(self.run / "pki" / "ca.crt"))

        def ready() -> set[str]:
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                    items = json.loads(r.read())["items"]
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

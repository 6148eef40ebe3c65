"""Real store clusters on loopback for tests and benchmarks: etcdnode and real etcd 3.4."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll predicate until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class StoreCluster:
    """N members as child processes; subclasses say how to start one member."""

    own_session = False   # each member in a process group of its own (to kill it with what it forked)

    name = "store"

    def __init__(self, tmp: Path, size: int = 3) -> None:
        self.tmp = Path(tmp)
        self.size = size
        self.client_ports = [free_port() for _ in range(size)]
        self.peer_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen | None] = [None] * size
        self.tmp.mkdir(parents=True, exist_ok=True)

    @property
    def client_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.client_ports]

    def data_dir(self, i: int) -> Path:
        return self.tmp / f"m{i}"

    def log_path(self, i: int) -> Path:
        return self.tmp / f"m{i}.log"

    def command(self, i: int) -> list[str]:
        raise NotImplementedError

    def start(self, i: int) -> None:
        log = open(self.log_path(i), "ab")
        self.procs[i] = subprocess.Popen(self.command(i), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=REPO, start_new_session=self.own_session)
        log.close()

    def start_all(self, timeout: float = 30.0) -> "StoreCluster":
        for i in range(self.size):
            self.start(i)
        for i in range(self.size):
            self.wait_healthy(i, timeout)
        return self

    def healthy(self, i: int) -> bool:
        try:
            with urllib.request.urlopen(self.client_urls[i] + "/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, i: int, timeout: float = 30.0) -> None:
        def ok() -> bool:
            proc = self.procs[i]
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{self.name} member {i} exited ({proc.returncode}):\n{self.log_tail(i)}")
            return self.healthy(i)

        try:
            wait_for(ok, timeout, f"{self.name} member {i} to be healthy")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{self.log_tail(i)}") from None

    def log_tail(self, i: int, n: int = 3000) -> str:
        try:
            return self.log_path(i).read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def status(self, i: int) -> dict:
        req = urllib.request.Request(self.client_urls[i] + "/v3/maintenance/status", data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=3) as r:
            return json.loads(r.read())

    def leader(self) -> int:
        """Index of the current leader, by asking live members."""
        def find():
            ids = {}
            leader = None
            for i in range(self.size):
                if self.procs[i] is None or self.procs[i].poll() is not None:
                    continue
                try:
                    st = self.status(i)
                except OSError:
                    continue
                ids[st["header"]["member_id"]] = i
                leader = st.get("leader") or leader
            return ids.get(leader) if leader in ids else None

        return wait_for(lambda: (find(),) if find() is not None else None, 15, "a leader")[0]

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        self.procs[i] = None

    def wipe(self, i: int) -> None:
        shutil.rmtree(self.data_dir(i), ignore_errors=True)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            self.procs[i] = None


class EtcdnodeCluster(StoreCluster):
    name = "etcdnode"

    def __init__(self, tmp: Path, size: int = 3, extra_args: list[str] | None = None) -> None:
        super().__init__(tmp, size)
        self.extra_args = extra_args or []
        self.password_file = self.tmp / "peer-password"
        self.password_file.write_text("test-secret\n")

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"m{i}=127.0.0.1:{p}" for i, p in enumerate(self.peer_ports))

    def command(self, i: int) -> list[str]:
        return [sys.executable, "-m", "etcdnode", "--name", f"m{i}", "--data-dir", str(self.data_dir(i)),
                "--listen-client-urls", self.client_urls[i], "--initial-cluster", self.initial_cluster,
                "--peer-password-file", str(self.password_file), *self.extra_args]


class EtcdCluster(StoreCluster):
    """Real etcd 3.4 from the Debian package, the compatibility and performance anchor."""

    name = "etcd"
    binary = shutil.which("etcd") or "/usr/bin/etcd"

    @classmethod
    def available(cls) -> bool:
        return os.access(cls.binary, os.X_OK)

    def command(self, i: int) -> list[str]:
        peers = ",".join(f"m{j}=http://127.0.0.1:{p}" for j, p in enumerate(self.peer_ports))
        url = self.client_urls[i]
        peer = f"http://127.0.0.1:{self.peer_ports[i]}"
        return [self.binary, "--name", f"m{i}", "--data-dir", str(self.data_dir(i)),
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", peers, "--initial-cluster-token", f"t{self.peer_ports[0]}",
                "--initial-cluster-state", "new", "--log-level", "warn"]

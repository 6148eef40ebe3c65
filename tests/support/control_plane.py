"""An apiserver process (on a real etcdnode cluster) for integration tests, plus kubectl helpers."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from kubeling.cli import main as kubeling_command

from .clusters import REPO, free_port, wait_for

KUBECTL = shutil.which("kubectl") or "kubectl"


def plain_kubectl(version: str) -> str | None:
    """The plain (non-dispatcher) kubectl binary of a minor version, e.g. '1.32', if installed."""
    try:
        files = subprocess.run(["dpkg", "-L", "kubectl"], capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    for f in files:
        if os.path.basename(f).startswith("kubectl") and version in f and os.access(f, os.X_OK) and not os.path.isdir(f):
            return f
    return None


class ApiServer:
    def __init__(self, tmp: Path, etcd_urls: list[str], port: int | None = None, cert_dir: Path | None = None,
                 tokens: Path | None = None, extra_args: list[str] | None = None, name: str = "apiserver") -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.etcd_urls = etcd_urls
        self.port = port or free_port()
        self.cert_dir = cert_dir or self.tmp / "pki"
        self.token = secrets.token_urlsafe(16)
        self.tokens = tokens or self.tmp / "tokens.csv"
        if not self.tokens.exists():
            self.tokens.write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        else:
            self.token = self.tokens.read_text().split(",", 1)[0]
        self.extra_args = extra_args or []
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.log = self.tmp / f"{name}.log"
        self.kubeconfig = self.tmp / f"{name}.kubeconfig"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.cert_dir / "ca.crt"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "apiserver", "--etcd-servers", ",".join(self.etcd_urls),
                "--bind-address", "127.0.0.1", "--secure-port", str(self.port), "--cert-dir", str(self.cert_dir),
                "--token-auth-file", str(self.tokens), "--service-cluster-ip-range", "10.96.0.0/16",
                "--service-node-port-range", "30000-32767", "--advertise-address", "127.0.0.1", *self.extra_args]

    def start(self, timeout: float = 60.0) -> "ApiServer":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=REPO)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"apiserver exited: {self.log.read_text()[-3000:]}")
            return self.ca.exists() and self.http("GET", "/readyz", auth=False)[0] == 200
        wait_for(ready, timeout, "apiserver ready")
        # `kubeling kubeconfig` run in this process: the same command without an interpreter start-up
        kubeling_command(["kubeconfig", "--server", self.url, "--cert-dir", str(self.cert_dir), "--token-file",
                          str(self.tokens), "-o", str(self.kubeconfig)])
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def http(self, method: str, path: str, body: bytes | dict | None = None, *, auth: bool = True,
             headers: dict | None = None, content_type: str = "application/json") -> tuple[int, dict | str, dict]:
        """A plain HTTPS request, verified against the cluster CA."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                raw, code, hdrs = r.read(), r.status, dict(r.headers)
        except urllib.error.HTTPError as e:
            raw, code, hdrs = e.read(), e.code, dict(e.headers)
        except OSError:
            return 0, "", {}
        try:
            return code, json.loads(raw), hdrs
        except ValueError:
            return code, raw.decode(errors="replace"), hdrs

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, binary: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.tmp)}
        p = subprocess.run([binary or KUBECTL, *args], input=input, capture_output=True, text=True, env=env,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p


class Component:
    """A `python -m <package>` process (scheduler, controllers, kubelet) logging to a file."""

    def __init__(self, tmp: Path, package: str, args: list[str], name: str | None = None) -> None:
        self.tmp, self.package, self.args = Path(tmp), package, args
        self.name = name or package
        self.log = self.tmp / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Component":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", self.package, *self.args], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

"""kubeconfig loading: server URL, CA, bearer token (inline or file), default namespace; and the
in-cluster config a pod gets (its ServiceAccount token, CA and namespace files, KUBERNETES_SERVICE_*)."""
from __future__ import annotations

import base64
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class ClientConfig:
    server: str
    token: str = ""
    ca_data: bytes | None = None
    insecure: bool = False
    namespace: str = "default"
    token_file: str = ""        # re-read every minute, as client-go does: the kubelet rotates projected tokens
    _read_at: float = 0.0

    def bearer(self) -> str:
        if self.token_file and time.monotonic() - self._read_at > 60:
            self.token = Path(self.token_file).read_text().strip()
            self._read_at = time.monotonic()
        return self.token

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        ctx = ssl.create_default_context(cadata=self.ca_data.decode() if self.ca_data else None)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def load_kubeconfig(path: str | os.PathLike | None = None, context: str | None = None) -> ClientConfig:
    """Read the current (or named) context of a kubeconfig file ($KUBECONFIG or ~/.kube/config)."""
    p = Path(path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config")
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read kubeconfig {p}: {e}") from None
    base = p.parent
    ctx_name = context or doc.get("current-context")
    ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == ctx_name), None)
    if ctx is None:
        raise ValueError(f"kubeconfig {p}: context {ctx_name!r} not found")
    cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), None)
    user = next((u.get("user") or {} for u in doc.get("users") or [] if u.get("name") == ctx.get("user")), {})
    if not cluster or not cluster.get("server"):
        raise ValueError(f"kubeconfig {p}: cluster {ctx.get('cluster')!r} has no server")
    ca = None
    if cluster.get("certificate-authority-data"):
        ca = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        ca = (base / cluster["certificate-authority"]).read_bytes()
    token = user.get("token") or ""
    token_file = str(base / user["tokenFile"]) if not token and user.get("tokenFile") else ""
    cfg = ClientConfig(cluster["server"].rstrip("/"), token, ca, bool(cluster.get("insecure-skip-tls-verify")),
                       ctx.get("namespace") or "default", token_file)
    cfg.bearer()
    return cfg


SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_config(sa_dir: Path = SERVICE_ACCOUNT) -> ClientConfig:
    """client-go's rest.InClusterConfig: the apiserver at KUBERNETES_SERVICE_HOST:PORT, trusted
    through the mounted CA, as the pod's ServiceAccount."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ValueError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                         "KUBERNETES_SERVICE_PORT must be defined")
    try:
        ca = (sa_dir / "ca.crt").read_bytes()
        namespace = (sa_dir / "namespace").read_text().strip() if (sa_dir / "namespace").exists() else "default"
    except OSError as e:
        raise ValueError(f"unable to load in-cluster configuration: {e}") from None
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    cfg = ClientConfig(server, "", ca, False, namespace, str(sa_dir / "token"))
    try:
        cfg.bearer()
    except OSError as e:
        raise ValueError(f"unable to load in-cluster configuration: {e}") from None
    return cfg

"""kubeconfig loading: server URL, CA, bearer token (inline or file), default namespace."""
from __future__ import annotations

import base64
import os
import ssl
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
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    return ClientConfig(cluster["server"].rstrip("/"), token, ca, bool(cluster.get("insecure-skip-tls-verify")),
                        ctx.get("namespace") or "default")

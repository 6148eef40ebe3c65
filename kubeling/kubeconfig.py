"""Writing and reading kubeconfig files (the admin config `kubeling kubeconfig` produces)."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def render(server: str, ca_pem: bytes, token: str, *, cluster: str = "kubeling", user: str = "admin",
           namespace: str | None = None) -> str:
    ctx: dict[str, Any] = {"cluster": cluster, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    doc = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": ctx}],
        "current-context": cluster,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write(path: Path, server: str, ca_pem: bytes, token: str, **kw: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(server, ca_pem, token, **kw))
    tmp.chmod(0o600)
    tmp.replace(path)


def first_token(token_file: Path, user: str | None = None) -> str:
    """The token of `user` (default: the first line) in a kube-apiserver token CSV."""
    import csv
    with open(token_file, newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and not row[0].startswith("#") and (user is None or row[1] == user):
                return row[0].strip()
    raise ValueError(f"{token_file}: no token" + (f" for user {user!r}" if user else ""))

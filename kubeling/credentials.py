"""A cluster's credentials, made once before any component starts (the compose cluster's bootstrap
job; kubeadm's `init phase certs/kubeconfig`): the CA, the ServiceAccount signing key pair, one
bearer token per component identity and a kubeconfig for each, and the store's peer password. Existing files are kept, so a
restarted cluster keeps its identities."""
from __future__ import annotations

import csv
import io
import secrets
from pathlib import Path

from . import kubeconfig, pki

# (kubeconfig name, user, groups): upstream's identities for each component
IDENTITIES = (
    ("admin", "kubernetes-admin", "system:masters"),
    ("scheduler", "system:kube-scheduler", ""),
    ("controller-manager", "system:kube-controller-manager", ""),
    ("kubelet", "system:node:kubelet", "system:nodes"),
    ("kube-proxy", "system:kube-proxy", "system:node-proxier"),
)


def ensure(directory: Path, server: str, admin_server: str) -> list[Path]:
    """Write what is missing under `directory`; the kubeconfigs reach `server` (inside the cluster),
    the admin one `admin_server` (from the host). Returns the kubeconfig paths."""
    directory.mkdir(parents=True, exist_ok=True)
    pki.ensure_ca(directory)
    pki.ensure_keypair(directory / "sa.key", directory / "sa.pub")
    peer = directory / "peer-password"      # the store members' shared secret
    if not peer.exists():
        peer.write_text(secrets.token_urlsafe(24) + "\n")
        peer.chmod(0o600)
    tokens_file = directory / "tokens.csv"
    tokens = {row[1]: row[0] for row in csv.reader(io.StringIO(tokens_file.read_text() if tokens_file.exists() else ""))
              if len(row) >= 2}
    lines = []
    for _, user, groups in IDENTITIES:
        tokens.setdefault(user, secrets.token_urlsafe(32))
        lines.append(f'{tokens[user]},{user},{user}' + (f',"{groups}"' if groups else ""))
    tokens_file.write_text("\n".join(lines) + "\n")
    tokens_file.chmod(0o600)
    ca_pem = (directory / pki.CA_CERT).read_bytes()
    paths = []
    for name, user, _ in IDENTITIES:
        path = directory / f"{name}.kubeconfig"
        kubeconfig.write(path, admin_server if name == "admin" else server, ca_pem, tokens[user], user=user)
        paths.append(path)
    return paths

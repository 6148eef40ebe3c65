"""The docker compose cluster (deploy/compose.yaml) as the e2e tests reach it: the real kubectl with
the ./kubeconfig that `deploy/cluster.sh up` writes."""
from __future__ import annotations

import subprocess

from .clusters import REPO

ROOT = REPO
KUBECONFIG = ROOT / "kubeconfig"
NODES = {"node-1": "10.210.0.31", "node-2": "10.210.0.32"}


def kubectl(*args: str, check: bool = True, input: str | None = None, timeout: float = 60) -> str:
    p = subprocess.run(["kubectl", "--kubeconfig", str(KUBECONFIG), *args], capture_output=True, text=True,
                       input=input, timeout=timeout, check=False)
    if check and p.returncode:
        raise AssertionError(f"kubectl {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def engine_up() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False

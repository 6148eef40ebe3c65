"""Fixtures of the e2e modules: one compose cluster for the e2e package (bringing it up takes
minutes; every test works in a namespace of its own and every fault test restores what it broke).
Package scope, not session: the cluster is removed once the e2e tests are done, so the rest of the
suite does not run beside a whole cluster on the same cores."""
from __future__ import annotations

import json
import secrets
import subprocess

import pytest

from tests.support.clusters import wait_for
from tests.support.compose import KUBECONFIG, NODES, ROOT, engine_up, kubectl


@pytest.fixture(scope="package")
def cluster():
    """`deploy/cluster.sh up` (idempotent, quick when it already runs), every node Ready and cluster
    DNS up; removed at the end only when it was brought up here (a cluster the user runs is left alone)."""
    if not engine_up():
        pytest.skip("no Docker engine (bash deploy/install-docker.sh)")
    running = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=kubeling"],
                             capture_output=True, text=True, check=False).stdout.split()
    up = subprocess.run(["bash", str(ROOT / "deploy" / "cluster.sh"), "up"], capture_output=True, text=True,
                        timeout=900, check=False)
    assert up.returncode == 0, up.stdout + up.stderr

    def answer(*args: str) -> str:
        """kubectl's output, or nothing while an apiserver that just started does not answer in time:
        one slow answer must not end a wait that has its own deadline."""
        try:
            return kubectl(*args, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            return ""

    def ready_nodes():
        out = answer("get", "nodes", "-o", "json")
        items = json.loads(out)["items"] if out else []
        return {n["metadata"]["name"] for n in items
                if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}
    wait_for(lambda: set(NODES) <= ready_nodes(), 180, "node-1 and node-2 Ready")
    wait_for(lambda: "2/2" in answer("-n", "kube-system", "get", "deploy", "coredns"), 240,
             "cluster DNS (coredns 2/2)")
    yield KUBECONFIG
    if not running:
        subprocess.run(["bash", str(ROOT / "deploy" / "cluster.sh"), "clean"], capture_output=True, timeout=300,
                       check=False)


@pytest.fixture
def ns(cluster, request):
    name = "e2e-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:30] + "-" + secrets.token_hex(2)
    kubectl("create", "namespace", name)
    wait_for(lambda: "default" in kubectl("-n", name, "get", "serviceaccounts", check=False), 30, "default SA")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)

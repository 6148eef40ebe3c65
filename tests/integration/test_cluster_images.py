"""The docker compose cluster's images (deploy/build-cluster-images.sh, docs/docker.md):
the control-plane image runs every component, the node image runs a nested Docker engine with
the options ARCHITECTURE §6 gives, and the registry image serves the Registry API, so a node
engine pushes busybox to it and pulls it back. Skipped when no Docker engine answers; fails,
saying what to run, when the images are missing. Everything created carries kubeling.io/test=1
and this run's id, and is removed after (containers, their volumes, the network)."""
from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.support.clusters import wait_for

RUN_ID = uuid.uuid4().hex[:12]
LABELS = ["--label", "kubeling.io/test=1", "--label", f"kubeling.io/test-run={RUN_ID}"]
CONTROL_PLANE, NODE, REGISTRY = "kubeling/control-plane:dev", "kubeling/node:dev", "kubeling/registry:2"
IMAGES = ["kubeling/debian:bookworm", "kubeling/python:bookworm", "kubeling/control-plane:deps", CONTROL_PLANE,
          "kubeling/node:deps", NODE, REGISTRY, "busybox:1.35"]
COMPONENTS = ["kubeling", "etcdnode", "apiserver", "scheduler", "controllers", "kubedns", "kubelet", "kubeproxy"]
# ARCHITECTURE §6: what a nested engine needs here (privileged cannot start on these machines).
NESTED = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
          "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
          "-v", "/sys/fs/cgroup:/sys/fs/cgroup", "--tmpfs", "/run"]


def docker(*args: str, timeout: float = 60, check: bool = True, input: bytes | None = None
           ) -> subprocess.CompletedProcess:
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    proc = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, **stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace').strip()}")
    return proc


def out(*args: str, timeout: float = 60) -> str:
    return docker(*args, timeout=timeout).stdout.decode().strip()


def cleanup() -> None:
    """Whatever this run created, found by its label: containers (with their volumes), networks."""
    ids = docker("ps", "-aq", "--filter", f"label=kubeling.io/test-run={RUN_ID}", check=False).stdout.split()
    if ids:
        # A graceful stop first: a nested engine then removes its own containers' cgroups.
        docker("stop", "-t", "10", *[i.decode() for i in ids], check=False)
        docker("rm", "-f", "-v", *[i.decode() for i in ids], check=False)
    for kind in ("volume", "network"):
        names = docker(kind, "ls", "-q", "--filter", f"label=kubeling.io/test-run={RUN_ID}", check=False).stdout.split()
        if names:
            docker(kind, "rm", *[n.decode() for n in names], check=False)


@pytest.fixture(scope="module")
def engine():
    try:
        info = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True,
                              timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        pytest.skip("no Docker engine answers")
    if info.returncode != 0:
        pytest.skip("no Docker engine answers (make deps or deploy/install-docker.sh starts one)")
    missing = [tag for tag in IMAGES if docker("image", "inspect", tag, check=False).returncode != 0]
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}: run deploy/build-images.sh (make images)")
    try:
        yield json.loads(info.stdout)
    finally:
        cleanup()


def layers(ref: str) -> list[str]:
    return json.loads(out("image", "inspect", "-f", "{{json .RootFS.Layers}}", ref))


def test_images_labelled_and_layered(engine):
    for tag in IMAGES:
        labels = json.loads(out("image", "inspect", "-f", "{{json .Config.Labels}}", tag)) or {}
        assert labels.get("io.kubeling.image") == "1" and labels.get("io.kubeling.hash"), (tag, labels)
    # The source is one layer on top of the dependencies, which the node image shares.
    deps, node_deps = layers("kubeling/control-plane:deps"), layers("kubeling/node:deps")
    assert layers(CONTROL_PLANE)[:-1] == deps
    assert layers(NODE)[:-1] == node_deps
    assert node_deps[:len(deps)] == deps and len(node_deps) == len(deps) + 1
    assert layers("kubeling/python:bookworm")[:1] == layers("kubeling/debian:bookworm")


def test_control_plane_runs_every_component(engine):
    # All --help runs in one container, in parallel: each import of a component must succeed.
    script = ("cd /tmp && for m in " + " ".join(COMPONENTS) + "; do "
              "(python3 -m $m --help >/tmp/$m.out 2>&1 && echo \"$m ok\" || { echo \"$m failed\"; cat /tmp/$m.out; }) & "
              "done; wait")
    result = out("run", "--rm", "--network", "none", *LABELS, CONTROL_PLANE, "sh", "-c", script, timeout=90)
    assert sorted(result.splitlines()) == sorted(f"{m} ok" for m in COMPONENTS), result
    config = json.loads(out("image", "inspect", "-f", "{{json .Config}}", CONTROL_PLANE))
    assert config["WorkingDir"] == "/opt/kubeling" and not config.get("Entrypoint"), config
    version = out("run", "--rm", "--network", "none", *LABELS, CONTROL_PLANE, "python3", "--version")
    assert version.startswith("Python 3.11."), version


def test_node_engine_pulls_from_registry(engine):
    """A node container runs its own engine (overlay2 on a named volume), loads the host's busybox,
    pushes it to a registry container and pulls it back by the registry's name, then runs it."""
    net, vol = f"kubeling-test-{RUN_ID}", f"kubeling-test-{RUN_ID}-node"
    docker("network", "create", *LABELS, net)
    docker("volume", "create", *LABELS, vol)
    docker("run", "-d", "--name", f"kubeling-test-{RUN_ID}-registry", "--network", net, "--network-alias", "registry",
           *LABELS, REGISTRY)
    node = f"kubeling-test-{RUN_ID}-node"
    docker("run", "-d", "--name", node, "--network", net, *LABELS, *NESTED, "-v", f"{vol}:/var/lib/docker",
           NODE, "dockerd", "--insecure-registry", "registry:5000")

    def nested(*args: str, check: bool = True, timeout: float = 60, input: bytes | None = None):
        return docker("exec", "-i", node, "docker", *args, check=check, timeout=timeout, input=input)

    def engine_up():
        if out("inspect", "-f", "{{.State.Running}}", node) != "true":
            raise AssertionError(f"the node container stopped: {docker('logs', '--tail', '5', node).stderr.decode()}")
        return nested("info", "--format", "{{.Driver}}", check=False).returncode == 0
    wait_for(engine_up, 60, "the node's nested dockerd to answer", interval=0.2)
    assert nested("info", "--format", "{{.Driver}}").stdout.decode().strip() == "overlay2"

    # The registry answers the API v2 probe from the node, as the node engine will ask it.
    probe = ("import urllib.request as u; r = u.urlopen('http://registry:5000/v2/', timeout=5); "
             "print(r.status, r.headers['Docker-Distribution-Api-Version'])")
    wait_for(lambda: docker("exec", node, "python3", "-c", probe, check=False).returncode == 0, 30,
             "the registry to serve /v2/", interval=0.2)
    assert out("exec", node, "python3", "-c", probe) == "200 registry/2.0"

    image = docker("save", "busybox:1.35", timeout=60).stdout
    nested("load", input=image)
    pushed = "registry:5000/library/busybox:1.35"
    nested("tag", "busybox:1.35", pushed)
    nested("push", pushed, timeout=60)
    nested("rmi", "busybox:1.35", pushed)
    assert nested("image", "inspect", pushed, check=False).returncode != 0
    nested("pull", pushed, timeout=60)
    ran = nested("run", "--rm", "--network", "none", pushed, "echo", "pulled from the registry").stdout.decode()
    assert ran.strip() == "pulled from the registry"
    tags = out("exec", node, "python3", "-c",
               "import urllib.request as u; print(u.urlopen('http://registry:5000/v2/library/busybox/tags/list').read().decode())")
    assert json.loads(tags) == {"name": "library/busybox", "tags": ["1.35"]}

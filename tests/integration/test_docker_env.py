"""The machine's Docker engine and the locally built images (deploy/install-docker.sh,
deploy/build-images.sh, docs/docker.md): busybox runs, the pause sandbox stops at once on
SIGTERM, nginx serves HTTP on a bridge network, the Docker SDK negotiates with the engine.
Nothing is skipped: without an engine or the images these tests fail and say what to run.
Everything created carries io.kubeling.test=1 and this run's id, and is removed after."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.support.clusters import wait_for

RUN_ID = uuid.uuid4().hex[:12]
LABELS = ["--label", "io.kubeling.test=1", "--label", f"io.kubeling.test.run={RUN_ID}"]
IMAGES = {
    "pause": ["kubeling/pause:3.10", "registry.k8s.io/pause:3.10"],
    "busybox": ["busybox:latest", "busybox:1.35", "docker.io/library/busybox:latest"],
    "nginx": ["nginx:latest", "nginx:1.25", "kubeling/http-echo:latest"],
}
# Only the containers this test made, and only over the host's own bridge: no proxy.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


@pytest.fixture(scope="module")
def engine():
    try:
        info = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True,
                              timeout=30)
    except FileNotFoundError:
        pytest.fail("no docker client on PATH")
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or [""])[-1]
        pytest.fail(f"no Docker engine answers (docker info failed: {last}): run `make deps` or deploy/install-docker.sh")
    missing = [tag for tags in IMAGES.values() for tag in tags
               if docker("image", "inspect", tag, check=False).returncode != 0]
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}: run `make deps` or deploy/build-images.sh")
    yield json.loads(info.stdout)
    # The finalizer: whatever this run created, found by its label.
    ids = docker("ps", "-aq", "--filter", f"label=io.kubeling.test.run={RUN_ID}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    nets = docker("network", "ls", "-q", "--filter", f"label=io.kubeling.test.run={RUN_ID}",
                  check=False).stdout.split()
    if nets:
        docker("network", "rm", *nets, check=False)


def inspect(ref: str) -> dict:
    return json.loads(docker("inspect", ref).stdout)[0]


def test_engine_storage_driver(engine):
    assert engine["Driver"] in ("overlay2", "fuse-overlayfs", "vfs"), engine["Driver"]


def test_images_are_local_and_labelled(engine):
    for name, tags in IMAGES.items():
        ids = {inspect(tag)["Id"] for tag in tags}
        assert len(ids) == 1, f"{name}: tags {tags} name different images"
        labels = inspect(tags[0])["Config"]["Labels"] or {}
        assert labels.get("io.kubeling.image") == "1", (name, labels)
        assert labels.get("io.kubeling.hash"), (name, labels)


def test_busybox_runs(engine):
    out = docker("run", "--rm", *LABELS, "busybox", "echo", "ok").stdout
    assert out == "ok\n"
    # applets, users and a sticky /tmp, as in the official image
    out = docker("run", "--rm", *LABELS, "busybox", "sh", "-c",
                 "id -un; id -u nobody; stat -c %a /tmp; which wget nslookup").stdout.split()
    assert out[:3] == ["root", "65534", "1777"], out
    assert out[3:] == ["/usr/bin/wget", "/usr/bin/nslookup"], out


def test_pause_stops_promptly_on_sigterm(engine):
    cid = docker("run", "-d", *LABELS, "kubeling/pause:3.10").stdout.strip()
    wait_for(lambda: inspect(cid)["State"]["Running"], 10, "the pause container to run")
    started = time.monotonic()
    docker("stop", "-t", "10", cid)
    took = time.monotonic() - started
    state = inspect(cid)["State"]
    assert took < 2, f"docker stop took {took:.2f}s: pause did not exit on SIGTERM"
    assert state["ExitCode"] == 0, state
    assert inspect(cid)["Config"]["User"] == "65535:65535"
    docker("rm", cid)


def test_nginx_serves_http_on_a_bridge_network(engine):
    net = f"kubeling-test-{RUN_ID}"
    docker("network", "create", *LABELS, net)
    cid = docker("run", "-d", *LABELS, "--network", net, "nginx:latest").stdout.strip()
    ip = wait_for(lambda: inspect(cid)["NetworkSettings"]["Networks"][net]["IPAddress"], 10,
                  "the nginx container's address")
    url = f"http://{ip}:80/"

    def get():
        try:
            with DIRECT.open(url, timeout=2) as resp:
                return resp.status, resp.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    status, body = wait_for(get, 15, f"nginx to answer on {url}", interval=0.1)
    assert status == 200
    assert "<title>Welcome to nginx!</title>" in body
    with pytest.raises(urllib.error.HTTPError) as err:
        DIRECT.open(url + "no-such-page", timeout=5)
    assert err.value.code == 404
    # the access log goes to the container's stdout, as the official image's
    wait_for(lambda: '"GET / HTTP/1.1" 200' in docker("logs", cid).stdout, 10, "the access log line")
    # STOPSIGNAL SIGQUIT: a graceful and prompt stop
    started = time.monotonic()
    docker("stop", "-t", "10", cid)
    assert time.monotonic() - started < 2
    assert inspect(cid)["State"]["ExitCode"] == 0
    docker("rm", cid)
    docker("network", "rm", net)


def test_docker_sdk_negotiates_with_the_engine(engine):
    import docker as sdk

    client = sdk.from_env()
    try:
        assert client.ping()
        assert client.version()["ApiVersion"] == client.api.api_version
        assert client.images.get("busybox:latest").labels["io.kubeling.image"] == "1"
    finally:
        client.close()

"""The kubelet's HTTPS API (kubelet/server.py) on real Docker, without a kubelet: busybox containers
labelled as the Docker runtime labels a pod's containers, a KubeletServer on a free loopback port
(in a thread with its own event loop), and aiohttp clients speaking the channel protocols. Then the
same server behind a real apiserver: a Node registered by hand pointing at it, a Pod bound to that
node, and the real kubectl and the official Python client for logs and exec.

Every container carries `io.kubeling.test=1` and a per-run label and is removed afterwards.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import ssl
import threading
import time
from typing import Iterator

import aiohttp
import pytest

from kubeling.serving import ListenError
from tests.support.clusters import free_port, wait_for
from tests.support.control_plane import plain_kubectl

docker = pytest.importorskip("docker")

RUN = f"kapi-{secrets.token_hex(3)}"
TEST_LABELS = {"io.kubeling.test": "1", "io.kubeling.run": RUN}
STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")


def engine():
    try:
        client = docker.from_env()
        client.ping()
        return client.api
    except docker.errors.DockerException:
        return None


@pytest.fixture(scope="module")
def api():
    client = engine()
    if client is None:
        pytest.skip("no Docker engine (bash deploy/install-docker.sh && bash deploy/build-images.sh)")
    try:
        yield client
    finally:
        for c in client.containers(all=True, filters={"label": f"io.kubeling.run={RUN}"}):
            client.remove_container(c["Id"], force=True)


def pod_labels(ns: str, pod: str, container: str, attempt: int = 0, uid: str = "") -> dict[str, str]:
    return {"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod, "io.kubernetes.pod.uid": uid or f"uid-{pod}",
            "io.kubernetes.container.name": container, "io.kubernetes.container.restartCount": str(attempt),
            "io.kubernetes.docker.type": "container", **TEST_LABELS}


def run(api, script: str, labels: dict[str, str], **kwargs) -> str:
    cid = api.create_container("busybox", ["sh", "-c", script], labels=labels, **kwargs)["Id"]
    api.start(cid)
    return cid


def logs_contain(api, cid: str, text: bytes) -> bool:
    return text in api.logs(cid)


class ServerThread:
    """A KubeletServer on its own event loop in a thread, so synchronous tests (kubectl) and the
    tests' own event loop can both reach it."""

    def __init__(self, server) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kubelet-api", daemon=True)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        self.call(self.server.start())
        return self

    def __exit__(self, *exc) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def kubelet(api, tmp_path_factory) -> Iterator[ServerThread]:
    from kubelet.containers import DockerContainers
    from kubelet.server import KubeletServer
    from kubelet.stats import DockerStats
    pods = [{"metadata": {"name": "web", "namespace": "t"}}]
    containers = DockerContainers(api)
    stats = DockerStats(containers, "kapi-node")
    server = KubeletServer(containers, "127.0.0.1", free_port(), tmp_path_factory.mktemp("kubelet-pki"),
                           pods=lambda: pods, stats=stats.summary, node_name="kapi-node")
    try:
        with ServerThread(server) as thread:
            yield thread
    finally:
        stats.close()


@pytest.fixture(scope="module")
def web(api):
    """ns t, pod web: container `main` prints two lines (one on stderr) and waits; `looper` prints
    `later` whenever /tmp/go appears (for follow)."""
    main = run(api, "echo hello; echo oops >&2; exec sleep 3600", pod_labels("t", "web", "main"))
    looper = run(api, "echo start; while true; do if [ -f /tmp/go ]; then echo later; rm /tmp/go; fi; sleep 0.1; done",
                 pod_labels("t", "web", "looper"))
    wait_for(lambda: logs_contain(api, main, b"oops") and logs_contain(api, looper, b"start"), 30, "web's first lines")
    return {"main": main, "looper": looper}


def base(kubelet: ServerThread) -> str:
    return f"https://127.0.0.1:{kubelet.server.port}"


def insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def get(kubelet: ServerThread, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure())) as s:
        async with s.get(base(kubelet) + path) as r:
            return r.status, await r.read()


async def session(kubelet: ServerThread, path: str, protocol: str, send: list[bytes] = (),
                  timeout: float = 30) -> tuple[dict[int, bytes], list[bytes]]:
    """Open a websocket exec/attach, send `send` messages, read until the server closes: output per
    channel and the raw messages."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure())) as s:
        async with s.ws_connect(base(kubelet).replace("https", "wss") + path, protocols=[protocol]) as ws:
            assert ws.protocol == protocol
            for m in send:
                await ws.send_bytes(m)
            messages = []
            async with asyncio.timeout(timeout):
                async for msg in ws:
                    messages.append(msg.data)
    out: dict[int, bytes] = {}
    for m in messages:
        channel, data = (int(m[0]), base64.b64decode(m[1:])) if isinstance(m, str) else (m[0], m[1:])
        out[channel] = out.get(channel, b"") + data
    return out, messages


def exec_path(pod: str, container: str, *command: str, **flags: bool) -> str:
    from urllib.parse import urlencode
    query = [("command", c) for c in command] + [(k, "true") for k, v in flags.items() if v]
    return f"/exec/t/{pod}/{container}?" + urlencode(query)


# ---- plain endpoints and logs ----------------------------------------------------------------

async def test_healthz_and_pods(kubelet):
    assert await get(kubelet, "/healthz") == (200, b"ok")
    code, body = await get(kubelet, "/pods")
    assert code == 200 and json.loads(body) == {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                                "items": [{"metadata": {"name": "web", "namespace": "t"}}]}


async def test_logs_plain_tail_timestamps_limit(kubelet, web):
    code, body = await get(kubelet, "/containerLogs/t/web/main")
    assert code == 200 and sorted(body.splitlines()) == [b"hello", b"oops"]
    code, body = await get(kubelet, "/containerLogs/t/web/main?tailLines=1")
    assert code == 200 and len(body.splitlines()) == 1
    code, body = await get(kubelet, "/containerLogs/t/web/main?timestamps=true")
    lines = body.splitlines()
    assert code == 200 and len(lines) == 2 and all(STAMP.match(line) for line in lines), body
    assert sorted(line.split(b" ", 1)[1] for line in lines) == [b"hello", b"oops"]
    code, body = await get(kubelet, "/containerLogs/t/web/main?limitBytes=3")
    assert code == 200 and len(body) == 3
    code, body = await get(kubelet, "/containerLogs/t/web/main?sinceSeconds=3600")
    assert code == 200 and len(body.splitlines()) == 2
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert await get(kubelet, f"/containerLogs/t/web/main?sinceTime={future}") == (200, b"")


async def test_log_errors(kubelet, web):
    assert await get(kubelet, "/containerLogs/t/nopod/main") == (404, b'pod "nopod" does not exist')
    assert await get(kubelet, "/containerLogs/t/web/nope") == (404, b'container "nope" not found in pod "web"')
    assert await get(kubelet, "/containerLogs/t/web/main?previous=true") == (
        400, b'previous terminated container "main" in pod "web" not found')
    code, body = await get(kubelet, "/containerLogs/t/web/main?tailLines=-1")
    assert code == 400 and b"tailLines" in body
    code, body = await get(kubelet, "/containerLogs/t/web/main?sinceSeconds=5&sinceTime=2020-01-01T00:00:00Z")
    assert code == 400 and b"at most one of" in body


async def test_follow_receives_a_line_written_later(kubelet, web, api):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure())) as s:
        async with s.get(base(kubelet) + "/containerLogs/t/web/looper?follow=true") as r:
            assert r.status == 200
            assert await asyncio.wait_for(r.content.readline(), 30) == b"start\n"
            eid = api.exec_create(web["looper"], ["touch", "/tmp/go"])["Id"]
            await asyncio.to_thread(api.exec_start, eid)
            assert await asyncio.wait_for(r.content.readline(), 30) == b"later\n"


async def test_follow_outlives_the_engine_clients_timeout(web, tmp_path):
    """A followed log that stays quiet longer than the Docker client's read timeout (1 s here) stays
    open and still gets the next line (the SDK lifts the timeout on log streams)."""
    from kubelet.containers import DockerContainers
    from kubelet.server import KubeletServer
    quick = docker.from_env(timeout=1).api
    server = KubeletServer(DockerContainers(quick), "127.0.0.1", 0, tmp_path)
    await server.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure())) as s:
            async with s.get(f"https://127.0.0.1:{server.port}/containerLogs/t/web/looper?follow=true&tailLines=0") as r:
                assert r.status == 200
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(r.content.readline(), 2.5)
                eid = quick.exec_create(web["looper"], ["touch", "/tmp/go"])["Id"]
                await asyncio.to_thread(quick.exec_start, eid)
                assert await asyncio.wait_for(r.content.readline(), 30) == b"later\n"
    finally:
        await server.stop()


def test_previous_after_a_restart(kubelet, api):
    first = run(api, "echo first-run; exit 1", pod_labels("t", "crashy", "c", attempt=0))
    wait_for(lambda: api.inspect_container(first)["State"]["Status"] == "exited", 30, "the first run to exit")
    run(api, "echo second-run; exec sleep 3600", pod_labels("t", "crashy", "c", attempt=1))
    assert asyncio.run(get(kubelet, "/containerLogs/t/crashy/c?previous=true")) == (200, b"first-run\n")
    wait_for(lambda: asyncio.run(get(kubelet, "/containerLogs/t/crashy/c")) == (200, b"second-run\n"), 30,
             "the second run's log")


async def test_stats_summary(kubelet, web, api):
    burner = run(api, "while true; do :; done", pod_labels("t", "burner", "c"))
    code, body = await get(kubelet, "/stats/summary")
    assert code == 200
    summary = json.loads(body)
    node = summary["node"]
    assert node["nodeName"] == "kapi-node" and node["cpu"]["usageNanoCores"] > 0
    assert 0 < node["memory"]["workingSetBytes"] <= node["memory"]["usageBytes"]
    pods = {(p["podRef"]["namespace"], p["podRef"]["name"]): p for p in summary["pods"]}
    web_pod = pods[("t", "web")]
    assert web_pod["podRef"]["uid"] == "uid-web"
    assert sorted(c["name"] for c in web_pod["containers"]) == ["looper", "main"]
    for c in web_pod["containers"]:
        assert c["cpu"]["usageNanoCores"] >= 0 and c["memory"]["workingSetBytes"] > 0
        assert c["cpu"]["usageCoreNanoSeconds"] > 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c["cpu"]["time"])
    busy = pods[("t", "burner")]["cpu"]["usageNanoCores"]
    assert busy > 200_000_000, f"a busy loop uses {busy} nanocores"      # a fifth of a core at the very least
    api.remove_container(burner, force=True)


# ---- exec and attach ---------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v5.channel.k8s.io"])
async def test_exec_output_and_exit_code(kubelet, web, protocol):
    out, messages = await session(kubelet, exec_path("web", "main", "sh", "-c", "echo hi; echo err >&2; exit 3",
                                                     stdout=True, stderr=True), protocol)
    assert messages[0] == b"\x01"       # the empty message on the first writable channel
    assert out[1] == b"hi\n" and out[2] == b"err\n"
    assert json.loads(out[3]) == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": "command terminated with non-zero exit code: Error executing in Docker Container: 3",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
    out, _ = await session(kubelet, exec_path("web", "main", "true", stdout=True), protocol)
    assert json.loads(out[3]) == {"metadata": {}, "status": "Success"}


async def test_exec_stdin_closed_by_v5_close_signal(kubelet, web):
    out, _ = await session(kubelet, exec_path("web", "main", "cat", stdin=True, stdout=True, stderr=True),
                           "v5.channel.k8s.io", send=[b"\x00hello ", b"\x00world\n", b"\xff\x00"])
    assert out[1] == b"hello world\n" and json.loads(out[3])["status"] == "Success"


async def test_exec_stdin_v4(kubelet, web):
    out, _ = await session(kubelet, exec_path("web", "main", "head", "-n1", stdin=True, stdout=True),
                           "v4.channel.k8s.io", send=[b"\x00one line\n"])
    assert out[1] == b"one line\n" and json.loads(out[3])["status"] == "Success"


async def test_exec_older_protocols(kubelet, web):
    out, _ = await session(kubelet, exec_path("web", "main", "sh", "-c", "echo v1; exit 2", stdout=True),
                           "channel.k8s.io")
    assert out[1] == b"v1\n" and out[3] == b"command terminated with non-zero exit code: Error executing in Docker Container: 2"
    out, messages = await session(kubelet, exec_path("web", "main", "echo", "b64", stdout=True),
                                  "v4.base64.channel.k8s.io")
    assert messages[:2] == ["1", "1YjY0Cg=="] and json.loads(out[3]) == {"metadata": {}, "status": "Success"}


async def test_exec_tty_and_resize(kubelet, web):
    resize = b"\x04" + json.dumps({"Width": 123, "Height": 45}).encode()
    out, _ = await session(kubelet, exec_path("web", "main", "sh", "-c", "read x; stty size", stdin=True,
                                              stdout=True, stderr=True, tty=True),
                           "v5.channel.k8s.io", send=[resize, b"\x00go\r"])
    assert b"45 123" in out[1] and 2 not in out      # a tty has no separate stderr
    assert json.loads(out[3])["status"] == "Success"


async def test_attach(kubelet, api):
    """Two attaches in turn to a container whose stdin stays open (stdin: true, stdinOnce: false;
    the SDK's create_container would set StdinOnce whenever stdin is open): leaving the first
    leaves the process and its stdin."""
    config = {"Image": "busybox", "Cmd": ["sh", "-c", "while read line; do echo got:$line; done"], "OpenStdin": True,
              "StdinOnce": False, "Labels": pod_labels("t", "talker", "c")}
    api.start(api.create_container_from_config(config, None)["Id"])
    url = base(kubelet).replace("https", "wss") + "/attach/t/talker/c?stdin=true&stdout=true&stderr=true"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure())) as s:
        for word in (b"ping", b"again"):
            async with s.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
                assert (await ws.receive_bytes(timeout=30)) == b"\x01"
                await ws.send_bytes(b"\x00" + word + b"\n")
                assert (await ws.receive_bytes(timeout=30)) == b"\x01got:" + word + b"\n"


async def test_exec_errors(kubelet, api, web):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure())) as s:
        url = base(kubelet).replace("https", "wss")
        for path, code, text in [(exec_path("nopod", "main", "true", stdout=True), 404, "pod does not exist"),
                                 (exec_path("web", "nope", "true", stdout=True), 500, 'container not found ("nope")')]:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect(url + path, protocols=["v4.channel.k8s.io"])
            assert e.value.status == code
            async with s.get(base(kubelet) + path, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                            "Sec-WebSocket-Version": "13",
                                                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
                assert (r.status, await r.text()) == (code, text)
        async with s.post(base(kubelet) + exec_path("web", "main", "true", stdout=True)) as r:
            assert r.status == 400 and "SPDY is not supported" in await r.text()


def test_taken_port_and_cluster_ca(kubelet, api, tmp_path):
    from kubelet.containers import DockerContainers
    from kubelet.server import KubeletServer
    from kubeling import pki
    taken = KubeletServer(DockerContainers(api), "127.0.0.1", kubelet.server.port, tmp_path / "a")
    with pytest.raises(ListenError, match=rf"^listen tcp 127.0.0.1:{kubelet.server.port}: bind: address already in use$"):
        asyncio.run(taken.start())
    pki.ensure_ca(tmp_path / "cluster")
    ca = (tmp_path / "cluster" / "ca.crt", tmp_path / "cluster" / "ca.key")
    signed = KubeletServer(DockerContainers(api), "127.0.0.1", free_port(), tmp_path / "b", ca=ca, node_name="n1")
    with ServerThread(signed):
        verified = ssl.create_default_context(cafile=str(ca[0]))

        async def healthz() -> bytes:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=verified)) as s:
                async with s.get(f"https://127.0.0.1:{signed.port}/healthz") as r:
                    return await r.read()
        assert asyncio.run(healthz()) == b"ok"


# ---- through the apiserver: the real kubectl and the Python client ------------------------------------

@pytest.fixture(scope="module")
def cluster(kubelet, control_plane):
    """The shared test apiserver with a Node registered by hand: InternalIP 127.0.0.1 and the kubelet
    port of this module's KubeletServer."""
    status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
              "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.server.port}}}
    code, body, _ = control_plane.http("POST", "/api/v1/nodes", {"metadata": {"name": "kapi-node"}, "status": status})
    assert code == 201, body
    if body["status"].get("daemonEndpoints") != status["daemonEndpoints"]:     # status dropped on create
        code, body, _ = control_plane.http("PUT", "/api/v1/nodes/kapi-node/status", {**body, "status": status})
        assert code == 200, body
    return control_plane


@pytest.fixture(scope="module")
def e2e_pod(cluster, api):
    """Pod `default/e2e` bound to the hand-made node, status Running, backed by a labelled container."""
    pod = {"metadata": {"name": "e2e"}, "spec": {"nodeName": "kapi-node", "containers": [
        {"name": "app", "image": "busybox", "command": ["sh", "-c", "echo from-e2e; exec sleep 3600"]}]}}
    code, body, _ = cluster.http("POST", "/api/v1/namespaces/default/pods", pod)
    assert code == 201, body
    cid = run(api, "echo from-e2e; exec sleep 3600", pod_labels("default", "e2e", "app", uid=body["metadata"]["uid"]))
    wait_for(lambda: logs_contain(api, cid, b"from-e2e"), 30, "the e2e container's line")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body["status"] = {"phase": "Running", "hostIP": "127.0.0.1", "containerStatuses": [
        {"name": "app", "ready": True, "restartCount": 0, "image": "busybox", "imageID": "docker://busybox",
         "containerID": f"docker://{cid}", "started": True, "state": {"running": {"startedAt": now}}}]}
    code, body, _ = cluster.http("PUT", "/api/v1/namespaces/default/pods/e2e/status", body)
    assert code == 200, body
    return cid


def test_kubectl_logs(cluster, e2e_pod):
    assert cluster.kubectl("logs", "e2e").stdout == "from-e2e\n"
    out = cluster.kubectl("logs", "e2e", "--tail=1", "--timestamps").stdout
    assert STAMP.match(out.encode()) and out.endswith(" from-e2e\n")
    p = cluster.kubectl("logs", "e2e", "--previous", check=False)
    assert (p.returncode, p.stderr) == (
        1, 'Error from server (BadRequest): previous terminated container "app" in pod "e2e" not found\n')


@pytest.mark.parametrize("version", ["1.30", "1.32", "1.33"])
def test_kubectl_exec(cluster, e2e_pod, version):
    """kubectl 1.30 and later speak websockets (v5.channel.k8s.io) for exec."""
    binary = plain_kubectl(version)
    if binary is None:
        pytest.skip(f"kubectl {version} is not installed")
    p = cluster.kubectl("exec", "e2e", "--", "sh", "-c", "echo hi; echo err >&2; exit 3", check=False, binary=binary)
    assert (p.returncode, p.stdout) == (3, "hi\n"), p.stderr
    assert p.stderr == "err\ncommand terminated with exit code 3\n"
    p = cluster.kubectl("exec", "-i", "e2e", "--", "cat", input="piped\n", binary=binary)
    assert p.stdout == "piped\n"


def test_python_client_stream_returncode(cluster, e2e_pod):
    from kubernetes import client, config
    from kubernetes.stream import stream
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    ws = stream(core.connect_get_namespaced_pod_exec, "e2e", "default", command=["sh", "-c", "echo out; exit 3"],
                stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    ws.run_forever(timeout=30)
    assert ws.returncode == 3
    assert stream(core.connect_get_namespaced_pod_exec, "e2e", "default", command=["echo", "ok"],
                  stderr=True, stdin=False, stdout=True, tty=False) == "ok\n"
    assert core.read_namespaced_pod_log("e2e", "default") == "from-e2e\n"


def test_kubectl_exec_tty_and_resize(cluster, e2e_pod):
    """`kubectl exec -it` from a terminal: the pod's tty takes the terminal's size, and follows it when
    the terminal is resized; the exit code still comes back."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    # busybox's stty fails on a terminal of size 0x0 (before the first resize arrives)
    script = ('sz() { stty size 2>/dev/null; }; until [ -n "$(sz)" ]; do sleep 0.05; done; s=$(sz); echo "size $s"; '
              'while [ "$(sz)" = "$s" ]; do sleep 0.05; done; echo "size $(sz)"; exit 4')
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.tmp)}
    pid, fd = pty.fork()
    if pid == 0:    # the child: a terminal of 33x111 before kubectl reads it
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        os.execvpe("kubectl", ["kubectl", "exec", "-it", "e2e", "--", "sh", "-c", script], env)
    output = b""
    resized = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:     # EIO: kubectl exited and the terminal closed
                    break
                if not chunk:
                    break
                output += chunk
            if b"size 33 111" in output and not resized:
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
                resized = True
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert b"size 33 111" in output and b"size 40 132" in output, output
    assert os.waitstatus_to_exitcode(status) == 4, output


def test_kubectl_cp_both_ways(cluster, e2e_pod, tmp_path):
    """cp is exec of tar: binary data on stdin ended by the v5 CLOSE signal, and on stdout."""
    data = bytes(range(256)) * 4096     # 1 MiB, every byte value
    (tmp_path / "blob").write_bytes(data)
    cluster.kubectl("cp", str(tmp_path / "blob"), "e2e:/tmp/blob")
    cluster.kubectl("cp", "e2e:/tmp/blob", str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data

"""pods/exec and pods/portforward through a real apiserver, with every client issue 10 names:
kubectl 1.27 (SPDY/3.1 upgrades), kubectl 1.33 (websockets for exec, SPDY tunneled in a websocket
for port-forward; SPDY again when its websocket feature gates are off), and the official Python
client (websocket `v4.channel.k8s.io` exec and its port-forward channels).

Behind the apiserver, on real Docker and loopback: the kubelet's API as it exists in pieces — a
KubeletServer (kubelet/server.py) over the engine's containers for exec, and kubelet/portforward.py's
handler on a server of its own — with a Node registered by hand for each and Pods bound to them.
Containers carry `io.kubeling.test=1` and a per-run label and are removed afterwards.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer, plain_kubectl

docker = pytest.importorskip("docker")

RUN = f"xp-{secrets.token_hex(3)}"        # also the namespace: the engine may hold other runs' pods
LABELS = {"io.kubeling.test": "1", "io.kubeling.run": RUN}


class KubeletPieces:
    """The kubelet API's pieces on one event loop in a thread: KubeletServer (exec, attach, logs)
    and the /portForward handler on its own TLS port, both over this run's containers."""

    def __init__(self, api, cert_dir: Path) -> None:
        from kubelet.containers import DockerContainers
        from kubelet.server import KubeletServer
        self.pods: list[dict] = []
        self.server = KubeletServer(DockerContainers(api), "127.0.0.1", free_port(), cert_dir / "exec",
                                    pods=lambda: self.pods, node_name="xp-exec")
        self.cert_dir = cert_dir / "portforward"
        self.pf_port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kubelet-pieces", daemon=True)
        self.runner = None

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def _start_port_forward(self) -> None:
        from aiohttp import web

        from kubelet import portforward
        from kubelet.server import ensure_serving_cert
        crt, key = ensure_serving_cert(self.cert_dir, "xp-pf", ["127.0.0.1"], None)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(crt, key)
        app = web.Application()
        app.router.add_get("/portForward/{namespace}/{pod}", portforward.handler(lambda: self.pods, set()))
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.pf_port, ssl_context=context).start()

    def __enter__(self) -> Self:
        self.thread.start()
        self.call(self.server.start())
        self.call(self._start_port_forward())
        return self

    def __exit__(self, *exc) -> None:
        self.call(self.server.stop())
        if self.runner is not None:
            self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def add_node(api: ApiServer, name: str, port: int) -> None:
    node = {"metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    code, body, _ = api.http("POST", "/api/v1/nodes", node)
    assert code == 201, body
    if body["status"].get("daemonEndpoints") != node["status"]["daemonEndpoints"]:
        code, body, _ = api.http("PUT", f"/api/v1/nodes/{name}/status", {**body, "status": node["status"]})
        assert code == 200, body


def add_pod(api: ApiServer, name: str, node: str, image: str, pod_ip: str = "") -> dict:
    """A Pod bound to `node` and reported Running (nobody else runs it here)."""
    pod = {"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "main", "image": image}]}}
    code, body, _ = api.http("POST", f"/api/v1/namespaces/{RUN}/pods", pod)
    assert code == 201, body
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body["status"] = {"phase": "Running", "hostIP": "127.0.0.1", **({"podIP": pod_ip} if pod_ip else {}),
                      "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0, "image": image,
                                             "imageID": f"docker://{image}", "started": True,
                                             "state": {"running": {"startedAt": now}}}]}
    code, body, _ = api.http("PUT", f"/api/v1/namespaces/{RUN}/pods/{name}/status", body)
    assert code == 200, body
    return body


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[ApiServer]:
    try:
        client = docker.from_env().api
        client.ping()
    except docker.errors.DockerException:
        pytest.skip("no Docker engine (bash deploy/install-docker.sh && bash deploy/build-images.sh)")
    tmp = tmp_path_factory.mktemp("exec-protocols")
    store = EtcdnodeCluster(tmp / "store", size=1)
    server = None
    try:
        with KubeletPieces(client, tmp) as pieces:
            store.start_all()
            server = ApiServer(tmp / "api", store.client_urls).start()
            assert server.http("POST", "/api/v1/namespaces", {"metadata": {"name": RUN}})[0] == 201
            add_node(server, "xp-exec", pieces.server.port)
            add_node(server, "xp-pf", pieces.pf_port)
            box = add_pod(server, "box", "xp-exec", "busybox")
            cid = client.create_container("busybox", ["sh", "-c", "echo ready; exec sleep 3600"], labels={
                **LABELS, "io.kubernetes.pod.namespace": RUN, "io.kubernetes.pod.name": "box",
                "io.kubernetes.pod.uid": box["metadata"]["uid"], "io.kubernetes.container.name": "main",
                "io.kubernetes.container.restartCount": "0", "io.kubernetes.docker.type": "container"})["Id"]
            client.start(cid)
            web = client.create_container("nginx:latest", labels=LABELS)["Id"]
            client.start(web)
            ip = client.inspect_container(web)["NetworkSettings"]["IPAddress"]
            pieces.pods.append(add_pod(server, "web", "xp-pf", "nginx:latest", ip))
            wait_for(lambda: b"ready" in client.logs(cid), 30, "the box container")
            wait_for(lambda: _http_ok(ip, 80), 30, "nginx in the web container")
            yield server
    finally:
        if server is not None:
            server.stop()
        store.stop()
        for c in client.containers(all=True, filters={"label": f"io.kubeling.run={RUN}"}):
            client.remove_container(c["Id"], force=True)


def _http_ok(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def kubectl(cluster: ApiServer, version: str, *args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    binary = plain_kubectl(version)
    if binary is None:
        pytest.skip(f"kubectl {version} is not installed")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.tmp), **(env or {})}
    return subprocess.run([binary, "-n", RUN, *args], capture_output=True, env=env, timeout=60, check=False, **kw)


SPDY_ONLY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
CLIENTS = [pytest.param("1.27", {}, id="1.27-spdy"), pytest.param("1.33", {}, id="1.33-websockets"),
           pytest.param("1.33", SPDY_ONLY, id="1.33-spdy")]


@pytest.mark.parametrize("version,env", CLIENTS)
def test_kubectl_exec_output_and_exit_code(cluster, version, env):
    p = kubectl(cluster, version, "exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env)
    assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\ncommand terminated with exit code 3\n")


@pytest.mark.parametrize("version,env", CLIENTS)
def test_kubectl_exec_stdin(cluster, version, env):
    """stdin reaches the process and its end is an EOF there; a megabyte crosses every window."""
    p = kubectl(cluster, version, "exec", "-i", "box", "--", "cat", input=b"piped\n", env=env)
    assert (p.returncode, p.stdout) == (0, b"piped\n"), p.stderr
    data = os.urandom(1 << 20)
    p = kubectl(cluster, version, "exec", "-i", "box", "--", "sh", "-c", "wc -c; echo done >&2", input=data, env=env)
    assert (p.returncode, p.stdout.split(), p.stderr) == (0, [b"1048576"], b"done\n")


@pytest.mark.parametrize("version,env", CLIENTS)
def test_kubectl_port_forward(cluster, version, env):
    binary = plain_kubectl(version)
    if binary is None:
        pytest.skip(f"kubectl {version} is not installed")
    port = free_port()
    proc = subprocess.Popen([binary, "-n", RUN, "port-forward", "pod/web", f"{port}:80"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
                                                         "HOME": str(cluster.tmp), **env})
    try:
        assert proc.stdout.readline().startswith(b"Forwarding from 127.0.0.1:"), proc.stderr.read1(4096)
        for _ in range(3):   # a pair of streams (and a kubelet connection) per local connection
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as r:
                assert r.status == 200 and r.read()
        # half-close: the request, then EOF; the answer still comes back
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: s.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
        assert proc.poll() is None, proc.stderr.read1(4096)
    finally:
        proc.terminate()
        proc.wait(10)


def python_client(cluster: ApiServer):
    from kubernetes import client, config
    return client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))


def test_python_client_stream(cluster):
    from kubernetes.stream import stream
    core = python_client(cluster)
    ws = stream(core.connect_get_namespaced_pod_exec, "box", RUN, command=["sh", "-c", "read x; echo got $x; exit 3"],
                stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    ws.write_stdin(b"hello\n")   # bytes go as a binary message (a str as a text one)
    ws.run_forever(timeout=30)
    assert (ws.returncode, ws.read_stdout()) == (3, "got hello\n")


def test_python_client_portforward(cluster):
    from kubernetes.stream import portforward
    core = python_client(cluster)
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web", RUN, ports="80,81")
    sock = pf.socket(80)
    sock.settimeout(20)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
    answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    wait_for(lambda: pf.error(81) is not None, 20, "port 81's error")
    assert "connection refused" in pf.error(81)
    sock.close()
    pf.close()


def raw_upgrade(cluster: ApiServer, path: str, token: str, protocols: list[str]) -> tuple[int, bytes]:
    """A SPDY upgrade by hand: the status code and what follows the headers."""
    ctx = ssl.create_default_context(cafile=str(cluster.ca))
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=20) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                   "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n" +
                   "".join(f"X-Stream-Protocol-Version: {p}\r\n" for p in protocols) + "\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        if int(head.split()[1]) != 101:
            length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
            while len(body) < length:
                body += s.recv(65536)
        return int(head.split()[1]), body


def test_spdy_upgrade_errors_are_statuses(cluster):
    exec_path = f"/api/v1/namespaces/{RUN}/pods/box/exec?command=true&stdout=true"
    code, body = raw_upgrade(cluster, exec_path, "wrong", ["v4.channel.k8s.io"])
    assert (code, json.loads(body)["reason"]) == (401, "Unauthorized")
    code, body = raw_upgrade(cluster, exec_path, cluster.token, ["v9.channel.k8s.io"])
    assert code == 403 and "unable to negotiate protocol" in json.loads(body)["message"]
    code, body = raw_upgrade(cluster, f"/api/v1/namespaces/{RUN}/pods/nope/portforward", cluster.token,
                             ["portforward.k8s.io"])
    assert (code, json.loads(body)["message"]) == (404, 'pods "nope" not found')
    assert raw_upgrade(cluster, exec_path, cluster.token, ["v4.channel.k8s.io"])[0] == 101
    code, body, _ = cluster.http("POST", exec_path)
    assert (code, body["message"]) == (400, "Upgrade request required")


def test_kubectl_1_27_exec_tty_and_resize(cluster):
    """`kubectl exec -it` over SPDY from a terminal: the tty takes the terminal's size through the
    resize stream, follows a resize, and the exit code comes back."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    binary = plain_kubectl("1.27")
    if binary is None:
        pytest.skip("kubectl 1.27 is not installed")
    script = ('sz() { stty size 2>/dev/null; }; until [ -n "$(sz)" ]; do sleep 0.05; done; s=$(sz); echo "size $s"; '
              'while [ "$(sz)" = "$s" ]; do sleep 0.05; done; echo "size $(sz)"; exit 4')
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 25, 80, 0, 0))
        os.execve(binary, [binary, "-n", RUN, "exec", "-it", "box", "--", "sh", "-c", script],
                  {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.tmp)})
    output, deadline = b"", time.monotonic() + 60
    try:
        while b"size 50 100" not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                try:
                    output += os.read(fd, 4096)
                except OSError:     # EIO: kubectl exited, the terminal is gone
                    break
            if b"size 25 80" in output:
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 100, 0, 0))
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert b"size 25 80" in output and b"size 50 100" in output, output
    assert os.waitstatus_to_exitcode(status) == 4, output

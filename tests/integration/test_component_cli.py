"""Every process as a user starts it: --help, a bad flag, a missing kubeconfig, an apiserver or peer
that is not there (one clear line per retry), a port that is taken (one line naming the address, exit
1, nothing said to be served), and SIGTERM (clean exit 0)."""
import contextlib
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.clusters import REPO, EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer

COMPONENTS = {"scheduler": "--port", "controllers": "--port", "kubelet": "--healthz-port"}
UNREACHABLE = {"scheduler": "pods informer: failed to list: GET https://127.0.0.1:1/api/v1/pods:",
               "controllers": "informer: failed to list: GET https://127.0.0.1:1/",
               "kubelet": "unable to register node with API server: POST https://127.0.0.1:1/api/v1/nodes:"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def unreachable_kubeconfig(tmp_path: Path) -> Path:
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                  "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
                  "users: [{name: u, user: {token: t}}]\n")
    return kc


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def assert_one_line_about(r: subprocess.CompletedProcess, port: int, prefix: str = "error: ") -> None:
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == \
        (1, "", [f"{prefix}listen tcp 127.0.0.1:{port}: bind: address already in use"]), r.stderr[-3000:]


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_help_bad_flag_and_missing_kubeconfig(component, tmp_path):
    r = run(component, "--help")
    assert r.returncode == 0 and "--kubeconfig" in r.stdout
    r = run(component, "--kubeconfig", "x", "--no-such-flag")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == \
        f"{component}: error: unrecognized arguments: --no-such-flag"
    r = run(component, "--kubeconfig", str(tmp_path / "missing"), COMPONENTS[component], str(free_port()))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "missing" in r.stderr


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_unreachable_apiserver_is_one_line_per_retry_health_is_served_and_sigterm_exits_cleanly(component, tmp_path):
    kc = unreachable_kubeconfig(tmp_path)
    log = tmp_path / "log"
    port = free_port()
    with open(log, "w") as out:
        p = subprocess.Popen([sys.executable, "-m", component, "--kubeconfig", str(kc), COMPONENTS[component],
                              str(port)], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: UNREACHABLE[component] in log.read_text(), 30, "the retry line")
        text = log.read_text()   # listening (and saying so) comes before any work
        assert 0 <= text.find(f"serving on http://127.0.0.1:{port} ") < text.index(UNREACHABLE[component]), text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert resp.read() == b"ok"
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
    text = log.read_text()
    assert "Traceback" not in text and "never retrieved" not in text, text[-2000:]


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_taken_health_port_is_one_line_naming_the_address(component, tmp_path):
    kc = unreachable_kubeconfig(tmp_path)
    with taken_port() as port:
        r = run(component, "--kubeconfig", str(kc), COMPONENTS[component], str(port))
    assert_one_line_about(r, port)


def test_apiserver_taken_secure_port_is_one_line_before_etcd_is_asked(tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('t,admin,1,"system:masters"\n')
    with taken_port() as port:
        r = run("apiserver", "--etcd-servers", "http://127.0.0.1:1", "--bind-address", "127.0.0.1",
                "--secure-port", str(port), "--cert-dir", str(tmp_path / "pki"), "--token-auth-file", str(tokens))
    assert_one_line_about(r, port)


@pytest.mark.parametrize("taken", ["client", "peer"])
def test_etcdnode_taken_port_is_one_line_naming_the_address(taken, tmp_path):
    (tmp_path / "pw").write_text("secret\n")
    with taken_port() as port:
        client, peer = (port, free_port()) if taken == "client" else (free_port(), port)
        r = run("etcdnode", "--data-dir", str(tmp_path / "data"), "--peer-password-file", str(tmp_path / "pw"),
                "--listen-client-urls", f"http://127.0.0.1:{client}", "--initial-cluster", f"default=127.0.0.1:{peer}")
    assert_one_line_about(r, port, "etcdnode: error: ")


def test_etcdnode_and_apiserver_say_serving_on_the_address_they_serve(tmp_path):
    store = EtcdnodeCluster(tmp_path / "store", size=1)
    api = ApiServer(tmp_path / "api", store.client_urls)
    try:
        store.start_all()
        assert f"serving clients on {store.client_urls[0]}, peers on 127.0.0.1:{store.peer_ports[0]}" \
            in store.log_tail(0)
        api.start()
        assert f"serving on https://127.0.0.1:{api.port} " in api.log.read_text()
    finally:
        api.stop()
        store.stop()
    text = store.log_tail(0) + api.log.read_text()
    assert "Traceback" not in text, text


def test_etcdnode_unreachable_peer_is_one_line_per_report(tmp_path):
    store = EtcdnodeCluster(tmp_path / "store", size=2)
    try:
        store.start(0)
        wait_for(lambda: f"no leader; unreachable peers: m1(127.0.0.1:{store.peer_ports[1]})" in store.log_tail(0),
                 30, "the unreachable-peer line")
    finally:
        store.stop()
    assert "Traceback" not in store.log_tail(0), store.log_tail(0)


@pytest.mark.parametrize("component,required", [("kubedns", []), ("kubeproxy", ["--hostname-override", "n"])])
def test_help_and_bad_flag_of_the_service_components(component, required):
    r = run(component, "--help")
    assert r.returncode == 0 and "--kubeconfig" in r.stdout
    r = run(component, "--kubeconfig", "x", *required, "--no-such-flag")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == \
        f"{component}: error: unrecognized arguments: --no-such-flag"

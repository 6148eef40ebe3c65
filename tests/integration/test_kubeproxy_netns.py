"""Real traffic through kube-proxy's rules, without Docker: hosts made of `ip netns` namespaces.

    client (192.168.77.2) --veth-- node (192.168.77.1; bridge kpbr 10.244.1.1/24) --veth-- pod0..pod2
                                     |  default route                               (10.244.1.2-4, :8080)
                                   sink (drops everything)

`python -m kubeproxy` runs inside the node namespace (`ip netns exec`), so it programs that
namespace's iptables only. The apiserver listens on 127.0.0.1 of the host namespace, which the node
namespace cannot see: the test opens a listening socket on 127.0.0.1:<apiserver port> *inside* the
node namespace (a thread enters it with setns(2) just to create the socket) and relays each
connection to the host's apiserver, so the usual kubeconfig works unchanged. Nothing is created in
the host namespace: every veth is created inside the namespaces, and deleting them removes it all."""
from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubeproxy.proxier import CANARY_INTERVAL, TRIGGER_TIME
from tests.support.netns import add_or_skip
from tests.support.clusters import REPO, free_port, wait_for

PODS = ("10.244.1.2", "10.244.1.3", "10.244.1.4")
NODE_IP, CLIENT_IP = "192.168.77.1", "192.168.77.2"
CLONE_NEWNET = 0x40000000

SERVER = """
import http.server, socket, sys, threading
name = sys.argv[1].encode()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 8053))
    while True:
        _, peer = s.recvfrom(100)
        s.sendto(name, peer)
threading.Thread(target=udp, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(name))); self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""

CLIENT = """
import json, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    t = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        out.append(data.split(b"\\r\\n\\r\\n", 1)[1].decode())
    except OSError as e:
        out.append(f"{type(e).__name__} after {time.monotonic() - t:.3f}s: {e}")
print(json.dumps(out))
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    if check and p.returncode:
        raise AssertionError(f"{' '.join(argv)}: {p.returncode}: {p.stderr}")
    return p


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


def listen_in(ns: str, port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port inside `ns`: setns(2) moves only the calling thread,
    so a short-lived thread enters the namespace, creates the socket and ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    made: list[socket.socket | OSError] = []

    def enter() -> None:
        with open(f"/var/run/netns/{ns}") as f:
            if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                made.append(OSError(ctypes.get_errno(), "setns"))
                return
        made.append(socket.create_server(("127.0.0.1", port)))
    t = threading.Thread(target=enter)
    t.start()
    t.join()
    if isinstance(made[0], OSError):
        raise made[0]
    return made[0]


def relay(listener: socket.socket, port: int) -> None:
    """Each connection accepted in the node namespace, piped to the host's 127.0.0.1:port."""
    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return   # the listener was closed at teardown
            upstream = socket.create_connection(("127.0.0.1", port))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()


def saved(ns: str) -> str:
    """`iptables-save` of a namespace without its timestamps and packet counters."""
    text = in_ns(ns, "iptables-save").stdout
    return "\n".join(re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in text.splitlines() if not line.startswith("#"))


def without_empty_tables(save: str) -> str:
    """`saved` output less the tables holding no rule and only built-in chains with policy ACCEPT:
    iptables cannot delete a table, so one kube-proxy made (mangle, for its canary) stays, empty."""
    tables = re.split(r"(?m)^(?=\*)", save)
    return "".join(t for t in tables if not t.startswith("*") or any(
        line.startswith("-A ") or (line.startswith(":") and line.split()[1] != "ACCEPT") for line in t.splitlines()))


class Hosts:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.node, self.client, self.sink = f"kp-node-{tag}", f"kp-client-{tag}", f"kp-sink-{tag}"
        self.pods = [f"kp-pod{i}-{tag}" for i in range(len(PODS))]
        self.procs: list[subprocess.Popen] = []

    @property
    def namespaces(self) -> list[str]:
        return [self.node, self.client, self.sink, *self.pods]

    def build(self) -> None:
        node = self.node
        for ns in self.namespaces:
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # a default route, as a real node has, to a sink namespace that drops everything: what
        # reaches it was "routed out", so kube-proxy's rejects must come first
        in_ns(node, "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", self.sink)
        in_ns(node, "ip", "link", "set", "uplink", "up")
        in_ns(self.sink, "ip", "link", "set", "eth0", "up")
        in_ns(node, "ip", "route", "add", "default", "dev", "uplink")
        in_ns(node, "ip", "link", "add", "kpbr", "type", "bridge")
        in_ns(node, "ip", "addr", "add", "10.244.1.1/24", "dev", "kpbr")
        in_ns(node, "ip", "link", "set", "kpbr", "up")
        for i, (ns, ip) in enumerate(zip(self.pods, PODS)):
            in_ns(node, "ip", "link", "add", f"veth{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            in_ns(node, "ip", "link", "set", f"veth{i}", "master", "kpbr", "up")
            # the kubelet's job (upstream's --hairpin-mode=hairpin-veth): with br_netfilter loaded
            # (Docker loads it), a pod's DNAT back to itself is bridged out of its own port
            in_ns(node, "ip", "link", "set", f"veth{i}", "type", "bridge_slave", "hairpin", "on")
            in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
            in_ns(ns, "ip", "link", "set", "eth0", "up")
            in_ns(ns, "ip", "route", "add", "default", "via", "10.244.1.1")
        in_ns(node, "ip", "link", "add", "vclient", "type", "veth", "peer", "name", "eth0", "netns", self.client)
        in_ns(node, "ip", "addr", "add", f"{NODE_IP}/24", "dev", "vclient")
        in_ns(node, "ip", "link", "set", "vclient", "up")
        in_ns(self.client, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        in_ns(self.client, "ip", "link", "set", "eth0", "up")
        in_ns(self.client, "ip", "route", "add", "default", "via", NODE_IP)
        for i, ns in enumerate(self.pods):
            self.spawn(ns, [sys.executable, "-c", SERVER, f"pod{i}"])

    def spawn(self, ns: str, argv: list[str], log: Path | None = None) -> subprocess.Popen:
        with open(log or os.devnull, "ab") as out:
            p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=REPO)
        self.procs.append(p)
        return p

    def teardown(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)

    def get(self, host: str, port: int, n: int, source: str = "") -> list[str]:
        """n answers to GET http://host:port/ from the client namespace (or `source`)."""
        return json.loads(in_ns(source or self.client, sys.executable, "-c", CLIENT, host, str(port), str(n)).stdout)


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    probe = f"kp-probe-{uuid.uuid4().hex[:6]}"
    add_or_skip(probe)
    sh("ip", "netns", "del", probe)
    h = Hosts()
    try:
        h.build()
        for i, ip in enumerate(PODS):   # the servers answer, and every neighbour is resolved
            wait_for(lambda ip=ip, i=i: h.get(ip, 8080, 1) == [f"pod{i}"], 30, f"pod{i} to serve")
        yield h
    finally:
        h.teardown()


@pytest.fixture(scope="module")
def proxy(hosts: Hosts, control_plane, tmp_path_factory) -> Iterator[dict]:
    """kube-proxy in the node namespace, the node's iptables as they were before it, and the API."""
    listener = listen_in(hosts.node, control_plane.port)
    relay(listener, control_plane.port)
    # a foreign rule and chain (as Docker's would be) that kube-proxy must leave alone
    in_ns(hosts.node, "iptables", "-N", "FOREIGN")
    in_ns(hosts.node, "iptables", "-A", "FORWARD", "-j", "FOREIGN")
    in_ns(hosts.node, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "172.31.0.0/16", "-j", "MASQUERADE")
    before = saved(hosts.node)
    log = tmp_path_factory.mktemp("kubeproxy") / "kubeproxy.log"
    port = free_port()
    args = ["--kubeconfig", str(control_plane.kubeconfig), "--hostname-override", "node-1", "--proxy-mode", "iptables",
            "--cluster-cidr", "10.244.0.0/16", "--service-cidr", "10.96.0.0/16",
            "--nodeport-addresses", "192.168.77.0/24", "--sync-period", "30", "--min-sync-period", "0",
            "--bind-address", "127.0.0.1", "--port", str(port)]
    state = {"api": control_plane, "before": before, "log": log, "args": args, "port": port,
             "proc": hosts.spawn(hosts.node, [sys.executable, "-m", "kubeproxy", *args], log)}
    try:
        yield state
    finally:
        if state["proc"].poll() is None:
            state["proc"].send_signal(signal.SIGTERM)
            state["proc"].wait(10)
        listener.close()


def service(proxy: dict, name: str, ready: list[bool], protocol: str = "TCP", **spec: object) -> dict:
    """A selector-less Service (port 80 to the pods' 8080 for TCP, 53 to 8053 for UDP) and its
    EndpointSlice (pods on node-1), through the apiserver."""
    api = proxy["api"]
    port, target = (80, 8080) if protocol == "TCP" else (53, 8053)
    code, svc, _ = api.http("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"ports": [{"port": port, "targetPort": target, "protocol": protocol}], **spec}})
    assert code == 201, svc
    code, body, _ = api.http("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-x", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4", "ports": [{"name": "", "port": target, "protocol": protocol}],
        "endpoints": [{"addresses": [ip], "nodeName": "node-1", "conditions": {"ready": r}}
                      for ip, r in zip(PODS, ready)]})
    assert code == 201, body
    return svc


def programmed(hosts: Hosts, proxy: dict, cluster_ip: str, mark: str = "-j KUBE-SVC-") -> None:
    """Wait until the rule for `cluster_ip` ending in `mark` is live in the node namespace."""
    def live() -> bool:
        assert proxy["proc"].poll() is None, proxy["log"].read_text()[-3000:]
        return any(f"-d {cluster_ip}/32" in line and mark in line
                   for line in in_ns(hosts.node, "iptables-save").stdout.splitlines())
    wait_for(live, 30, f"kube-proxy to program {cluster_ip}")


def test_clusterip_spreads_over_endpoints(hosts: Hosts, proxy: dict) -> None:
    svc = service(proxy, "spread", [True, True, True])
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip)
    answers = hosts.get(ip, 80, 300)
    counts = {f"pod{i}": answers.count(f"pod{i}") for i in range(3)}
    assert sum(counts.values()) == 300, answers[:5]
    assert all(75 <= c <= 125 for c in counts.values()), counts
    saved_nat = in_ns(hosts.node, "iptables-save", "-t", "nat").stdout
    assert '"default/spread cluster IP"' in saved_nat and "KUBE-SVC-" in saved_nat


def test_client_ip_affinity(hosts: Hosts, proxy: dict) -> None:
    svc = service(proxy, "sticky", [True, True, True], sessionAffinity="ClientIP")
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip)
    answers = hosts.get(ip, 80, 30)
    assert len(set(answers)) == 1 and answers[0].startswith("pod"), answers


def test_partial_syncs_leave_other_services_chains(hosts: Hosts, proxy: dict) -> None:
    """Services created since default/spread were applied by partial syncs: its chains were not
    rewritten, so its DNAT rules still carry the packet counts of the first test's traffic."""
    counts = [int(line[1:].split(":")[0]) for line in
              in_ns(hosts.node, "iptables-save", "-c", "-t", "nat").stdout.splitlines()
              if '--comment "default/spread"' in line and "DNAT" in line]
    assert len(counts) == 3 and sum(counts) >= 300, counts


def test_nodeport_on_node_address(hosts: Hosts, proxy: dict) -> None:
    svc = service(proxy, "np", [True, True, True], type="NodePort")
    programmed(hosts, proxy, svc["spec"]["clusterIP"])
    answers = hosts.get(NODE_IP, svc["spec"]["ports"][0]["nodePort"], 30)
    assert set(answers) <= {"pod0", "pod1", "pod2"} and len(set(answers)) > 1, answers


def test_no_ready_endpoint_and_unallocated_ip_refused(hosts: Hosts, proxy: dict) -> None:
    svc = service(proxy, "none", [False, False, False])
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip, "-j REJECT")
    start = time.monotonic()
    answers = hosts.get(ip, 80, 1) + hosts.get("10.96.255.254", 80, 1)
    assert all(a.startswith("ConnectionRefusedError") for a in answers), answers
    assert all(float(a.split()[2].rstrip("s:")) < 1 for a in answers), answers
    assert time.monotonic() - start < 10


def test_not_ready_endpoint_dropped_within_1s(hosts: Hosts, proxy: dict) -> None:
    svc = service(proxy, "flip", [True, True, True])
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip)
    api = proxy["api"]
    path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/flip-x"
    code, eps, _ = api.http("GET", path)
    assert code == 200, eps
    eps["endpoints"][2]["conditions"] = {"ready": False}
    code, body, _ = api.http("PUT", path, eps)
    assert code == 200, body
    wait_for(lambda: f'"default/flip -> {PODS[2]}:8080"' not in in_ns(hosts.node, "iptables-save", "-t", "nat").stdout,
             1.0, "the not-ready endpoint's rules to go", interval=0.01)
    answers = hosts.get(ip, 80, 60)
    assert "pod2" not in answers and set(answers) == {"pod0", "pod1"}, answers


UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40053))   # one source port: one conntrack entry for every datagram
s.settimeout(2)
s.sendto(b"?", (sys.argv[1], 53))
try:
    print(s.recvfrom(100)[0].decode())
except TimeoutError:
    print("timeout")
"""


def test_udp_conntrack_cleared_when_endpoint_goes(hosts: Hosts, proxy: dict) -> None:
    """A UDP flow pinned by conntrack to an endpoint moves once that endpoint is removed: the
    endpoint still answers, so without the cleanup the same source port would keep reaching it."""
    svc = service(proxy, "dgram", [True, True, True], protocol="UDP")
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip)
    first = in_ns(hosts.client, sys.executable, "-c", UDP_ASK, ip).stdout.strip()
    assert first in ("pod0", "pod1", "pod2"), first
    assert in_ns(hosts.client, sys.executable, "-c", UDP_ASK, ip).stdout.strip() == first   # pinned
    api, path = proxy["api"], "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/dgram-x"
    code, eps, _ = api.http("GET", path)
    assert code == 200, eps
    eps["endpoints"][int(first[-1])]["conditions"] = {"ready": False}
    code, body, _ = api.http("PUT", path, eps)
    assert code == 200, body
    gone = PODS[int(first[-1])]
    wait_for(lambda: f'"default/dgram -> {gone}:8053"' not in in_ns(hosts.node, "iptables-save", "-t", "nat").stdout,
             1.0, "the removed endpoint's rules to go", interval=0.01)
    wait_for(lambda: in_ns(hosts.client, sys.executable, "-c", UDP_ASK, ip).stdout.strip() not in (first, "timeout"),
             2.0, "the flow to move to another endpoint")


def test_hairpin_pod_reaches_itself(hosts: Hosts, proxy: dict) -> None:
    """pod0 through a Service whose only endpoint is pod0: DNAT back to itself, masqueraded by
    the SEP chain's `-s <endpoint>` rule so the reply comes back through the node."""
    svc = service(proxy, "self", [True, False, False])
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip)
    assert hosts.get(ip, 80, 5, source=hosts.pods[0]) == ["pod0"] * 5


FETCH = """
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"""


def fetch(hosts: Hosts, proxy: dict, path: str) -> tuple[int, str]:
    """GET kube-proxy's health/metrics endpoint (127.0.0.1 of the node namespace)."""
    out = in_ns(hosts.node, sys.executable, "-c", FETCH, f"http://127.0.0.1:{proxy['port']}{path}").stdout
    code, _, body = out.partition("\n")
    return int(code), body


def metric(hosts: Hosts, proxy: dict, name: str) -> float:
    """One sample of /metrics (0 when absent)."""
    for line in fetch(hosts, proxy, "/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_network_programming_metric(hosts: Hosts, proxy: dict) -> None:
    """An endpoint change carrying the endpointslice controller's last-change-trigger-time is
    observed in kubeproxy_network_programming_duration_seconds from that time to the rules
    being live; the sync metrics say when and how many rules."""
    svc = service(proxy, "timed", [True, True, False])
    programmed(hosts, proxy, svc["spec"]["clusterIP"])
    name = "kubeproxy_network_programming_duration_seconds"
    count, total = metric(hosts, proxy, name + "_count"), metric(hosts, proxy, name + "_sum")
    api, path = proxy["api"], "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/timed-x"
    code, eps, _ = api.http("GET", path)
    assert code == 200, eps
    eps["endpoints"][2]["conditions"] = {"ready": True}
    changed = time.time() - 0.5   # as if the pod became ready half a second before the slice was written
    eps["metadata"].setdefault("annotations", {})[TRIGGER_TIME] = rfc3339(changed)
    code, body, _ = api.http("PUT", path, eps)
    assert code == 200, body
    # the sum, not the count: the slice's creation may be observed (~0 s) after `count` was read
    wait_for(lambda: metric(hosts, proxy, name + "_sum") - total >= 0.5, 10, "the change to be observed")
    took = metric(hosts, proxy, name + "_sum") - total
    assert took < 5 and metric(hosts, proxy, name + "_count") > count, took
    assert f'"default/timed -> {PODS[2]}:8080"' in in_ns(hosts.node, "iptables-save", "-t", "nat").stdout
    assert abs(metric(hosts, proxy, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") - time.time()) < 10
    assert metric(hosts, proxy, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}') > 20
    assert metric(hosts, proxy, "kubeproxy_sync_partial_proxy_rules_duration_seconds_count") > 0


def test_healthz_follows_node_eligibility(hosts: Hosts, proxy: dict) -> None:
    """/healthz and /livez answer as upstream's proxier health server; a Node of this name tainted
    ToBeDeletedByClusterAutoscaler makes /healthz (not /livez) 503 until the taint goes."""
    code, body = fetch(hosts, proxy, "/healthz")
    assert code == 200 and json.loads(body)["nodeEligible"] is True, body
    assert set(json.loads(body)) == {"lastUpdated", "currentTime", "nodeEligible"}
    assert fetch(hosts, proxy, "/livez")[0] == 200
    api = proxy["api"]
    taint = {"key": "ToBeDeletedByClusterAutoscaler", "value": "1", "effect": "NoSchedule"}
    code, node, _ = api.http("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                        "metadata": {"name": "node-1"}, "spec": {"taints": [taint]}})
    assert code == 201, node
    try:
        wait_for(lambda: fetch(hosts, proxy, "/healthz")[0] == 503, 10, "/healthz to turn 503")
        assert json.loads(fetch(hosts, proxy, "/healthz")[1])["nodeEligible"] is False
        assert fetch(hosts, proxy, "/livez")[0] == 200
        node["spec"]["taints"] = []
        code, body, _ = api.http("PUT", "/api/v1/nodes/node-1", node)
        assert code == 200, body
        wait_for(lambda: fetch(hosts, proxy, "/healthz")[0] == 200, 10, "/healthz to turn 200 again")
    finally:
        api.http("DELETE", "/api/v1/nodes/node-1")


def test_flushed_nat_table_repaired(hosts: Hosts, proxy: dict) -> None:
    """Someone reloads the nat table with only their own rule (iptables-restore without --noflush,
    as a firewall service does: every rule and chain of kube-proxy's gone, KUBE-PROXY-CANARY too, in
    one transaction, so no sync of kube-proxy's can slip in between): the canary check forces a
    full sync, which puts the jumps and every chain back, within CANARY_INTERVAL."""
    svc = service(proxy, "canary", [True, True, True])
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip)
    r = subprocess.run(["ip", "netns", "exec", hosts.node, "iptables-restore", "-w"], capture_output=True, text=True,
                       input="*nat\n-A POSTROUTING -s 172.31.0.0/16 -j MASQUERADE\nCOMMIT\n", check=False)
    assert r.returncode == 0, r.stderr
    assert "KUBE-" not in in_ns(hosts.node, "iptables-save", "-t", "nat").stdout
    flushed = time.monotonic()
    wait_for(lambda: hosts.get(ip, 80, 1)[0] in ("pod0", "pod1", "pod2"), CANARY_INTERVAL + 10,
             "traffic through the ClusterIP again", interval=0.2)
    assert time.monotonic() - flushed < CANARY_INTERVAL + 10
    nat = in_ns(hosts.node, "iptables-save", "-t", "nat").stdout
    assert nat.count('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES') == 1
    assert ":KUBE-PROXY-CANARY" in nat and '"default/spread cluster IP"' in nat
    # usually the canary check noticed; a partial sync some API event started first fails instead
    # (its jumps to unchanged services' chains dangle), which forces the same full sync
    log = proxy["log"].read_text()
    assert "iptables canary KUBE-PROXY-CANARY deleted" in log or "sync failed" in log, log[-2000:]


def test_deleted_canary_forces_full_sync(hosts: Hosts, proxy: dict) -> None:
    """Only mangle's canary goes (no sync could notice anything else): the check makes a full sync,
    which creates it again."""
    full = "kubeproxy_sync_full_proxy_rules_duration_seconds_count"
    count = metric(hosts, proxy, full)
    in_ns(hosts.node, "iptables", "-t", "mangle", "-X", "KUBE-PROXY-CANARY")
    wait_for(lambda: metric(hosts, proxy, full) > count, CANARY_INTERVAL + 10, "a full sync", interval=0.2)
    assert in_ns(hosts.node, "iptables", "-t", "mangle", "-S", "KUBE-PROXY-CANARY", check=False).returncode == 0


def test_restart_keeps_traffic_flowing(hosts: Hosts, proxy: dict) -> None:
    svc = service(proxy, "steady", [True, True, True])
    ip = svc["spec"]["clusterIP"]
    programmed(hosts, proxy, ip)
    old = proxy["proc"]
    old.send_signal(signal.SIGTERM)
    assert old.wait(10) == 0, proxy["log"].read_text()[-3000:]
    assert set(hosts.get(ip, 80, 30)) <= {"pod0", "pod1", "pod2"}   # the rules outlive the process
    proxy["proc"] = hosts.spawn(hosts.node, [sys.executable, "-m", "kubeproxy", *proxy["args"]], proxy["log"])
    later = service(proxy, "later", [True, True, True])   # programmed only by the new process
    programmed(hosts, proxy, later["spec"]["clusterIP"])
    for answers in (hosts.get(ip, 80, 30), hosts.get(later["spec"]["clusterIP"], 80, 30)):
        assert set(answers) <= {"pod0", "pod1", "pod2"} and len(answers) == 30, answers
    nat = in_ns(hosts.node, "iptables-save", "-t", "nat").stdout
    assert nat.count("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES") == 1


def test_cleanup_restores_iptables(hosts: Hosts, proxy: dict) -> None:
    p = proxy["proc"]
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0, proxy["log"].read_text()[-3000:]
    assert "KUBE-SERVICES" in saved(hosts.node)
    r = in_ns(hosts.node, sys.executable, "-m", "kubeproxy", "--hostname-override", "node-1", "--cleanup")
    assert r.returncode == 0, r.stderr
    assert "KUBE-" not in saved(hosts.node)
    assert without_empty_tables(saved(hosts.node)) == without_empty_tables(proxy["before"])


def test_unusable_kubeconfig_is_one_line_error(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "kubeproxy", "--kubeconfig", str(tmp_path / "missing"),
                        "--hostname-override", "node-1"], capture_output=True, text=True, cwd=REPO, check=False,
                       timeout=30)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr

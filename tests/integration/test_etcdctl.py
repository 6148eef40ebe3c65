"""The real etcdctl 3.4, unchanged, against a 3-member etcdnode cluster and, with the same
commands and the same expected output, against real etcd 3.4."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time

import pytest

from tests.support.clusters import EtcdCluster, EtcdnodeCluster

ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
pytestmark = pytest.mark.skipif(not os.access(ETCDCTL, os.X_OK), reason="etcdctl is not installed (make deps)")


class Etcdnode(EtcdnodeCluster):
    """Members that know each other's client URLs, for MemberList (etcd learns them through Raft)."""

    def __init__(self, tmp, size: int = 3) -> None:
        super().__init__(tmp, size)
        urls = ",".join(f"m{i}={u}" for i, u in enumerate(self.client_urls))
        self.extra_args = ["--initial-cluster-client-urls", urls]


@pytest.fixture(scope="module", params=["etcdnode", "etcd"])
def cluster(request, tmp_path_factory):
    if request.param == "etcd" and not EtcdCluster.available():
        pytest.skip("real etcd is not installed (make deps)")
    c = (Etcdnode if request.param == "etcdnode" else EtcdCluster)(tmp_path_factory.mktemp(request.param))
    try:
        c.start_all()
        yield c
    finally:
        c.stop()


def command(cluster, *args: str) -> list[str]:
    return [ETCDCTL, "--endpoints", cluster.client_urls[0].removeprefix("http://"), "--dial-timeout", "5s",
            "--command-timeout", "10s", *args]


def ctl(cluster, *args: str, input: str | None = None, ok: bool = True, stderr: bool = False) -> str:
    """Run etcdctl; its stdout, and its stderr after it when asked or when it is expected to fail."""
    p = subprocess.run(command(cluster, *args), input=input, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "ETCDCTL_API": "3"})
    assert (p.returncode == 0) is ok, f"etcdctl {' '.join(args)}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout + p.stderr if stderr or not ok else p.stdout


class Lines:
    """A long-running etcdctl whose output lines are read with a deadline."""

    def __init__(self, cluster, *args: str) -> None:
        self.proc = subprocess.Popen(command(cluster, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, "ETCDCTL_API": "3"})
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def take(self, n: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        return [self.lines.get(timeout=max(0.01, deadline - time.monotonic())) for _ in range(n)]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


def test_put_get_del(cluster, key_prefix):
    k = key_prefix
    assert ctl(cluster, "put", k + "foo", "bar") == "OK\n"
    assert ctl(cluster, "get", k + "foo") == f"{k}foo\nbar\n"
    got = json.loads(ctl(cluster, "get", k + "foo", "-w", "json"))
    assert got["count"] == 1 and base64.b64decode(got["kvs"][0]["value"]) == b"bar"
    assert got["header"]["revision"] == got["kvs"][0]["mod_revision"] and got["kvs"][0]["version"] == 1
    rev = got["header"]["revision"]
    for i in range(3):
        ctl(cluster, "put", f"{k}p/{i}", f"v{i}")
    ctl(cluster, "put", k + "foo", "baz")
    assert ctl(cluster, "get", k + "p/", "--prefix") == "".join(f"{k}p/{i}\nv{i}\n" for i in range(3))
    assert ctl(cluster, "get", k + "p/", "--prefix", "--keys-only") == "".join(f"{k}p/{i}\n\n" for i in range(3))
    assert ctl(cluster, "get", k + "p/", "--prefix", "--limit", "1", "--sort-by", "KEY", "--order", "DESCEND") \
        == f"{k}p/2\nv2\n"
    assert ctl(cluster, "get", k + "foo", "--rev", str(rev)) == f"{k}foo\nbar\n"
    assert ctl(cluster, "get", k + "foo", "--print-value-only") == "baz\n"
    assert ctl(cluster, "del", k + "p/", "--prefix") == "3\n"
    assert ctl(cluster, "get", k + "p/", "--prefix") == ""


def test_txn_from_stdin(cluster, key_prefix):
    k = key_prefix
    ctl(cluster, "put", k + "x", "1")
    script = f'value("{k}x") = "1"\n\nput {k}y yes\nget {k}x\n\nput {k}y no\n\n'
    assert ctl(cluster, "txn", "-i", input=script).endswith(f"SUCCESS\n\nOK\n\n{k}x\n1\n")
    assert ctl(cluster, "txn", "-i", input=script.replace('"1"', '"2"')).endswith("FAILURE\n\nOK\n")
    assert ctl(cluster, "get", k + "y", "--print-value-only") == "no\n"


def test_watch_prefix_prev_kv_and_rev(cluster, key_prefix):
    k = key_prefix
    first = json.loads(ctl(cluster, "put", k + "w/a", "1", "-w", "json"))["header"]["revision"]
    w = Lines(cluster, "watch", k + "w/", "--prefix", "--prev-kv")
    try:
        # the watch is in place once a put it sees arrives; keep putting until one does
        deadline = time.monotonic() + 15
        values = ["1"]
        while True:
            values.append(f"v{len(values)}")
            ctl(cluster, "put", k + "w/a", values[-1])
            try:
                got = w.take(5, timeout=1)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "etcdctl watch printed nothing"
        # the first put it saw, with the value before it as prev_kv
        i = values.index(got[4])
        assert got == ["PUT", f"{k}w/a", values[i - 1], f"{k}w/a", values[i]]
        ctl(cluster, "put", k + "outside", "x")
        ctl(cluster, "del", k + "w/a")
        assert w.take(4)[0] in ("PUT", "DELETE")
    finally:
        w.close()
    h = Lines(cluster, "watch", k + "w/a", "--rev", str(first))
    try:
        assert h.take(3) == ["PUT", f"{k}w/a", "1"]
    finally:
        h.close()


def test_leases(cluster, key_prefix):
    out = ctl(cluster, "lease", "grant", "60")
    lease = out.split()[1]
    assert out == f"lease {lease} granted with TTL(60s)\n"
    ctl(cluster, "put", key_prefix + "l", "v", "--lease", lease)
    ttl = ctl(cluster, "lease", "timetolive", lease, "--keys")
    assert ttl.startswith(f"lease {lease} granted with TTL(60s), remaining(") and f"attached keys([{key_prefix}l])" in ttl
    assert lease in ctl(cluster, "lease", "list").split()
    assert ctl(cluster, "lease", "keep-alive", "--once", lease) == f"lease {lease} keepalived with TTL(60)\n"
    assert ctl(cluster, "lease", "revoke", lease) == f"lease {lease} revoked\n"
    assert ctl(cluster, "get", key_prefix + "l") == ""
    assert ctl(cluster, "lease", "timetolive", lease) == f"lease {lease} already expired\n"
    assert "etcdserver: requested lease not found" in ctl(cluster, "lease", "revoke", lease, ok=False)


def test_compaction(cluster, key_prefix):
    first = json.loads(ctl(cluster, "put", key_prefix + "c", "1", "-w", "json"))["header"]["revision"]
    last = json.loads(ctl(cluster, "put", key_prefix + "c", "2", "-w", "json"))["header"]["revision"]
    assert ctl(cluster, "compaction", str(last)) == f"compacted revision {last}\n"
    assert "etcdserver: mvcc: required revision has been compacted" in ctl(
        cluster, "get", key_prefix + "c", "--rev", str(first), ok=False)


def table_rows(out: str) -> list[list[str]]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("|")]
    return rows[1:]  # without the heading


def test_member_list_and_endpoint_status_health_cluster(cluster):
    members = table_rows(ctl(cluster, "member", "list", "-w", "table"))
    assert sorted(m[2] for m in members) == ["m0", "m1", "m2"] and {m[1] for m in members} == {"started"}
    assert sorted(m[4] for m in members) == sorted(cluster.client_urls)
    status = table_rows(ctl(cluster, "endpoint", "status", "--cluster", "-w", "table"))
    assert sorted(r[0] for r in status) == sorted(cluster.client_urls)
    assert sorted(r[1] for r in status) == sorted(m[0] for m in members)
    assert [r[4] for r in status].count("true") == 1  # one leader
    assert all(r[2].startswith("3.4.") for r in status)
    health = ctl(cluster, "endpoint", "health", "--cluster", stderr=True)  # etcdctl 3.4 reports on stderr
    assert sorted(line.split(" is ")[0] for line in health.splitlines()) == sorted(cluster.client_urls)
    assert all("is healthy: successfully committed proposal" in line for line in health.splitlines())


def test_snapshot_save_and_status(cluster, tmp_path, key_prefix):
    # enough keys for branch pages over the leaves, and a value larger than a page
    for t in range(9):
        ctl(cluster, "txn", "-i", input="\n" + "".join(f"put {key_prefix}s/{t}/{i} v\n" for i in range(128)) + "\n\n")
    ctl(cluster, "put", key_prefix + "big", "x" * 100_000)
    rev = json.loads(ctl(cluster, "put", key_prefix + "s", "v", "-w", "json"))["header"]["revision"]
    path = tmp_path / "s.db"
    assert ctl(cluster, "snapshot", "save", str(path)).endswith(f"Snapshot saved at {path}\n")
    st = json.loads(ctl(cluster, "snapshot", "status", str(path), "-w", "json"))
    assert st["revision"] >= rev and st["totalKey"] >= 9 * 128 + 2 and st["totalSize"] > 100_000
    restored = tmp_path / "restored"  # restore checks the appended sha256 and writes an etcd data dir
    ctl(cluster, "snapshot", "restore", str(path), "--data-dir", str(restored), "--name", "r",
        "--initial-cluster", "r=http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380")
    assert (restored / "member" / "snap" / "db").stat().st_size > 0


def test_lock_and_elect(cluster, key_prefix):
    assert ctl(cluster, "lock", key_prefix + "lock", "echo", "held") == "held\n"
    campaign = Lines(cluster, "elect", key_prefix + "election", "alice")
    try:
        leader_key, proposal = campaign.take(2)
    finally:
        campaign.close()
    assert leader_key.startswith(key_prefix + "election/") and proposal == "alice"


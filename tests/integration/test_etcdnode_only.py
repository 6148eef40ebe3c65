"""etcdnode behaviour that real etcd has too but is configured differently: auto-compaction,
progress notifications, metrics, process flags, and the peer password."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from kubeling.etcd import CompactedError, EtcdClient
from tests.support.clusters import REPO, EtcdnodeCluster, wait_for


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    cluster = EtcdnodeCluster(tmp_path_factory.mktemp("tuned"), size=1, extra_args=[
        "--auto-compaction-retention", "2s", "--experimental-watch-progress-notify-interval", "1s"])
    try:
        yield cluster.start_all()
    finally:
        cluster.stop()


async def test_periodic_auto_compaction(tuned):
    async with EtcdClient(tuned.client_urls) as c:
        first = (await c.put("/ac/k", "1")).header.revision
        await c.put("/ac/k", "2")
        deadline = time.monotonic() + 20
        while True:
            try:
                await c.get("/ac/k", revision=first)
            except CompactedError:
                break
            assert time.monotonic() < deadline, "history was never compacted"
            await asyncio.sleep(0.2)
            await c.put("/ac/tick", "x")
        assert (await c.get("/ac/k")).kvs[0].value == b"2"


async def test_progress_notify(tuned):
    async with EtcdClient(tuned.client_urls) as c:
        async with c.watch("/quiet/", prefix=True, progress_notify=True) as w:
            resp = await asyncio.wait_for(w.__anext__(), 10)
        assert resp.events == [] and resp.header.revision >= 1


def test_metrics_and_health(tuned):
    with urllib.request.urlopen(tuned.client_urls[0] + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "etcd_server_is_leader 1.0" in text and "etcdnode_requests_total" in text
    with urllib.request.urlopen(tuned.client_urls[0] + "/health", timeout=5) as r:
        assert r.read() == b'{"health":"true"}'


def run_etcdnode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etcdnode", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=30)


def test_help_and_clear_flag_errors(tmp_path):
    assert "--initial-cluster" in run_etcdnode("--help").stdout
    r = run_etcdnode("--name", "x")
    assert r.returncode == 2 and "--peer-password-file" in r.stderr.strip().splitlines()[-1]
    pw = tmp_path / "pw"
    pw.write_text("s")
    r = run_etcdnode("--name", "x", "--initial-cluster", "y=127.0.0.1:1", "--peer-password-file", str(pw))
    assert r.returncode == 2 and r.stderr.strip() == "etcdnode: error: --name 'x' is not in --initial-cluster (y)"


async def test_member_with_wrong_password_cannot_join(make_cluster):
    cluster = make_cluster(3)
    cluster.kill(2)
    good = cluster.password_file.read_text()
    wrong = cluster.tmp / "wrong-password"
    wrong.write_text("not-the-secret\n")
    cluster.password_file = wrong
    cluster.wipe(2)
    cluster.start(2)
    cluster.password_file = cluster.tmp / "peer-password"
    assert cluster.password_file.read_text() == good
    async with EtcdClient(cluster.client_urls[:2]) as c:
        await c.put("/pw/k", "v")

    def serving() -> bool:  # up, but not healthy: /health answers 503
        try:
            urllib.request.urlopen(cluster.client_urls[2] + "/health", timeout=3)
        except urllib.error.HTTPError as e:
            return e.code == 503
        except OSError:
            return False
        return True

    await asyncio.to_thread(wait_for, serving, 20, "the intruder to serve clients")
    async with EtcdClient([cluster.client_urls[2]], timeout=3) as intruder:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            r = await intruder.get("/pw/k", serializable=True)
            assert r.count == 0, "a member without the password received replicated data"
            await asyncio.sleep(0.2)
    assert not cluster.healthy(2)
    async with EtcdClient(cluster.client_urls[:2]) as c:
        assert (await c.get("/pw/k")).count == 1

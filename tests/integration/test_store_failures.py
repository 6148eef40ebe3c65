"""etcdnode under failure: leader kill under load, full restart, a wiped member, consistency."""

from __future__ import annotations

import asyncio
import time

import pytest

from kubeling.etcd import EtcdClient, EtcdError
from tests.support.clusters import EtcdnodeCluster, wait_for

pytestmark = pytest.mark.slow


class Writer:
    """Concurrent writers of unique keys that record exactly which writes were acknowledged."""

    def __init__(self, cluster, prefix: str, workers: int = 12) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self.workers = workers
        self.acked: list[tuple[bytes, float]] = []
        self.failed = 0
        self.stop = False

    async def run(self, urls_for) -> None:
        async def worker(w: int) -> None:
            async with EtcdClient(urls_for(w), timeout=10) as c:
                i = 0
                while not self.stop:
                    key = f"{self.prefix}{w:02d}/{i:07d}".encode()   # fixed width: no key contains another
                    i += 1
                    try:
                        await c.put(key, b"v")
                        self.acked.append((key, time.monotonic()))
                    except EtcdError:
                        self.failed += 1
                        await asyncio.sleep(0.02)

        await asyncio.gather(*(worker(w) for w in range(self.workers)))


async def assert_all_present_once(client: EtcdClient, keys: list[bytes], prefix: str) -> None:
    stored = {kv.key: kv for kv in (await client.get(prefix, prefix=True)).kvs}
    missing = [k for k in keys if k not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    doubled = [k for k, kv in stored.items() if kv.version != 1]
    assert not doubled, f"writes applied twice: {doubled[:3]}"


async def member_snapshot(cluster, i: int, prefix: str) -> list[tuple]:
    async with EtcdClient([cluster.client_urls[i]]) as c:
        r = await c.get(prefix, prefix=True, serializable=True)
        return [(kv.key, kv.value, kv.mod_revision, kv.version) for kv in r.kvs]


async def test_leader_kill_under_load_loses_nothing_and_recovers(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.leader()
    others = [i for i in range(3) if i != leader]
    urls = cluster.client_urls
    writer = Writer(cluster, "/load/")
    # a third of the writers talk to the leader only, the rest to the followers (with fail-over)
    task = asyncio.create_task(writer.run(
        lambda w: [urls[leader]] if w % 3 == 0 else [urls[others[w % 2]], urls[others[1 - w % 2]]]))
    await asyncio.to_thread(wait_for, lambda: len(writer.acked) >= 300, 30, "writes before the kill")
    killed_at = time.monotonic()
    cluster.kill(leader)
    before = len(writer.acked)
    # writes resume (a new leader is elected); how fast is a benchmark's business, not a test's
    await asyncio.to_thread(
        wait_for, lambda: any(t > killed_at + 0.05 for _, t in writer.acked[before:]), 10, "writes after the kill")
    await asyncio.to_thread(wait_for, lambda: len(writer.acked) >= before + 300, 30, "steady writes again")
    writer.stop = True
    await task
    async with EtcdClient([urls[i] for i in others]) as c:
        await assert_all_present_once(c, [k for k, _ in writer.acked], "/load/")
    # the killed member comes back and catches up to the same state
    cluster.start(leader)
    cluster.wait_healthy(leader)
    expected = await member_snapshot(cluster, others[0], "/load/")

    async def caught_up():
        return await member_snapshot(cluster, leader, "/load/") == expected

    deadline = time.monotonic() + 20
    while not await caught_up():
        assert time.monotonic() < deadline, "restarted member did not catch up"
        await asyncio.sleep(0.1)
    assert await member_snapshot(cluster, others[1], "/load/") == expected


async def test_full_cluster_kill_and_restart_keeps_every_acknowledged_write(make_cluster):
    cluster = make_cluster(3)
    urls = cluster.client_urls
    async with EtcdClient(urls) as c:
        revs = [(await c.put(f"/full/{i}", f"v{i}")).header.revision for i in range(200)]
        async with c.watch("/full/", prefix=True) as w:
            pass
    for i in range(3):
        cluster.kill(i)
    for i in range(3):
        cluster.start(i)
    for i in range(3):
        cluster.wait_healthy(i)
    async with EtcdClient(urls) as c:
        r = await c.get("/full/", prefix=True)
        assert r.count == 200
        assert {kv.key: kv.mod_revision for kv in r.kvs} == {f"/full/{i}".encode(): revs[i] for i in range(200)}
        # revisions continue where they stopped
        nxt = await c.put("/full/after", "x")
        assert nxt.header.revision == revs[-1] + 1
        # a watch resumes from a revision before the restart
        async with c.watch("/full/", prefix=True, start_revision=revs[150]) as w:
            seen = []
            async for resp in w:
                seen.extend(e.kv.key for e in resp.events)
                if len(seen) >= 51:
                    break
        assert seen[0] == b"/full/150" and seen[-1] == b"/full/after"


async def test_wiped_member_rejoins_from_snapshot(make_cluster):
    # a small compaction threshold makes the leader's log start after what the empty member needs
    cluster = make_cluster(3, extra_args=["--snapshot-count", "20"])
    async with EtcdClient(cluster.client_urls) as c:
        for i in range(100):
            await c.put(f"/wipe/{i}", f"v{i}")
    victim = (cluster.leader() + 1) % 3
    cluster.kill(victim)
    cluster.wipe(victim)
    async with EtcdClient([u for i, u in enumerate(cluster.client_urls) if i != victim]) as c:
        await c.put("/wipe/while-down", "x")
    cluster.start(victim)
    cluster.wait_healthy(victim)
    healthy = (victim + 1) % 3
    expected = await member_snapshot(cluster, healthy, "/wipe/")
    assert len(expected) == 101
    deadline = time.monotonic() + 20
    while await member_snapshot(cluster, victim, "/wipe/") != expected:
        assert time.monotonic() < deadline, "wiped member did not catch up"
        await asyncio.sleep(0.1)
    # it was brought up to date by an installed snapshot, not by replaying the whole log
    assert (cluster.data_dir(victim) / "member" / "raft.dump").exists()


async def test_concurrent_history_is_linearizable(make_cluster):
    """Every acknowledged write has a unique revision; reads on any member never go back in time."""
    cluster = make_cluster(3)
    urls = cluster.client_urls
    revisions: list[int] = []
    read_violations: list[str] = []

    async def writer(w: int) -> None:
        async with EtcdClient([urls[w % 3]]) as c:
            for i in range(60):
                revisions.append((await c.put(f"/lin/{w}", str(i))).header.revision)

    async def reader(r: int) -> None:
        async with EtcdClient([urls[r % 3]]) as c:
            last_seen = 0
            for _ in range(60):
                floor = max(revisions, default=0)  # acknowledged before this read started
                got = (await c.get("/lin/", prefix=True)).header.revision
                if got < floor or got < last_seen:
                    read_violations.append(f"reader {r} saw {got} after {max(floor, last_seen)}")
                last_seen = got

    await asyncio.gather(*(writer(w) for w in range(6)), *(reader(r) for r in range(6)))
    assert len(revisions) == len(set(revisions)) == 360
    assert not read_violations, read_violations[:5]


class WrongPasswordMember(EtcdnodeCluster):
    """Member 2 was given another peer password."""

    def command(self, i: int) -> list[str]:
        cmd = super().command(i)
        if i == 2:
            other = self.tmp / "other-password"
            other.write_text("not-the-secret\n")
            cmd[cmd.index("--peer-password-file") + 1] = str(other)
        return cmd


async def test_a_member_with_another_peer_password_gets_nothing(tmp_path):
    cluster = WrongPasswordMember(tmp_path)
    for i in range(3):
        cluster.start(i)
    try:
        for i in range(2):
            cluster.wait_healthy(i)
        async with EtcdClient(cluster.client_urls[:2]) as c:
            await c.put("/sealed", "only for members")
        async with EtcdClient(cluster.client_urls[2:], timeout=3) as c:
            with pytest.raises(EtcdError):
                await c.get("/sealed")      # no leader it can talk to: a linearizable read fails
        assert not cluster.healthy(2)
    finally:
        cluster.stop()

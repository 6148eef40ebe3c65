"""A power loss of every member at once loses no acknowledged write (and would without syncing)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from pysyncobj import SyncObj, SyncObjConf, SyncObjConsumer, replicated

from etcdnode import journal
from etcdnode.journal import SyncedJournal
from kubeling.etcd import EtcdClient
from tests.integration.test_store_failures import Writer
from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.powerloss import cut, durable_copies

pytestmark = pytest.mark.slow


SLOW_DISK = 0.02   # seconds each sync takes: an acknowledgement sent before its sync would show up


class TracedCluster(EtcdnodeCluster):
    """Members run under tests/support/powerloss.py, which records what each one synced (on a slow disk)."""

    own_session = True

    def trace(self, i: int):
        return self.tmp / f"m{i}.syncs"

    def command(self, i: int) -> list[str]:
        member = super().command(i)
        return [sys.executable, "-m", "tests.support.powerloss", str(self.trace(i)), str(SLOW_DISK), *member[3:]]

    def power_loss(self) -> list[dict[str, int]]:
        for i in range(self.size):
            # the whole member: a dump writer it forked would otherwise finish its dump after the cut
            os.killpg(self.procs[i].pid, signal.SIGKILL)
        for i in range(self.size):
            self.procs[i].wait(10)
            self.procs[i] = None
        return [cut(self.data_dir(i), self.trace(i)) for i in range(self.size)]


async def write_until_power_loss(cluster: TracedCluster) -> tuple[list[bytes], list[dict[str, int]]]:
    """Writers on every member; the power goes while they are writing."""
    urls = cluster.client_urls
    writer = Writer(cluster, "/power/", workers=9)
    task = asyncio.create_task(writer.run(lambda w: [urls[w % 3]]))
    # enough writes for several snapshots (--snapshot-count 200), so dumps and log compaction are covered
    await asyncio.to_thread(wait_for, lambda: len(writer.acked) >= 1500, 60, "writes before the power loss")
    acked = [k for k, _ in writer.acked]
    dropped = cluster.power_loss()
    writer.stop = True
    await task
    return acked, dropped


@pytest.fixture
def traced(tmp_path):
    made = []

    def make(*extra: str) -> TracedCluster:
        cluster = TracedCluster(tmp_path / f"c{len(made)}", extra_args=["--snapshot-count", "200", *extra])
        made.append(cluster)
        return cluster.start_all()

    yield make
    for cluster in made:
        cluster.stop()


async def test_every_acknowledged_write_survives_a_power_loss_of_all_members(traced):
    cluster = traced()
    acked, dropped = await write_until_power_loss(cluster)
    assert any((cluster.data_dir(i) / "member" / "raft.dump").exists() for i in range(3)), "no snapshot was taken"
    # Raft's promise, checked directly rather than left to which member wins the next election: every
    # acknowledged write is durable on a majority
    copies = [durable_copies(cluster.data_dir(i), acked) for i in range(3)]
    short = [k for k in acked if sum(c[k] for c in copies) < 2]
    assert not short, f"{len(short)} of {len(acked)} acknowledged writes durable on fewer than 2 members: {short[:3]}"
    for i in range(3):
        cluster.start(i)
    for i in range(3):
        cluster.wait_healthy(i)
    async with EtcdClient(cluster.client_urls) as c:
        stored = {kv.key for kv in (await c.get("/power/", prefix=True, keys_only=True)).kvs}
        missing = [k for k in acked if k not in stored]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost, e.g. {missing[:3]}; {dropped}"
        await c.put("/power/after", "x")
    for i in range(3):
        assert "torn record" in cluster.log_tail(i, 100_000), cluster.log_tail(i)


async def test_without_fsync_the_same_power_loss_loses_acknowledged_writes(traced):
    """The check above has teeth: with --unsafe-no-fsync nothing reaches the disk before it is acknowledged."""
    cluster = traced("--unsafe-no-fsync")
    acked, dropped = await write_until_power_loss(cluster)
    assert all(d.get("raft.log", 0) > 0 for d in dropped), dropped
    for i in range(3):
        cluster.start(i)
    for i in range(3):
        cluster.wait_healthy(i)
    async with EtcdClient(cluster.client_urls) as c:
        stored = {kv.key for kv in (await c.get("/power/", prefix=True, keys_only=True)).kvs}
    assert len(stored) < len(acked)


class _Values(SyncObjConsumer):
    """The smallest replicated state machine: the list of values applied."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[int] = []

    @replicated
    def append(self, value: int) -> None:
        self.values.append(value)

    def _serialize(self) -> list[int]:
        return self.values

    def _deserialize(self, data: list[int]) -> None:
        self.values = data


def _member(member_dir, port: int) -> tuple[SyncObj, _Values]:
    """A one-member Raft group on etcdnode's journal."""
    journal.install(True)
    state = _Values()
    return SyncObj(f"127.0.0.1:{port}", [], SyncObjConf(
        journalFile=str(member_dir / "raft.log"), fullDumpFile=str(member_dir / "raft.dump"),
        logCompactionMinEntries=10**6, logCompactionMinTime=10**6, dynamicMembershipChange=False),
        consumers=[state]), state


def test_a_restart_between_the_dump_and_the_log_rewrite_keeps_entries_after_the_dump(tmp_path):
    """A compaction replaces the dump, then rewrites the log; a crash in between leaves the new dump
    beside the old, longer log. Entries after the dump are in that log only: they must survive the restart."""
    port = free_port()
    member, state = _member(tmp_path, port)
    for v in range(20):
        state.append(v, sync=True)
    member.destroy()
    before_compaction = (tmp_path / "raft.log").read_bytes()

    member, state = _member(tmp_path, port)
    wait_for(lambda: len(state.values) == 20, 10, "the log replayed")
    member.forceLogCompaction()
    wait_for(lambda: (tmp_path / "raft.dump").exists() and member.getStatus()["log_len"] <= 3, 10, "a compaction")
    for v in range(20, 40):
        state.append(v, sync=True)
    member.destroy()
    compacted = SyncedJournal(str(tmp_path / "raft.log"))
    after_dump = [compacted[i] for i in range(len(compacted))]
    compacted._destroy()

    (tmp_path / "raft.log").write_bytes(before_compaction)  # the crash: new dump, log not yet rewritten
    crashed = SyncedJournal(str(tmp_path / "raft.log"))
    last = crashed[len(crashed) - 1][1]
    for entry in after_dump:
        if entry[1] > last:
            crashed.add(*entry)
    crashed._destroy()

    member, state = _member(tmp_path, port)
    try:
        wait_for(lambda: len(state.values) >= 40, 10, "the dump and the log after it applied")
        assert state.values == list(range(40))
    finally:
        member.destroy()

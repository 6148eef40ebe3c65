"""Raft replication of the MVCC store with pysyncobj, and the asyncio-side proposer.

The proposer does group commit: requests that arrive while earlier entries are in
flight are packed into one log entry. Linearizable reads join the same batches as a
``barrier`` op, so concurrent readers share one round through the log. Each batch has
an ID that the state machine de-duplicates, which makes re-proposing a batch whose
outcome is unknown (leader change) safe: it is applied at most once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.config import FAIL_REASON

from . import errors, journal, peerwire
from .errors import EtcdError
from .mvcc import MVCCStore

log = logging.getLogger("etcdnode.raft")


class ResentEntries(logging.Filter):
    """pysyncobj logs CRITICAL ("state machine may have diverged") when a leader re-sends entries a
    follower has already applied, which happens after every leader change: the follower replaces them
    instead of skipping the identical ones. By Raft's leader completeness an applied (committed) entry is
    the same in every later leader's log, so nothing diverged; the record becomes INFO with that reason
    rather than have operators read a healthy cluster as broken."""

    PREFIX = "truncating already-applied log entries"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.CRITICAL and str(record.msg).startswith(self.PREFIX):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = ("leader re-sent log entries from index %d (applied here up to %d); committed entries "
                          "are identical on every member, so they are replaced in the log, not applied again")
        return True


logging.getLogger("pysyncobj.syncobj").addFilter(ResentEntries())


def keep_pipeline(sync: SyncObj) -> None:
    """Stop pysyncobj's leader from re-sending entries that are already on their way.

    The leader advances a follower's next index as it sends, but on each acknowledgement sets it back
    to just after the acknowledged entry, so under load every new entry was sent again with all those
    still in flight. The follower then truncated and re-wrote (and synced) entries it already had, which
    is what made pysyncobj log "truncating already-applied log entries". Pipelined Raft keeps the next
    index where sending left it; a follower that really misses entries answers with a reset, which is
    left alone. Messages are handled on the tick thread, as is sending, so nothing races here.
    """
    transport = sync._SyncObj__transport
    handle = transport._onMessageReceivedCallback

    def on_message(node, message) -> None:
        if type(message) is dict and message.get("type") == "next_node_idx" and message.get("success") \
                and not message.get("reset"):
            sent = sync._SyncObj__raftNextIndex.get(node)
            handle(node, message)
            nxt = sync._SyncObj__raftNextIndex
            if sent is not None and nxt.get(node, sent) < sent:
                nxt[node] = sent
            return
        handle(node, message)

    transport.setOnMessageReceivedCallback(on_message)


def durable_before_counted(sync: SyncObj) -> None:
    """Sync the Raft log where Raft needs it, and no more often (see etcdnode.journal).

    A follower syncs before it sends an acknowledgement (``next_node_idx``). The leader adds a command
    and sends it at once, then syncs at the end of the tick, before it polls for acknowledgements: the
    leader's sync overlaps the followers' instead of preceding them, and the commit that counts the
    leader is computed at the top of a later tick, after that sync. Every command taken in one tick
    (one batch per member) shares the sync. Both hooks run on the tick thread.
    """
    raft_log = sync._SyncObj__raftLog
    # a one-member group: no follower will answer and wake the poll
    wake = None if sync._SyncObj__otherNodes else sync._SyncObj__pipeNotifier.notify

    def end_of_tick() -> None:
        added = raft_log.unsynced
        raft_log.flush()
        if added and wake:
            # tick again now to commit what was added, rather than when the poll times out
            # (autoTickPeriod, 50 ms per write)
            wake()

    sync.addOnTickCallback(end_of_tick)
    transport = sync._SyncObj__transport
    send = transport.send

    def send_after_sync(node, message) -> bool:
        if type(message) is dict and message.get("type") == "next_node_idx":
            raft_log.flush()
        return send(node, message)

    transport.send = send_after_sync


# Outcomes after which the command is known not to be in the log.
_NOT_APPLIED = {FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
                FAIL_REASON.NOT_LEADER, FAIL_REASON.REQUEST_DENIED}

MAX_BATCH_OPS = 2000
MAX_BATCH_BYTES = 4 * 1024 * 1024


class StoreConsumer(SyncObjConsumer):
    """Binds the MVCC store into pysyncobj: the replicated apply and the full dump."""

    def __init__(self, store: MVCCStore) -> None:
        super().__init__()
        self.store = store

    @replicated
    def apply(self, batch_id: Any, now: float, ops: list) -> list:
        return self.store.apply_batch(batch_id, now, ops)

    def _serialize(self) -> dict:
        return self.store.snapshot()

    def _deserialize(self, data: dict) -> None:
        self.store.restore(data)


@dataclass(slots=True)
class _Batch:
    id: bytes
    ops: list
    futures: list
    deadline: float
    attempts: int = 0
    leader_failed: bool = False


@dataclass
class RaftConfig:
    self_addr: str
    peers: list[str]
    data_dir: str
    password: str
    election_min: float = 0.4
    election_max: float = 1.4
    heartbeat: float = 0.1
    request_timeout: float = 7.0
    max_inflight: int = 2
    log_compaction_entries: int = 20000
    fsync: bool = True
    extra: dict = field(default_factory=dict)


class RaftNode:
    """Owns the SyncObj (its tick thread) and proposes batches from the asyncio loop."""

    def __init__(self, cfg: RaftConfig, store: MVCCStore, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.store = store
        self.loop = loop
        self.consumer = StoreConsumer(store)
        self._pending: list[tuple[tuple, asyncio.Future, int]] = []
        self._inflight = 0
        self._flush_scheduled = False
        self._prefix = secrets.token_bytes(8)
        self._counter = 0
        self.leader_changes = 0
        self.proposals = 0
        self.on_become_leader: list = []
        member_dir = os.path.join(cfg.data_dir, "member")
        os.makedirs(member_dir, exist_ok=True)
        conf = SyncObjConf(
            password=cfg.password,
            journalFile=os.path.join(member_dir, "raft.log"),
            fullDumpFile=os.path.join(member_dir, "raft.dump"),
            appendEntriesUseBatch=False,
            appendEntriesBatchSizeBytes=16 * 1024 * 1024,
            sendBufferSize=2**20,
            recvBufferSize=2**20,
            raftMinTimeout=cfg.election_min,
            raftMaxTimeout=cfg.election_max,
            appendEntriesPeriod=cfg.heartbeat,
            connectionTimeout=3.5,
            connectionRetryTime=0.5,
            leaderFallbackTimeout=3.0,
            commandsWaitLeader=True,
            logCompactionMinEntries=cfg.log_compaction_entries,
            logCompactionMinTime=600,
            onStateChanged=self._on_state_changed,
            dynamicMembershipChange=False,
            **cfg.extra,
        )
        others = [p for p in cfg.peers if p != cfg.self_addr]
        journal.install(cfg.fsync)
        peerwire.install()
        self.sync = SyncObj(cfg.self_addr, others, conf, consumers=[self.consumer])
        keep_pipeline(self.sync)
        durable_before_counted(self.sync)

    # ----- status -----
    def is_leader(self) -> bool:
        return self.sync._isLeader()

    def leader(self) -> str | None:
        leader = self.sync._getLeader()
        return None if leader is None else leader.address if hasattr(leader, "address") else str(leader)

    def term(self) -> int:
        return self.sync.raftCurrentTerm

    def status(self) -> dict:
        return self.sync.getStatus()

    def destroy(self) -> None:
        self.sync.destroy()

    def _on_state_changed(self, old: int, new: int) -> None:
        # tick thread; pysyncobj's _RAFT_STATE.LEADER == 2
        self.leader_changes += 1
        if new == 2:
            for cb in self.on_become_leader:
                self.loop.call_soon_threadsafe(cb)

    # ----- proposing -----
    def propose(self, op: tuple, size: int = 64) -> asyncio.Future:
        """Queue one op for the next batch; the future resolves to its result tuple."""
        fut = self.loop.create_future()
        self._pending.append((op, fut, size))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        return fut

    async def submit(self, op: tuple, size: int = 64) -> tuple:
        res = await self.propose(op, size)
        if res[0] == "err":
            raise EtcdError(res[1], res[2])
        return res

    async def barrier(self) -> None:
        await self.submit(("barrier",))

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._pending and self._inflight < self.cfg.max_inflight:
            take, nbytes = 0, 0
            for _, _, size in self._pending:
                take += 1
                nbytes += size
                if take >= MAX_BATCH_OPS or nbytes >= MAX_BATCH_BYTES:
                    break
            chunk, self._pending = self._pending[:take], self._pending[take:]
            self._counter += 1
            batch = _Batch(
                id=self._prefix + self._counter.to_bytes(8, "big"),
                ops=[op for op, _, _ in chunk],
                futures=[f for _, f, _ in chunk],
                deadline=time.monotonic() + self.cfg.request_timeout,
            )
            self._inflight += 1
            self._send(batch)

    def _send(self, batch: _Batch) -> None:
        batch.attempts += 1
        self.proposals += 1
        loop = self.loop

        def callback(res: Any, err: int) -> None:  # tick thread
            loop.call_soon_threadsafe(self._done, batch, res, err)

        self.consumer.apply(batch.id, time.time(), batch.ops, callback=callback)
        if batch.attempts == 1:
            # a callback can be lost if this member is cut off: enforce the deadline
            loop.call_at(loop.time() + self.cfg.request_timeout + 0.05, self._expire, batch)

    def _done(self, batch: _Batch, res: Any, err: int) -> None:
        if not batch.futures:
            return
        if err == FAIL_REASON.SUCCESS:
            for fut, r in zip(batch.futures, res):
                if not fut.done():
                    fut.set_result(r)
            self._finish(batch)
            return
        if err not in _NOT_APPLIED:
            batch.leader_failed = True
        if time.monotonic() + 0.05 < batch.deadline:
            # same batch ID: the state machine applies it at most once
            self.loop.call_later(0.05, self._resend, batch)
        else:
            self._fail(batch)

    def _resend(self, batch: _Batch) -> None:
        if batch.futures:
            self._send(batch)

    def _expire(self, batch: _Batch) -> None:
        if batch.futures:
            self._fail(batch)

    def _fail(self, batch: _Batch) -> None:
        e = errors.timeout_leader_fail() if batch.leader_failed else errors.timeout()
        for fut in batch.futures:
            if not fut.done():
                fut.set_result(e.to_tuple())
        self._finish(batch)

    def _finish(self, batch: _Batch) -> None:
        batch.futures = []
        self._inflight -= 1
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

"""A durable Raft log for pysyncobj: an append-only file of checksummed records, synced before an entry counts.

pysyncobj's own journal is a memory map it never syncs, so a power loss of a majority could lose
acknowledged writes. Here `add` writes the record and `flush` fdatasyncs what was added since the last
flush; `etcdnode.raft.durable_before_counted` calls it where Raft needs it: on a follower before it
acknowledges entries, on the leader at the end of the tick that added them, after it sent them, so its
sync runs in parallel with the followers' (as etcd's leader writes its WAL while followers write theirs)
and before the next tick counts it towards a commit. Every command the leader takes in one tick shares
that one sync.

A record is ``<length u32><crc32 u32><index u64><term u64><command>``. On start, a torn or corrupt tail
(what a power loss leaves after the last sync) is cut off at the last whole record. Term, vote and commit
index live in a small side file replaced atomically; term and vote are synced before any message that
reflects them is sent. Full dumps (pysyncobj's snapshots) go through `durable_replace`, so the dump is on
disk before the log prefix it replaces is dropped.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import struct
import types
import zlib

import orjson
import pysyncobj.serializer
import pysyncobj.syncobj
from pysyncobj.journal import FileJournal, Journal

log = logging.getLogger("etcdnode.journal")

MAGIC = b"etcdnode raft log v1\n"
LEGACY = "raft.journal"   # pysyncobj's FileJournal, used before this module
_HEAD = struct.Struct("<II")
_ENTRY = struct.Struct("<QQ")


def fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: str, dst: str, sync: bool = True) -> None:
    """Rename ``tmp`` over ``dst`` so that after a crash either the old or the whole new file is there."""
    if sync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, dst)
    if sync:
        fsync_dir(os.path.dirname(dst))


def durable_write(path: str, data: bytes, sync: bool = True) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    durable_replace(tmp, path, sync)


def _record(command: bytes, idx: int, term: int) -> bytes:
    payload = _ENTRY.pack(idx, term) + command
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


class SyncedJournal(Journal):
    """pysyncobj's Journal interface over one append-only file (plus a meta file)."""

    def __init__(self, path: str, sync: bool = True) -> None:
        self.path = path
        self.sync = sync
        self.meta_path = path + ".meta"
        self.entries: list[tuple[bytes, int, int]] = []
        self.offsets: list[int] = []    # file offset of each entry's record
        self.unsynced = False
        self.meta = self._load_meta()
        self.meta_dirty = False
        if not os.path.exists(path):
            self._create(self._legacy_entries())
            for old in (LEGACY, LEGACY + ".meta"):
                if os.path.exists(p := os.path.join(os.path.dirname(path), old)):
                    os.remove(p)
        self._load()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    # ----- files -----
    def _load_meta(self) -> dict:
        try:
            with open(self.meta_path, "rb") as f:
                return orjson.loads(f.read())
        except FileNotFoundError:
            return {}

    def _store_meta(self) -> None:
        durable_write(self.meta_path, orjson.dumps(self.meta), self.sync)
        self.meta_dirty = False

    def _legacy_entries(self) -> list[tuple[bytes, int, int]]:
        """Entries of pysyncobj's own journal format left by an earlier version, carried over once."""
        old = os.path.join(os.path.dirname(self.path), LEGACY)
        if not os.path.exists(old):
            return []
        j = FileJournal(old)
        entries = [j[i] for i in range(len(j))]
        if not self.meta:
            self.meta = {"currentTerm": j.getCurrentTerm(), "votedForNodeId": j.getVotedForNodeId(),
                         "raftCommitIndex": j.getRaftCommitIndex()}
            self._store_meta()
        j._destroy()
        log.info("carried %d entries over from the previous journal format %s", len(entries), old)
        return entries

    def _create(self, entries: list[tuple[bytes, int, int]]) -> None:
        """Write a whole new log file (first start, compaction) and swap it in atomically; the
        in-memory view becomes exactly what was written."""
        records = [_record(*e) for e in entries]
        self.entries, self.offsets, self.end = list(entries), [], len(MAGIC)
        for rec in records:
            self.offsets.append(self.end)
            self.end += len(rec)
        durable_write(self.path, MAGIC + b"".join(records), self.sync)

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            data = f.read()
        if not data.startswith(MAGIC):
            raise RuntimeError(f"{self.path} is not an etcdnode Raft log")
        pos, end = len(MAGIC), len(data)
        self.entries, self.offsets = [], []
        while pos + _HEAD.size <= end:
            length, crc = _HEAD.unpack_from(data, pos)
            body = pos + _HEAD.size
            if length < _ENTRY.size or body + length > end or zlib.crc32(data[body:body + length]) != crc:
                break
            idx, term = _ENTRY.unpack_from(data, body)
            self.entries.append((data[body + _ENTRY.size:body + length], idx, term))
            self.offsets.append(pos)
            pos = body + length
        if pos != end:
            # what a power loss leaves after the last sync: a partly written record
            log.warning("cut %d bytes of a torn record off the end of the Raft log %s", end - pos, self.path)
            with open(self.path, "r+b") as f:
                f.truncate(pos)
                if self.sync:
                    os.fsync(f.fileno())
        self.end = pos

    def flush(self) -> None:
        """Make every added entry durable (one fdatasync for all added since the last flush)."""
        if self.unsynced:
            self._sync()

    def _sync(self) -> None:
        if self.sync:
            os.fdatasync(self.fd)
        self.unsynced = False

    # ----- the Journal interface -----
    def add(self, command: bytes, idx: int, term: int) -> None:
        rec = _record(command, idx, term)
        os.write(self.fd, rec)
        self.unsynced = True
        self.entries.append((command, idx, term))
        self.offsets.append(self.end)
        self.end += len(rec)

    def clear(self) -> None:
        self.entries, self.offsets = [], []
        self._truncate(len(MAGIC))

    def _truncate(self, end: int) -> None:
        os.ftruncate(self.fd, end)
        self.end = end
        self._sync()

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        if entryFrom < len(self.entries):
            end = self.offsets[entryFrom]
            del self.entries[entryFrom:], self.offsets[entryFrom:]
            self._truncate(end)

    def deleteEntriesTo(self, entryTo: int) -> None:
        keep = self.entries[entryTo:]
        os.close(self.fd)
        self.unsynced = False   # _create writes and syncs the whole new file
        self._create(keep)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def drop_before(self, entry: tuple[bytes, int, int]) -> None:
        """Finish a compaction a crash cut short: the dump covers everything before ``entry`` (the entry
        before its last applied one), so the log must start there. pysyncobj replaces the dump first and
        rewrites the log after; between the two, the log still starts earlier, and pysyncobj would then
        clear it entirely, dropping entries after the dump that this member had acknowledged."""
        for i, e in enumerate(self.entries):
            if e[1] == entry[1]:
                if i > 0 and e == entry:
                    log.warning("dropping %d log entries already in the dump (a compaction was cut short)", i)
                    self.deleteEntriesTo(i)
                return

    def __getitem__(self, item):
        return self.entries[item]

    def __len__(self) -> int:
        return len(self.entries)

    def _destroy(self) -> None:
        self.flush()
        if self.meta_dirty:
            self._store_meta()
        os.close(self.fd)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        # not needed for safety (every entry up to it is already synced): stored once a second
        self.meta["raftCommitIndex"] = raftCommitIndex
        self.meta_dirty = True

    def getRaftCommitIndex(self) -> int:
        return self.meta.get("raftCommitIndex", 1)

    def setCurrentTerm(self, term: int, votedForNodeId) -> None:
        # Raft: term and vote are durable before any message reflecting them is sent
        self.meta["currentTerm"], self.meta["votedForNodeId"] = term, votedForNodeId
        self._store_meta()

    def getCurrentTerm(self) -> int:
        return self.meta.get("currentTerm", 0)

    def getVotedForNodeId(self):
        return self.meta.get("votedForNodeId")

    def onOneSecondTimer(self) -> None:
        if self.meta_dirty:
            self._store_meta()


# pysyncobj gzips its full dumps at gzip's default level 9: on a store of tens of MB that is seconds of
# CPU, taken by every member at about the same entry count. Level 1 is several times cheaper; the files
# stay gzip, so dumps written earlier (and sent by other members) read the same.
_FAST_GZIP = types.SimpleNamespace(GzipFile=functools.partial(gzip.GzipFile, compresslevel=1))


def _background_priority() -> None:
    """The child pysyncobj forks to write a dump yields the CPU to the member serving requests."""
    os.setpriority(os.PRIO_PROCESS, 0, 19)


def _load_dump_aligned(load):
    """Wrap SyncObj's dump loading so the log is first aligned with the dump (SyncedJournal.drop_before)."""
    def load_dump(self, clearJournal):
        if clearJournal:
            return load(self, clearJournal)
        serializer, raft_log = self._SyncObj__serializer, self._SyncObj__raftLog
        read = serializer.deserialize

        def deserialize():
            data = read()
            raft_log.drop_before(data[2])
            return data

        serializer.deserialize = deserialize
        try:
            return load(self, clearJournal)
        finally:
            del serializer.deserialize
    return load_dump


def install(sync: bool) -> None:
    """Make the next SyncObj use SyncedJournal and write its full dumps durably, cheaply, in the background.

    pysyncobj has no hook for these: its module-level journal factory, the gzip module and the rename its
    serializer uses after writing a dump are replaced (the serializer runs in a forked child, so the sync
    does too), and forked children run at the lowest priority.
    """
    pysyncobj.syncobj.createJournal = lambda path: SyncedJournal(path, sync)
    pysyncobj.serializer.atomicReplace = lambda tmp, dst: durable_replace(tmp, dst, sync)
    pysyncobj.serializer.gzip = _FAST_GZIP
    if not getattr(pysyncobj.syncobj.SyncObj._SyncObj__loadDumpFile, "aligned", False):
        # once per process: both are process-wide, and fork handlers would pile up
        os.register_at_fork(after_in_child=_background_priority)
        pysyncobj.syncobj.SyncObj._SyncObj__loadDumpFile = _load_dump_aligned(
            pysyncobj.syncobj.SyncObj._SyncObj__loadDumpFile)
        pysyncobj.syncobj.SyncObj._SyncObj__loadDumpFile.aligned = True

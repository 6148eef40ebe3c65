"""The durable Raft log: what is added is read back after a restart, torn tails are cut, compaction keeps the rest."""

from __future__ import annotations

import os

from pysyncobj.journal import FileJournal

from etcdnode.journal import MAGIC, SyncedJournal


def entries(n: int, start: int = 1, term: int = 1) -> list[tuple[bytes, int, int]]:
    return [(f"cmd{i}".encode() * (i % 5 + 1), i, term) for i in range(start, start + n)]


def reopen(j: SyncedJournal) -> SyncedJournal:
    j._destroy()
    return SyncedJournal(j.path)


def test_entries_and_meta_survive_reopen(tmp_path):
    j = SyncedJournal(str(tmp_path / "raft.log"))
    for e in entries(50):
        j.add(*e)
    j.setCurrentTerm(3, "127.0.0.1:2380")
    j.setRaftCommitIndex(40)
    j = reopen(j)
    assert [j[i] for i in range(len(j))] == entries(50)
    assert (j.getCurrentTerm(), j.getVotedForNodeId(), j.getRaftCommitIndex()) == (3, "127.0.0.1:2380", 40)


def test_torn_tail_is_cut_at_the_last_whole_record(tmp_path):
    path = tmp_path / "raft.log"
    j = SyncedJournal(str(path))
    for e in entries(10):
        j.add(*e)
    j._destroy()
    whole = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\xff\x00\x00\x00garbage")      # a record whose write the power cut
    j = SyncedJournal(str(path))
    assert len(j) == 10 and path.stat().st_size == whole
    with open(path, "r+b") as f:                 # a flipped byte in the last record fails its checksum
        f.seek(whole - 1)
        flipped = bytes([f.read(1)[0] ^ 0xFF])
        f.seek(whole - 1)
        f.write(flipped)
    j = SyncedJournal(str(path))
    assert [j[i] for i in range(len(j))] == entries(9)
    j.add(*entries(1, start=10, term=2)[0])
    assert reopen(j)[9] == entries(1, start=10, term=2)[0]


def test_truncation_clear_and_compaction(tmp_path):
    j = SyncedJournal(str(tmp_path / "raft.log"))
    for e in entries(30):
        j.add(*e)
    j.deleteEntriesFrom(20)                      # a follower drops a conflicting tail
    j.add(b"new", 21, 2)
    j = reopen(j)
    assert len(j) == 21 and j[-1] == (b"new", 21, 2)
    j.deleteEntriesTo(15)                        # log compaction after a snapshot
    assert j[0] == entries(1, start=16)[0]
    j.add(b"after", 22, 2)
    j = reopen(j)
    assert [e[1] for e in (j[i] for i in range(len(j)))] == list(range(16, 23))
    j.clear()
    j = reopen(j)
    assert len(j) == 0 and os.path.getsize(j.path) == len(MAGIC)


def test_pysyncobj_journal_of_an_earlier_version_is_carried_over(tmp_path):
    old = FileJournal(str(tmp_path / "raft.journal"))
    for e in entries(5):
        old.add(*e)
    old.setCurrentTerm(4, None)
    old._destroy()
    j = SyncedJournal(str(tmp_path / "raft.log"))
    assert [j[i] for i in range(len(j))] == entries(5) and j.getCurrentTerm() == 4
    assert not (tmp_path / "raft.journal").exists()


def test_one_sync_covers_every_entry_added_before_it(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))
    j = SyncedJournal(str(tmp_path / "raft.log"))
    for e in entries(5):
        j.add(*e)
    assert synced == []                          # the Raft hooks decide when (etcdnode.raft)
    j.flush()
    j.flush()                                    # nothing new: no second sync
    assert len(synced) == 1
    j.add(*entries(1, start=6)[0])
    j._destroy()                                 # a clean shutdown syncs what is left
    assert len(synced) == 2


def test_a_compaction_cut_short_is_finished_not_cleared(tmp_path):
    """The dump was replaced but the crash came before the log was rewritten: the log still starts
    before the dump's entries. Aligning drops only what the dump covers; entries after it stay."""
    j = SyncedJournal(str(tmp_path / "raft.log"))
    for e in entries(30):
        j.add(*e)
    dump_prev = entries(30)[19]                  # the dump's entry before its last applied one (index 20)
    j.drop_before(dump_prev)
    assert [j[i] for i in range(len(j))] == entries(30)[19:]
    j.drop_before(dump_prev)                     # already aligned: nothing more goes
    j.drop_before((b"other", 25, 9))             # a different entry at that index: left to pysyncobj
    assert reopen(j)[0] == dump_prev and len(j) == 11

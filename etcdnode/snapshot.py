"""etcd's snapshot of the store: the key space in etcd 3.4's backend schema, as a bbolt file.

A restorable snapshot here means one real etcd accepts: `etcdctl snapshot status` reads it and
`etcdctl snapshot restore` makes an etcd data directory from it holding the same keys, revisions,
history (what compaction kept) and leases. Buckets written: "key" (every kept key revision, keyed
by 8-byte big-endian main revision, "_", 8-byte sub revision, "t" for a deletion; values are
mvccpb.KeyValue), "lease" (leasepb.Lease by 8-byte ID) and "meta" (consistent_index, the compacted
revision). Membership buckets are left out: restore writes them from its own flags. etcdnode
itself restores from its Raft log, not from this file.
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter

from . import boltdb
from .etcdserverpb import kv_pb2
from .mvcc import CREATE, KEY, LEASE, MOD, VALUE, VERSION


def rev_key(main: int, sub: int, tombstone: bool = False) -> bytes:
    return struct.pack(">Q", main) + b"_" + struct.pack(">Q", sub) + (b"t" if tombstone else b"")


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def lease_value(lease_id: int, ttl: int) -> bytes:
    """leasepb.Lease{ID, TTL} (fields 1 and 2, varints): no generated module for one message."""
    return b"\x08" + _varint(lease_id) + b"\x10" + _varint(ttl)


def build(histories: list[list[tuple]], leases: list[tuple[int, int]], compact_revision: int,
          consistent_index: int) -> bytes:
    """The snapshot file: the bbolt database followed by its sha256, as etcd streams it."""
    subs: Counter = Counter()
    keys = []
    for history in histories:
        for rec in history:
            sub = subs[rec[MOD]]
            subs[rec[MOD]] += 1
            if rec[VALUE] is None:
                kv = kv_pb2.KeyValue(key=rec[KEY], mod_revision=rec[MOD])
            else:
                kv = kv_pb2.KeyValue(key=rec[KEY], create_revision=rec[CREATE], mod_revision=rec[MOD],
                                     version=rec[VERSION], value=rec[VALUE], lease=rec[LEASE])
            keys.append((rev_key(rec[MOD], sub, rec[VALUE] is None), kv.SerializeToString()))
    meta = [(b"consistent_index", struct.pack(">Q", consistent_index))]
    if compact_revision:
        meta += [(b"finishedCompactRev", rev_key(compact_revision, 0)),
                 (b"scheduledCompactRev", rev_key(compact_revision, 0))]
    db = boltdb.build({
        b"key": keys,
        b"lease": [(struct.pack(">Q", i), lease_value(i, ttl)) for i, ttl in leases],
        b"meta": meta,
    })
    return db + hashlib.sha256(db).digest()

"""The replicated state machine: an etcd-style MVCC key-value store with leases.

Everything here runs identically on every member when a Raft entry is applied, so it
is pure and deterministic: wall-clock time arrives as an argument chosen by the
proposer, lease IDs are chosen by the proposer, and iteration orders are sorted.
Readers on other threads must hold ``lock``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sortedcontainers import SortedDict

from . import errors
from .errors import EtcdError

# A key record: (key, value, create_revision, mod_revision, version, lease).
# A tombstone has value None and version 0.
Rec = tuple
KEY, VALUE, CREATE, MOD, VERSION, LEASE = range(6)

PUT, DELETE = 0, 1
MIN_LEASE_TTL = 2
MAX_LEASE_TTL = 9_000_000_000
DEDUP_ENTRIES = 4096


@dataclass(slots=True)
class RangeReq:
    key: bytes
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    keys_only: bool = False
    count_only: bool = False
    sort_order: int = 0  # 0 none, 1 ascend, 2 descend
    sort_target: int = 0  # 0 key, 1 version, 2 create, 3 mod, 4 value
    serializable: bool = False
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int
    expiry: float
    keys: set


def range_keys(keys: SortedDict, key: bytes, range_end: bytes) -> Iterable[bytes]:
    """Keys of ``keys`` selected by etcd's (key, range_end) convention."""
    if not range_end:
        return (key,) if key in keys else ()
    if range_end == b"\x00":
        return keys.irange(minimum=key)
    return keys.irange(minimum=key, maximum=range_end, inclusive=(True, False))


def visible(history: list, rev: int) -> Rec | None:
    """The live record of one key as of revision ``rev`` (None if absent or deleted)."""
    rec = history[-1]
    if rec[MOD] > rev:
        rec = None
        for r in reversed(history):
            if r[MOD] <= rev:
                rec = r
                break
        if rec is None:
            return None
    return rec if rec[VALUE] is not None else None


_SORT_KEYS: dict[int, Callable[[Rec], Any]] = {
    0: lambda r: r[KEY],
    1: lambda r: r[VERSION],
    2: lambda r: r[CREATE],
    3: lambda r: r[MOD],
    4: lambda r: r[VALUE],
}


class MVCCStore:
    """In-memory MVCC store: one global revision, per-key history, an event log for watches."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.on_apply: Callable[[], None] | None = None
        self.reset()

    def reset(self) -> None:
        self.revision = 1
        self.compact_revision = 0
        self.keys: SortedDict = SortedDict()
        self.event_revs: list[int] = []
        self.events: list[tuple] = []  # (rev, type, rec, prev_rec)
        self.leases: dict[int, Lease] = {}
        self.dedup: OrderedDict = OrderedDict()
        self.applied_batches = 0

    # ----- snapshot (pysyncobj full dump) -----
    def snapshot(self) -> dict:
        return {
            "revision": self.revision,
            "compact_revision": self.compact_revision,
            "keys": self.keys,
            "event_revs": self.event_revs,
            "events": self.events,
            "leases": [(l.id, l.ttl, l.expiry, sorted(l.keys)) for l in self.leases.values()],
            "dedup": list(self.dedup.items()),
        }

    def restore(self, data: dict) -> None:
        with self.lock:
            self.reset()
            self.revision = data["revision"]
            self.compact_revision = data["compact_revision"]
            self.keys = data["keys"]
            self.event_revs = data["event_revs"]
            self.events = data["events"]
            self.leases = {i: Lease(i, t, e, set(k)) for i, t, e, k in data["leases"]}
            self.dedup = OrderedDict(data["dedup"])
        if self.on_apply:
            self.on_apply()

    # ----- the apply entry point -----
    def apply_batch(self, batch_id: Any, now: float, ops: list) -> list:
        """Apply one Raft entry: a group of requests. Re-applying a batch ID returns its first results."""
        with self.lock:
            if batch_id is not None:
                done = self.dedup.get(batch_id)
                if done is not None:
                    return done
            results = []
            for op in ops:
                try:
                    results.append(self._apply_op(op, now))
                except EtcdError as e:
                    results.append(e.to_tuple())
            if batch_id is not None:
                self.dedup[batch_id] = results
                if len(self.dedup) > DEDUP_ENTRIES:
                    self.dedup.popitem(last=False)
            self.applied_batches += 1
        if self.on_apply:
            self.on_apply()
        return results

    def _apply_op(self, op: tuple, now: float) -> tuple:
        kind = op[0]
        if kind == "put":
            _, key, value, lease, prev_kv, ignore_value, ignore_lease = op
            rev = self.revision + 1
            prev = self._put(rev, key, value, lease, ignore_value, ignore_lease)
            self.revision = rev
            return ("put", rev, prev if prev_kv else None)
        if kind == "del":
            _, key, range_end, prev_kv = op
            rev = self.revision + 1
            prevs = self._delete(rev, key, range_end)
            if prevs:
                self.revision = rev
            return ("del", self.revision, len(prevs), prevs if prev_kv else None)
        if kind == "txn":
            rev = self.revision + 1
            self._check_txn(op)
            changed = [False]
            res = self._txn(rev, op, changed)
            if changed[0]:
                self.revision = rev
                res = _with_rev(res, rev)
            return res
        if kind == "barrier":
            return ("ok", self.revision)
        if kind == "compact":
            self.compact(op[1])
            return ("ok", self.revision)
        if kind == "lease_grant":
            return self._lease_grant(op[1], op[2], now)
        if kind == "lease_revoke":
            lease = self.leases.get(op[1])
            if lease is None:
                raise errors.lease_not_found()
            self._lease_revoke(lease)
            return ("ok", self.revision)
        if kind == "lease_keepalive":
            lease = self.leases.get(op[1])
            if lease is None:
                return ("ttl", self.revision, 0)
            lease.expiry = now + lease.ttl
            return ("ttl", self.revision, lease.ttl)
        if kind == "lease_expire":
            for lease_id in op[1]:
                lease = self.leases.get(lease_id)
                if lease is not None and lease.expiry <= now:
                    self._lease_revoke(lease)
            return ("ok", self.revision)
        if kind == "lease_refresh":
            # a new leader does not know when the last keepalives arrived: restart every clock
            for lease in self.leases.values():
                lease.expiry = max(lease.expiry, now + lease.ttl)
            return ("ok", self.revision)
        raise EtcdError(errors.INVALID_ARGUMENT, f"etcdserver: unknown operation {kind!r}")

    # ----- writes -----
    def _put(self, rev, key, value, lease, ignore_value=False, ignore_lease=False):
        history = self.keys.get(key)
        cur = history[-1] if history else None
        if cur is not None and cur[VALUE] is None:
            cur = None
        if ignore_value or ignore_lease:
            if cur is None:
                raise errors.key_not_found()
            if ignore_value:
                value = cur[VALUE]
            if ignore_lease:
                lease = cur[LEASE]
        if lease and lease not in self.leases:
            raise errors.lease_not_found()
        if cur is None:
            rec = (key, value, rev, rev, 1, lease)
        else:
            rec = (key, value, cur[CREATE], rev, cur[VERSION] + 1, lease)
            if cur[LEASE] and cur[LEASE] != lease:
                old = self.leases.get(cur[LEASE])
                if old is not None:
                    old.keys.discard(key)
        if history is None:
            self.keys[key] = [rec]
        else:
            history.append(rec)
        if lease:
            self.leases[lease].keys.add(key)
        self.event_revs.append(rev)
        self.events.append((rev, PUT, rec, cur))
        return cur

    def _delete(self, rev, key, range_end) -> list:
        prevs = []
        for k in list(range_keys(self.keys, key, range_end)):
            history = self.keys[k]
            cur = history[-1]
            if cur[VALUE] is None:
                continue
            tomb = (k, None, 0, rev, 0, 0)
            history.append(tomb)
            if cur[LEASE]:
                lease = self.leases.get(cur[LEASE])
                if lease is not None:
                    lease.keys.discard(k)
            self.event_revs.append(rev)
            self.events.append((rev, DELETE, tomb, cur))
            prevs.append(cur)
        return prevs

    def _txn(self, rev, op, changed) -> tuple:
        _, compares, success, failure = op
        ok = all(self._compare(c) for c in compares)
        responses = []
        for sub in success if ok else failure:
            kind = sub[0]
            if kind == "range":
                responses.append(self.range(sub[1], txn_rev=rev if changed[0] else 0))
            elif kind == "put":
                _, key, value, lease, prev_kv, ignore_value, ignore_lease = sub
                prev = self._put(rev, key, value, lease, ignore_value, ignore_lease)
                changed[0] = True
                responses.append(("put", rev, prev if prev_kv else None))
            elif kind == "del":
                _, key, range_end, prev_kv = sub
                prevs = self._delete(rev, key, range_end)
                if prevs:
                    changed[0] = True
                responses.append(("del", rev, len(prevs), prevs if prev_kv else None))
            elif kind == "txn":
                responses.append(self._txn(rev, sub, changed))
        return ("txn", rev if changed[0] else self.revision, ok, responses)

    def _check_txn(self, op) -> None:
        """Reject, before anything is written, what etcd rejects: duplicate keys, unknown leases."""
        _, compares, success, failure = op
        for branch in (success, failure):
            puts: set = set()
            dels: list = []
            self._collect(branch, puts, dels)

    def _collect(self, branch, puts: set, dels: list) -> None:
        for sub in branch:
            kind = sub[0]
            if kind == "put":
                key = sub[1]
                if key in puts:
                    raise errors.duplicate_key()
                for k, end in dels:
                    if _in_range(key, k, end):
                        raise errors.duplicate_key()
                puts.add(key)
                if sub[3] and sub[3] not in self.leases:
                    raise errors.lease_not_found()
            elif kind == "del":
                for p in puts:
                    if _in_range(p, sub[1], sub[2]):
                        raise errors.duplicate_key()
                dels.append((sub[1], sub[2]))
            elif kind == "txn":
                for nested in (sub[2], sub[3]):
                    self._collect(nested, set(puts), list(dels))

    def _compare(self, c) -> bool:
        target, result, key, range_end, operand = c
        recs = [self.keys[k][-1] for k in range_keys(self.keys, key, range_end)]
        recs = [r for r in recs if r[VALUE] is not None]
        if not recs:
            if target == "VALUE":
                return False
            recs = [(key, b"", 0, 0, 0, 0)]
        field = {"VERSION": VERSION, "CREATE": CREATE, "MOD": MOD, "VALUE": VALUE, "LEASE": LEASE}[target]
        for r in recs:
            v = r[field]
            if result == "EQUAL":
                ok = v == operand
            elif result == "NOT_EQUAL":
                ok = v != operand
            elif result == "GREATER":
                ok = v > operand
            else:
                ok = v < operand
            if not ok:
                return False
        return True

    # ----- reads (callers outside the apply thread hold self.lock) -----
    def range(self, req: RangeReq, txn_rev: int = 0) -> tuple:
        cur = txn_rev or self.revision
        rev = req.revision or cur
        if req.revision > cur:
            raise errors.future_rev()
        if req.revision and rev < self.compact_revision:
            raise errors.compacted()
        keys = self.keys
        at_head = rev >= self.revision
        filters = req.min_mod_revision or req.max_mod_revision or req.min_create_revision or req.max_create_revision
        out = []
        count = 0
        limit = req.limit if not req.sort_order else 0
        for k in range_keys(keys, req.key, req.range_end):
            history = keys[k]
            rec = history[-1] if at_head else visible(history, rev)
            if rec is None or rec[VALUE] is None:
                continue
            if filters and not _passes(rec, req):
                continue
            count += 1
            if req.count_only:
                continue
            if limit and len(out) >= limit:
                continue
            out.append(rec)
        if req.sort_order and out:
            out.sort(key=_SORT_KEYS.get(req.sort_target, _SORT_KEYS[0]), reverse=req.sort_order == 2)
            if req.limit:
                out = out[: req.limit]
        more = bool(req.limit) and count > len(out) and not req.count_only
        return ("range", cur, out, count, more)

    def events_since(self, start_rev: int, max_events: int = 1000) -> list:
        """Events with revision >= start_rev, not splitting a revision across calls."""
        i = bisect_left(self.event_revs, start_rev)
        out = self.events[i : i + max_events]
        if len(out) == max_events:
            last = out[-1][0]
            j = i + max_events
            while j < len(self.events) and self.events[j][0] == last:
                out.append(self.events[j])
                j += 1
        return out

    # ----- compaction -----
    def compact(self, rev: int) -> None:
        if rev <= self.compact_revision:
            raise errors.compacted()
        if rev > self.revision:
            raise errors.future_rev()
        drop = []
        for k, history in self.keys.items():
            if history[0][MOD] > rev:
                continue
            i = len(history) - 1
            while history[i][MOD] > rev:
                i -= 1
            if history[i][VALUE] is None:
                i += 1
            if i >= len(history):
                drop.append(k)
            elif i > 0:
                del history[:i]
        for k in drop:
            del self.keys[k]
        cut = bisect_left(self.event_revs, rev)
        del self.event_revs[:cut]
        del self.events[:cut]
        self.compact_revision = rev

    # ----- leases -----
    def _lease_grant(self, lease_id: int, ttl: int, now: float) -> tuple:
        if lease_id in self.leases:
            raise errors.lease_exists()
        if ttl > MAX_LEASE_TTL:
            raise errors.lease_ttl_too_large()
        ttl = max(ttl, MIN_LEASE_TTL)
        self.leases[lease_id] = Lease(lease_id, ttl, now + ttl, set())
        return ("lease", self.revision, lease_id, ttl)

    def _lease_revoke(self, lease: Lease) -> None:
        rev = self.revision + 1
        deleted = False
        for key in sorted(lease.keys):
            if self._delete(rev, key, b""):
                deleted = True
        if deleted:
            self.revision = rev
        del self.leases[lease.id]

    def expired_leases(self, now: float) -> list[int]:
        return sorted(l.id for l in self.leases.values() if l.expiry <= now)


def _in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    if end == b"\x00":
        return key >= start
    return start <= key < end


def _passes(rec, req: RangeReq) -> bool:
    if req.min_mod_revision and rec[MOD] < req.min_mod_revision:
        return False
    if req.max_mod_revision and rec[MOD] > req.max_mod_revision:
        return False
    if req.min_create_revision and rec[CREATE] < req.min_create_revision:
        return False
    if req.max_create_revision and rec[CREATE] > req.max_create_revision:
        return False
    return True


def _with_rev(res: tuple, rev: int) -> tuple:
    return (res[0], rev) + res[2:]

"""The replicated state machine on its own: revisions, txn, compaction, leases, de-duplication."""

import pickle

import pytest

from etcdnode.errors import EtcdError
from etcdnode.mvcc import MVCCStore, RangeReq


def put(key, value=b"v", lease=0, prev_kv=False):
    return ("put", key, value, lease, prev_kv, False, False)


def apply(store, *ops, now=1000.0, batch=None):
    return store.apply_batch(batch, now, list(ops))


def get(store, key, **kw):
    return store.range(RangeReq(key=key, **kw))


def test_revisions_versions_and_history():
    s = MVCCStore()
    assert s.revision == 1
    (r1,) = apply(s, put(b"a", b"1"))
    (r2,) = apply(s, put(b"a", b"2", prev_kv=True))
    assert r1[1] == 2 and r2[1] == 3
    assert r2[2][1] == b"1"  # prev_kv
    _, rev, recs, count, more = get(s, b"a")
    assert (rev, count, more) == (3, 1, False)
    assert recs[0] == (b"a", b"2", 2, 3, 2, 0)
    # reads in the past
    assert get(s, b"a", revision=2)[2][0][1] == b"1"
    assert get(s, b"a", revision=1)[2] == []
    with pytest.raises(EtcdError, match="future revision"):
        get(s, b"a", revision=4)


def test_delete_range_and_prefix():
    s = MVCCStore()
    apply(s, put(b"p/1"), put(b"p/2"), put(b"q"))
    (res,) = apply(s, ("del", b"p/", b"p0", True))
    assert res[0] == "del" and res[2] == 2 and [r[0] for r in res[3]] == [b"p/1", b"p/2"]
    assert s.revision == 5
    (res,) = apply(s, ("del", b"p/", b"p0", False))
    assert res[2] == 0 and s.revision == 5  # deleting nothing does not bump the revision
    assert get(s, b"\x00", range_end=b"\x00")[3] == 1


def test_limit_count_more_and_sort():
    s = MVCCStore()
    apply(s, *[put(b"k%d" % i, b"%d" % (9 - i)) for i in range(5)])
    _, _, recs, count, more = get(s, b"k", range_end=b"l", limit=2)
    assert [r[0] for r in recs] == [b"k0", b"k1"] and count == 5 and more
    _, _, recs, _, _ = get(s, b"k", range_end=b"l", sort_order=2, sort_target=0, limit=1)
    assert recs[0][0] == b"k4"
    assert get(s, b"k", range_end=b"l", count_only=True)[2:] == ([], 5, False)


def test_txn_compare_branches_and_single_revision():
    s = MVCCStore()
    apply(s, put(b"a", b"1"))
    txn = ("txn", [("VALUE", "EQUAL", b"a", b"", b"1")],
           [put(b"a", b"2"), put(b"b", b"2"), ("range", RangeReq(key=b"a"))], [put(b"c")])
    (res,) = apply(s, txn)
    kind, rev, ok, responses = res
    assert ok and rev == 3 and s.revision == 3
    assert responses[2][2][0][1] == b"2"  # the txn reads its own write
    (res,) = apply(s, txn)
    assert res[2] is False and get(s, b"c")[3] == 1
    # a compare on a missing key's value always fails; its version is 0
    (res,) = apply(s, ("txn", [("VALUE", "EQUAL", b"zz", b"", b"")], [], []))
    assert res[2] is False
    (res,) = apply(s, ("txn", [("VERSION", "EQUAL", b"zz", b"", 0)], [], []))
    assert res[2] is True


def test_txn_duplicate_key_is_rejected_without_writing():
    s = MVCCStore()
    (res,) = apply(s, ("txn", [], [put(b"x"), put(b"x")], []))
    assert res == ("err", 3, "etcdserver: duplicate key given in txn request")
    (res,) = apply(s, ("txn", [], [("del", b"a", b"z", False), put(b"m")], []))
    assert res[0] == "err"
    assert s.revision == 1 and get(s, b"x")[3] == 0


def test_compaction_keeps_latest_and_rejects_old_reads():
    s = MVCCStore()
    for i in range(5):
        apply(s, put(b"a", b"%d" % i))
    apply(s, put(b"gone"), ("del", b"gone", b"", False))
    s.compact(4)
    assert get(s, b"a", revision=4)[2][0][1] == b"2"
    with pytest.raises(EtcdError, match="compacted"):
        get(s, b"a", revision=3)
    with pytest.raises(EtcdError, match="compacted"):
        s.compact(4)
    s.compact(s.revision)
    assert b"gone" not in s.keys
    assert all(ev[0] >= s.compact_revision for ev in s.events)


def test_events_since_for_watchers():
    s = MVCCStore()
    apply(s, put(b"a"), put(b"b"))
    apply(s, ("txn", [], [put(b"c"), ("del", b"a", b"", False)], []))
    evs = s.events_since(3)
    assert [(e[0], e[1], e[2][0]) for e in evs] == [(3, 0, b"b"), (4, 0, b"c"), (4, 1, b"a")]
    assert evs[2][3][0] == b"a"  # prev record of the delete


def test_leases_attach_expire_and_refresh():
    s = MVCCStore()
    (g,) = apply(s, ("lease_grant", 7, 1), now=100.0)
    assert g[2:] == (7, 2)  # TTL is raised to the minimum
    (res,) = apply(s, ("lease_grant", 7, 10))
    assert res == ("err", 9, "etcdserver: lease already exists")
    (res,) = apply(s, put(b"l", lease=8))
    assert res == ("err", 5, "etcdserver: requested lease not found")
    apply(s, put(b"l", lease=7), put(b"m", lease=7))
    assert s.expired_leases(101.0) == [] and s.expired_leases(102.0) == [7]
    apply(s, ("lease_keepalive", 7), now=101.5)
    apply(s, ("lease_expire", [7]), now=102.0)  # kept alive meanwhile: not expired
    assert 7 in s.leases
    rev = s.revision
    apply(s, ("lease_expire", [7]), now=104.0)
    assert 7 not in s.leases and get(s, b"l")[3] == 0 and get(s, b"m")[3] == 0
    assert s.revision == rev + 1  # both keys deleted under one revision


def test_batch_ids_are_applied_once():
    s = MVCCStore()
    first = apply(s, put(b"a"), batch=b"id-1")
    again = apply(s, put(b"a"), batch=b"id-1")
    assert first == again and s.revision == 2
    assert get(s, b"a")[2][0][4] == 1


def test_snapshot_round_trip_and_determinism():
    ops = [put(b"a"), ("lease_grant", 5, 30), put(b"b", lease=5), ("del", b"a", b"", False)]
    s1, s2 = MVCCStore(), MVCCStore()
    for s in (s1, s2):
        apply(s, *ops)
    assert pickle.dumps(s1.snapshot()) == pickle.dumps(s2.snapshot())
    s3 = MVCCStore()
    s3.restore(pickle.loads(pickle.dumps(s1.snapshot())))
    assert s3.revision == s1.revision and get(s3, b"b")[2] == get(s1, b"b")[2]
    assert s3.leases[5].keys == {b"b"}

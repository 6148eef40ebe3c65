"""etcd's native v3 gRPC API, asserted identically against etcdnode and real etcd 3.4.

The conformance cases of test_store_api.py, through the generated etcdserverpb stubs on the same
client port the JSON gateway is served on.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from etcdnode.etcdserverpb import kv_pb2
from etcdnode.etcdserverpb import rpc_pb2 as pb
from etcdnode.etcdserverpb import rpc_pb2_grpc as stubs

Req = pb.RangeRequest


class Etcd:
    """The stubs of one endpoint."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.kv = stubs.KVStub(channel)
        self.watch = stubs.WatchStub(channel)
        self.lease = stubs.LeaseStub(channel)
        self.cluster = stubs.ClusterStub(channel)
        self.maintenance = stubs.MaintenanceStub(channel)
        self.auth = stubs.AuthStub(channel)

    async def put(self, key: str | bytes, value: str | bytes, **kw) -> pb.PutResponse:
        return await self.kv.Put(pb.PutRequest(key=_b(key), value=_b(value), **kw))

    async def get(self, key: str | bytes, **kw) -> pb.RangeResponse:
        return await self.kv.Range(pb.RangeRequest(key=_b(key), **kw))


def _b(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else s


def prefix_end(key: str) -> bytes:
    k = key.encode()
    return k[:-1] + bytes([k[-1] + 1])


@pytest.fixture
async def etcd(store):
    channels = [grpc.aio.insecure_channel(u.removeprefix("http://")) for u in store.client_urls]
    try:
        yield Etcd(channels[0])
    finally:
        for ch in channels:
            await ch.close()


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


class WatchStream:
    """One bidirectional Watch call: send requests, receive responses with a deadline."""

    def __init__(self, etcd: Etcd) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.call = etcd.watch.Watch(self._requests())

    async def _requests(self):
        while True:
            req = await self.queue.get()
            if req is None:
                return
            yield req

    async def send(self, **kw) -> None:
        await self.queue.put(pb.WatchRequest(**kw))

    async def recv(self, timeout: float = 10.0) -> pb.WatchResponse:
        return await asyncio.wait_for(self.call.read(), timeout)

    async def create(self, key: str | bytes, **kw) -> pb.WatchResponse:
        await self.send(create_request=pb.WatchCreateRequest(key=_b(key), **kw))
        created = await self.recv()
        assert created.created
        return created

    async def events(self, n: int, timeout: float = 10.0) -> list:
        events: list = []
        while len(events) < n:
            events.extend((await self.recv(timeout)).events)
        return events

    def close(self) -> None:
        self.call.cancel()


async def test_put_get_and_prev_kv(etcd, key_prefix):
    k = key_prefix + "a"
    r1 = await etcd.put(k, "1")
    r2 = await etcd.put(k, "2", prev_kv=True)
    assert r2.header.revision == r1.header.revision + 1
    assert r2.prev_kv.value == b"1" and r2.prev_kv.version == 1
    got = await etcd.get(k)
    assert got.count == 1 and not got.more
    kv = got.kvs[0]
    assert (kv.key, kv.value, kv.version) == (k.encode(), b"2", 2)
    assert kv.create_revision == r1.header.revision and kv.mod_revision == r2.header.revision
    assert got.header.cluster_id and got.header.member_id and got.header.raft_term
    missing = await etcd.get(key_prefix + "missing")
    assert list(missing.kvs) == [] and missing.count == 0


async def test_prefix_range_limit_keys_only_count_only_sort(etcd, key_prefix):
    for i in range(5):
        await etcd.put(f"{key_prefix}r/{i}", f"v{i}")
    await etcd.put(f"{key_prefix}s", "outside")
    end = prefix_end(key_prefix + "r/")
    r = await etcd.get(key_prefix + "r/", range_end=end)
    assert [kv.key for kv in r.kvs] == [f"{key_prefix}r/{i}".encode() for i in range(5)]
    r = await etcd.get(key_prefix + "r/", range_end=end, limit=2)
    assert len(r.kvs) == 2 and r.count == 5 and r.more
    r = await etcd.get(key_prefix + "r/", range_end=end, keys_only=True)
    assert r.kvs[0].value == b"" and r.kvs[0].version == 1
    r = await etcd.get(key_prefix + "r/", range_end=end, count_only=True)
    assert list(r.kvs) == [] and r.count == 5
    r = await etcd.get(key_prefix + "r/", range_end=end, sort_order=Req.DESCEND, sort_target=Req.KEY, limit=1)
    assert r.kvs[0].key == f"{key_prefix}r/4".encode()
    r = await etcd.get(key_prefix + "r/", range_end=end, serializable=True)
    assert r.count == 5


async def test_read_at_past_and_future_revision(etcd, key_prefix):
    k = key_prefix + "h"
    r1 = await etcd.put(k, "old")
    await etcd.put(k, "new")
    assert (await etcd.get(k, revision=r1.header.revision)).kvs[0].value == b"old"
    assert list((await etcd.get(k, revision=r1.header.revision - 1)).kvs) == []
    head = (await etcd.get(k)).header.revision
    e = await rpc_error(etcd.get(k, revision=head + 1000))
    assert (e.code(), e.details()) == (grpc.StatusCode.OUT_OF_RANGE,
                                       "etcdserver: mvcc: required revision is a future revision")


async def test_delete_with_prev_kv(etcd, key_prefix):
    await etcd.put(key_prefix + "d/1", "a")
    await etcd.put(key_prefix + "d/2", "b")
    end = prefix_end(key_prefix + "d/")
    r = await etcd.kv.DeleteRange(pb.DeleteRangeRequest(key=_b(key_prefix + "d/"), range_end=end, prev_kv=True))
    assert r.deleted == 2 and sorted(kv.value for kv in r.prev_kvs) == [b"a", b"b"]
    r = await etcd.kv.DeleteRange(pb.DeleteRangeRequest(key=_b(key_prefix + "d/"), range_end=end))
    assert r.deleted == 0


def cmp(key: str, target: str, result: str, **operand) -> pb.Compare:
    return pb.Compare(key=_b(key), target=pb.Compare.CompareTarget.Value(target),
                      result=pb.Compare.CompareResult.Value(result), **operand)


def op_put(key: str, value: str) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=_b(key), value=_b(value)))


def op_get(key: str) -> pb.RequestOp:
    return pb.RequestOp(request_range=pb.RangeRequest(key=_b(key)))


async def test_txn_compares_and_branches(etcd, key_prefix):
    k = key_prefix + "x"
    rev = (await etcd.put(k, "1")).header.revision
    cases = [
        (cmp(k, "VALUE", "EQUAL", value=b"1"), True), (cmp(k, "VALUE", "NOT_EQUAL", value=b"1"), False),
        (cmp(k, "VERSION", "GREATER", version=1), False), (cmp(k, "CREATE", "EQUAL", create_revision=rev), True),
        (cmp(k, "MOD", "LESS", mod_revision=rev), False), (cmp(key_prefix + "none", "CREATE", "EQUAL"), True),
    ]
    for c, expected in cases:
        t = await etcd.kv.Txn(pb.TxnRequest(compare=[c], success=[op_get(k)], failure=[op_get(key_prefix + "none")]))
        assert t.succeeded is expected, c
        assert t.responses[0].response_range.count == (1 if expected else 0)
    t = await etcd.kv.Txn(pb.TxnRequest(
        compare=[cmp(k, "VALUE", "EQUAL", value=b"1")],
        success=[op_put(k, "2"), op_put(key_prefix + "y", "y"), op_get(k),
                 pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=_b(key_prefix + "zz")))],
        failure=[op_put(key_prefix + "fail", "f")]))
    assert t.succeeded and t.header.revision == rev + 1
    put, _, rng, dele = t.responses
    assert put.response_put.header.revision == rev + 1
    assert rng.response_range.kvs[0].value == b"2" and dele.response_delete_range.deleted == 0
    nested = pb.RequestOp(request_txn=pb.TxnRequest(compare=[cmp(k, "VALUE", "EQUAL", value=b"2")],
                                                    success=[op_put(key_prefix + "nested", "n")]))
    t = await etcd.kv.Txn(pb.TxnRequest(success=[nested]))
    assert t.succeeded and t.responses[0].response_txn.succeeded
    assert (await etcd.get(key_prefix + "nested")).kvs[0].value == b"n"


@pytest.mark.parametrize("request_,message", [
    (pb.TxnRequest(success=[op_put("dup", "a"), op_put("dup", "b")]),
     "etcdserver: duplicate key given in txn request"),
    (pb.TxnRequest(success=[op_put(f"many/{i}", "v") for i in range(129)]),
     "etcdserver: too many operations in txn request"),
])
async def test_txn_errors(etcd, request_, message):
    e = await rpc_error(etcd.kv.Txn(request_))
    assert (e.code(), e.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


async def test_empty_key_and_too_large(etcd, key_prefix):
    e = await rpc_error(etcd.put("", "v"))
    assert (e.code(), e.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")
    e = await rpc_error(etcd.put(key_prefix + "big", b"x" * (1600 * 1024)))
    assert (e.code(), e.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large")
    assert (await etcd.get(key_prefix + "big")).count == 0


async def test_compaction_range_and_watch_errors(etcd, key_prefix):
    k = key_prefix + "c"
    first = (await etcd.put(k, "1")).header.revision
    await etcd.put(k, "2")
    last = (await etcd.put(k, "3")).header.revision
    await etcd.kv.Compact(pb.CompactionRequest(revision=last))
    e = await rpc_error(etcd.get(k, revision=first))
    assert (e.code(), e.details()) == (grpc.StatusCode.OUT_OF_RANGE,
                                       "etcdserver: mvcc: required revision has been compacted")
    e = await rpc_error(etcd.kv.Compact(pb.CompactionRequest(revision=first)))
    assert e.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in e.details()
    w = WatchStream(etcd)
    try:
        await w.create(k, start_revision=first)
        canceled = await w.recv()
        assert canceled.canceled and canceled.compact_revision >= last
    finally:
        w.close()


async def test_watch_history_with_prev_kv_and_filters(etcd, key_prefix):
    k = key_prefix + "w"
    r1 = await etcd.put(k, "1")
    await etcd.put(k, "2")
    await etcd.kv.DeleteRange(pb.DeleteRangeRequest(key=_b(k)))
    w = WatchStream(etcd)
    try:
        await w.create(k, start_revision=r1.header.revision, prev_kv=True)
        events = await w.events(3)
        await w.create(k, start_revision=r1.header.revision, filters=[pb.WatchCreateRequest.NOPUT])
        only_deletes = await w.events(1)
    finally:
        w.close()
    D = kv_pb2.Event.DELETE
    assert [e.type for e in events] == [kv_pb2.Event.PUT, kv_pb2.Event.PUT, D]
    assert events[0].kv.mod_revision == r1.header.revision and not events[0].HasField("prev_kv")
    assert events[1].prev_kv.value == b"1"
    assert events[2].kv.key == k.encode() and events[2].kv.value == b"" and events[2].prev_kv.value == b"2"
    assert [e.type for e in only_deletes] == [D]


async def test_several_watches_on_one_stream_progress_and_cancel(etcd, key_prefix):
    ka, kb = key_prefix + "a", key_prefix + "b"
    w = WatchStream(etcd)
    try:
        id_a = (await w.create(ka)).watch_id
        id_b = (await w.create(kb, prev_kv=True)).watch_id
        assert id_a != id_b
        await etcd.put(ka, "1")
        await etcd.put(kb, "2")
        by_id = {r.watch_id: r.events for r in [await w.recv(), await w.recv()]}
        assert by_id[id_a][0].kv.key == ka.encode() and by_id[id_b][0].kv.value == b"2"
        await w.send(progress_request=pb.WatchProgressRequest())
        progress = await w.recv()
        assert not progress.events and progress.header.revision >= 1
        await w.send(cancel_request=pb.WatchCancelRequest(watch_id=id_a))
        canceled = await w.recv()
        assert canceled.canceled and canceled.watch_id == id_a
        await etcd.put(ka, "ignored")
        await etcd.put(kb, "3")
        nxt = await w.recv()
        assert nxt.watch_id == id_b and nxt.events[0].kv.value == b"3" and nxt.events[0].prev_kv.value == b"2"
    finally:
        w.close()


async def test_watch_fragments_a_large_response(etcd, key_prefix):
    k = key_prefix + "f/"
    start = 0
    for i in range(5):  # 2.5 MB: over etcd's limit of --max-request-bytes (1.5 MiB) + 512 KiB
        rev = (await etcd.put(f"{k}{i}", bytes([65 + i]) * 500_000)).header.revision
        start = start or rev
    w = WatchStream(etcd)
    try:
        await w.create(k, range_end=prefix_end(k), start_revision=start, fragment=True)
        parts = [await w.recv()]
        while parts[-1].fragment:
            parts.append(await w.recv())
    finally:
        w.close()
    assert [len(p.events) for p in parts] == [4, 1]
    assert [e.kv.key for p in parts for e in p.events] == [f"{k}{i}".encode() for i in range(5)]


async def test_leases_grant_ttl_keepalive_revoke(etcd, key_prefix):
    g = await etcd.lease.LeaseGrant(pb.LeaseGrantRequest(TTL=30))
    assert g.ID > 0 and g.TTL == 30
    await etcd.put(key_prefix + "l1", "v", lease=g.ID)
    ttl = await etcd.lease.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(ID=g.ID, keys=True))
    assert ttl.grantedTTL == 30 and 0 < ttl.TTL <= 30 and list(ttl.keys) == [f"{key_prefix}l1".encode()]
    assert g.ID in [lease.ID for lease in (await etcd.lease.LeaseLeases(pb.LeaseLeasesRequest())).leases]
    keepalive = etcd.lease.LeaseKeepAlive()
    try:
        for _ in range(2):
            await keepalive.write(pb.LeaseKeepAliveRequest(ID=g.ID))
            resp = await asyncio.wait_for(keepalive.read(), 10)
            assert (resp.ID, resp.TTL) == (g.ID, 30)
    finally:
        keepalive.cancel()
    await etcd.lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=g.ID))
    assert (await etcd.get(key_prefix + "l1")).count == 0
    assert (await etcd.lease.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(ID=g.ID))).TTL == -1
    e = await rpc_error(etcd.lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=g.ID)))
    assert (e.code(), e.details()) == (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")


async def test_lease_already_exists(etcd):
    lease_id = int(time.time() * 1000) % 10**12 + 2000
    await etcd.lease.LeaseGrant(pb.LeaseGrantRequest(TTL=20, ID=lease_id))
    e = await rpc_error(etcd.lease.LeaseGrant(pb.LeaseGrantRequest(TTL=20, ID=lease_id)))
    assert (e.code(), e.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: lease already exists")
    await etcd.lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=lease_id))


async def test_status_member_list_and_maintenance(etcd, store):
    members = (await etcd.cluster.MemberList(pb.MemberListRequest())).members
    assert len(members) == 3 and len({m.ID for m in members}) == 3
    leaders = set()
    for url in store.client_urls:
        async with grpc.aio.insecure_channel(url.removeprefix("http://")) as ch:
            st = await stubs.MaintenanceStub(ch).Status(pb.StatusRequest())
        assert st.version.startswith("3.4") and st.raftTerm >= 1 and st.raftIndex >= 1
        assert st.header.member_id in {m.ID for m in members}
        leaders.add(st.leader)
    assert len(leaders) == 1 and leaders <= {m.ID for m in members}
    alarms = await etcd.maintenance.Alarm(pb.AlarmRequest(action=pb.AlarmRequest.GET))
    assert list(alarms.alarms) == []
    await etcd.maintenance.Defragment(pb.DefragmentRequest())
    h = await etcd.maintenance.HashKV(pb.HashKVRequest())
    assert h.header.revision >= 1


async def test_snapshot_streams_a_bbolt_file_with_its_sha256(etcd):
    import hashlib

    data = b""
    async for resp in etcd.maintenance.Snapshot(pb.SnapshotRequest()):
        data += resp.blob
    assert resp.remaining_bytes == 0
    db, digest = data[:-32], data[-32:]
    assert len(db) % 4096 == 0 and hashlib.sha256(db).digest() == digest
    assert int.from_bytes(db[16:20], "little") == 0xED0CDAED  # bbolt's magic in the first meta page


async def test_authenticate_without_auth_enabled(etcd):
    e = await rpc_error(etcd.auth.Authenticate(pb.AuthenticateRequest(name="root", password="x")))
    assert (e.code(), e.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: authentication is not enabled")

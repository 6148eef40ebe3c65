"""The etcd v3 API, asserted identically against etcdnode and real etcd 3.4 through kubeling.etcd."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import pytest

from kubeling.etcd import (CompactedError, Compare, EtcdClient, EtcdError, FutureRevisionError, LeaseNotFoundError,
                           Op)


@pytest.fixture
async def client(store):
    async with EtcdClient(store.client_urls) as c:
        yield c


async def test_put_get_and_prev_kv(client, key_prefix):
    k = key_prefix + "a"
    r1 = await client.put(k, "1")
    r2 = await client.put(k, "2", prev_kv=True)
    assert r2.header.revision == r1.header.revision + 1
    assert r2.prev_kv.value == b"1" and r2.prev_kv.version == 1
    got = await client.get(k)
    assert got.count == 1 and not got.more
    kv = got.kvs[0]
    assert (kv.key, kv.value, kv.version) == (k.encode(), b"2", 2)
    assert kv.create_revision == r1.header.revision and kv.mod_revision == r2.header.revision
    assert got.header.revision >= r2.header.revision
    assert got.header.cluster_id and got.header.member_id and got.header.raft_term
    missing = await client.get(key_prefix + "missing")
    assert missing.kvs == [] and missing.count == 0


async def test_prefix_range_limit_keys_only_count_only(client, key_prefix):
    for i in range(5):
        await client.put(f"{key_prefix}r/{i}", f"v{i}")
    await client.put(f"{key_prefix}s", "outside")
    r = await client.get(key_prefix + "r/", prefix=True)
    assert [kv.key for kv in r.kvs] == [f"{key_prefix}r/{i}".encode() for i in range(5)]
    r = await client.get(key_prefix + "r/", prefix=True, limit=2)
    assert len(r.kvs) == 2 and r.count == 5 and r.more
    r = await client.get(key_prefix + "r/1", range_end=key_prefix + "r/3")
    assert [kv.value for kv in r.kvs] == [b"v1", b"v2"]
    r = await client.get(key_prefix + "r/", prefix=True, keys_only=True)
    assert r.kvs[0].value == b"" and r.kvs[0].version == 1
    r = await client.get(key_prefix + "r/", prefix=True, count_only=True)
    assert r.kvs == [] and r.count == 5
    r = await client.get(key_prefix + "r/", prefix=True, sort_order="descend", sort_target="key", limit=1)
    assert r.kvs[0].key == f"{key_prefix}r/4".encode()
    r = await client.get(key_prefix + "r/", prefix=True, serializable=True)
    assert r.count == 5


async def test_read_at_past_revision_and_future_revision(client, key_prefix):
    k = key_prefix + "h"
    r1 = await client.put(k, "old")
    await client.put(k, "new")
    past = await client.get(k, revision=r1.header.revision)
    assert past.kvs[0].value == b"old"
    before = await client.get(k, revision=r1.header.revision - 1)
    assert before.kvs == []
    head = (await client.get(k)).header.revision
    with pytest.raises(FutureRevisionError) as e:
        await client.get(k, revision=head + 1000)
    assert e.value.code == 11 and e.value.message == "etcdserver: mvcc: required revision is a future revision"


async def test_delete_with_prev_kv(client, key_prefix):
    await client.put(key_prefix + "d/1", "a")
    await client.put(key_prefix + "d/2", "b")
    r = await client.delete(key_prefix + "d/", prefix=True, prev_kv=True)
    assert r.deleted == 2 and sorted(kv.value for kv in r.prev_kvs) == [b"a", b"b"]
    rev = r.header.revision
    r = await client.delete(key_prefix + "d/", prefix=True)
    assert r.deleted == 0 and r.header.revision >= rev
    assert (await client.get(key_prefix + "d/", prefix=True)).count == 0


async def test_txn_compares_and_branches(client, key_prefix):
    k = key_prefix + "x"
    p = await client.put(k, "1")
    rev = p.header.revision
    cases = [
        (Compare.value(k, "=", "1"), True), (Compare.value(k, "!=", "1"), False),
        (Compare.version(k, "=", 1), True), (Compare.version(k, ">", 1), False), (Compare.version(k, "<", 2), True),
        (Compare.create_revision(k, "=", rev), True), (Compare.mod_revision(k, "<", rev), False),
        (Compare.mod_revision(k, ">", rev - 1), True), (Compare.create_revision(key_prefix + "none", "=", 0), True),
        (Compare.value(key_prefix + "none", "=", ""), False),
    ]
    for cmp, expected in cases:
        t = await client.txn([cmp], [Op.get(k)], [Op.get(key_prefix + "none")])
        assert t.succeeded is expected, cmp.body
        assert len(t.responses) == 1
        assert t.responses[0].count == (1 if expected else 0)
    t = await client.txn([Compare.value(k, "=", "1")],
                         [Op.put(k, "2"), Op.put(key_prefix + "y", "y"), Op.get(k), Op.delete(key_prefix + "zz")],
                         [Op.put(key_prefix + "fail", "f")])
    assert t.succeeded
    assert t.header.revision == rev + 1  # one revision for the whole transaction
    put_resp, _, range_resp, del_resp = t.responses
    assert put_resp.header.revision == rev + 1
    assert range_resp.kvs[0].value == b"2" and range_resp.kvs[0].mod_revision == rev + 1
    assert del_resp.deleted == 0
    t = await client.txn([Compare.value(k, "=", "1")], [Op.put(k, "3")], [Op.put(key_prefix + "fail", "f")])
    assert not t.succeeded and (await client.get(key_prefix + "fail")).count == 1
    # nested transaction
    t = await client.txn([], [Op.txn([Compare.value(k, "=", "2")], [Op.put(key_prefix + "nested", "n")])])
    assert t.succeeded and t.responses[0].succeeded
    assert (await client.get(key_prefix + "nested")).kvs[0].value == b"n"


async def test_txn_duplicate_key_and_too_many_ops(client, key_prefix):
    k = key_prefix + "dup"
    with pytest.raises(EtcdError) as e:
        await client.txn([], [Op.put(k, "a"), Op.put(k, "b")])
    assert e.value.code == 3 and e.value.message == "etcdserver: duplicate key given in txn request"
    with pytest.raises(EtcdError) as e:
        await client.txn([], [Op.put(f"{k}/{i}", "v") for i in range(129)])
    assert e.value.code == 3 and e.value.message == "etcdserver: too many operations in txn request"
    assert (await client.get(k, prefix=True)).count == 0


async def test_empty_key_is_rejected(client):
    with pytest.raises(EtcdError) as e:
        await client.put("", "v")
    assert (e.value.code, e.value.message, e.value.http_status) == (3, "etcdserver: key is not provided", 400)


async def test_compaction_range_and_watch_errors(client, key_prefix):
    k = key_prefix + "c"
    first = (await client.put(k, "1")).header.revision
    await client.put(k, "2")
    last = (await client.put(k, "3")).header.revision
    await client.compact(last)
    with pytest.raises(CompactedError) as e:
        await client.get(k, revision=first)
    assert e.value.code == 11
    with pytest.raises(EtcdError) as e:
        await client.compact(first)
    assert "compacted" in e.value.message
    assert (await client.get(k, revision=last)).kvs[0].value == b"3"
    with pytest.raises(CompactedError) as e:
        async with client.watch(k, start_revision=first) as w:
            async for _ in w:
                pass
    assert e.value.compact_revision >= last


async def next_events(w, n: int, timeout: float = 10.0) -> list:
    events: list = []

    async def collect():
        async for resp in w:
            events.extend(resp.events)
            if len(events) >= n:
                return

    await asyncio.wait_for(collect(), timeout)
    return events


async def test_watch_history_from_inclusive_start_with_prev_kv(client, key_prefix):
    k = key_prefix + "w"
    r1 = await client.put(k, "1")
    await client.put(k, "2")
    await client.delete(k)
    async with client.watch(k, start_revision=r1.header.revision, prev_kv=True) as w:
        events = await next_events(w, 3)
    assert [e.type for e in events] == ["PUT", "PUT", "DELETE"]
    assert events[0].kv.mod_revision == r1.header.revision and events[0].prev_kv is None
    assert events[1].prev_kv.value == b"1"
    assert events[2].kv.key == k.encode() and events[2].kv.value == b"" and events[2].prev_kv.value == b"2"


async def test_watch_prefix_sees_future_events_only_in_range(client, key_prefix):
    async with client.watch(key_prefix + "p/", prefix=True) as w:
        await client.put(key_prefix + "other", "x")
        await client.put(key_prefix + "p/1", "a")
        await client.put(key_prefix + "p/2", "b")
        events = await next_events(w, 2)
    assert [(e.type, e.kv.key) for e in events] == [("PUT", f"{key_prefix}p/1".encode()),
                                                    ("PUT", f"{key_prefix}p/2".encode())]


async def test_leases_grant_ttl_keepalive_revoke(client, key_prefix):
    g = await client.lease_grant(30)
    assert g.id > 0 and g.ttl == 30
    await client.put(key_prefix + "l1", "v", lease=g.id)
    await client.put(key_prefix + "l2", "v", lease=g.id)
    assert (await client.get(key_prefix + "l1")).kvs[0].lease == g.id
    ttl = await client.lease_time_to_live(g.id, keys=True)
    assert ttl.granted_ttl == 30 and 0 < ttl.ttl <= 30
    assert sorted(ttl.keys) == [f"{key_prefix}l1".encode(), f"{key_prefix}l2".encode()]
    assert await client.lease_keepalive_once(g.id) == 30
    async with client.watch(key_prefix + "l", prefix=True) as w:
        await client.lease_revoke(g.id)
        events = await next_events(w, 2)
    assert {e.type for e in events} == {"DELETE"}
    assert (await client.get(key_prefix + "l", prefix=True)).count == 0
    gone = await client.lease_time_to_live(g.id)
    assert gone.ttl == -1
    assert await client.lease_keepalive_once(g.id) == 0
    with pytest.raises(LeaseNotFoundError) as e:
        await client.lease_revoke(g.id)
    assert e.value.code == 5 and e.value.message == "etcdserver: requested lease not found"
    with pytest.raises(LeaseNotFoundError):
        await client.put(key_prefix + "l3", "v", lease=g.id)


async def test_lease_with_id_and_already_exists(client):
    lease_id = int(time.time() * 1000) % 10**12 + 1000
    g = await client.lease_grant(20, id=lease_id)
    assert g.id == lease_id
    with pytest.raises(EtcdError) as e:
        await client.lease_grant(20, id=lease_id)
    assert (e.value.code, e.value.message) == (9, "etcdserver: lease already exists")
    await client.lease_revoke(lease_id)


async def test_lease_expiry_deletes_keys_and_notifies_watchers(client, key_prefix):
    g = await client.lease_grant(2)
    await client.put(key_prefix + "e", "v", lease=g.id)
    async with client.watch(key_prefix + "e") as w:
        events = await next_events(w, 1, timeout=15)
    assert events[0].type == "DELETE"
    assert (await client.get(key_prefix + "e")).count == 0


async def test_status(client, store):
    for url in store.client_urls:
        st = await client.status(endpoint=url)
        assert st.version.startswith("3.4")
        assert st.leader != 0 and st.raft_term >= 1 and st.raft_index >= 1
        assert st.header.revision >= 1


async def raw(store, path: str, body: bytes) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.post(store.client_urls[0] + path, data=body) as r:
            return r.status, await r.json(content_type=None)


@pytest.mark.parametrize("body,message", [
    (b'{"key":xx}', "invalid character 'x' looking for beginning of value"),
    (b'{"key":"!!!"}', "illegal base64 data at input byte 0"),
])
async def test_malformed_requests(store, body, message):
    status, err = await raw(store, "/v3/kv/put", body)
    assert status == 400 and err["code"] == 3 and err["error"] == message == err["message"]


async def test_unknown_txn_op_and_enum(store):
    status, err = await raw(store, "/v3/kv/txn", b'{"success":[{"request_foo":{}}]}')
    assert (status, err["code"], err["message"]) == (400, 3, "etcdserver: key not found")
    status, err = await raw(store, "/v3/kv/txn", b'{"compare":[{"key":"YQ==","target":"BOGUS"}]}')
    assert status == 400 and err["code"] == 3
    assert err["message"] == 'unknown value "BOGUS" for enum etcdserverpb.Compare_CompareTarget'


async def test_request_too_large_writes_nothing(store, client, key_prefix):
    import base64

    big = base64.b64encode(b"x" * (1600 * 1024)).decode()
    key = base64.b64encode((key_prefix + "big").encode()).decode()
    status, err = await raw(store, "/v3/kv/put", f'{{"key":"{key}","value":"{big}"}}'.encode())
    assert (status, err["code"], err["message"]) == (400, 3, "etcdserver: request is too large")
    assert (await client.get(key_prefix + "big")).count == 0


class RawWatchStream:
    """A full-duplex /v3/watch: the request body is sent chunk by chunk while responses stream back."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.buf = b""

    async def __aenter__(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, int(self.port))
        self.writer.write(f"POST /v3/watch HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n".encode())
        self.chunked = None  # known once the response head arrived
        return self

    async def __aexit__(self, *exc):
        self.writer.close()

    async def send(self, obj: dict) -> None:
        data = json.dumps(obj).encode() + b"\n"
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def recv(self, timeout: float = 10.0) -> dict:
        async def line():
            if self.chunked is None:
                head = await self.reader.readuntil(b"\r\n\r\n")
                if head.startswith(b"HTTP/1.1 100"):  # Go's server answers a streamed body only after this
                    head = await self.reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                self.chunked = b"transfer-encoding: chunked" in head.lower()
            while b"\n" not in self.buf.replace(b"\r\n", b""):
                if self.chunked:
                    size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                    self.buf += (await self.reader.readexactly(size + 2))[:-2]
                else:
                    self.buf += await self.reader.read(65536)
            text = self.buf.replace(b"\r\n", b"")
            first, _, rest = text.partition(b"\n")
            self.buf = rest
            return json.loads(first)

        return (await asyncio.wait_for(line(), timeout))["result"]


async def test_several_watches_on_one_stream_and_cancel(store, client, key_prefix):
    ka, kb = (key_prefix + "a").encode(), (key_prefix + "b").encode()
    async with RawWatchStream(store.client_urls[0]) as s:
        await s.send({"create_request": {"key": base64.b64encode(ka).decode()}})
        created_a = await s.recv()
        await s.send({"create_request": {"key": base64.b64encode(kb).decode(), "prev_kv": True}})
        created_b = await s.recv()
        assert created_a["created"] and created_b["created"]
        id_a, id_b = created_a.get("watch_id", "0"), created_b.get("watch_id", "0")
        assert id_a != id_b
        await client.put(ka, "1")
        await client.put(kb, "2")
        got = [await s.recv(), await s.recv()]
        by_id = {r.get("watch_id", "0"): r["events"] for r in got}
        assert base64.b64decode(by_id[id_a][0]["kv"]["key"]) == ka
        assert base64.b64decode(by_id[id_b][0]["kv"]["value"]) == b"2"
        await s.send({"cancel_request": {"watch_id": id_a}})
        canceled = await s.recv()
        assert canceled["canceled"] and canceled.get("watch_id", "0") == id_a
        await client.put(ka, "ignored")
        await client.put(kb, "3")
        nxt = await s.recv()
        assert nxt.get("watch_id", "0") == id_b
        assert base64.b64decode(nxt["events"][0]["kv"]["value"]) == b"3"
        assert base64.b64decode(nxt["events"][0]["prev_kv"]["value"]) == b"2"

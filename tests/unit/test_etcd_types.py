"""Pure encode/decode helpers of the etcd client."""

from kubeling.etcd import Compare, KeyValue, Op, RangeResponse, TxnResponse, WatchResponse, prefix_end
from kubeling.etcd.types import range_body


def test_prefix_end():
    assert prefix_end(b"/registry/") == b"/registry0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"


def test_range_body_omits_defaults_and_encodes_base64():
    assert range_body("foo") == {"key": "Zm9v"}
    body = range_body("foo", prefix=True, limit=5, revision=7, serializable=True, sort_order="descend")
    assert body == {"key": "Zm9v", "range_end": "Zm9w", "limit": 5, "revision": 7, "serializable": True,
                    "sort_order": "DESCEND"}


def test_compare_and_op_bodies():
    assert Compare.mod_revision("k", "!=", 5).body == {"key": "aw==", "target": "MOD", "result": "NOT_EQUAL",
                                                      "mod_revision": 5}
    assert Compare.value("k", "=", b"v").body["value"] == "dg=="
    assert Op.put("k", "v", lease=3).body == {"request_put": {"key": "aw==", "value": "dg==", "lease": 3}}
    assert Op.delete("k", prefix=True).body == {"request_delete_range": {"key": "aw==", "range_end": "bA=="}}


def test_decoding_fills_omitted_defaults():
    r = RangeResponse.decode({"header": {"revision": "9"}, "kvs": [{"key": "aw==", "mod_revision": "9"}]})
    assert r.header.revision == 9 and r.count == 0 and not r.more
    assert r.kvs == [KeyValue(b"k", b"", 0, 9, 0, 0)]
    t = TxnResponse.decode({"header": {}, "responses": [{"response_put": {"header": {"revision": "3"}}}]})
    assert not t.succeeded and t.responses[0].header.revision == 3 and t.responses[0].prev_kv is None
    w = WatchResponse.decode({"header": {}, "events": [{"type": "DELETE", "kv": {"key": "aw=="}}]})
    assert w.events[0].type == "DELETE" and w.watch_id == 0
    assert WatchResponse.decode({"header": {}, "events": [{"kv": {"key": "aw=="}}]}).events[0].type == "PUT"

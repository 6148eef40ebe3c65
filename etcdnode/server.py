"""The client-facing server: etcd's v3 API, one implementation behind two wires.

Each RPC is an ``EtcdApp`` method taking and returning the JSON gateway's dict shapes; the JSON
gateway is this bare ASGI app on uvicorn (no framework routing or validation keeps per-request
overhead low: this is the hot path of every apiserver write), and etcdnode/grpcapi.py serves the
same methods over gRPC through protobuf's JSON mapping.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
import zlib
from typing import Any, Awaitable, Callable

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from . import errors, snapshot, wire
from .errors import EtcdError
from .mvcc import MOD, MVCCStore
from .raft import RaftNode
from .watch import WatchHub, WatchStream

log = logging.getLogger("etcdnode.server")

VERSION = "3.4.0"
JSON_HEADERS = [(b"content-type", b"application/json")]


def uint64_id(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "big")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("etcdnode_requests_total", "Client requests by path and gRPC code",
                                ["path", "code"], registry=self.registry)
        self.latency = Histogram("etcdnode_request_duration_seconds", "Client request latency by path",
                                 ["path"], registry=self.registry,
                                 buckets=(.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.revision = Gauge("etcd_debugging_mvcc_current_revision", "Current revision", registry=self.registry)
        self.is_leader = Gauge("etcd_server_is_leader", "1 if this member is the leader", registry=self.registry)
        self.has_leader = Gauge("etcd_server_has_leader", "1 if a leader exists", registry=self.registry)
        self.term = Gauge("etcdnode_raft_term", "Raft term", registry=self.registry)
        self.keys = Gauge("etcd_debugging_mvcc_keys_total", "Number of keys (with history)", registry=self.registry)
        self.watch_streams = Gauge("etcd_debugging_mvcc_watch_stream_total", "Open watch streams",
                                   registry=self.registry)
        self.proposals = Gauge("etcd_server_proposals_committed_total", "Raft entries proposed by this member",
                               registry=self.registry)
        self.applied = Gauge("etcd_server_proposals_applied_total", "Batches applied to this member's state machine",
                             registry=self.registry)
        self.leader_changes = Gauge("etcd_server_leader_changes_seen_total", "Raft state changes this member saw",
                                    registry=self.registry)


class EtcdApp:
    """The RPCs of one member (both wires call these methods), and its JSON gateway as an ASGI app."""

    def __init__(self, store: MVCCStore, raft: RaftNode, *, name: str, cluster: dict[str, str],
                 client_urls: dict[str, list[str]], max_request_bytes: int, max_txn_ops: int,
                 progress_interval: float) -> None:
        self.store = store
        self.raft = raft
        self.name = name
        self.cluster_id = uint64_id(*sorted(f"{n}={a}" for n, a in cluster.items()))
        self.member_ids = {addr: uint64_id(n, addr) for n, addr in cluster.items()}
        self.member_id = self.member_ids[cluster[name]]
        self.cluster_id_s = str(self.cluster_id)
        self.member_id_s = str(self.member_id)
        self.members = [{"ID": str(self.member_ids[addr]), "name": n, "peerURLs": [f"http://{addr}"],
                         "clientURLs": client_urls.get(n, [])} for n, addr in cluster.items()]
        self.max_request_bytes = max_request_bytes
        self.max_txn_ops = max_txn_ops
        self.progress_interval = progress_interval
        self.hub = WatchHub(store, raft.loop)
        self.metrics = Metrics()
        self.routes: dict[str, Callable[[dict], Awaitable[Any]]] = {
            "/v3/kv/range": self.kv_range,
            "/v3/kv/put": self.kv_put,
            "/v3/kv/deleterange": self.kv_delete,
            "/v3/kv/txn": self.kv_txn,
            "/v3/kv/compaction": self.kv_compact,
            "/v3/lease/grant": self.lease_grant,
            "/v3/lease/revoke": self.lease_revoke,
            "/v3/kv/lease/revoke": self.lease_revoke,
            "/v3/lease/keepalive": self.lease_keepalive,
            "/v3/lease/timetolive": self.lease_ttl,
            "/v3/kv/lease/timetolive": self.lease_ttl,
            "/v3/lease/leases": self.lease_list,
            "/v3/kv/lease/leases": self.lease_list,
            "/v3/maintenance/status": self.status,
            "/v3/maintenance/alarm": self.alarm,
            "/v3/maintenance/defragment": self.defragment,
            "/v3/maintenance/hash": self.hash,
            "/v3/maintenance/hashkv": self.hash_kv,
            "/v3/cluster/member/list": self.member_list,
            "/v3/cluster/member/add": self.member_change,
            "/v3/cluster/member/remove": self.member_change,
            "/v3/cluster/member/update": self.member_change,
            "/v3/cluster/member/promote": self.member_change,
        }

    # ----- helpers -----
    def header(self, revision: int) -> dict:
        h = {"cluster_id": self.cluster_id_s, "member_id": self.member_id_s}
        if revision:
            h["revision"] = str(revision)
        h["raft_term"] = str(self.raft.term())
        return h

    # ----- ASGI entry -----
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/v3beta/") or path.startswith("/v3alpha/"):
            path = "/v3/" + path.split("/", 2)[2]
        method = scope["method"]
        if path == "/v3/watch" and method == "POST":
            await self.watch(receive, send)
            return
        handler = self.routes.get(path)
        if handler is not None and method in ("POST", "PUT"):
            await self._unary(path, handler, scope, receive, send)
        elif path == "/health" and method == "GET":
            await self.health(send)
        elif path == "/metrics" and method == "GET":
            await self.prometheus(send)
        elif path == "/version" and method == "GET":
            await _respond(send, 200, orjson.dumps({"etcdserver": VERSION, "etcdcluster": "3.4.0"}))
        else:
            await _respond(send, 404, b"Not Found\n", [(b"content-type", b"text/plain; charset=utf-8")])

    async def _read_body(self, scope: dict, receive: Callable) -> bytes:
        limit = 2 * self.max_request_bytes + 1024 * 1024  # JSON + base64 of a max-size request
        for k, v in scope["headers"]:
            if k == b"content-length" and v.isdigit() and int(v) > limit:
                raise errors.request_too_large()
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise EtcdError(errors.CANCELLED, "context canceled")
            body = msg.get("body", b"")
            size += len(body)
            if size > limit:
                raise errors.request_too_large()
            chunks.append(body)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    async def _unary(self, path: str, handler: Callable, scope: dict, receive: Callable, send: Callable) -> None:
        t0 = time.perf_counter()
        code = 0
        try:
            body = await self._read_body(scope, receive)
            result = await handler(wire.parse_json(body))
            await _respond(send, 200, orjson.dumps(result))
        except EtcdError as e:
            code = e.code
            await _respond(send, e.http_status, wire.error_body(e))
        except Exception:  # a bug must not take the member down; report it as etcd would
            log.exception("internal error serving %s", path)
            code = errors.UNKNOWN
            await _respond(send, 500, wire.error_body(EtcdError(errors.UNKNOWN, "etcdserver: internal error")))
        self.metrics.requests.labels(path, str(code)).inc()
        self.metrics.latency.labels(path).observe(time.perf_counter() - t0)

    # ----- KV -----
    async def kv_range(self, obj: dict) -> dict:
        req = wire.range_req(obj)
        if not req.serializable:
            await self.raft.barrier()
        with self.store.lock:
            res = self.store.range(req)
            return wire.range_result(res, req, self.header(res[1]))

    def _check_size(self, op: tuple) -> int:
        size = wire.op_size(op)
        if size > self.max_request_bytes:
            raise errors.request_too_large()
        return size

    async def kv_put(self, obj: dict) -> dict:
        op = wire.put_op(obj)
        res = await self.raft.submit(op, self._check_size(op))
        return wire.put_result(res, self.header(res[1]))

    async def kv_delete(self, obj: dict) -> dict:
        op = wire.delete_op(obj)
        res = await self.raft.submit(op, self._check_size(op))
        return wire.delete_result(res, self.header(res[1]))

    async def kv_txn(self, obj: dict) -> dict:
        op = wire.txn_op(obj, self.max_txn_ops)
        size = self._check_size(op)
        if wire.is_read_only(op):
            await self.raft.barrier()
            with self.store.lock:
                res = self.store._txn(self.store.revision, op, [False])
                return wire.txn_result(res, op, self.header(res[1]))
        res = await self.raft.submit(op, size)
        return wire.txn_result(res, op, self.header(res[1]))

    async def kv_compact(self, obj: dict) -> dict:
        res = await self.raft.submit(("compact", wire.i64(obj, "revision")))
        return {"header": self.header(res[1])}

    # ----- leases -----
    async def lease_grant(self, obj: dict) -> dict:
        lease_id = wire.i64(obj, "ID") or random.getrandbits(62) + 1
        res = await self.raft.submit(("lease_grant", lease_id, wire.i64(obj, "TTL")))
        return {"header": self.header(res[1]), "ID": str(res[2]), "TTL": str(res[3])}

    async def lease_revoke(self, obj: dict) -> dict:
        res = await self.raft.submit(("lease_revoke", wire.i64(obj, "ID")))
        return {"header": self.header(res[1])}

    async def lease_keepalive(self, obj: dict) -> dict:
        lease_id = wire.i64(obj, "ID")
        res = await self.raft.submit(("lease_keepalive", lease_id))
        out = {"header": self.header(res[1]), "ID": str(lease_id)}
        if res[2]:
            out["TTL"] = str(res[2])
        return {"result": out}

    async def lease_ttl(self, obj: dict) -> dict:
        lease_id = wire.i64(obj, "ID")
        await self.raft.barrier()
        with self.store.lock:
            head = self.header(self.store.revision)
            lease = self.store.leases.get(lease_id)
            if lease is None:
                return {"header": head, "ID": str(lease_id), "TTL": "-1"}
            remaining = max(0, math.ceil(lease.expiry - time.time()))
            out = {"header": head, "ID": str(lease_id), "TTL": str(remaining), "grantedTTL": str(lease.ttl)}
            if wire.flag(obj, "keys") and lease.keys:
                out["keys"] = [wire.b64e(k) for k in sorted(lease.keys)]
            return out

    async def lease_list(self, obj: dict) -> dict:
        await self.raft.barrier()
        with self.store.lock:
            out: dict = {"header": self.header(self.store.revision)}
            if self.store.leases:
                out["leases"] = [{"ID": str(i)} for i in sorted(self.store.leases)]
            return out

    # ----- maintenance -----
    def _leader_id(self) -> int:
        leader = self.raft.leader()
        return self.member_ids.get(leader or "", 0)

    async def status(self, obj: dict) -> dict:
        st = self.raft.status()
        with self.store.lock:
            head = self.header(self.store.revision)
            size = sum(len(h) for h in self.store.keys.values()) * 128
        out = {"header": head, "version": VERSION, "dbSize": str(size), "raftIndex": str(st["commit_idx"]),
               "raftTerm": str(st["raft_term"]), "raftAppliedIndex": str(st["last_applied"]),
               "dbSizeInUse": str(size)}
        leader = self._leader_id()
        if leader:
            out["leader"] = str(leader)
        return out

    async def alarm(self, obj: dict) -> dict:
        """No alarm is ever raised here (no space quota, no corruption check): GET lists none."""
        with self.store.lock:
            return {"header": self.header(self.store.revision)}

    async def defragment(self, obj: dict) -> dict:
        """The store is in memory: there is nothing to defragment."""
        return await self.alarm(obj)

    async def hash(self, obj: dict) -> dict:
        await self.raft.barrier()
        with self.store.lock:
            return {"header": self.header(self.store.revision), "hash": self._hash(self.store.revision)}

    async def hash_kv(self, obj: dict) -> dict:
        rev = wire.i64(obj, "revision")
        await self.raft.barrier()
        with self.store.lock:
            head, compact = self.store.revision, self.store.compact_revision
            rev = rev or head
            if rev > head:
                raise errors.future_rev()
            if rev < compact:
                raise errors.compacted()
            return {"header": self.header(head), "hash": self._hash(rev), "compact_revision": str(compact)}

    def _hash(self, rev: int) -> int:
        """CRC-32 of every key revision up to ``rev`` (equal on members that applied the same log;
        not comparable with real etcd's hash of its bbolt pages). Caller holds the store lock."""
        h = 0
        for history in self.store.keys.values():
            for rec in history:
                if rec[MOD] <= rev:
                    h = zlib.crc32(repr(rec).encode(), h)
        return h

    async def snapshot(self) -> tuple[bytes, int]:
        """This member's state as etcd's snapshot file (see etcdnode/snapshot.py) and its revision."""
        await self.raft.barrier()
        applied = self.raft.status()["last_applied"]
        with self.store.lock:
            rev, compact = self.store.revision, self.store.compact_revision
            histories = [list(h) for h in self.store.keys.values()]
            leases = [(lease.id, lease.ttl) for lease in self.store.leases.values()]
        data = await asyncio.to_thread(snapshot.build, histories, leases, compact, applied)
        return data, rev

    # ----- cluster -----
    async def member_list(self, obj: dict) -> dict:
        with self.store.lock:
            return {"header": self.header(self.store.revision), "members": self.members}

    async def member_change(self, obj: dict) -> dict:
        raise EtcdError(errors.UNIMPLEMENTED, "etcdnode: membership is static (--initial-cluster); "
                        "members cannot be added, removed, updated or promoted at run time")

    async def health(self, send: Callable) -> None:
        healthy = self.raft.leader() is not None
        if healthy:
            try:
                await asyncio.wait_for(self.raft.barrier(), timeout=2.0)
            except (EtcdError, asyncio.TimeoutError):
                healthy = False
        body = b'{"health":"true"}' if healthy else b'{"health":"false"}'
        await _respond(send, 200 if healthy else 503, body)

    async def prometheus(self, send: Callable) -> None:
        m = self.metrics
        with self.store.lock:
            m.revision.set(self.store.revision)
            m.keys.set(len(self.store.keys))
            m.applied.set(self.store.applied_batches)
        m.is_leader.set(1 if self.raft.is_leader() else 0)
        m.has_leader.set(1 if self.raft.leader() is not None else 0)
        m.term.set(self.raft.term())
        m.watch_streams.set(len(self.hub.streams))
        m.proposals.set(self.raft.proposals)
        m.leader_changes.set(self.raft.leader_changes)
        await _respond(send, 200, generate_latest(m.registry),
                       [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")])

    # ----- watch -----
    def watch_stream(self, emit: Callable[[dict], Awaitable[None]]) -> WatchStream:
        # etcd fragments watch responses at --max-request-bytes plus its 512 KiB allowance for gRPC overhead
        return WatchStream(self.hub, self.header, emit, self.progress_interval, self.max_request_bytes + 512 * 1024)

    async def watch(self, receive: Callable, send: Callable) -> None:
        async def send_line(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def emit(result: dict) -> None:
            await send_line(orjson.dumps({"result": result}) + b"\n")

        await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
        stream = self.watch_stream(emit)
        pump = asyncio.create_task(stream.pump())
        try:
            body_done = False
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    break
                if body_done:
                    continue
                body_done = not msg.get("more_body", False)
                for req in stream.feed(msg.get("body", b""), body_done):
                    await stream.handle(req)
                if pump.done():
                    break
        except EtcdError as e:
            await send_line(wire.error_body(e) + b"\n")
        except OSError:
            pass
        finally:
            stream.closed = True
            stream.wake.set()
            pump.cancel()
            try:
                await pump
            except (asyncio.CancelledError, Exception):
                pass
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:
                pass


async def _respond(send: Callable, status: int, body: bytes, headers: list | None = None) -> None:
    headers = (headers or JSON_HEADERS) + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

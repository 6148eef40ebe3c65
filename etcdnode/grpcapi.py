"""etcd's native v3 gRPC API (package etcdserverpb) over the same EtcdApp methods as the JSON gateway.

Requests are turned into the JSON gateway's dict shape and results back into messages with
protobuf's JSON mapping (bytes as base64, 64-bit integers as strings, enums by name), so each
RPC has one implementation in etcdnode/server.py whichever wire it arrives on. Errors travel
as etcd's gRPC status codes and messages, which clients (clientv3, etcdctl) match on.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from . import errors
from .errors import EtcdError
from .etcdserverpb import rpc_pb2 as pb
from .server import EtcdApp

STATUS = {c.value[0]: c for c in grpc.StatusCode}
SNAPSHOT_CHUNK = 32 * 1024  # etcd streams its snapshot in 32 KiB blobs

# service -> method -> EtcdApp method, for the unary RPCs (message types come from the service descriptor)
UNARY: dict[str, dict[str, str]] = {
    "KV": {
        "Range": "kv_range",
        "Put": "kv_put",
        "DeleteRange": "kv_delete",
        "Txn": "kv_txn",
        "Compact": "kv_compact",
    },
    "Lease": {
        "LeaseGrant": "lease_grant",
        "LeaseRevoke": "lease_revoke",
        "LeaseTimeToLive": "lease_ttl",
        "LeaseLeases": "lease_list",
    },
    "Cluster": {
        "MemberList": "member_list",
        "MemberAdd": "member_change",
        "MemberRemove": "member_change",
        "MemberUpdate": "member_change",
        "MemberPromote": "member_change",
    },
    "Maintenance": {
        "Status": "status",
        "Alarm": "alarm",
        "Defragment": "defragment",
        "Hash": "hash",
        "HashKV": "hash_kv",
    },
}


def message_types(service: str, method: str) -> tuple[type[Message], type[Message]]:
    m = pb.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    return getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)


AUTH_DISABLED = EtcdError(errors.FAILED_PRECONDITION, "etcdserver: authentication is not enabled")
AUTH_UNSUPPORTED = EtcdError(errors.UNIMPLEMENTED, "etcdnode: authentication is not supported")


def to_dict(msg: Message) -> dict:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def to_msg(obj: dict, cls: type[Message]) -> Message:
    return json_format.ParseDict(obj, cls())


async def abort(context: grpc.aio.ServicerContext, e: EtcdError) -> None:
    await context.abort(STATUS.get(e.code, grpc.StatusCode.UNKNOWN), e.message)


class GrpcApi:
    """The gRPC services of one member, on a grpc.aio server bound to a loopback port of its own
    (etcdnode/cmux.py forwards the client port's HTTP/2 connections to it)."""

    def __init__(self, app: EtcdApp) -> None:
        self.app = app
        self.server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", app.max_request_bytes + 512 * 1024),  # as etcd
            ("grpc.max_send_message_length", 2**31 - 1),
            # etcdctl and clientv3 ping every few seconds: do not answer that with GOAWAY
            ("grpc.http2.min_ping_interval_without_data_ms", 1000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_ping_strikes", 0),
        ])
        handlers = []
        for service, methods in UNARY.items():
            table = {name: self._unary(f"/etcdserverpb.{service}/{name}", getattr(app, fn),
                                       *message_types(service, name))
                     for name, fn in methods.items()}
            if service == "Lease":
                table["LeaseKeepAlive"] = grpc.stream_stream_rpc_method_handler(
                    self.keepalive, pb.LeaseKeepAliveRequest.FromString,
                    pb.LeaseKeepAliveResponse.SerializeToString)
            if service == "Maintenance":
                table["Snapshot"] = grpc.unary_stream_rpc_method_handler(
                    self.snapshot, pb.SnapshotRequest.FromString, pb.SnapshotResponse.SerializeToString)
            handlers.append(grpc.method_handlers_generic_handler(f"etcdserverpb.{service}", table))
        handlers.append(grpc.method_handlers_generic_handler("etcdserverpb.Watch", {
            "Watch": grpc.stream_stream_rpc_method_handler(
                self.watch, pb.WatchRequest.FromString, pb.WatchResponse.SerializeToString)}))
        auth = pb.DESCRIPTOR.services_by_name["Auth"]
        handlers.append(grpc.method_handlers_generic_handler("etcdserverpb.Auth", {
            m.name: grpc.unary_unary_rpc_method_handler(
                self._auth_error(AUTH_DISABLED if m.name == "Authenticate" else AUTH_UNSUPPORTED),
                lambda b: b, lambda b: b) for m in auth.methods}))
        self.server.add_generic_rpc_handlers(handlers)
        self.port = 0
        self.stopping = asyncio.Event()

    async def start(self) -> int:
        """Serve on a free loopback port; return it."""
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return self.port

    async def stop(self) -> None:
        """End open streams with etcd's `server stopped` (clients fail over), then the server."""
        self.stopping.set()
        await self.server.stop(0.5)

    async def _until_stopping(self, work: Awaitable[None], context: grpc.aio.ServicerContext) -> None:
        """Run a stream's work until it ends or the member stops. grpc.aio would cancel a stream still
        open at stop and log that as an unhandled error; a stream ended here closes cleanly."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
        if task.done():
            task.result()  # its outcome: an EtcdError is the caller's to report
            return
        await abort(context, EtcdError(errors.UNAVAILABLE, "etcdserver: server stopped"))

    def _unary(self, path: str, fn: Callable[[dict], Awaitable[dict]], req_cls: type[Message],
               resp_cls: type[Message]) -> grpc.RpcMethodHandler:
        metrics = self.app.metrics

        async def call(request: Message, context: grpc.aio.ServicerContext) -> Message:
            t0 = time.perf_counter()
            code = 0
            try:
                return to_msg(await fn(to_dict(request)), resp_cls)
            except EtcdError as e:
                code = e.code
                await abort(context, e)
            finally:
                metrics.requests.labels(path, str(code)).inc()
                metrics.latency.labels(path).observe(time.perf_counter() - t0)

        return grpc.unary_unary_rpc_method_handler(call, req_cls.FromString, resp_cls.SerializeToString)

    @staticmethod
    def _auth_error(e: EtcdError) -> Callable:
        async def call(request: bytes, context: grpc.aio.ServicerContext) -> None:
            await abort(context, e)
        return call

    async def watch(self, requests: AsyncIterator[pb.WatchRequest], context: grpc.aio.ServicerContext) -> None:
        lock = asyncio.Lock()  # the pump and the request loop both write responses

        async def emit(result: dict) -> None:
            msg = to_msg(result, pb.WatchResponse)
            async with lock:
                await context.write(msg)

        async def serve() -> None:
            async for req in requests:
                await stream.handle(to_dict(req))
            await pump  # the client closed its side: keep delivering until it goes away, as etcd does

        stream = self.app.watch_stream(emit)
        pump = asyncio.create_task(stream.pump())
        try:
            await self._until_stopping(serve(), context)
        except EtcdError as e:
            await abort(context, e)
        finally:
            stream.closed = True
            stream.wake.set()
            pump.cancel()

    async def keepalive(self, requests: AsyncIterator[pb.LeaseKeepAliveRequest],
                        context: grpc.aio.ServicerContext) -> None:
        async def serve() -> None:
            async for req in requests:
                res = await self.app.lease_keepalive(to_dict(req))
                await context.write(to_msg(res["result"], pb.LeaseKeepAliveResponse))

        try:
            await self._until_stopping(serve(), context)
        except EtcdError as e:
            await abort(context, e)

    async def snapshot(self, request: pb.SnapshotRequest, context: grpc.aio.ServicerContext) -> None:
        try:
            data, revision = await self.app.snapshot()
        except EtcdError as e:
            await abort(context, e)
        header = to_msg(self.app.header(revision), pb.ResponseHeader)
        for start in range(0, len(data), SNAPSHOT_CHUNK):
            blob = data[start:start + SNAPSHOT_CHUNK]
            await context.write(pb.SnapshotResponse(header=header, blob=blob,
                                                    remaining_bytes=len(data) - start - len(blob)))

"""One client port for both wires, as etcd's cmux does: gRPC (HTTP/2) and the JSON gateway (HTTP/1).

Each accepted connection is sniffed on its first bytes. HTTP/2's connection preface goes to the
grpc.aio server, relayed over loopback (grpc cannot adopt an accepted socket); anything else is
handed to uvicorn's HTTP/1 protocol on the same transport, so the JSON gateway, the apiserver's
hot path, pays no extra hop: after the first bytes the sniffer is out of the way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("etcdnode.cmux")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_connecting: set[asyncio.Task] = set()  # the loop holds tasks weakly


class _Relay(asyncio.Protocol):
    """One end of a byte relay: what arrives here is written to ``peer``; backpressure on this
    end's transport pauses reading from the peer."""

    def __init__(self, peer: asyncio.Transport | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer = peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()


def sniffing_protocol(http_class: type[asyncio.Protocol], grpc_addr: tuple[str, int]) -> type[asyncio.Protocol]:
    """A protocol class for uvicorn's ``Config(http=...)``: built with uvicorn's protocol arguments,
    it becomes ``http_class`` or a relay to ``grpc_addr`` once the first bytes say which."""

    class Sniffer(asyncio.Protocol):
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs
            self.transport: asyncio.Transport | None = None
            self.buf = b""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            self.buf += data
            n = min(len(self.buf), len(PREFACE))
            if self.buf[:n] != PREFACE[:n]:
                self._to_http()
            elif n == len(PREFACE):
                self._to_grpc()

        def eof_received(self) -> None:
            return None  # closes the transport: nothing was decided, nothing to flush

        def _to_http(self) -> None:
            proto = http_class(**self.kwargs)
            transport = self.transport
            assert transport is not None
            transport.set_protocol(proto)
            proto.connection_made(transport)
            proto.data_received(self.buf)

        def _to_grpc(self) -> None:
            transport = self.transport
            assert transport is not None
            client = _Relay()
            client.transport = transport
            transport.set_protocol(client)
            transport.pause_reading()
            task = asyncio.get_running_loop().create_task(_connect(client, self.buf, grpc_addr))
            _connecting.add(task)
            task.add_done_callback(_connecting.discard)

    return Sniffer


async def _connect(client: _Relay, first: bytes, grpc_addr: tuple[str, int]) -> None:
    """Open the relay's upstream end to the gRPC server and start moving bytes both ways."""
    transport = client.transport
    assert transport is not None
    loop = asyncio.get_running_loop()
    try:
        # the peer is set before the server's first bytes (its SETTINGS) can arrive
        upstream_t, _ = await loop.create_connection(lambda: _Relay(transport), *grpc_addr)
    except OSError as e:
        log.warning("cannot reach the gRPC server at %s:%d: %s", *grpc_addr, e)
        transport.close()
        return
    if transport.is_closing():
        upstream_t.close()
        return
    client.peer = upstream_t
    upstream_t.write(first)
    transport.resume_reading()

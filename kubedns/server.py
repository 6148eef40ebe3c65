"""DNS over UDP and TCP on asyncio: local answers from `Records`, other names forwarded to an
upstream over the client's protocol (or REFUSED without one), CoreDNS-named request counters."""
from __future__ import annotations

import asyncio
import logging
import socket
import struct

from dnslib import QTYPE, RCODE, DNSError, DNSRecord
from prometheus_client import CollectorRegistry, Counter

from kubeling.component import TaskSet
from kubeling.serving import ListenError

from .records import Records, refused, wire

log = logging.getLogger("kubedns")
FORWARD_TIMEOUT = 2.0
CACHE_SIZE = 10_000   # cached replies; emptied when full


def bind_udp(host: str, port: int) -> socket.socket:
    """A UDP socket bound now, so a taken port is one line (ListenError, worded like Go's) before any work."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = e.strerror or str(e)
        raise ListenError(f"listen udp {address}: bind: {reason[:1].lower()}{reason[1:]}") from None
    sock.setblocking(False)
    return sock


def parse_address(text: str) -> tuple[str, int]:
    """IP:PORT (or [IPv6]:PORT) from a flag."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{text!r} is not IP:PORT")
    return host.strip("[]"), int(port)


class DnsServer:
    def __init__(self, records: Records, upstream: tuple[str, int] | None, registry: CollectorRegistry) -> None:
        self.records, self.upstream = records, upstream
        self.tasks = TaskSet(log)
        self.requests = Counter("coredns_dns_requests_total", "DNS requests, by transport and query type.",
                                ["proto", "type"], registry=registry)
        self.responses = Counter("coredns_dns_responses_total", "DNS responses, by response code.",
                                 ["rcode"], registry=registry)
        self.transport: asyncio.DatagramTransport | None = None
        self.cache: dict[tuple[str, bytes], tuple[int, bytes, str, str]] = {}

    async def serve(self, udp: socket.socket, tcp: socket.socket) -> None:
        """Answer on the bound sockets until cancelled."""
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
        server = await asyncio.start_server(self._tcp_client, sock=tcp)
        log.info("serving DNS on %s (udp and tcp)", udp.getsockname()[:2])
        try:
            await asyncio.Future()
        finally:
            server.close()
            self.transport.close()
            self.tasks.cancel()

    # ---- one query -----------------------------------------------------------
    def local(self, data: bytes, proto: str) -> tuple[bytes | None, DNSRecord | None]:
        """(reply bytes, None) when answered here; (None, request) to forward; (None, None) to drop.
        Replies are cached by the query's bytes after its id until the records change: parsing and
        packing with dnslib is most of a query's cost, and resolvers repeat the same few questions."""
        key = (proto, data[2:])
        hit = self.cache.get(key)
        if hit is not None and hit[0] == self.records.generation:
            _, body, qtype, rcode = hit
            self.requests.labels(proto, qtype).inc()
            self.responses.labels(rcode).inc()
            return data[:2] + body, None
        try:
            request = DNSRecord.parse(data)
        except DNSError:
            return None, None
        qtype = _qtype(request)
        self.requests.labels(proto, qtype).inc()
        reply = self.records.answer(request) if request.questions else None
        if reply is None:
            if self.upstream is not None and request.questions:
                return None, request
            reply = refused(request)
        rcode = RCODE.get(reply.header.rcode)
        self.responses.labels(rcode).inc()
        packed = wire(reply, request, proto == "udp")
        if len(self.cache) >= CACHE_SIZE:
            self.cache.clear()
        self.cache[key] = (self.records.generation, packed[2:], qtype, rcode)
        return packed, None

    async def forward(self, request: DNSRecord, data: bytes, proto: str) -> bytes:
        """The upstream's reply, or SERVFAIL when it does not answer in time."""
        assert self.upstream is not None
        try:
            async with asyncio.timeout(FORWARD_TIMEOUT):
                reply = await (_ask_udp(self.upstream, data) if proto == "udp" else _ask_tcp(self.upstream, data))
            rcode = RCODE.get(DNSRecord.parse(reply).header.rcode)
        except (OSError, TimeoutError, DNSError, asyncio.IncompleteReadError) as e:
            log.warning("upstream %s:%d: %s", *self.upstream, e or "timed out")
            failed = request.reply()
            failed.header.rcode = RCODE.SERVFAIL
            reply, rcode = failed.pack(), "SERVFAIL"
        self.responses.labels(rcode).inc()
        return reply

    async def _forward_udp(self, request: DNSRecord, data: bytes, addr: tuple) -> None:
        reply = await self.forward(request, data, "udp")
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Length-prefixed queries (RFC 1035 4.2.2), several per connection, until the client closes."""
        try:
            while True:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(size)
                reply, request = self.local(data, "tcp")
                if request is not None:
                    reply = await self.forward(request, data, "tcp")
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _qtype(request: DNSRecord) -> str:
    return str(QTYPE.get(request.q.qtype)) if request.questions else "none"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply, request = self.server.local(data, "udp")
        if reply is not None and self.server.transport is not None:
            self.server.transport.sendto(reply, addr)
        elif request is not None:
            self.server.tasks.spawn(self.server._forward_udp(request, data, addr), f"forward to {addr}")


class _Answer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _ask_udp(upstream: tuple[str, int], data: bytes) -> bytes:
    transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(_Answer, remote_addr=upstream)
    try:
        transport.sendto(data)
        return await proto.reply
    finally:
        transport.close()


async def _ask_tcp(upstream: tuple[str, int], data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(size)
    finally:
        writer.close()


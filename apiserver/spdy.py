"""SPDY/3.1 as Kubernetes' Go clients speak it (moby/spdystream under k8s.io/apimachinery's
httpstream/spdy): kubectl up to 1.29 upgrades exec, attach and port-forward to it, and kubectl 1.30+
tunnels it through a websocket for port-forward. No maintained Python SPDY library exists.

`Framer` turns frames into bytes and back. Header blocks are zlib streams primed with SPDY/3's
dictionary, one stream per direction for the whole connection (each block ends with a sync flush),
so frames must be encoded in the order they are sent and decoded in the order they arrive.

`Session` is the server side of one connection over a `Carrier` (a TLS socket, or websocket
messages): the peer opens streams, the server answers each with SYN_REPLY or RST_STREAM and both
sides send DATA until FIN. Flow control: spdystream neither enforces nor updates windows, so
sending never waits for one; receiving grants window as the application reads, and stops reading
the carrier while too much unread data is queued (the real back-pressure).
"""
from __future__ import annotations

import asyncio
import struct
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Union

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = 1, 2, 3, 4, 5, 6
FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 7, 8, 9
# GOAWAY status codes
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2
SETTINGS_INITIAL_WINDOW_SIZE = 7
DEFAULT_WINDOW = 64 * 1024        # SPDY/3.1's initial stream window
MAX_DATA = (1 << 24) - 1          # a frame's 24-bit length
HIGH_WATER = 4 * 1024 * 1024      # unread bytes at which the session stops reading its carrier

Headers = dict[str, list[str]]


def _dictionary() -> bytes:
    """SPDY/3's header compression dictionary (draft 3, §2.6.10.1): length-prefixed words, then text."""
    words = ["options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection", "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status"] + ["200 OK"] + \
        ["version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
            "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
            "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


DICTIONARY = _dictionary()


@dataclass
class SynStream:
    stream_id: int
    headers: Headers
    flags: int = 0
    associated: int = 0
    priority: int = 0


@dataclass
class SynReply:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass
class RstStream:
    stream_id: int
    status: int


@dataclass
class Settings:
    values: dict[int, int]           # id -> value (per-setting flags are not kept)
    flags: int = 0


@dataclass
class Ping:
    id: int


@dataclass
class GoAway:
    last_good: int
    status: int = GOAWAY_OK


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass
class Data:
    stream_id: int
    data: bytes
    flags: int = 0


Frame = Union[SynStream, SynReply, RstStream, Settings, Ping, GoAway, HeadersFrame, WindowUpdate, Data]


class ProtocolError(Exception):
    """Bytes that are not SPDY/3: the connection cannot go on (GOAWAY with PROTOCOL_ERROR)."""


class Framer:
    """Frames to bytes and bytes to frames for one connection (both directions' header contexts)."""

    def __init__(self) -> None:
        # Go's spdy.Framer compresses at BestCompression; any level decodes the same.
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._buffer = bytearray()

    # ---- encoding --------------------------------------------------------------------------
    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            if not 0 < frame.stream_id < 1 << 31 or len(frame.data) > MAX_DATA:
                raise ValueError(f"invalid DATA frame for stream {frame.stream_id}")
            return struct.pack(">II", frame.stream_id, frame.flags << 24 | len(frame.data)) + frame.data
        if isinstance(frame, SynStream):
            body = struct.pack(">IIBB", frame.stream_id, frame.associated, (frame.priority & 7) << 5, 0) + \
                self._header_block(frame.headers)
            return self._control(SYN_STREAM, frame.flags, body)
        if isinstance(frame, SynReply):
            return self._control(SYN_REPLY, frame.flags, struct.pack(">I", frame.stream_id) +
                                 self._header_block(frame.headers))
        if isinstance(frame, HeadersFrame):
            return self._control(HEADERS, frame.flags, struct.pack(">I", frame.stream_id) +
                                 self._header_block(frame.headers))
        if isinstance(frame, RstStream):
            return self._control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.values)) + b"".join(
                struct.pack(">II", key & 0xFFFFFF, value) for key, value in frame.values.items())
            return self._control(SETTINGS, frame.flags, body)
        if isinstance(frame, Ping):
            return self._control(PING, 0, struct.pack(">I", frame.id))
        if isinstance(frame, GoAway):
            return self._control(GOAWAY, 0, struct.pack(">II", frame.last_good, frame.status))
        return self._control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))

    @staticmethod
    def _control(kind: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(body)) + body

    def _header_block(self, headers: Headers) -> bytes:
        parts = [struct.pack(">I", len(headers))]
        for name, values in headers.items():
            key, value = name.lower().encode(), "\0".join(values).encode()
            parts += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
        return self._deflate.compress(b"".join(parts)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    # ---- decoding --------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data` (a partial frame waits for more); ProtocolError for garbage.
        Control frames of types SPDY/3 does not use (NOOP, CREDENTIAL) are skipped, as the spec says."""
        buf = self._buffer
        buf += data
        frames: list[Frame] = []
        while len(buf) >= 8:
            first, flags_length = struct.unpack_from(">II", buf)
            length = flags_length & 0xFFFFFF
            if len(buf) < 8 + length:
                break
            flags, payload = flags_length >> 24, bytes(buf[8:8 + length])
            del buf[:8 + length]
            if first & 0x80000000:
                version = first >> 16 & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frame = self._parse_control(first & 0xFFFF, flags, payload)
                if frame is not None:
                    frames.append(frame)
            elif first == 0:
                raise ProtocolError("DATA frame for stream 0")
            else:
                frames.append(Data(first, payload, flags))
        return frames

    def _parse_control(self, kind: int, flags: int, p: bytes) -> Frame | None:
        fixed = {SYN_STREAM: 10, SYN_REPLY: 4, HEADERS: 4, RST_STREAM: 8, SETTINGS: 4, PING: 4, GOAWAY: 8,
                 WINDOW_UPDATE: 8}
        if kind not in fixed:
            return None
        if len(p) < fixed[kind] or kind in (RST_STREAM, PING, GOAWAY, WINDOW_UPDATE) and len(p) != fixed[kind]:
            raise ProtocolError(f"control frame of type {kind} with a {len(p)}-byte payload")
        word = struct.unpack_from(">I", p)[0]
        if kind == SYN_STREAM:
            associated, priority = struct.unpack_from(">IB", p, 4)
            return SynStream(word & 0x7FFFFFFF, self._parse_headers(p[10:]), flags, associated & 0x7FFFFFFF,
                             priority >> 5)
        if kind == SYN_REPLY:
            return SynReply(word & 0x7FFFFFFF, self._parse_headers(p[4:]), flags)
        if kind == HEADERS:
            return HeadersFrame(word & 0x7FFFFFFF, self._parse_headers(p[4:]), flags)
        if kind == RST_STREAM:
            return RstStream(word & 0x7FFFFFFF, struct.unpack_from(">I", p, 4)[0])
        if kind == SETTINGS:
            if len(p) != 4 + 8 * word:
                raise ProtocolError(f"SETTINGS frame announcing {word} entries in {len(p)} bytes")
            return Settings({struct.unpack_from(">I", p, 4 + 8 * i)[0] & 0xFFFFFF: struct.unpack_from(">I", p, 8 + 8 * i)[0]
                             for i in range(word)}, flags)
        if kind == PING:
            return Ping(word)
        if kind == GOAWAY:
            return GoAway(word & 0x7FFFFFFF, struct.unpack_from(">I", p, 4)[0])
        return WindowUpdate(word & 0x7FFFFFFF, struct.unpack_from(">I", p, 4)[0] & 0x7FFFFFFF)

    def _parse_headers(self, block: bytes) -> Headers:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as e:
            raise ProtocolError(f"header block: {e}") from None
        try:
            count, pos = struct.unpack_from(">I", raw)[0], 4
            headers: Headers = {}
            for _ in range(count):
                size = struct.unpack_from(">I", raw, pos)[0]
                name = raw[pos + 4:pos + 4 + size].decode("latin-1").lower()
                pos += 4 + size
                size = struct.unpack_from(">I", raw, pos)[0]
                value = raw[pos + 4:pos + 4 + size]
                pos += 4 + size
                if pos > len(raw):
                    raise struct.error("truncated")
                headers.setdefault(name, []).extend(value.decode("latin-1").split("\0"))
        except struct.error:
            raise ProtocolError("truncated header block") from None
        return headers


class Carrier(Protocol):
    """What a session runs over: bytes out (buffered), a wait for the buffer to drain, and a tap
    on incoming bytes (the carrier calls Session.feed and Session.connection_lost)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class Stream:
    """One stream the peer opened: its headers, the bytes it sends until FIN, and this side's half."""
    session: Session
    id: int
    headers: Headers
    remote_closed: bool = False      # the peer sent FIN, reset the stream, or the connection ended
    local_closed: bool = False       # this side sent FIN or reset
    reset: bool = False
    _chunks: deque[bytes] = field(default_factory=deque)
    _readable: asyncio.Event = field(default_factory=asyncio.Event)
    _unacknowledged: int = 0         # bytes read since the last WINDOW_UPDATE

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def reply(self) -> None:
        """Accept the stream (SYN_REPLY): Go clients wait for it before they write."""
        self.session.send(SynReply(self.id, {}))

    async def read(self) -> bytes:
        """The next chunk the peer sent; b"" once it sent FIN or the stream or connection ended."""
        while not self._chunks:
            if self.remote_closed:
                return b""
            self._readable.clear()
            await self._readable.wait()
        chunk = self._chunks.popleft()
        self.session._consumed(self, len(chunk))
        return chunk

    async def write(self, data: bytes) -> None:
        """Send data (split into frames), then wait while the carrier's buffer is full. Data for a
        stream this side closed or the peer reset is dropped: nobody reads it any more."""
        if self.local_closed:
            return
        view = memoryview(data)
        for start in range(0, len(view), MAX_DATA):
            self.session.send(Data(self.id, bytes(view[start:start + MAX_DATA])))
        await self.session.carrier.drain()

    def close(self) -> None:
        """This side's FIN (the peer reads EOF)."""
        if not self.local_closed:
            self.local_closed = True
            self.session.send(Data(self.id, b"", FLAG_FIN))
            if self.remote_closed:
                self.session.streams.pop(self.id, None)

    def abort(self, status: int = CANCEL) -> None:
        """RST_STREAM: both halves end now."""
        if not (self.local_closed and self.remote_closed):
            self.session.send(RstStream(self.id, status))
        self.local_closed = True
        self._end(reset=True)
        self.session.streams.pop(self.id, None)

    def _end(self, reset: bool = False) -> None:
        self.remote_closed = True
        self.reset = self.reset or reset
        self._readable.set()


class Session:
    """The server side of a SPDY connection: `on_stream` gets each stream the peer opens and must
    reply to it or abort it; PINGs are answered; `closed` is set when the carrier is gone."""

    def __init__(self, carrier: Carrier, on_stream: Callable[[Stream], None], high_water: int = HIGH_WATER) -> None:
        self.carrier = carrier
        self.on_stream = on_stream
        self.high_water = high_water
        self.framer = Framer()
        self.streams: dict[int, Stream] = {}
        self.last_peer_stream = 0
        self.buffered = 0                # bytes received and not yet read, over all streams
        self.paused = False
        self.closed = asyncio.Event()

    def send(self, frame: Frame) -> None:
        if not self.closed.is_set():
            self.carrier.write(self.framer.encode(frame))

    def feed(self, data: bytes) -> None:
        """Bytes from the carrier; a protocol error ends the connection with GOAWAY."""
        try:
            frames = self.framer.feed(data)
        except ProtocolError:
            self.send(GoAway(self.last_peer_stream, GOAWAY_PROTOCOL_ERROR))
            self.carrier.close()
            self.connection_lost()
            return
        for frame in frames:
            self._dispatch(frame)

    def connection_lost(self) -> None:
        """The carrier is gone: every stream ends."""
        self.closed.set()
        for stream in self.streams.values():
            stream.local_closed = True
            stream._end()
        self.streams.clear()

    def close(self) -> None:
        """End the connection from this side."""
        self.send(GoAway(self.last_peer_stream))
        self.carrier.close()
        self.connection_lost()

    def _dispatch(self, frame: Frame) -> None:
        if isinstance(frame, Data):
            stream = self.streams.get(frame.stream_id)
            if stream is None or stream.remote_closed:
                return   # a stream that ended here while the peer still wrote: nobody reads it
            if frame.data:
                stream._chunks.append(frame.data)
                stream._readable.set()
                self.buffered += len(frame.data)
                if self.buffered > self.high_water and not self.paused:
                    self.paused = True
                    self.carrier.pause_reading()
            if frame.flags & FLAG_FIN:
                self._remote_fin(stream)
        elif isinstance(frame, SynStream):
            self._open(frame)
        elif isinstance(frame, RstStream):
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                stream.local_closed = True
                stream._end(reset=True)
        elif isinstance(frame, Ping):
            if frame.id % 2:         # the peer's ping (clients use odd ids): echo it
                self.send(frame)
        elif isinstance(frame, HeadersFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None and frame.flags & FLAG_FIN:
                self._remote_fin(stream)
        # SETTINGS, WINDOW_UPDATE, GOAWAY and SYN_REPLY (this side opens no streams) change nothing
        # here: windows are not enforced on sending, and after a GOAWAY the peer's open streams go on.

    def _open(self, frame: SynStream) -> None:
        if frame.stream_id in self.streams:
            self.send(RstStream(frame.stream_id, STREAM_IN_USE))
            return
        if frame.stream_id % 2 == 0 or frame.stream_id <= self.last_peer_stream:
            self.send(RstStream(frame.stream_id, PROTOCOL_ERROR))
            return
        self.last_peer_stream = frame.stream_id
        stream = Stream(self, frame.stream_id, frame.headers,
                        remote_closed=bool(frame.flags & FLAG_FIN),
                        local_closed=bool(frame.flags & FLAG_UNIDIRECTIONAL))
        self.streams[stream.id] = stream
        self.on_stream(stream)

    def _remote_fin(self, stream: Stream) -> None:
        stream._end()
        if stream.local_closed:
            self.streams.pop(stream.id, None)

    def _consumed(self, stream: Stream, size: int) -> None:
        """Bytes the application read: window back to the peer, and reading resumed below half the
        high-water mark."""
        self.buffered -= size
        if self.paused and self.buffered <= self.high_water // 2:
            self.paused = False
            self.carrier.resume_reading()
        if stream.remote_closed:
            return
        stream._unacknowledged += size
        if stream._unacknowledged >= DEFAULT_WINDOW // 2:
            self.send(WindowUpdate(stream.id, stream._unacknowledged))
            stream._unacknowledged = 0

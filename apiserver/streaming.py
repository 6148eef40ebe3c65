"""pods/exec, pods/attach and pods/portforward for the clients that speak SPDY: the apiserver ends
their protocol here and speaks websockets to the kubelet (docs/streaming.md).

- kubectl up to 1.29 upgrades the HTTPS connection to SPDY/3.1 (`Upgrade: SPDY/3.1`, the
  subprotocol in `X-Stream-Protocol-Version`). uvicorn's ASGI cannot hand a socket to the app after
  an upgrade that is not a websocket, so `SpdyUpgradeProtocol` (uvicorn's httptools protocol plus
  this case) takes the TLS transport over for those three paths; other requests never reach the
  added code, since uvicorn consults it only when the parser saw an Upgrade header.
- kubectl 1.30+ tunnels SPDY through a websocket for port-forward (subprotocol
  `SPDY/3.1+portforward.k8s.io`, SPDY bytes in binary messages). That subprotocol is no HTTP token,
  so the websockets library behind uvicorn refuses the handshake: the same protocol class takes
  these connections over too, with websockets' sans-I/O framing.
- Exec and attach over websockets, and the Python client's websocket port-forward, are relayed
  unchanged (proxy.py).

To the kubelet: exec/attach as `v5.channel.k8s.io` (its CLOSE signal carries the client's stdin
FIN; `v4` when the kubelet offers no more), one `/portForward` websocket per forwarded connection.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import aiohttp
import orjson
from starlette.datastructures import Headers
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from websockets.frames import CloseCode, Opcode
from websockets.http11 import Request as WebSocketRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from kubeling.api.errors import StatusError
from kubeling.component import TaskSet

from .spdy import PROTOCOL_ERROR, Session, Stream

log = logging.getLogger("apiserver.streaming")

SPDY_PATH = re.compile(rb"/api/v1/namespaces/([^/?]+)/pods/([^/?]+)/(exec|attach|portforward)(?:\?(.*))?$")
REMOTE_COMMAND = "v4.channel.k8s.io"          # what SPDY clients get for exec and attach (kubectl offers v4 first)
PORT_FORWARD = "portforward.k8s.io"
TUNNEL_PREFIX = "SPDY/3.1+"                   # client-go's SPDY-over-websocket subprotocols
UPSTREAM = ("v5.channel.k8s.io", "v4.channel.k8s.io")   # offered to the kubelet; v5 carries half-closes
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
STREAM_CREATION_TIMEOUT = 30.0   # upstream's: the client has this long to open its streams
CLIENT_CLOSE_GRACE = 5.0         # after the last stream ended: time for the client to hang up first
TUNNEL_MAX_MESSAGE = 1 << 25    # a SPDY frame (16 MiB of data at most) in one message


@dataclass
class Upgrade:
    """A SPDY upgrade (or tunnel) request as uvicorn parsed it; `headers` is what authentication reads."""
    target: str                      # the request's path and query
    namespace: str
    name: str
    subresource: str
    query: list[tuple[str, str]]
    headers: Headers
    tunnel: bool                     # SPDY inside a websocket, else an `Upgrade: SPDY/3.1`

    def offered(self) -> list[str]:
        """The client's subprotocols in its order: X-Stream-Protocol-Version values, or the
        websocket's subprotocols less the tunnel's prefix."""
        if self.tunnel:
            return [p.strip()[len(TUNNEL_PREFIX):] for p in self.headers.get("sec-websocket-protocol", "").split(",")
                    if p.strip().startswith(TUNNEL_PREFIX)]
        return [p.strip() for v in self.headers.getlist("x-stream-protocol-version") for p in v.split(",") if p.strip()]


def _negotiate(offered: list[str], accepted: str) -> str:
    if accepted in offered:
        return accepted
    raise StatusError(403, "Forbidden", f"unable to upgrade: unable to negotiate protocol: client supports "
                                        f"{offered}, server accepts [{accepted}]")


def _flag(query: list[tuple[str, str]], name: str) -> bool:
    return any(k == name and v.lower() in ("1", "t", "true") for k, v in query)


async def _finish(tasks: list[asyncio.Task]) -> None:
    """Cancel tasks and wait for them; a failure other than the cancellation is raised."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _until_closed(session: Session, work: Awaitable[None]) -> None:
    """Run `work` until it ends or the client's connection does."""
    task = asyncio.ensure_future(work)
    closed = asyncio.ensure_future(session.closed.wait())
    try:
        await asyncio.wait((task, closed), return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _finish([task, closed])


class RemoteCommand:
    """exec or attach over SPDY, bridged to one kubelet websocket: the client opens a stream per
    `streamType` (error, stdin, stdout, stderr, resize), the kubelet's channels map onto them, and
    the kubelet's end (the v4 Status on the error channel, then its close) ends the streams."""

    def __init__(self, upstream: aiohttp.ClientWebSocketResponse, query: list[tuple[str, str]]) -> None:
        self.upstream = upstream
        tty = _flag(query, "tty")
        self.expected = {"error"} | {k for k in ("stdin", "stdout") if _flag(query, k)} | \
            ({"stderr"} if _flag(query, "stderr") and not tty else set()) | ({"resize"} if tty else set())
        self.streams: dict[str, Stream] = {}
        self.ready = asyncio.Event()

    def on_stream(self, stream: Stream) -> None:
        kind = stream.header("streamtype")
        if kind not in self.expected or kind in self.streams:
            stream.abort(PROTOCOL_ERROR)
            return
        stream.reply()
        self.streams[kind] = stream
        if len(self.streams) == len(self.expected):
            self.ready.set()

    async def run(self, session: Session) -> None:
        try:
            try:
                await asyncio.wait_for(_until_closed(session, self.ready.wait()), STREAM_CREATION_TIMEOUT)
            except TimeoutError:
                log.info("exec: timed out waiting for the client to create streams %s", sorted(self.expected))
            if not self.ready.is_set():
                return
            inputs = [asyncio.create_task(self._input(self.streams[kind], channel))
                      for kind, channel in (("stdin", STDIN), ("resize", RESIZE)) if kind in self.streams]
            try:
                await _until_closed(session, self._output())
            finally:
                await _finish(inputs)
            for stream in self.streams.values():
                stream.close()
        finally:
            await self.upstream.close()

    async def _output(self) -> None:
        targets = {STDOUT: "stdout", STDERR: "stderr", ERROR: "error"}
        async for msg in self.upstream:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            stream = self.streams.get(targets.get(msg.data[0], "")) if msg.data else None
            if stream is not None and len(msg.data) > 1:
                await stream.write(msg.data[1:])

    async def _input(self, stream: Stream, channel: int) -> None:
        try:
            while chunk := await stream.read():
                await self.upstream.send_bytes(bytes((channel,)) + chunk)
            if channel == STDIN and not stream.reset and self.upstream.protocol == "v5.channel.k8s.io":
                await self.upstream.send_bytes(bytes((CLOSE, STDIN)))
        except ConnectionResetError:   # the kubelet's side ended; _output sees it
            pass


class PortForward:
    """port-forward over SPDY: for each local connection the client opens an error and a data
    stream (headers `port` and `requestID`); each pair gets a websocket of its own to the kubelet's
    /portForward, whose first message per channel is the port (skipped), then data and errors."""

    def __init__(self, dial: Callable[[int], Awaitable[aiohttp.ClientWebSocketResponse]]) -> None:
        self.dial = dial
        self.pairs: dict[str, dict[str, Stream]] = {}
        self.forwards = TaskSet(log)

    def on_stream(self, stream: Stream) -> None:
        kind, port, request = stream.header("streamtype"), stream.header("port"), stream.header("requestid")
        if kind not in ("data", "error") or kind in self.pairs.get(request, {}) or not port.isdigit() \
                or not 0 < int(port) < 65536:
            stream.abort(PROTOCOL_ERROR)
            return
        stream.reply()
        pair = self.pairs.setdefault(request, {})
        pair[kind] = stream
        if len(pair) == 2:
            del self.pairs[request]
            self.forwards.spawn(self._forward(int(port), pair["data"], pair["error"]), f"port-forward to {port}")

    async def run(self, session: Session) -> None:
        try:
            await session.closed.wait()
        finally:
            self.forwards.cancel()

    async def _forward(self, port: int, data: Stream, error: Stream) -> None:
        try:
            upstream = await self.dial(port)
        except StatusError as e:
            await error.write(str(e).encode())
            error.close()
            data.close()
            return
        sending = asyncio.create_task(self._input(upstream, data))
        try:
            await self._output(upstream, data, error)
        finally:
            await _finish([sending])
            await upstream.close()
            data.close()
            error.close()

    @staticmethod
    async def _output(upstream: aiohttp.ClientWebSocketResponse, data: Stream, error: Stream) -> None:
        started = set()
        async for msg in upstream:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            if not msg.data or msg.data[0] not in (0, 1):
                continue
            channel = msg.data[0]
            if channel not in started:   # the port, little-endian, opens each channel
                started.add(channel)
                continue
            if len(msg.data) > 1:
                await (data if channel == 0 else error).write(msg.data[1:])

    @staticmethod
    async def _input(upstream: aiohttp.ClientWebSocketResponse, data: Stream) -> None:
        """The client's bytes to the pod. Its FIN half-closes the pod connection where the kubelet
        speaks v5; on v4 nothing can say so, and the pod's side decides when the connection ends.
        A reset ends the connection."""
        try:
            while chunk := await data.read():
                await upstream.send_bytes(b"\0" + chunk)
            if data.reset:
                await upstream.close()
            elif upstream.protocol == "v5.channel.k8s.io":
                await upstream.send_bytes(bytes((CLOSE, 0)))
        except ConnectionResetError:
            pass


class TransportCarrier(asyncio.Protocol):
    """The TLS connection of a SPDY upgrade or tunnel, taken over from uvicorn: bytes in go to the
    session (those arriving before it exists wait), bytes out are written with the transport's
    back-pressure; for a tunnel both go through websocket framing. It joins uvicorn's connections
    so a server shutdown closes it."""

    def __init__(self, transport: asyncio.Transport, connections: set, tunnel: bool) -> None:
        self.transport = transport
        self.connections = connections
        self.websocket = ServerProtocol(max_size=TUNNEL_MAX_MESSAGE) if tunnel else None
        self.session: Session | None = None
        self.early = bytearray()
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = False
        connections.add(self)

    def accept(self, upgrade: Upgrade, version: str) -> bool:
        """Switch protocols (101); False when the websocket handshake itself is invalid (its
        error response has been written)."""
        if self.websocket is None:
            self.respond(101, [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                               ("X-Stream-Protocol-Version", version)])
            return True
        # The handshake goes through websockets' own parser (which starts the framing after it),
        # less the subprotocol: websockets would refuse it as a non-token, so it is added here.
        self.websocket.receive_data(b"".join([f"GET {upgrade.target} HTTP/1.1\r\n".encode("latin-1")] + [
            name + b": " + value + b"\r\n" for name, value in upgrade.headers.raw if name != b"sec-websocket-protocol"
        ] + [b"\r\n"]))
        requests = [r for r in self.websocket.events_received() if isinstance(r, WebSocketRequest)]
        if not requests:   # unparsable: websockets has answered it
            self._flush()
            return False
        response = self.websocket.accept(requests[0])
        if response.status_code == 101:
            response.headers["Sec-WebSocket-Protocol"] = TUNNEL_PREFIX + version
        self.websocket.send_response(response)
        self._flush()
        return response.status_code == 101

    def start(self, session: Session) -> None:
        self.session = session
        if self.early:
            self.data_received(bytes(self.early))
            self.early.clear()
        if self.lost:
            session.connection_lost()

    def data_received(self, data: bytes) -> None:
        if self.session is None:
            self.early += data
        elif self.websocket is None:
            self.session.feed(data)
        else:
            self.websocket.receive_data(data)
            for frame in self.websocket.events_received():
                if frame.opcode in (Opcode.BINARY, Opcode.CONT):
                    self.session.feed(frame.data)
                elif frame.opcode == Opcode.TEXT:
                    self.websocket.fail(CloseCode.UNSUPPORTED_DATA, "the SPDY tunnel carries binary messages")
            self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.connections.discard(self)
        self.writable.set()
        if self.session is not None:
            self.session.connection_lost()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def write(self, data: bytes) -> None:
        if self.websocket is None:
            if not self.lost:
                self.transport.write(data)
        elif self.websocket.state is State.OPEN:
            self.websocket.send_binary(data)
            self._flush()

    def _flush(self) -> None:
        """What the websocket framing has to send; its end-of-data mark closes the connection."""
        assert self.websocket is not None
        for chunk in self.websocket.data_to_send():
            if chunk and not self.lost:
                self.transport.write(chunk)
            elif not chunk:
                self.transport.close()

    async def drain(self) -> None:
        await self.writable.wait()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def close(self) -> None:
        if self.websocket is not None and self.websocket.state is State.OPEN:
            self.websocket.send_close(CloseCode.NORMAL_CLOSURE)
            self._flush()
        self.transport.close()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown."""
        self.close()

    def respond(self, code: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        lines = [f"{name}: {value}\r\n" for name, value in headers]
        self.transport.write(STATUS_LINE[code] + "".join(lines).encode("latin-1") + b"\r\n" + body)


class Streaming:
    """Ends SPDY (upgraded or tunneled) for pods/exec, attach and portforward; `authenticate` is the
    app's (it reads `.headers`, raises 401)."""

    def __init__(self, proxy: Any, authenticate: Callable[[Any], dict]) -> None:
        self.proxy = proxy
        self.authenticate = authenticate
        self.tasks = TaskSet(log)

    @property
    def protocol(self) -> Callable[..., asyncio.Protocol]:
        """The HTTP protocol factory for uvicorn.Config(http=...)."""
        return functools.partial(SpdyUpgradeProtocol, streaming=self)

    def close(self) -> None:
        self.tasks.cancel()

    async def serve_upgrade(self, carrier: TransportCarrier, upgrade: Upgrade) -> None:
        """Answer an upgrade: a Status error, or 101 and the bridged session until it ends."""
        try:
            self.authenticate(upgrade)
            offered = upgrade.offered()
            if upgrade.subresource == "portforward":
                version = _negotiate(offered, PORT_FORWARD)
                bridge: RemoteCommand | PortForward = await self._port_forward(upgrade.namespace, upgrade.name)
            else:
                version = _negotiate(offered, REMOTE_COMMAND)
                url = await self.proxy.command_url(upgrade.namespace, upgrade.name, upgrade.subresource, upgrade.query)
                bridge = RemoteCommand(await self.proxy.dial(url, UPSTREAM), upgrade.query)
        except StatusError as e:
            body = orjson.dumps(e.status(), option=orjson.OPT_APPEND_NEWLINE)
            carrier.respond(e.code, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                     ("Connection", "close"), *e.headers.items()], body)
            carrier.transport.close()
            return
        session = Session(carrier, bridge.on_stream)
        try:
            if not carrier.accept(upgrade, version):
                return
            carrier.start(session)
            await bridge.run(session)
            try:   # the client hangs up once it has read everything; then this side does
                await asyncio.wait_for(session.closed.wait(), CLIENT_CLOSE_GRACE)
            except TimeoutError:
                pass
        finally:
            session.close()

    async def _port_forward(self, namespace: str, name: str) -> PortForward:
        base = await self.proxy.kubelet_url(namespace, name)

        async def dial(port: int) -> aiohttp.ClientWebSocketResponse:
            url = f"{base}/portForward/{namespace}/{name}?{urlencode({'ports': port})}"
            return await self.proxy.dial(url, UPSTREAM)
        return PortForward(dial)


class SpdyUpgradeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that also takes over `Upgrade: SPDY/3.1` to pods/exec, attach
    and portforward, and websockets to pods/portforward offering the SPDY tunnel: the transport
    goes to a TransportCarrier and Streaming.serve_upgrade answers."""

    def __init__(self, *args: Any, streaming: Streaming, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streaming = streaming

    def _takeover(self) -> Upgrade | None:
        """The upgrade this class serves itself, if the request is one."""
        kind = self._get_upgrade()
        if kind not in (b"spdy/3.1", b"websocket"):
            return None
        target = SPDY_PATH.match(self.url)
        if target is None:
            return None
        namespace, name, sub, query = (g.decode("latin-1") if g else "" for g in target.groups())
        upgrade = Upgrade(self.url.decode("latin-1"), unquote(namespace), unquote(name), sub,
                          parse_qsl(query, keep_blank_values=True), Headers(raw=self.headers), kind == b"websocket")
        if upgrade.tunnel and (sub != "portforward" or not upgrade.offered()):
            return None
        return upgrade

    def _should_upgrade(self) -> bool:
        return super()._should_upgrade() or self._takeover() is not None

    def handle_websocket_upgrade(self) -> None:
        upgrade = self._takeover()
        if upgrade is None:
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        carrier = TransportCarrier(self.transport, self.connections, upgrade.tunnel)
        self.transport.set_protocol(carrier)
        self.streaming.tasks.spawn(self.streaming.serve_upgrade(carrier, upgrade),
                                   f"SPDY {upgrade.subresource} {upgrade.namespace}/{upgrade.name}")

"""The wire formats of the kubelet's streaming API, kept free of I/O so they can be tested alone.

- Kubernetes' websocket channel protocols for exec and attach (`k8s.io/apiserver/pkg/util/wsstream`
  and the kubelet's `remotecommand`): every message starts with its channel (0 stdin, 1 stdout,
  2 stderr, 3 error, 4 resize); the `base64.` variants send text messages whose first character is
  the channel digit. `v4` puts a metav1.Status JSON on the error channel (the exit code travels in
  it); `v5` adds the CLOSE signal `[255, channel]`, by which a client half-closes stdin.
- Docker's multiplexed stream (8-byte frame headers) for exec and attach without a tty.
- Log options as the kubelet reads them from a query (PodLogOptions).

Apart from `send` and `client_frames`, which move frames over an aiohttp websocket (exec, attach and
port-forward share them), nothing here does I/O, so the formats are tested alone.
"""
from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import AsyncIterator, Mapping

from aiohttp import WSMsgType, web

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

# The client's order decides (as upstream's handshake): these are what this server accepts.
PROTOCOLS = ("v5.channel.k8s.io", "v5.base64.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
             "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io")


class BadRequest(ValueError):
    """A request the kubelet answers with 400 and this text."""


def parse_bool(value: str) -> bool:
    """Go's strconv.ParseBool, which upstream uses for query flags (clients send `true` or `True`)."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise BadRequest(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def negotiate(offered_header: str | None) -> str | None:
    """The first offered protocol this server speaks; "channel.k8s.io" semantics when the client
    offers none (returned as ""); None when it offers only unknown ones."""
    offered = [p.strip() for p in (offered_header or "").split(",") if p.strip()]
    if not offered:
        return ""
    return next((p for p in offered if p in PROTOCOLS), None)


@dataclass(frozen=True)
class Channels:
    """Framing for one negotiated protocol ("" is the unversioned channel.k8s.io)."""
    protocol: str

    @property
    def version(self) -> int:
        head = self.protocol.split(".", 1)[0]
        return int(head[1:]) if head.startswith("v") else 1

    @property
    def base64(self) -> bool:
        return ".base64." in f".{self.protocol}"

    def encode(self, channel: int, data: bytes) -> bytes | str:
        if self.base64:
            return chr(ord("0") + channel) + base64.b64encode(data).decode()
        return bytes((channel,)) + data

    def decode(self, message: bytes | str) -> tuple[int, bytes] | None:
        """(channel, payload) of a client message, or None for an empty one. The CLOSE signal comes
        back as (CLOSE, bytes([channel])), on v5 only; before v5 255 is an ordinary channel number."""
        if not message:
            return None
        if self.base64:
            text = message if isinstance(message, str) else message.decode()
            return ord(text[0]) - ord("0"), base64.b64decode(text[1:])
        # upstream reads text frames of binary protocols as bytes too: the Python client's
        # write_stdin("...") sends chr(0) + "..." as a text frame
        data = message.encode() if isinstance(message, str) else message
        return data[0], data[1:]

    def status(self, exit_code: int | None, error: str = "") -> bytes | None:
        """What goes on the error channel when the process ends: a metav1.Status JSON from v4 on
        (Success; NonZeroExitCode with the code as an ExitCode cause; InternalError), the bare
        error text before v4 and nothing on success there (upstream's v1WriteStatusFunc)."""
        if error:
            message = f"Internal error occurred: {error}"
            status: dict = {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
                            "details": {"causes": [{"message": error}]}, "code": 500}
        elif exit_code:
            message = f"command terminated with non-zero exit code: Error executing in Docker Container: {exit_code}"
            status = {"metadata": {}, "status": "Failure", "message": message, "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}}
        else:
            status = {"metadata": {}, "status": "Success"}
            message = ""
        if self.version >= 4:
            return json.dumps(status, separators=(",", ":")).encode()
        return message.encode() if message else None


class ResizeDecoder:
    """Terminal sizes from the resize channel: JSON objects {"Width": w, "Height": h}, possibly
    several in one message or one split over messages (it is a byte stream to client-go)."""

    def __init__(self) -> None:
        self.buffer = ""
        self.decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        self.buffer += data.decode(errors="replace")
        sizes = []
        while True:
            text = self.buffer.lstrip()
            if not text:
                self.buffer = ""
                return sizes
            try:
                obj, end = self.decoder.raw_decode(text)
            except json.JSONDecodeError:
                self.buffer = text
                return sizes
            self.buffer = text[end:]
            if isinstance(obj, dict):
                sizes.append((int(obj.get("Width") or 0), int(obj.get("Height") or 0)))


class DockerFrames:
    """Docker's multiplexed attach/exec stream without a tty: an 8-byte header (stream type, three
    zero bytes, big-endian payload size) before each payload. Stream 1 is stdout, 2 stderr."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 8:
            kind, size = self.buffer[0], struct.unpack(">I", self.buffer[4:8])[0]
            if len(self.buffer) < 8 + size:
                break
            frames.append((STDERR if kind == 2 else STDOUT, bytes(self.buffer[8:8 + size])))
            del self.buffer[:8 + size]
        return frames


@dataclass
class LogOptions:
    """PodLogOptions as the kubelet takes them from /containerLogs' query."""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: float | None = None      # a Unix time, from sinceSeconds or sinceTime

    @classmethod
    def from_query(cls, query: Mapping[str, str], now: float) -> "LogOptions":
        """Parsed and validated as upstream (ValidatePodLogOptions); BadRequest otherwise."""
        def integer(name: str) -> int | None:
            raw = query.get(name)
            if raw is None or raw == "":
                return None
            try:
                return int(raw)
            except ValueError:
                raise BadRequest(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None

        opts = cls(follow=parse_bool(query.get("follow") or "false"),
                   previous=parse_bool(query.get("previous") or "false"),
                   timestamps=parse_bool(query.get("timestamps") or "false"),
                   tail_lines=integer("tailLines"), limit_bytes=integer("limitBytes"))
        since_seconds = integer("sinceSeconds")
        since_time = query.get("sinceTime") or None
        problems = []
        if opts.tail_lines is not None and opts.tail_lines < 0:
            problems.append("tailLines: Invalid value: %d: must be greater than or equal to 0" % opts.tail_lines)
        if opts.limit_bytes is not None and opts.limit_bytes < 1:
            problems.append("limitBytes: Invalid value: %d: must be greater than 0" % opts.limit_bytes)
        if since_seconds is not None and since_time is not None:
            problems.append("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
        if since_seconds is not None:
            if since_seconds < 1:
                problems.append("sinceSeconds: Invalid value: %d: must be greater than 0" % since_seconds)
            opts.since = now - since_seconds
        if since_time is not None:
            opts.since = parse_time(since_time)
        if problems:
            raise BadRequest("[" + ", ".join(problems) + "]" if len(problems) > 1 else problems[0])
        return opts


def parse_time(text: str) -> float:
    """An RFC 3339 time (what metav1.Time accepts in a query) as a Unix time."""
    try:
        head, frac, zone = text, "", ""
        if text.endswith("Z"):
            head = text[:-1]
        elif len(text) > 6 and text[-6] in "+-":
            head, zone = text[:-6], text[-6:]
        if "." in head:
            head, frac = head.split(".", 1)
        stamp = datetime.fromisoformat(head + (zone or "+00:00"))
    except ValueError:
        raise BadRequest(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse "{text}" as '
                         f'"2006"') from None
    return stamp.timestamp() + (float("0." + frac) if frac.isdigit() else 0.0)


def format_time(unix: float) -> str:
    """A Unix time as metav1.Time writes it (RFC 3339, seconds, UTC)."""
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def send(ws: web.WebSocketResponse, channels: Channels, channel: int, data: bytes) -> None:
    """One frame to the client; a client already gone is no error (the reading side sees the close)."""
    message = channels.encode(channel, data)
    try:
        if isinstance(message, str):
            await ws.send_str(message)
        else:
            await ws.send_bytes(message)
    except ConnectionResetError:
        pass


async def client_frames(ws: web.WebSocketResponse, channels: Channels) -> AsyncIterator[tuple[int, bytes]]:
    """The client's (channel, payload) frames until it closes, empty messages skipped; on v5 the
    CLOSE signal comes as (CLOSE, bytes([channel]))."""
    async for msg in ws:
        if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT) and (frame := channels.decode(msg.data)) is not None:
            yield frame

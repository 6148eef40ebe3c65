"""The kubelet's /portForward/{namespace}/{pod} over a websocket, as upstream's
pkg/kubelet/cri/streaming/portforward/websocket.go: `?ports=` names the ports (repeated or
comma-separated); port i has channel 2i for data and 2i+1 for errors, and each channel opens with
the port (2 bytes, little-endian). The pod's port is dialled at the pod's IP from this host (the
node reaches its pods' bridge), once per session; the session ends when every port's connection has.

Besides upstream's `v4.channel.k8s.io` (the Python client's), `v5.channel.k8s.io` adds the CLOSE
signal [255, 2i]: the client sends no more, and the pod connection is shut for writing. The
apiserver uses it to pass on a SPDY client's FIN (a request sent, then EOF, then the answer).
"""
from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from .streams import CLOSE, Channels

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io")
READ_SIZE = 64 * 1024


def parse_ports(values: list[str]) -> list[int]:
    """Upstream's NewV4Options: every value, split at commas, a port in 1..65535; ValueError else."""
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or int(part) > 65535:
                raise ValueError(f'unable to parse "{value}" as a port: strconv.ParseUint: parsing "{part}": '
                                 f'invalid syntax')
            if int(part) < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(int(part))
    return ports


def handler(pods: Callable[[], list[dict]], streams: set[asyncio.Task]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler; `pods` lists this node's pods (their status.podIP is dialled), and the
    serving task joins `streams` while the session lasts (the server cancels those on stop)."""

    async def port_forward(request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["namespace"], request.match_info["pod"]
        try:
            ports = parse_ports(request.query.getall("ports", []))
        except ValueError as e:
            return web.Response(status=400, text=str(e))
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        protocol = next((p for p in offered if p in PROTOCOLS), None) if offered else ""
        if protocol is None:
            return web.Response(status=400, text=f"requested protocol(s) are not supported: {offered}; "
                                                 f"supports {list(PROTOCOLS)}")
        pod = next((p for p in pods() if p["metadata"]["namespace"] == ns and p["metadata"]["name"] == name), None)
        if pod is None:
            return web.Response(status=404, text=f'pod "{ns}/{name}" not found')
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            return web.Response(status=400, text=f'pod "{ns}/{name}" has no IP address yet')
        uid = pod["metadata"].get("uid", "")
        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), compress=False)
        await ws.prepare(request)
        streams.add(task := asyncio.current_task())  # type: ignore[arg-type]
        try:
            await _session(ws, Channels(protocol), ports, ip, f"{name}, uid {uid}")
        finally:
            streams.discard(task)  # type: ignore[arg-type]
            await ws.close()
        return ws

    return port_forward


async def _session(ws: web.WebSocketResponse, channels: Channels, ports: list[int], ip: str, pod: str) -> None:
    for i, port in enumerate(ports):
        for channel in (2 * i, 2 * i + 1):
            await _send(ws, channels, channel, port.to_bytes(2, "little"))
    writers: dict[int, asyncio.StreamWriter] = {}
    readers: list[asyncio.Task] = []
    for i, port in enumerate(ports):
        try:
            reader, writer = await asyncio.open_connection(ip, port)
        except OSError as e:
            reason = (e.strerror or str(e)).lower() if e.errno != errno.ECONNREFUSED else "connection refused"
            message = f"error forwarding port {port} to pod {pod}: dial tcp {ip}:{port}: connect: {reason}"
            await _send(ws, channels, 2 * i + 1, message.encode())
            continue
        writers[2 * i] = writer
        readers.append(asyncio.create_task(_to_client(ws, channels, 2 * i, reader)))
    if not readers:
        return
    client = asyncio.create_task(_from_client(ws, channels, writers))
    remaining = set(readers)
    try:
        while remaining and not client.done():
            done, _ = await asyncio.wait({client, *remaining}, return_when=asyncio.FIRST_COMPLETED)
            remaining -= done
    finally:
        for task in (client, *readers):
            task.cancel()
        await asyncio.wait([client, *readers])
        for writer in writers.values():
            writer.close()
        for task in (client, *readers):
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


async def _to_client(ws: web.WebSocketResponse, channels: Channels, channel: int, reader: asyncio.StreamReader) -> None:
    """The pod's bytes to the client until the pod closes its side."""
    try:
        while chunk := await reader.read(READ_SIZE):
            await _send(ws, channels, channel, chunk)
    except ConnectionResetError:   # the pod reset the connection or the client left: this port is done
        pass


async def _from_client(ws: web.WebSocketResponse, channels: Channels, writers: dict[int, asyncio.StreamWriter]) -> None:
    """The client's bytes to the pods until it closes; v5's CLOSE shuts a pod connection for writing."""
    async for msg in ws:
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            continue
        frame = channels.decode(msg.data)
        if frame is None:
            continue
        channel, data = frame
        if channel == CLOSE and channels.version >= 5 and data[:1]:
            writer = writers.get(data[0])
            if writer is not None and writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        elif channel in writers and data and not writers[channel].is_closing():
            writers[channel].write(data)
            try:
                await writers[channel].drain()
            except ConnectionResetError:
                writers[channel].close()


async def _send(ws: web.WebSocketResponse, channels: Channels, channel: int, data: bytes) -> None:
    message = channels.encode(channel, data)
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)

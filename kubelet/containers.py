"""This node's containers as the kubelet API reaches them: which container a request means, its
logs, and exec/attach sessions, behind a small protocol so the HTTPS server knows no runtime.

`DockerContainers` finds containers by the labels dockershim gave them (and the Docker runtime
gives them): pod namespace, name and uid, container name and restart count. The Docker SDK
blocks, so every call runs in a thread; a log stream is read by a thread of its own and handed to
the event loop, and an exec/attach connection, once Docker has upgraded it, is a plain socket the
loop reads and writes itself.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any, AsyncGenerator, Protocol

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from .docker_runtime import hijacked, L_ATTEMPT, L_CONTAINER, L_NAME, L_NODE, L_NS, L_TYPE, L_UID, SANDBOX
from .streams import STDOUT, DockerFrames, LogOptions

log = logging.getLogger("kubelet.server")

LOG_QUEUE_CHUNKS = 64    # chunks a log reader thread may be ahead of a slow client
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, urllib3.exceptions.HTTPError)


class LocateError(Exception):
    """A request for a container that cannot be served: the HTTP status and upstream's text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Session(Protocol):
    """A running exec or attach: output as (channel, bytes) until None, stdin, resize, and how it ended."""

    async def read(self) -> tuple[int, bytes] | None: ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int | None:
        """The exit code of an exec (None for attach, which reports no code)."""

    async def close(self) -> None: ...


class ContainerLocator(Protocol):
    """What the kubelet's HTTPS server needs from the node's runtime."""

    async def locate(self, namespace: str, pod: str, container: str, previous: bool = False) -> str:
        """The id of the container whose logs a request means (the current one, or the previous
        terminated instance); LocateError otherwise."""

    async def locate_running(self, namespace: str, pod: str, container: str) -> str:
        """The id of the running container exec and attach reach; LocateError otherwise."""

    async def logs(self, container_id: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        """The log opened now (LocateError when the container is gone): stdout and stderr merged
        as the runtime recorded them, in chunks."""

    async def exec(self, container_id: str, command: list[str], *, stdin: bool, stdout: bool, stderr: bool,
                   tty: bool) -> Session: ...

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Session: ...


class DockerContainers:
    """ContainerLocator over a Docker engine; `node` limits it to one kubelet's containers when
    several kubelets share the engine (the runtime's node label)."""

    def __init__(self, api: docker.APIClient, node: str | None = None) -> None:
        self.api = api
        self.node = node

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.NotFound as e:
            raise LocateError(404, str(e.explanation or e)) from None
        except docker.errors.APIError as e:
            raise LocateError(500, str(e.explanation or e)) from None
        except ENGINE_ERRORS as e:
            raise LocateError(500, f"cannot reach the docker engine: {e}") from None

    async def _instances(self, namespace: str, pod: str, container: str) -> list[dict]:
        """The pod's instances of `container`, oldest first (by restart count, then creation), from
        the newest pod of that name; LocateError (404) when the pod or container is unknown."""
        labels = [f"{L_NS}={namespace}", f"{L_NAME}={pod}"] + ([f"{L_NODE}={self.node}"] if self.node else [])
        entries = [e for e in await self._call(self.api.containers, all=True, filters={"label": labels})
                   if (e.get("Labels") or {}).get(L_TYPE) != SANDBOX]
        if not entries:
            raise LocateError(404, f'pod "{pod}" does not exist')
        newest = max(entries, key=lambda e: e.get("Created", 0))
        uid = (newest.get("Labels") or {}).get(L_UID)
        named = [e for e in entries if (e.get("Labels") or {}).get(L_UID) == uid
                 and (e.get("Labels") or {}).get(L_CONTAINER) == container]
        if not named:
            raise LocateError(404, f'container "{container}" not found in pod "{pod}"')
        return sorted(named, key=lambda e: (_attempt(e), e.get("Created", 0)))

    async def locate(self, namespace: str, pod: str, container: str, previous: bool = False) -> str:
        named = await self._instances(namespace, pod, container)
        current = named[-1]
        if not previous:
            return current["Id"]
        ended = [e for e in named[:-1] if e.get("State") in ("exited", "dead")]
        exact = [e for e in ended if _attempt(e) == _attempt(current) - 1]
        if not ended:
            raise LocateError(400, f'previous terminated container "{container}" in pod "{pod}" not found')
        return (exact or ended)[-1]["Id"]

    async def locate_running(self, namespace: str, pod: str, container: str) -> str:
        try:
            current = (await self._instances(namespace, pod, container))[-1]
        except LocateError as e:
            if e.status == 404 and str(e).startswith("pod "):
                raise LocateError(404, "pod does not exist") from None
            raise LocateError(500, f'container not found ("{container}")') from None
        if current.get("State") != "running":
            raise LocateError(500, f'container not found ("{container}")')
        return current["Id"]

    async def logs(self, container_id: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "stream": True, "follow": options.follow,
                                  "timestamps": options.timestamps,
                                  "tail": "all" if options.tail_lines is None else options.tail_lines}
        if options.since is not None:
            kwargs["since"] = max(options.since, 1.0)     # the SDK takes positive times only
        stream = await self._call(self.api.logs, container_id, **kwargs)
        return _relay(_ThreadPump(stream, asyncio.get_running_loop()), options.limit_bytes)

    async def exec(self, container_id: str, command: list[str], *, stdin: bool, stdout: bool, stderr: bool,
                   tty: bool) -> Session:
        created = await self._call(self.api.exec_create, container_id, command, stdin=stdin, stdout=stdout,
                                   stderr=stderr, tty=tty)
        exec_id = created["Id"]
        sio = await self._call(self.api.exec_start, exec_id, tty=tty, socket=True)
        reader, writer, early = await _take_over(sio)
        return DockerSession(self, reader, writer, early, tty, exec_id=exec_id, container_id=container_id)

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Session:
        info = await self._call(self.api.inspect_container, container_id)
        params = {"stdin": int(stdin), "stdout": int(stdout), "stderr": int(stderr), "stream": 1}
        sio = await self._call(self.api.attach_socket, container_id, params=params)
        reader, writer, early = await _take_over(sio)
        return DockerSession(self, reader, writer, early, bool((info.get("Config") or {}).get("Tty")),
                             exec_id=None, container_id=container_id)


async def _relay(pump: "_ThreadPump", limit: int | None) -> AsyncGenerator[bytes, None]:
    """The pump's chunks, cut after `limit` bytes (limitBytes); the pump stops when this ends."""
    try:
        while (chunk := await pump.get()) is not None:
            if limit is not None:
                chunk = chunk[:limit]
                limit -= len(chunk)
            yield chunk
            if limit == 0:
                return
    finally:
        pump.stop()


def _attempt(entry: dict) -> int:
    try:
        return int((entry.get("Labels") or {}).get(L_ATTEMPT) or 0)
    except ValueError:
        return 0


async def _take_over(sio: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A connection Docker upgraded (exec/attach) as asyncio streams (see docker_runtime.hijacked),
    plus what was buffered past the response headers."""
    if isinstance(getattr(sio, "_sock", sio), ssl.SSLSocket):
        raise LocateError(500, "exec and attach need a unix or plain tcp DOCKER_HOST")
    own, early = hijacked(sio)
    if own.family == socket.AF_UNIX:
        reader, writer = await asyncio.open_unix_connection(sock=own)
    else:
        reader, writer = await asyncio.open_connection(sock=own)
    return reader, writer, bytes(early)


class DockerSession:
    """An exec or attach over Docker's upgraded connection: a raw stream with a tty, else
    multiplexed frames; stdin's end is a half-close of the connection."""

    def __init__(self, containers: DockerContainers, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 early: bytes, tty: bool, *, exec_id: str | None, container_id: str) -> None:
        self.containers = containers
        self.reader, self.writer = reader, writer
        self.tty = tty
        self.exec_id, self.container_id = exec_id, container_id
        self.frames = DockerFrames()
        self.pending: deque[tuple[int, bytes]] = deque()
        if early:
            self._take(early)

    def _take(self, data: bytes) -> None:
        if self.tty:
            self.pending.append((STDOUT, data))
        else:
            self.pending.extend(self.frames.feed(data))

    async def read(self) -> tuple[int, bytes] | None:
        while not self.pending:
            data = await self.reader.read(65536)
            if not data:
                return None
            self._take(data)
        return self.pending.popleft()

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close_stdin(self) -> None:
        if self.writer.can_write_eof() and not self.writer.is_closing():
            self.writer.write_eof()

    async def resize(self, width: int, height: int) -> None:
        """Resize the tty; a resize racing the process's end is only logged."""
        api = self.containers.api
        try:
            if self.exec_id is not None:
                await asyncio.to_thread(api.exec_resize, self.exec_id, height=height, width=width)
            else:
                await asyncio.to_thread(api.resize, self.container_id, height=height, width=width)
        except docker.errors.APIError as e:
            log.debug("resize of %s to %dx%d: %s", self.exec_id or self.container_id, width, height, e)

    async def wait(self, timeout: float = 10.0) -> int | None:
        """The exec's exit code once Docker has recorded it (a moment after its output ends); after
        `timeout` whatever it says, as dockershim, which also gave up after a while."""
        if self.exec_id is None:
            return None
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            info = await self.containers._call(self.containers.api.exec_inspect, self.exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                return int(info.get("ExitCode") or 0)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:     # the peer went first
            pass


class _ThreadPump:
    """A blocking SDK stream read by a thread of its own and handed to the event loop, at most
    LOG_QUEUE_CHUNKS ahead of the consumer; stop() closes the stream, which ends the thread."""

    def __init__(self, stream: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.stream, self.loop = stream, loop
        self.queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self.room = threading.Semaphore(LOG_QUEUE_CHUNKS)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kubelet-logs", daemon=True)
        self.thread.start()

    def _put(self, item: bytes | BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:    # the loop is closed: nobody reads any more
            self.stopped.set()

    def _run(self) -> None:
        try:
            for chunk in self.stream:
                self.room.acquire()
                if self.stopped.is_set():
                    return
                self._put(chunk)
            self._put(None)
        except ENGINE_ERRORS + (OSError, ValueError) as e:
            if not self.stopped.is_set():
                self._put(e)

    async def get(self) -> bytes | None:
        item = await self.queue.get()
        self.room.release()
        if isinstance(item, BaseException):
            raise LocateError(500, f"reading the container's log: {item}")
        return item

    def stop(self) -> None:
        """End the reading thread: the stream is closed and a waiting thread is let through."""
        self.stopped.set()
        self.room.release()
        self.stream.close()

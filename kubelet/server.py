"""The kubelet's HTTPS API (upstream's port 10250): /healthz, /pods, /containerLogs, /exec and
/attach over websockets (the `channel.k8s.io` protocols), /stats/summary.

The apiserver relays `pods/log`, `pods/exec` and `pods/attach` here (apiserver/proxy.py). The
server knows no runtime: a ContainerLocator says which container a request means and opens its
streams. aiohttp serves it because it speaks websockets and streaming responses on one socket;
the socket is bound first (kubeling.serving.listen) so a taken port fails before any work.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import time
from pathlib import Path
from typing import Awaitable, Callable, Sequence

from aiohttp import web
from cryptography import x509

from kubeling import pki
from kubeling.serving import listen

from . import portforward
from .auth import KubeletAuth
from .containers import ContainerLocator, LocateError, Session
from .stats import resource_metrics
from .streams import CLOSE, ERROR, PROTOCOLS, RESIZE, STDERR, STDIN, STDOUT, BadRequest, Channels, LogOptions, \
    ResizeDecoder, client_frames, negotiate, parse_bool, send

log = logging.getLogger("kubelet.server")

SERVING_BASE = "kubelet"     # kubelet.crt / kubelet.key in the cert dir, as upstream's self-signed pair


def ensure_serving_cert(cert_dir: Path, node_name: str, sans: Sequence[str],
                        ca: tuple[Path, Path] | None) -> tuple[Path, Path]:
    """(cert, key) for this kubelet in cert_dir: signed by the cluster CA when `ca` (cert, key
    files) is given, which then lives in cert_dir as ca.crt/ca.key copies; else by a CA of the
    kubelet's own made there on first start (upstream's `<host>-ca@<time>` self-signed pair).
    A changed CA or a missing name re-issues the certificate."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    if ca is not None:
        given = ca[0].read_bytes()
        here = cert_dir / pki.CA_CERT
        if not here.exists() or here.read_bytes() != given:
            shutil.copyfile(ca[1], cert_dir / pki.CA_KEY)
            (cert_dir / pki.CA_KEY).chmod(0o600)
            shutil.copyfile(ca[0], here)
    elif not (cert_dir / pki.CA_CERT).exists():
        pki.ensure_ca(cert_dir, common_name=f"{node_name or 'kubelet'}-ca@{int(time.time())}")
    crt = cert_dir / f"{SERVING_BASE}.crt"
    if crt.exists():
        issuer = x509.load_pem_x509_certificate(crt.read_bytes()).issuer
        ca_subject = x509.load_pem_x509_certificate((cert_dir / pki.CA_CERT).read_bytes()).subject
        if issuer != ca_subject:
            crt.unlink()
    return pki.ensure_serving_cert(cert_dir, SERVING_BASE, f"system:node:{node_name}" if node_name else "kubelet",
                                   list(sans))


class KubeletServer:
    """The API on bind_address:port over TLS. `pods` gives this node's pods as the kubelet knows
    them (for /pods), `stats` the /stats/summary document; `ca` = (cert, key) of the cluster CA
    to sign the serving certificate, else it is signed by a CA of the kubelet's own; `sans` are the
    names and addresses it covers (the node's name and IPs)."""

    def __init__(self, containers: ContainerLocator, bind_address: str, port: int, cert_dir: Path | str, *,
                 pods: Callable[[], list[dict]] = list, stats: Callable[[], Awaitable[dict]] | None = None,
                 node_name: str = "", sans: Sequence[str] = (), ca: tuple[Path, Path] | None = None,
                 auth: KubeletAuth | None = None) -> None:
        self.containers = containers
        self.bind_address, self.port = bind_address, port
        self.cert_dir = Path(cert_dir)
        self.pods, self.stats = pods, stats
        self.node_name = node_name
        self.sans = list(dict.fromkeys([*sans, *([node_name] if node_name else []), "localhost", "127.0.0.1",
                                        *([bind_address] if bind_address not in ("", "0.0.0.0", "::") else [])]))
        self.ca = ca
        self.auth = auth     # None: anyone who reaches the port (in-process tests)
        self.runner: web.AppRunner | None = None
        self.streams: set[asyncio.Task] = set()     # handlers of open log, exec and attach streams

    async def start(self) -> None:
        """Bind (kubeling.serving.ListenError when the address is taken), make sure of the serving
        certificate, and serve."""
        sock = listen(self.bind_address, self.port)
        try:
            crt, key = await asyncio.to_thread(ensure_serving_cert, self.cert_dir, self.node_name, self.sans, self.ca)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(crt, key)
            if self.auth is not None:
                self.auth.configure(context)
            app = web.Application(middlewares=[self.auth.middleware] if self.auth is not None else [])
            routes = [web.get("/healthz", self._healthz), web.get("/pods", self._pods), web.get("/pods/", self._pods),
                      web.get("/containerLogs/{namespace}/{pod}/{container}", self._logs),
                      web.get("/stats/summary", self._summary),
                      web.get("/metrics/resource", self._resource_metrics),
                      web.get("/portForward/{namespace}/{pod}", portforward.handler(self.pods, self.streams)),
                      web.get("/portForward/{namespace}/{pod}/{uid}", portforward.handler(self.pods, self.streams))]
            for kind, handler in (("exec", self._exec), ("attach", self._attach)):
                # with or without the pod's uid, as upstream; POST is how SPDY clients ask (refused)
                for path in (f"/{kind}/{{namespace}}/{{pod}}/{{container}}",
                             f"/{kind}/{{namespace}}/{{pod}}/{{uid}}/{{container}}"):
                    routes += [web.get(path, handler), web.post(path, handler)]
            app.add_routes(routes)
            # handler_cancellation: a client that goes away ends its handler (and a followed log's reader)
            self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
            await self.runner.setup()
            await web.SockSite(self.runner, sock, ssl_context=context).start()
        except BaseException:
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        self.port = port
        log.info("kubelet API serving on https://%s:%d", f"[{host}]" if ":" in host else host, port)

    async def stop(self) -> None:
        """Stop listening and end the open streams (their processes keep running, as upstream)."""
        for task in list(self.streams):
            task.cancel()
        if self.runner is not None:
            await self.runner.cleanup()

    # ---- plain endpoints ---------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _pods(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.pods()})

    async def _summary(self, request: web.Request) -> web.Response:
        if self.stats is None:
            return web.Response(status=404, text="404 page not found\n")
        return web.json_response(await self.stats())

    async def _resource_metrics(self, request: web.Request) -> web.Response:
        if self.stats is None:
            return web.Response(status=404, text="404 page not found\n")
        return web.Response(text=resource_metrics(await self.stats()), content_type="text/plain",
                            headers={"X-Content-Type-Options": "nosniff"})

    # ---- logs --------------------------------------------------------------------------
    async def _logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            options = LogOptions.from_query(request.query, time.time())
            cid = await self.containers.locate(ns, pod, container, options.previous)
            chunks = await self.containers.logs(cid, options)
        except BadRequest as e:
            return web.Response(status=400, text=str(e))
        except LocateError as e:
            return web.Response(status=e.status, text=str(e))
        self.streams.add(task := asyncio.current_task())  # type: ignore[arg-type]
        try:
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            async for chunk in chunks:
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        finally:
            await chunks.aclose()
            self.streams.discard(task)  # type: ignore[arg-type]

    # ---- exec and attach -----------------------------------------------------------------
    async def _exec(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(request, request.query.getall("command", []))

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(request, None)

    async def _remote_command(self, request: web.Request, command: list[str] | None) -> web.StreamResponse:
        """One exec (command given) or attach session over a websocket: the protocol negotiated
        from the client's offer, output to channels 1/2, stdin and resizes from channels 0/4, the
        process's end as a status on channel 3, then a close."""
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        q = request.query
        try:
            stdin, stdout, stderr, tty = (parse_bool(q.get(k) or "false") for k in ("stdin", "stdout", "stderr", "tty"))
        except BadRequest as e:
            return web.Response(status=400, text=str(e))
        stderr = stderr and not tty   # a tty has one output stream (upstream drops stderr too)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=400, text="this kubelet serves exec and attach over websockets only "
                                                 f"({', '.join(PROTOCOLS)}); SPDY is not supported")
        protocol = negotiate(request.headers.get("Sec-WebSocket-Protocol"))
        if protocol is None:
            return web.Response(status=400, text=f"requested protocol(s) are not supported: "
                                                 f"{request.headers.get('Sec-WebSocket-Protocol')}; "
                                                 f"supports {list(PROTOCOLS)}")
        if command is not None and not command:
            return web.Response(status=400, text="you must specify at least one command for the container")
        if not (stdin or stdout or stderr):
            return web.Response(status=400, text="you must specify at least 1 of stdin, stdout, stderr")
        try:
            cid = await self.containers.locate_running(ns, pod, container)
            if command is not None:
                session = await self.containers.exec(cid, command, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
            else:
                session = await self.containers.attach(cid, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
        except LocateError as e:
            return web.Response(status=e.status, text=str(e))
        self.streams.add(task := asyncio.current_task())  # type: ignore[arg-type]
        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), compress=False)
        try:
            await ws.prepare(request)
            await self._session(ws, Channels(protocol), session, stdin=stdin, first=STDOUT if stdout else STDERR
                                if stderr else ERROR)
        finally:
            await session.close()
            await ws.close()
            self.streams.discard(task)  # type: ignore[arg-type]
        return ws

    async def _session(self, ws: web.WebSocketResponse, channels: Channels, session: Session, *, stdin: bool,
                       first: int) -> None:
        # An empty message on the lowest writable channel tells the client the streams are set up.
        await send(ws, channels, first, b"")
        output = asyncio.create_task(self._output(ws, channels, session), name="exec output")
        client = asyncio.create_task(self._input(ws, channels, session, stdin), name="exec input")
        try:
            await asyncio.wait((output, client), return_when=asyncio.FIRST_COMPLETED)
            if output.done():
                try:
                    output.result()
                    status = channels.status(await session.wait())
                except (LocateError, OSError) as e:     # the runtime's end of the session broke
                    status = channels.status(None, str(e))
                if status is not None and not ws.closed:
                    await send(ws, channels, ERROR, status)
        finally:
            for t in (output, client):
                t.cancel()
            await asyncio.wait((output, client))
        if not client.cancelled() and client.exception() is not None:
            raise client.exception()  # type: ignore[misc]

    @staticmethod
    async def _output(ws: web.WebSocketResponse, channels: Channels, session: Session) -> None:
        while (item := await session.read()) is not None:
            if ws.closed:
                return
            await send(ws, channels, *item)

    @staticmethod
    async def _input(ws: web.WebSocketResponse, channels: Channels, session: Session, stdin: bool) -> None:
        """Client messages until it closes: stdin, its v5 CLOSE (EOF for the process), resizes."""
        sizes = ResizeDecoder()
        async for channel, data in client_frames(ws, channels):
            if channel == CLOSE and channels.version >= 5:
                if data[:1] == bytes((STDIN,)) and stdin:
                    await session.close_stdin()
            elif channel == STDIN and stdin and data:
                try:
                    await session.write(data)
                except ConnectionResetError:    # the process is gone; its end comes on the output side
                    stdin = False
            elif channel == RESIZE:
                for width, height in sizes.feed(data):
                    await session.resize(width, height)


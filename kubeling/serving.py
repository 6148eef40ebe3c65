"""uvicorn serving shared by every component: the listening socket is bound before serving, and
SIGTERM/SIGINT end `serve()` so the caller's clean-up runs.

Stock uvicorn binds inside `serve()`, logs a taken port as `ERROR: [Errno 98] ...` and raises
SystemExit(3) from whatever task runs it (a traceback when that is not the main task), after the
component already said it was serving. And it re-raises the captured signal after shutting down,
which kills the process before a component can stop its own threads and flush state.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from typing import Iterator

import uvicorn


class ListenError(Exception):
    """An address that cannot be listened on, worded like Go's net.Listen error (what upstream
    components print), e.g. `listen tcp 127.0.0.1:6443: bind: address already in use`."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening on host:port now, so that a taken port fails before a
    process starts its work or says it is serving; ListenError naming the address otherwise."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if not 0 <= port <= 65535:   # getaddrinfo would silently wrap it
        raise ListenError(f"listen tcp: address {port}: invalid port")
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise ListenError(f"listen tcp: lookup {host}: no such host") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        reason = e.strerror or str(e)
        raise ListenError(f"listen tcp {address}: bind: {reason[:1].lower()}{reason[1:]}") from None
    return sock


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.sockets: list[socket.socket] = []

    @property
    def address(self) -> str:
        """host:port of the bound socket, as Go writes it (the real port when 0 was asked for)."""
        host, port = self.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def bind(self) -> None:
        """Listen on the configured host and port now (see `listen`); `serve()` then uses the socket."""
        self.sockets = [listen(self.config.host, self.config.port)]

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve on `sockets`, else on the bound socket, binding now if `bind()` was not called:
        uvicorn's own bind path (SystemExit(3)) is never taken."""
        if sockets is None:
            if not self.sockets:
                self.bind()
            sockets = self.sockets
        await super().serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        sigs = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

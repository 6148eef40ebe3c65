"""uvicorn serving shared by every component: SIGTERM/SIGINT end `serve()` so the caller's clean-up runs.

Stock uvicorn re-raises the captured signal after shutting down, which kills the process
before a component can stop its own threads and flush state.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import uvicorn


class Server(uvicorn.Server):
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

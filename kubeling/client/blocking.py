"""One blocking request to the apiserver (for command-line tools that run before or beside the
asyncio components: the launcher, the add-on job)."""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from .config import ClientConfig


def request(cfg: ClientConfig, method: str, path: str, body: dict | None = None,
            timeout: float = 10.0) -> tuple[int, dict]:
    """(status, decoded body); an HTTP error status is returned, not raised (OSError is)."""
    ctx = ssl.create_default_context(cadata=cfg.ca_data.decode()) if cfg.ca_data else None
    req = urllib.request.Request(cfg.server + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {cfg.bearer()}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

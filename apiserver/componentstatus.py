"""v1 ComponentStatus (deprecated, still served by 1.32): the apiserver probes the scheduler, the
controller-manager and each etcd member when asked, nothing is stored.

As upstream, the scheduler and controller-manager are looked for on this host at their default
ports; `--etcd-servers` names the members (etcd-0, etcd-1, ... in flag order).
"""
from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import aiohttp

from kubeling.api import errors as E

PROBE_TIMEOUT = 2.0


def _go_dial_error(url: str, e: BaseException) -> str:
    """The error as Go's http client words it, which is what upstream shows in the ERROR column."""
    parts = urlsplit(url)
    addr = f"{parts.hostname}:{parts.port}"
    if isinstance(e, asyncio.TimeoutError):
        return f'Get "{url}": context deadline exceeded'
    reason = getattr(e, "os_error", None) or e
    errno = getattr(reason, "errno", None)
    text = os.strerror(errno).lower() if errno else (str(reason) or type(e).__name__)
    return f'Get "{url}": dial tcp {addr}: connect: {text}'


class ComponentStatuses:
    """Probes on demand; `list()` answers the objects a list of componentstatuses returns."""

    warning = "v1 ComponentStatus is deprecated in v1.19+"

    def __init__(self, etcd_urls: list[str], scheduler_url: str = "http://127.0.0.1:10259/healthz",
                 controller_manager_url: str = "http://127.0.0.1:10257/healthz") -> None:
        self.targets = {"controller-manager": controller_manager_url, "scheduler": scheduler_url}
        for i, u in enumerate(etcd_urls):
            self.targets[f"etcd-{i}"] = u.rstrip("/") + "/health"

    async def _probe(self, session: aiohttp.ClientSession, name: str, url: str) -> dict:
        cond = {"type": "Healthy", "status": "False"}
        try:
            async with session.get(url) as resp:
                body = (await resp.read()).decode(errors="replace")
            if resp.status != 200:
                cond["error"] = f"Get \"{url}\": status {resp.status}: {body.strip()}"
            elif name.startswith("etcd-") and '"health":"true"' not in body.replace(" ", ""):
                cond["error"] = f"Unhealthy: {body.strip()}"
            else:
                cond = {"type": "Healthy", "status": "True", "message": "ok"}
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            cond["error"] = _go_dial_error(url, e)
        return {"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": name}, "conditions": [cond]}

    async def list(self, namespace: str | None = None) -> list[dict]:
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(self._probe(session, n, u) for n, u in self.targets.items())))

    async def get(self, namespace: str | None, name: str) -> dict:
        url = self.targets.get(name)
        if url is None:
            raise E.not_found("", "componentstatuses", name)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)) as session:
            return await self._probe(session, name, url)

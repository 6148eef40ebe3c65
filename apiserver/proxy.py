"""pods/log and pods/exec: find the pod's kubelet and relay to it (HTTPS; exec over websocket)."""
from __future__ import annotations

import asyncio
import ssl
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp

from kubeling.api import errors as E
from kubeling.api.errors import StatusError, bad_request

LOG_PARAMS = ("follow", "tailLines", "timestamps", "previous", "sinceSeconds", "sinceTime", "limitBytes")
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                  "channel.k8s.io")


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class KubeletProxy:
    def __init__(self, cache, storage):
        self.cache = cache
        self.storage = storage
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_insecure()),
                                                  timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def locate(self, namespace: str, name: str, container: str | None, for_logs: bool) -> tuple[str, str]:
        """(kubelet base URL, container name), with Kubernetes' errors for unusable pods."""
        pod = await self.storage.get(f"/registry/pods/{namespace}/{name}")
        if pod is None:
            raise E.not_found("", "pods", name)
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in spec.get("initContainers") or []]
        if not container:
            if len(names) == 1:
                container = names[0]
            else:
                raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                  f"[{' '.join(names)}]" + (f" or one of the init containers: [{' '.join(init)}]" if init else ""))
        if container not in names + init:
            raise bad_request(f"container {container} is not valid for pod {name}")
        node_name = spec.get("nodeName")
        if not node_name:
            raise bad_request(f"pod {name} does not have a host assigned")
        if for_logs:
            for st in ((pod.get("status") or {}).get("containerStatuses") or []) + \
                      ((pod.get("status") or {}).get("initContainerStatuses") or []):
                if st.get("name") == container and "waiting" in (st.get("state") or {}) and not st.get("lastState"):
                    reason = st["state"]["waiting"].get("reason", "")
                    raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        node = await self.storage.get(f"/registry/nodes/{node_name}")
        if node is None:
            raise E.not_found("", "nodes", node_name)
        status = node.get("status") or {}
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
        addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        host = addrs.get("InternalIP") or addrs.get("ExternalIP") or addrs.get("Hostname")
        if not host:
            raise StatusError(500, "InternalError", f"Internal error occurred: node {node_name} has no address")
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{port}", container

    async def handle(self, req, handler) -> Any:
        from .handlers import Reply
        if req.subresource != "log":
            await self.locate(req.namespace, req.name, req.q("container"), False)
            raise bad_request(f"{req.subresource} needs a websocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io); "
                              "SPDY is not supported by this server")
        base, container = await self.locate(req.namespace, req.name, req.q("container"), True)
        params = {k: req.q(k) for k in LOG_PARAMS if req.q(k)}
        url = f"{base}/containerLogs/{req.namespace}/{req.name}/{container}"
        if params:
            url += "?" + urlencode(params)
        try:
            resp = await self.session().get(url)
        except (aiohttp.ClientError, OSError) as e:
            raise StatusError(500, "InternalError", f'Get "{url}": {e}') from None
        if resp.status != 200:
            text = (await resp.text())[:500]
            resp.release()
            raise StatusError(resp.status if resp.status in (400, 404) else 500,
                              "BadRequest" if resp.status == 400 else "InternalError", text.strip())

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            finally:
                resp.release()
        return Reply(200, None, relay())

    async def exec_ws(self, websocket, namespace: str, name: str, subresource: str, query: list[tuple[str, str]]) -> None:
        """Relay a websocket exec/attach session to the kubelet's endpoint of the same shape."""
        from starlette.websockets import WebSocketDisconnect
        offered = [p.strip() for p in (websocket.headers.get("sec-websocket-protocol") or "").split(",") if p.strip()]
        container = next((v for k, v in query if k == "container"), None)
        base, container = await self.locate(namespace, name, container, False)
        url = f"{base}/{subresource}/{namespace}/{name}/{container}?" + urlencode([(k, v) for k, v in query if k != "container"])
        protos = [p for p in offered if p in EXEC_PROTOCOLS] or list(EXEC_PROTOCOLS)
        try:
            upstream = await self.session().ws_connect(url.replace("https://", "wss://", 1), protocols=protos)
        except (aiohttp.ClientError, OSError) as e:
            raise StatusError(500, "InternalError", f"error dialing backend: {e}") from None
        await websocket.accept(subprotocol=upstream.protocol)

        async def down() -> None:
            async for msg in upstream:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await websocket.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await websocket.send_text(msg.data)
                else:
                    break

        async def up() -> None:
            try:
                while True:
                    m = await websocket.receive()
                    if m["type"] == "websocket.disconnect":
                        break
                    if m.get("bytes") is not None:
                        await upstream.send_bytes(m["bytes"])
                    elif m.get("text") is not None:
                        await upstream.send_str(m["text"])
            except WebSocketDisconnect:
                pass

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        await upstream.close()
        try:
            await websocket.close()
        except RuntimeError:
            pass

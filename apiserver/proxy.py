"""pods/log, exec, attach and portforward: find the pod's kubelet and relay to it (HTTPS; websockets for
the streams; apiserver/streaming.py terminates SPDY and the SPDY-over-websocket tunnel)."""
from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp

from kubeling.api import errors as E
from kubeling.api.errors import StatusError, bad_request

LOG_PARAMS = ("follow", "tailLines", "timestamps", "previous", "sinceSeconds", "sinceTime", "limitBytes")
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                  "channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")


def _kubelet_tls(client_cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    """The apiserver's TLS towards kubelets: its kubelet-client certificate as identity; kubelet
    serving certificates are not verified (kube-apiserver without --kubelet-certificate-authority)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        ctx.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    return ctx


def kubelet_base(node: dict) -> str | None:
    """https://<address>:<port> of a node's kubelet, from its status (None when it has no address)."""
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addrs.get("InternalIP") or addrs.get("ExternalIP") or addrs.get("Hostname")
    if not host:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


class KubeletProxy:
    def __init__(self, cache, storage, client_cert: tuple[Path, Path] | None = None):
        self.cache = cache
        self.storage = storage
        self.client_cert = client_cert
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_kubelet_tls(self.client_cert)),
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
        if for_logs:
            for st in ((pod.get("status") or {}).get("containerStatuses") or []) + \
                      ((pod.get("status") or {}).get("initContainerStatuses") or []):
                if st.get("name") == container and "waiting" in (st.get("state") or {}) and not st.get("lastState"):
                    reason = st["state"]["waiting"].get("reason", "")
                    raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        return await self.node_url(pod), container

    async def kubelet_url(self, namespace: str, name: str) -> str:
        """The base URL of the kubelet running pod namespace/name (port-forward needs no container)."""
        pod = await self.storage.get(f"/registry/pods/{namespace}/{name}")
        if pod is None:
            raise E.not_found("", "pods", name)
        return await self.node_url(pod)

    async def node_url(self, pod: dict) -> str:
        name, node_name = pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise bad_request(f"pod {name} does not have a host assigned")
        node = await self.storage.get(f"/registry/nodes/{node_name}")
        if node is None:
            raise E.not_found("", "nodes", node_name)
        base = kubelet_base(node)
        if base is None:
            raise StatusError(500, "InternalError", f"Internal error occurred: node {node_name} has no address")
        return base

    async def dial(self, url: str, protocols: list[str] | tuple[str, ...]) -> aiohttp.ClientWebSocketResponse:
        """A websocket to the kubelet (https URL), offering `protocols`; a refusal is a Status."""
        try:
            return await self.session().ws_connect(url.replace("https://", "wss://", 1), protocols=protocols)
        except aiohttp.WSServerHandshakeError as e:
            code = e.status if e.status in (400, 403, 404) else 500
            raise StatusError(code, {400: "BadRequest", 403: "Forbidden", 404: "NotFound"}.get(code, "InternalError"),
                              f"error dialing backend: {e.status} {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise StatusError(500, "InternalError", f"error dialing backend: {e}") from None

    async def handle(self, req, handler) -> Any:
        from .request import Reply
        if req.subresource != "log":   # an upgrade never gets here (SPDY: streaming.py; websockets: app.py)
            if req.subresource == "portforward":
                await self.kubelet_url(req.namespace, req.name)
            else:
                await self.locate(req.namespace, req.name, req.q("container"), False)
            raise bad_request("Upgrade request required")
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
        offered = offered_protocols(websocket.headers)
        url = await self.command_url(namespace, name, subresource, query)
        upstream = await self.dial(url, [p for p in offered if p in EXEC_PROTOCOLS] or list(EXEC_PROTOCOLS))
        await relay(websocket, upstream)

    async def command_url(self, namespace: str, name: str, subresource: str, query: list[tuple[str, str]]) -> str:
        """The kubelet's exec or attach URL for a pods/exec|attach request's query."""
        container = next((v for k, v in query if k == "container"), None)
        base, container = await self.locate(namespace, name, container, False)
        return f"{base}/{subresource}/{namespace}/{name}/{container}?" + \
            urlencode([(k, v) for k, v in query if k != "container"])

    async def portforward_ws(self, websocket, namespace: str, name: str, query: list[tuple[str, str]]) -> None:
        """Relay a websocket port-forward (the Python client's: two channels per port) to the
        kubelet's /portForward, which speaks the same protocol."""
        offered = [p for p in offered_protocols(websocket.headers) if p in PORTFORWARD_PROTOCOLS]
        if websocket.headers.get("sec-websocket-protocol") and not offered:
            raise bad_request(f"requested protocol(s) are not supported: {websocket.headers['sec-websocket-protocol']}")
        base = await self.kubelet_url(namespace, name)
        upstream = await self.dial(f"{base}/portForward/{namespace}/{name}?{urlencode(query)}", offered)
        await relay(websocket, upstream)


def offered_protocols(headers) -> list[str]:
    """The websocket subprotocols a client offers, in its order."""
    return [p.strip() for p in (headers.get("sec-websocket-protocol") or "").split(",") if p.strip()]


async def relay(websocket, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Accept the client's websocket with the protocol the kubelet chose and copy messages both
    ways until either side closes."""
    from starlette.websockets import WebSocketDisconnect
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

"""Probe and lifecycle-hook actions as upstream's kubelet runs them (pkg/probe, pkg/kubelet/lifecycle):
exec through the runtime (CRI's ExecSync), httpGet and tcpSocket to the pod IP from the kubelet,
gRPC health/v1 Check, sleep. Results and messages are upstream's, Go's error texts included, since
they reach users as `Unhealthy` events and waiting messages. Nothing here blocks the event loop.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from kubeling.api.gofmt import go_value, quote

from .podconfig import expand, format_pod
from .runtime import ExecTimeout, Runtime, RuntimeFailure, RuntimeUnavailable

SUCCESS, FAILURE, WARNING = "success", "failure", "warning"
KUBE_VERSION = "1.32"
MAX_OUTPUT = 10 * 1024        # upstream's maxReadLength (exec) and maxRespBodyLength (http)
MAX_REDIRECTS = 10
GRPC_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


class ProbeError(Exception):
    """The probe could not run at all (not a failure): upstream throws such a result away."""


def go_duration(seconds: float) -> str:
    """Go's time.Duration formatting of whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60}s"


def resolve_port(port: Any, container: dict) -> int:
    """probe.ResolveContainerPort: a number, or the name of one of the container's ports (or a
    number written as a string)."""
    if isinstance(port, str):
        named = next((p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == port), None)
        if named is None:
            try:
                named = int(port, 10)
            except ValueError:
                raise ProbeError(f'strconv.Atoi: parsing {quote(port)}: invalid syntax') from None
        port = named
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ProbeError(f"invalid port number: {port}")
    return port


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def http_request(action: dict, container: dict, pod_ip: str, purpose: str) -> tuple[str, list[tuple[str, str]]]:
    """NewRequestForHTTPGetAction: the URL (scheme, host or the pod IP, port, path) and the headers,
    with User-Agent kube-<purpose>/1.32 and Accept */* unless given (an empty Accept is dropped)."""
    scheme = (action.get("scheme") or "HTTP").lower()
    port = resolve_port(action.get("port"), container)
    url = f"{scheme}://{_join_host_port(action.get('host') or pod_ip, port)}{action.get('path') or ''}"
    headers = [(h["name"], h.get("value", "")) for h in action.get("httpHeaders") or []]
    names = {k.lower() for k, _ in headers}
    if "user-agent" not in names:
        headers.append(("User-Agent", f"kube-{purpose}/{KUBE_VERSION}"))
    if "accept" not in names:
        headers.append(("Accept", "*/*"))
    headers = [(k, v) for k, v in headers if k.lower() != "accept" or v]
    return url, headers


def _dial_error(address: str, e: OSError) -> str:
    """Go's net.OpError text for a failed connect."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return f"dial tcp {address}: connect: {text[:1].lower()}{text[1:]}"


async def http_get(url: str, headers: list[tuple[str, str]], timeout: float | None, follow_foreign: bool
                   ) -> tuple[int, bytes]:
    """One GET as Go's probe client makes it (no keep-alive, no compression, TLS unverified),
    following redirects to the same host (all of them when follow_foreign) up to 10. Returns the
    last status and up to 10 KiB of its body; raises ProbeError with Go's `Get "URL": ...` text."""
    first, requests = url, 0
    conn = aiohttp.TCPConnector(force_close=True, ssl=False)
    limit = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=conn, timeout=limit, auto_decompress=False,
                                     skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding")) as session:
        while True:
            requests += 1
            try:
                async with session.get(url, headers=headers, allow_redirects=False) as r:
                    body = b""
                    while len(body) < MAX_OUTPUT and (chunk := await r.content.read(MAX_OUTPUT - len(body))):
                        body += chunk
                    location, status = r.headers.get("Location"), r.status
            except TimeoutError:
                raise ProbeError(f'Get {quote(url)}: context deadline exceeded (Client.Timeout exceeded while awaiting '
                                 'headers)') from None
            except aiohttp.ClientConnectorError as e:
                raise ProbeError(f"Get {quote(url)}: {_dial_error(f'{e.host}:{e.port}', e.os_error)}") from None
            except aiohttp.ClientError as e:
                raise ProbeError(f"Get {quote(url)}: {e}") from None
            if not (300 <= status < 400 and location):
                return status, body
            target = urljoin(url, location)
            if not follow_foreign and urlsplit(target).hostname != urlsplit(first).hostname:
                return status, body          # http.ErrUseLastResponse: the redirect itself is the answer
            if requests >= MAX_REDIRECTS:
                raise ProbeError(f"Get {quote(target)}: stopped after {MAX_REDIRECTS} redirects")
            url = target


async def tcp_probe(host: str, port: int, timeout: float) -> tuple[str, str]:
    address = _join_host_port(host, port)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return FAILURE, f"dial tcp {address}: i/o timeout"
    except OSError as e:
        return FAILURE, _dial_error(address, e)
    writer.close()
    return SUCCESS, ""


def _grpc_request(service: str) -> bytes:
    """grpc.health.v1.HealthCheckRequest{service} in protobuf (field 1, a string; empty is omitted)."""
    raw = service.encode()
    if not raw:
        return b""
    size, n = bytearray(), len(raw)
    while True:
        size.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return b"\x0a" + bytes(size) + raw


def _grpc_status(raw: bytes) -> int:
    """HealthCheckResponse.status (field 1, a varint); absent is 0, UNKNOWN."""
    i = 0
    while i < len(raw):
        tag = raw[i]
        i += 1
        value = shift = 0
        while i < len(raw):
            b = raw[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if tag == 0x08:
            return value
        if tag & 7 == 2:      # a length-delimited field of a newer schema: skip it
            i += value
    return 0


async def grpc_probe(host: str, port: int, service: str, timeout: float) -> tuple[str, str]:
    """upstream's grpc prober: connect (blocking dial) and grpc.health.v1.Health/Check within one
    timeout; every problem is a failure, with grpc_health_probe's words."""
    import grpc    # imported on first use: the hollow runtime, which never probes, does not pay for it
    addr, loop = _join_host_port(host, port), asyncio.get_running_loop()
    deadline = loop.time() + timeout
    options = [("grpc.primary_user_agent", f"kube-probe/{KUBE_VERSION}")]
    async with grpc.aio.insecure_channel(addr, options=options) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout)
        except TimeoutError:
            return FAILURE, (f"timeout: failed to connect service {quote(addr)} within {go_duration(timeout)}: "
                             "context deadline exceeded")
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=_grpc_request,
                                    response_deserializer=_grpc_status)
        try:
            status = await check(service, timeout=max(0.001, deadline - loop.time()))
        except grpc.aio.AioRpcError as e:
            code = e.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return FAILURE, ("error: this server does not implement the grpc health protocol "
                                 f"(grpc.health.v1.Health): {e.details()}")
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return FAILURE, f"timeout: health rpc did not complete within {go_duration(timeout)}"
            name = "Canceled" if code == grpc.StatusCode.CANCELLED else \
                "".join(p.capitalize() for p in code.name.split("_"))
            return FAILURE, f"error: health rpc probe failed: rpc error: code = {name} desc = {e.details()}"
    if status != 1:
        return FAILURE, f"service unhealthy (responded with {quote(GRPC_STATUS.get(status, str(status)))})"
    return SUCCESS, "service healthy"


class Handlers:
    """Runs probes and lifecycle hooks of one node's containers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def probe(self, spec: dict, container: dict, pod_ip: str, container_id: str) -> tuple[str, str]:
        """One probe run (upstream's runProbe): (SUCCESS | WARNING | FAILURE, output); ProbeError
        when it could not run."""
        timeout = float(spec.get("timeoutSeconds") or 1)
        if spec.get("exec"):
            env = {e["name"]: e.get("value", "") for e in container.get("env") or []}   # static values only
            command = [expand(x, env) for x in spec["exec"].get("command") or []]
            try:
                code, out, err = await self.runtime.exec_sync(container_id, command, timeout)
            except ExecTimeout as e:
                return FAILURE, str(e)
            except (RuntimeFailure, RuntimeUnavailable) as e:
                raise ProbeError(str(e)) from None
            return (SUCCESS if code == 0 else FAILURE), (out + err)[:MAX_OUTPUT].decode(errors="replace")
        if spec.get("httpGet"):
            url, headers = http_request(spec["httpGet"], container, pod_ip, "probe")
            try:
                status, body = await http_get(url, headers, timeout, follow_foreign=False)
            except ProbeError as e:
                return FAILURE, str(e)
            text = body.decode(errors="replace")
            if 200 <= status < 300:
                return SUCCESS, text
            if 300 <= status < 400:
                return WARNING, f"Probe terminated redirects, Response body: {text}"
            return FAILURE, f"HTTP probe failed with statuscode: {status}"
        if spec.get("tcpSocket"):
            action = spec["tcpSocket"]
            return await tcp_probe(action.get("host") or pod_ip, resolve_port(action.get("port"), container), timeout)
        if spec.get("grpc"):
            action = spec["grpc"]
            return await grpc_probe(pod_ip, int(action.get("port") or 0), action.get("service") or "", timeout)
        raise ProbeError(f"missing probe handler for {container['name']}")

    async def hook(self, handler: dict, pod: dict, container: dict, pod_ip: str, container_id: str) -> str | None:
        """Run a postStart or preStop handler (upstream's handlerRunner.Run) to its end; the
        failure's message, or None."""
        who = f"for Container {quote(container['name'])} in Pod {quote(format_pod(pod))} failed"
        if handler.get("exec"):
            command = handler["exec"].get("command") or []
            try:
                code, out, err = await self.runtime.exec_sync(container_id, command, None)
            except (RuntimeFailure, RuntimeUnavailable) as e:
                return f"Exec lifecycle hook ({go_value(command)}) {who} - error: {e}, message: \"\""
            if code == 0:
                return None
            error = f"command '{' '.join(command)}' exited with {code}: {err.decode(errors='replace')}"
            return (f"Exec lifecycle hook ({go_value(command)}) {who} - error: {error}, "
                    f"message: {quote((out + err).decode(errors='replace'))}")
        if handler.get("httpGet"):
            action = handler["httpGet"]
            try:
                url, headers = http_request(action, container, pod_ip, "lifecycle")
                await http_get(url, headers, None, follow_foreign=True)
            except ProbeError as e:
                return f"HTTP lifecycle hook ({action.get('path', '')}) {who} - error: {e}"
            return None
        if handler.get("sleep"):
            await asyncio.sleep(int(handler["sleep"].get("seconds") or 0))
            return None
        return f"Cannot run handler: invalid handler: {go_value(handler)}"

"""The Docker runtime, through the Docker SDK (dockershim's layout).

A pod sandbox is a pause container on a bridge network the kubelet creates for the node's pod
CIDR, with an address the kubelet allocates; app and init containers join its network and IPC
namespaces (`container:<sandbox id>`). Every container carries labels naming its pod (uid,
namespace, name), container and attempt, and this node, so a restarted kubelet finds and adopts
what runs. Docker's restart policy stays "no". The SDK blocks: every call runs in a small thread
pool, and the event stream (die, oom, destroy) has a thread of its own.
"""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import signal
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

import docker
import docker.errors
import requests.exceptions
from docker.types import IPAMConfig, IPAMPool

from kubeling.api.gofmt import quote
from kubeling.command import CommandError

from . import podnetwork
from .runtime import (CREATED, EXITED, RUNNING, UNKNOWN, ContainerConfig, ContainerStatus, CreateContainerError,
                      ExecTimeout, ImagePullError, NetworkNotReady, PodRuntimeStatus, Runtime, RuntimeFailure,
                      RuntimeUnavailable, SandboxConfig, SandboxStatus)

log = logging.getLogger("kubelet.docker")

L_UID, L_NAME, L_NS = "io.kubernetes.pod.uid", "io.kubernetes.pod.name", "io.kubernetes.pod.namespace"
L_CONTAINER, L_TYPE, L_SANDBOX = "io.kubernetes.container.name", "io.kubernetes.docker.type", "io.kubernetes.sandbox.id"
L_ATTEMPT, L_HASH = "io.kubernetes.container.restartCount", "io.kubernetes.container.hash"
L_TERM_PATH = "io.kubernetes.container.terminationMessagePath"
L_TERM_POLICY = "io.kubernetes.container.terminationMessagePolicy"
L_GRACE = "io.kubernetes.pod.terminationGracePeriod"
L_NODE, L_CIDR = "kubeling.io/node", "kubeling.io/pod-cidr"
SANDBOX, CONTAINER = "podsandbox", "container"
MAX_TERMINATION_MESSAGE = 4096
MAX_EXEC_OUTPUT = 64 * 1024     # per stream; the prober reads 10 KiB of it, as upstream
STATES = {"running": RUNNING, "exited": EXITED, "dead": EXITED, "created": CREATED}
NO_MASQUERADE = ("com.docker.network.bridge.enable_ip_masquerade", "false")
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def _time(stamp: str | None) -> float:
    """Docker's RFC 3339 nanosecond times; its zero time is 0."""
    if not stamp or stamp.startswith("0001-"):
        return 0.0
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp() + float("0." + (frac or "0"))


def reference(image: str) -> tuple[str, str]:
    """(registry, fully qualified reference) of an image name, as Docker resolves it."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", name if rest else f"library/{name}"
    if digest:
        return registry, f"{registry}/{path}@{digest}"
    if ":" not in path.rsplit("/", 1)[-1]:
        path += ":latest"
    return registry, f"{registry}/{path}"


class DockerRuntime(Runtime):
    type = "docker"
    relist_period = 5.0

    def __init__(self, node_name: str, node_ip: str, *, pause_image: str = "registry.k8s.io/pause:3.10",
                 pull_registries: tuple[str, ...] = (), pool_size: int = 16,
                 non_masquerade_cidr: str = "10.0.0.0/8") -> None:
        super().__init__()
        self.node, self.node_ip, self.pause_image = node_name, node_ip, pause_image
        self.pull_registries = set(pull_registries)
        self.pool = ThreadPoolExecutor(pool_size, thread_name_prefix="docker")
        self.pool_size = pool_size
        self.api: docker.APIClient = None  # type: ignore[assignment]   # connected in start()
        self.network = f"kubeling-{node_name}"
        self.cidr: ipaddress.IPv4Network | None = None
        self.bridge = ""                      # the Linux bridge of self.network
        self.non_masquerade_cidr = non_masquerade_cidr
        self.used: set[str] = set()           # pod IPs handed out (the kubelet's own IPAM)
        self.sandbox_ips: dict[str, str] = {}  # sandbox id -> its pod IP
        self.next_ip = 0
        self.ip_lock = asyncio.Lock()
        self.inspected: dict[str, tuple[str, ContainerStatus | SandboxStatus]] = {}   # id -> (list state, status)
        self.image_ids: dict[str, str] = {}
        self.info: dict = {}
        self.version = ""
        self.closing = threading.Event()
        self.stream: Any = None
        self.events_thread: threading.Thread | None = None

    async def _call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run an SDK call in the pool; an engine that does not answer is RuntimeUnavailable
        (its HTTP errors stay docker.errors.APIError for the caller)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))
        except docker.errors.APIError:      # an answer (it is also a requests HTTPError)
            raise
        except requests.exceptions.RequestException as e:
            raise RuntimeUnavailable(f"cannot reach the docker engine: {e}") from None

    # ---- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        """Connect (DOCKER_HOST or the default socket); RuntimeUnavailable when no engine answers."""
        try:
            client = await asyncio.get_running_loop().run_in_executor(
                self.pool, functools.partial(docker.from_env, max_pool_size=self.pool_size, timeout=120))
        except docker.errors.DockerException as e:
            raise RuntimeUnavailable(f"cannot reach the docker engine: {e}") from None
        self.api = client.api
        self.version = (await self._call(self.api.version))["Version"]
        self.info = await self._call(self.api.info)
        loop = asyncio.get_running_loop()
        self.events_thread = threading.Thread(target=self._watch_events, args=(loop,), name="docker-events",
                                              daemon=True)
        self.events_thread.start()
        log.info("docker engine %s (%s), node %s", self.version, self.info.get("OperatingSystem"), self.node)

    async def close(self) -> None:
        self.closing.set()
        if self.stream is not None:
            self.stream.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _watch_events(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tell the kubelet at once when one of this node's containers dies, is OOM-killed or is
        removed; reconnect when the engine restarts (the relist covers what was missed)."""
        filters = {"type": ["container"], "event": ["die", "oom", "destroy"], "label": [f"{L_NODE}={self.node}"]}
        while not self.closing.is_set():
            try:
                self.stream = self.api.events(decode=True, filters=filters)
                for ev in self.stream:
                    uid = ((ev.get("Actor") or {}).get("Attributes") or {}).get(L_UID)
                    if uid:
                        loop.call_soon_threadsafe(self.on_change, uid)
            except ENGINE_ERRORS as e:
                if not self.closing.is_set():
                    log.warning("docker event stream: %s; reconnecting", e)
            self.closing.wait(1.0)

    def node_info(self) -> dict:
        return {"containerRuntimeVersion": f"docker://{self.version}", "kernelVersion": self.info.get("KernelVersion", ""),
                "osImage": self.info.get("OperatingSystem", ""), "architecture": _arch(self.info.get("Architecture", ""))}

    def capacity(self) -> dict[str, str]:
        return {"cpu": str(self.info.get("NCPU", os.cpu_count())), "memory": f"{self.info.get('MemTotal', 0) // 1024}Ki"}

    # ---- network --------------------------------------------------------------------
    def network_problem(self) -> str:
        return "" if self.cidr is not None else "no pod CIDR yet (--pod-cidr or the Node's spec.podCIDR)"

    async def update_pod_cidr(self, cidr: str) -> None:
        """Create (or keep) the node's bridge network for its pod CIDR, gateway .1, and learn
        which addresses running sandboxes hold."""
        net = ipaddress.ip_network(cidr, strict=False)
        if net == self.cidr:
            return
        try:
            await self._setup_network(net)
            await podnetwork.ensure(str(net), self.non_masquerade_cidr)
        except docker.errors.APIError as e:
            raise RuntimeFailure(f"network {self.network} for pod CIDR {net}: {e.explanation or e}") from None
        except (CommandError, OSError) as e:
            raise RuntimeFailure(f"pod network rules for {net}: {e}") from None
        self.cidr = net

    async def _setup_network(self, net: ipaddress.IPv4Network) -> None:
        """The node's bridge network with Docker's masquerade off (podnetwork masquerades only what
        leaves the cluster); one of an older layout is replaced when no container uses it."""
        network = None
        for n in await self._call(self.api.networks, names=[self.network]):
            if n.get("Name") != self.network:
                continue
            n = await self._call(self.api.inspect_network, n["Id"])
            subnets = [c.get("Subnet") for c in (n.get("IPAM") or {}).get("Config") or []]
            masquerade = (n.get("Options") or {}).get(NO_MASQUERADE[0]) != NO_MASQUERADE[1]
            if subnets == [str(net)] and (not masquerade or n.get("Containers")):
                network = n
                break
            log.info("network %s (subnet %s) does not fit pod CIDR %s: replacing it", self.network, subnets, net)
            await self._call(self.api.remove_network, n["Id"])
        if network is None:
            gateway = str(net.network_address + 1)
            created = await self._call(self.api.create_network, self.network, driver="bridge", check_duplicate=True,
                                       ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(net), gateway=gateway)]),
                                       options=dict([NO_MASQUERADE]), labels={L_NODE: self.node, L_CIDR: str(net)})
            network = await self._call(self.api.inspect_network, created["Id"])
            log.info("created network %s for pod CIDR %s", self.network, net)
        self.bridge = podnetwork.bridge_of(network)
        for c in await self._call(self.api.containers, filters={"label": [f"{L_NODE}={self.node}", f"{L_TYPE}={SANDBOX}"]}):
            ip = ((c.get("NetworkSettings") or {}).get("Networks") or {}).get(self.network, {}).get("IPAddress")
            if ip:
                self.used.add(ip)
                self.sandbox_ips[c["Id"]] = ip

    async def _allocate(self) -> str:
        """The next free address of the pod CIDR after the last one given (not .0, the gateway
        or broadcast), so a freed address is not reused at once."""
        if self.cidr is None:
            raise NetworkNotReady(f"network is not ready: {self.network_problem()}")
        async with self.ip_lock:
            size = self.cidr.num_addresses
            for step in range(1, size):
                i = (self.next_ip + step) % size
                if i < 2 or i == size - 1:
                    continue
                ip = str(self.cidr.network_address + i)
                if ip not in self.used:
                    self.used.add(ip)
                    self.next_ip = i
                    return ip
        raise RuntimeFailure(f"no free address left in pod CIDR {self.cidr}")

    def _release(self, sandbox_id: str) -> None:
        self.used.discard(self.sandbox_ips.pop(sandbox_id, ""))

    # ---- status ---------------------------------------------------------------------
    async def _list(self, *labels: str) -> list[dict]:
        return await self._call(self.api.containers, all=True, filters={"label": [f"{L_NODE}={self.node}", *labels]})

    async def _status(self, entry: dict) -> ContainerStatus | SandboxStatus | None:
        """One listed container as the kubelet sees it; inspected again only when its state moved."""
        cid, state = entry["Id"], entry.get("State", "")
        cached = self.inspected.get(cid)
        if cached is not None and cached[0] == state:
            return cached[1]
        try:
            info = await self._call(self.api.inspect_container, cid)
        except docker.errors.NotFound:
            return None
        labels = info["Config"].get("Labels") or {}
        st = info.get("State") or {}
        created, started, finished = _time(info.get("Created")), _time(st.get("StartedAt")), _time(st.get("FinishedAt"))
        attempt = int(labels.get(L_ATTEMPT, "0") or 0)
        if labels.get(L_TYPE) == SANDBOX:
            nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
            host = (info.get("HostConfig") or {}).get("NetworkMode") == "host"
            ip = self.node_ip if host else (nets.get(self.network) or {}).get("IPAddress", "")
            status: ContainerStatus | SandboxStatus = SandboxStatus(cid, attempt, st.get("Status") == "running", ip,
                                                                    created)
        else:
            s = STATES.get(st.get("Status", ""), UNKNOWN)
            code = int(st.get("ExitCode") or 0)
            reason = ""
            if s == EXITED:
                reason = "OOMKilled" if st.get("OOMKilled") else ("Completed" if code == 0 else "Error")
            status = ContainerStatus(cid, labels.get(L_CONTAINER, ""), attempt, s, info["Config"].get("Image", ""),
                                     await self._image_id(info.get("Image", "")), labels.get(L_SANDBOX, ""),
                                     labels.get(L_HASH, ""), created, started, finished, code, reason)
            if s == EXITED:
                status.message = await self._call(self._termination_message, info, labels, code)
        self.inspected[cid] = (state, status)
        return status

    def _termination_message(self, info: dict, labels: dict, code: int) -> str:
        """What the app wrote to its terminationMessagePath, else (FallbackToLogsOnError, a
        failure) the end of its log."""
        path = labels.get(L_TERM_PATH, "")
        for m in info.get("Mounts") or []:
            if path and m.get("Destination") == path:
                try:
                    with open(m["Source"], "rb") as f:
                        text = f.read(MAX_TERMINATION_MESSAGE).decode(errors="replace")
                except OSError:
                    text = ""
                if text:
                    return text
        if labels.get(L_TERM_POLICY) == "FallbackToLogsOnError" and code != 0:
            raw = self.api.logs(info["Id"], tail=80)
            return raw[-2048:].decode(errors="replace")
        return ""

    async def _image_id(self, image: str) -> str:
        """docker-pullable://repo@digest when the image came from a registry, else docker://sha256:..."""
        if not image:
            return ""
        if image not in self.image_ids:
            try:
                digests = (await self._call(self.api.inspect_image, image)).get("RepoDigests") or []
            except docker.errors.NotFound:
                digests = []
            self.image_ids[image] = f"docker-pullable://{digests[0]}" if digests else f"docker://{image}"
        return self.image_ids[image]

    async def _group(self, entries: list[dict]) -> dict[str, PodRuntimeStatus]:
        pods: dict[str, PodRuntimeStatus] = {}
        statuses = await asyncio.gather(*(self._status(e) for e in entries))
        for e, st in zip(entries, statuses):
            labels = e.get("Labels") or {}
            uid = labels.get(L_UID, "")
            if st is None or not uid:
                continue
            pod = pods.setdefault(uid, PodRuntimeStatus(uid, labels.get(L_NAME, ""), labels.get(L_NS, "")))
            (pod.sandboxes if isinstance(st, SandboxStatus) else pod.containers).append(st)  # type: ignore[arg-type]
        for pod in pods.values():
            pod.sandboxes.sort(key=lambda s: -s.created_at)
            pod.containers.sort(key=lambda c: -c.created_at)
        return pods

    async def list_pods(self) -> dict[str, PodRuntimeStatus]:
        entries = await self._list()
        live = {e["Id"] for e in entries}
        for cid in [c for c in self.inspected if c not in live]:
            del self.inspected[cid]
        return await self._group(entries)

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        return (await self._group(await self._list(f"{L_UID}={uid}"))).get(uid)

    # ---- images -----------------------------------------------------------------------
    async def image_present(self, image: str) -> bool:
        try:
            await self._call(self.api.inspect_image, image)
            return True
        except docker.errors.ImageNotFound:
            return False

    def can_pull(self, image: str) -> bool:
        return reference(image)[0] in self.pull_registries

    async def pull_image(self, image: str) -> None:
        registry, ref = reference(image)
        if registry not in self.pull_registries:
            raise ImagePullError(f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
                                 f"registry {registry} is not reachable from this node (kubelet --image-pull-registries)")
        try:
            await self._call(self.api.pull, image)
        except docker.errors.APIError as e:
            raise ImagePullError(f'failed to pull and unpack image "{ref}": {e.explanation or e}') from None

    async def image_user(self, image: str) -> tuple[int | None, str]:
        """dockershim's getUserFromImageUser: the user part of the image's `user[:group]`, a uid
        when numeric."""
        info = await self._call(self.api.inspect_image, image)
        user = ((info.get("Config") or {}).get("User") or "").split(":", 1)[0]
        if not user:
            return None, ""
        return (int(user), "") if user.isdigit() else (None, user)

    # ---- sandboxes --------------------------------------------------------------------
    def _labels(self, pod: dict, kind: str, container: str, attempt: int) -> dict[str, str]:
        meta = pod["metadata"]
        return {L_NODE: self.node, L_UID: meta["uid"], L_NAME: meta["name"], L_NS: meta.get("namespace", ""),
                L_TYPE: kind, L_CONTAINER: container, L_ATTEMPT: str(attempt)}

    @staticmethod
    def _name(pod: dict, container: str, attempt: int) -> str:
        meta = pod["metadata"]
        return f"k8s_{container}_{meta['name']}_{meta.get('namespace', '')}_{meta['uid']}_{attempt}"

    async def _create(self, name: str, stdin_once: bool = False, **kwargs: Any) -> str:
        """Create a container; a leftover of the same name (a half-finished earlier try) is removed first.
        The SDK's create_container turns stdin_open into StdinOnce too, which would close a container's
        stdin after its first attach: the config is built here with the pod's own stdinOnce."""
        config = self.api.create_container_config(command=kwargs.pop("command", None), **kwargs)
        config["StdinOnce"] = stdin_once
        try:
            return (await self._call(self.api.create_container_from_config, config, name))["Id"]
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise
        await self._call(self.api.remove_container, name, force=True)
        return (await self._call(self.api.create_container_from_config, config, name))["Id"]

    async def run_sandbox(self, pod: dict, config: SandboxConfig, attempt: int) -> str:
        name = self._name(pod, "POD", attempt)
        labels = {**self._labels(pod, SANDBOX, "POD", attempt), L_GRACE: str(config.grace_seconds)}
        dns = {"dns": config.dns_servers or None, "dns_search": config.dns_searches or None,
               "dns_opt": config.dns_options or None}
        if not await self.image_present(self.pause_image):
            raise CreateContainerError(f'failed to get sandbox image "{self.pause_image}": not present on the node')
        ip = ""
        try:
            if config.host_network:
                host = self.api.create_host_config(network_mode="host", ipc_mode="shareable",
                                                   restart_policy={"Name": "no"}, **dns)
                sid = await self._create(name, image=self.pause_image, labels=labels, host_config=host)
            else:
                ip = await self._allocate()
                host = self.api.create_host_config(network_mode=self.network, ipc_mode="shareable",
                                                   restart_policy={"Name": "no"}, **dns)
                net = self.api.create_networking_config({self.network: self.api.create_endpoint_config(ipv4_address=ip)})
                sid = await self._create(name, image=self.pause_image, labels=labels, host_config=host,
                                         hostname=config.hostname, networking_config=net)
            if ip:
                self.sandbox_ips[sid] = ip
            await self._call(self.api.start, sid)
            if ip:
                await self._call(podnetwork.set_hairpin, self.bridge)
        except docker.errors.APIError as e:
            self.used.discard(ip)
            raise CreateContainerError(f"failed to start sandbox container for pod {pod['metadata']['name']}: "
                                       f"{e.explanation or e}") from None
        return sid

    async def stop_sandbox(self, sandbox_id: str) -> None:
        await self._stop(sandbox_id, 0)
        self._release(sandbox_id)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self._release(sandbox_id)
        await self.remove_container(sandbox_id)

    # ---- containers -------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, pod: dict, config: ContainerConfig) -> str:
        spec = pod.get("spec") or {}
        labels = {**self._labels(pod, CONTAINER, config.name, config.attempt), L_SANDBOX: sandbox_id,
                  L_HASH: config.spec_hash, L_TERM_PATH: config.termination_message_path,
                  L_TERM_POLICY: config.termination_message_policy}
        limits: dict[str, Any] = {"cpu_shares": max(2, config.cpu_millis_request * 1024 // 1000)}
        if config.cpu_millis_limit:
            limits.update(cpu_period=100_000, cpu_quota=max(1000, config.cpu_millis_limit * 100))
        if config.memory_limit:
            limits["mem_limit"] = config.memory_limit
        pid = config.pid_target or (sandbox_id if spec.get("shareProcessNamespace") else "")
        host = self.api.create_host_config(
            network_mode=f"container:{sandbox_id}", ipc_mode=f"container:{sandbox_id}",
            pid_mode=f"container:{pid}" if pid else None,
            binds=[f"{m.host_path}:{m.container_path}:{'ro' if m.read_only else 'rw'}" for m in config.mounts],
            restart_policy={"Name": "no"}, init=True, read_only=config.read_only_rootfs,
            privileged=config.privileged, cap_add=config.cap_add or None, cap_drop=config.cap_drop or None, **limits)
        try:
            return await self._create(
                self._name(pod, config.name, config.attempt), image=config.image, command=config.cmd,
                entrypoint=config.entrypoint, environment=[f"{k}={v}" for k, v in config.env],
                working_dir=config.working_dir or None, labels=labels, host_config=host, tty=config.tty,
                stdin_open=config.stdin, stdin_once=config.stdin_once, user=config.user or None)
        except docker.errors.APIError as e:
            raise CreateContainerError(str(e.explanation or e)) from None

    async def start_container(self, container_id: str) -> None:
        try:
            await self._call(self.api.start, container_id)
        except docker.errors.APIError as e:
            raise RuntimeFailure(str(e.explanation or e)) from None

    async def _stop(self, container_id: str, grace: int) -> None:
        try:
            await self._call(self.api.stop, container_id, timeout=grace)
        except docker.errors.NotFound:
            pass

    async def stop_container(self, container_id: str, grace: int) -> None:
        await self._stop(container_id, grace)

    async def remove_container(self, container_id: str) -> None:
        try:
            await self._call(self.api.remove_container, container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        self.inspected.pop(container_id, None)

    # ---- exec -------------------------------------------------------------------------
    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None) -> tuple[int, bytes, bytes]:
        """docker exec without a tty; the hijacked connection is read by the event loop itself, so a
        slow command holds no thread. On timeout the command's process is killed (as containerd
        does; Docker alone would leave it running)."""
        try:
            exec_id = (await self._call(self.api.exec_create, container_id, cmd, stdout=True, stderr=True))["Id"]
            sio = await self._call(self.api.exec_start, exec_id, socket=True)
        except docker.errors.APIError as e:
            raise RuntimeFailure(str(e.explanation or e)) from None
        sock, buf = hijacked(sio)
        out = {1: bytearray(), 2: bytearray()}
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    buf = _demux(buf, out)
                    chunk = await loop.sock_recv(sock, 65536)
                    if not chunk:
                        break
                    buf += chunk
            _demux(buf, out)
            return await self._exit_code(exec_id), bytes(out[1]), bytes(out[2])
        except TimeoutError:
            await self._kill_exec(exec_id)
            raise ExecTimeout(f"command {quote(' '.join(cmd))} timed out") from None
        except docker.errors.APIError as e:      # the container went away meanwhile
            raise RuntimeFailure(str(e.explanation or e)) from None
        except OSError as e:
            raise RuntimeFailure(f"exec {exec_id[:12]}: {e}") from None
        finally:
            sock.close()

    async def _exit_code(self, exec_id: str) -> int:
        """The exec's exit code, once Docker recorded it (a moment after its output ended)."""
        delay = 0.005
        for _ in range(40):
            info = await self._call(self.api.exec_inspect, exec_id)
            if not info.get("Running"):
                return int(info.get("ExitCode") or 0)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        raise RuntimeFailure(f"exec {exec_id[:12]} still running after its output ended")

    async def _kill_exec(self, exec_id: str) -> None:
        try:
            info = await self._call(self.api.exec_inspect, exec_id)
        except docker.errors.APIError:
            return       # gone with its container
        pid = int(info.get("Pid") or 0)
        if info.get("Running") and pid:
            try:
                os.kill(pid, signal.SIGKILL)     # the engine's host PID: the kubelet shares its PID namespace
            except ProcessLookupError:
                pass
            except PermissionError as e:
                log.warning("exec %s timed out and cannot be killed: %s", exec_id[:12], e)


def hijacked(sio: Any) -> tuple[socket.socket, bytearray]:
    """The socket of a connection Docker hijacked (exec, attach), non-blocking and our own (a dup;
    the SDK's wrapper is closed, not its response, which would return the connection to the SDK's
    pool), with whatever the SDK's HTTP reader had already buffered past the response headers
    (output that arrived with them)."""
    raw: socket.socket = getattr(sio, "_sock", sio)
    raw.setblocking(False)
    response = getattr(sio, "_response", None)
    fp = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    early = bytearray(fp.peek() or b"") if fp is not None else bytearray()   # the buffer, or one non-blocking read
    own = raw.dup()
    sio.close()
    raw.close()
    return own, early


def _demux(buf: bytearray, out: dict[int, bytearray]) -> bytearray:
    """Docker's multiplexed stream: frames of an 8-byte header (stream, 0, 0, 0, big-endian size)
    and a payload; complete frames go to out[1] (stdout) or out[2] (stderr), the rest is returned."""
    while len(buf) >= 8:
        size = struct.unpack(">I", buf[4:8])[0]
        if len(buf) < 8 + size:
            break
        target = out[2 if buf[0] == 2 else 1]
        target += buf[8:8 + size][:max(0, MAX_EXEC_OUTPUT - len(target))]
        del buf[:8 + size]
    return buf


def _arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)

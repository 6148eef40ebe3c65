"""The container-runtime boundary, where Kubernetes puts the CRI.

A runtime creates, starts, stops and removes pod sandboxes and containers and reports what they
are doing; it never decides anything. Restarts, back-off, readiness, events and the API's
PodStatus belong to the kubelet core (podsync.py, status.py), which drives every runtime alike.
Adding a runtime is adding a module with a `Runtime` subclass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

CREATED, RUNNING, EXITED, UNKNOWN = "created", "running", "exited", "unknown"


class RuntimeFailure(Exception):
    """A runtime call failed; `reason` is the kubelet's waiting reason for it (upstream's names)."""

    reason = "RunContainerError"


class RuntimeUnavailable(Exception):
    """The runtime cannot be reached (its engine is down or restarting)."""


class NetworkNotReady(RuntimeFailure):
    """No pod network yet (no pod CIDR): pods wait, as upstream's NetworkPluginNotReady."""

    reason = "NetworkNotReady"


class ImagePullError(RuntimeFailure):
    reason = "ErrImagePull"


class CreateContainerError(RuntimeFailure):
    reason = "CreateContainerError"


class ExecTimeout(RuntimeFailure):
    """An exec_sync command outlived its timeout (it was killed); the message is upstream's
    `command "..." timed out`."""


@dataclass
class ContainerStatus:
    """One container as the runtime sees it (a CRI ContainerStatus)."""
    id: str                       # the runtime's id (the API's containerID is "<type>://<id>")
    name: str                     # the container's name in the pod spec
    attempt: int                  # its restart count when it was created
    state: str                    # CREATED | RUNNING | EXITED | UNKNOWN
    image: str
    image_id: str
    sandbox_id: str = ""
    spec_hash: str = ""           # hash of the spec it was created from: a changed spec restarts it
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""              # OOMKilled | Error | Completed, for exited containers
    message: str = ""             # the termination message, if the app wrote one
    ready_at: float = 0.0         # hollow only: a simulated slow start; real runtimes leave it to probes


@dataclass
class SandboxStatus:
    id: str
    attempt: int
    ready: bool                   # its network namespace is up (the pause container runs)
    ip: str
    created_at: float = 0.0


@dataclass
class PodRuntimeStatus:
    """Everything a runtime holds for one pod uid, newest first (a snapshot for the kubelet to read,
    never to change)."""
    uid: str
    name: str = ""
    namespace: str = ""
    sandboxes: list[SandboxStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)

    @property
    def sandbox(self) -> SandboxStatus | None:
        return self.sandboxes[0] if self.sandboxes else None

    def history(self, name: str) -> list[ContainerStatus]:
        """The containers created for spec container `name`, newest first."""
        return [c for c in self.containers if c.name == name]

    def latest(self, name: str) -> ContainerStatus | None:
        return next((c for c in self.containers if c.name == name), None)


@dataclass
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@dataclass
class SandboxConfig:
    """What a sandbox needs (a CRI PodSandboxConfig): identity, hostname, DNS and the host network."""
    hostname: str
    dns_servers: list[str]
    dns_searches: list[str]
    dns_options: list[str]
    host_network: bool = False
    grace_seconds: int = 30       # kept on the sandbox so a restarted kubelet can stop orphans kindly


@dataclass
class ContainerConfig:
    """A container ready to create (a CRI ContainerConfig): everything resolved by the kubelet."""
    name: str
    image: str
    attempt: int
    spec_hash: str
    entrypoint: list[str] | None      # spec.command, expanded; None keeps the image's
    cmd: list[str] | None             # spec.args, expanded; None keeps the image's (unless entrypoint is set)
    env: list[tuple[str, str]]
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    cpu_millis_limit: int = 0
    cpu_millis_request: int = 0
    memory_limit: int = 0
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    user: str = ""                    # "uid[:gid]" from the securityContext
    read_only_rootfs: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    termination_message_path: str = ""
    termination_message_policy: str = "File"    # FallbackToLogsOnError: a failure's log end is the message
    pid_target: str = ""              # runtime id of an ephemeral container's target: it joins that one's PIDs


class Runtime:
    """What the pod-sync loop needs from a container runtime. Every call may block on the runtime;
    implementations keep blocking work off the event loop."""

    type = ""              # the containerID/imageID scheme: docker, hollow
    host_volumes = True    # whether volumes are real directories on this host (hollow: none)
    relist_period = 0.0    # seconds between safety-net relists; 0 when events are complete
    probes = True          # probes and lifecycle hooks reach real processes (hollow: simulated, none run)

    def __init__(self) -> None:
        self.on_change: Callable[[str], None] = lambda uid: None   # set by the kubelet: a pod's containers changed

    async def start(self) -> None:
        """Connect; raise when the runtime cannot be reached."""

    async def close(self) -> None:
        """Stop background work (event streams)."""

    def node_info(self) -> dict:
        """nodeInfo fields the runtime knows: containerRuntimeVersion, kernelVersion, osImage."""
        raise NotImplementedError

    def network_problem(self) -> str:
        """Why pods cannot get an address yet ("" when they can): the node is NotReady meanwhile."""
        return ""

    async def update_pod_cidr(self, cidr: str) -> None:
        """The node's pod CIDR became known (CRI's UpdateRuntimeConfig)."""

    async def list_pods(self) -> dict[str, PodRuntimeStatus]:
        """Every pod this runtime holds for this node, by uid."""
        raise NotImplementedError

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        raise NotImplementedError

    async def recover(self, pod: dict) -> None:
        """A runtime whose state dies with the kubelet (hollow) rebuilds the pod's sandbox and
        containers from its last reported status; a real runtime still has them."""

    def capacity(self) -> dict[str, str]:
        """cpu and memory of the machine the containers run on ({} when simulated)."""
        return {}

    async def image_present(self, image: str) -> bool:
        raise NotImplementedError

    def can_pull(self, image: str) -> bool:
        """Whether the image's registry is reachable from this node at all."""
        raise NotImplementedError

    async def pull_image(self, image: str) -> None:
        """Raises ImagePullError."""
        raise NotImplementedError

    async def image_user(self, image: str) -> tuple[int | None, str]:
        """The user a present image runs as (CRI's ImageStatus uid and username): a uid, else a
        user name, else neither (the image names none)."""
        raise NotImplementedError

    async def run_sandbox(self, pod: dict, config: SandboxConfig, attempt: int) -> str:
        """Create and start the pod's sandbox; return its id."""
        raise NotImplementedError

    async def stop_sandbox(self, sandbox_id: str) -> None:
        raise NotImplementedError

    async def remove_sandbox(self, sandbox_id: str) -> None:
        raise NotImplementedError

    async def create_container(self, sandbox_id: str, pod: dict, config: ContainerConfig) -> str:
        raise NotImplementedError

    async def start_container(self, container_id: str) -> None:
        raise NotImplementedError

    async def stop_container(self, container_id: str, grace: int) -> None:
        """Send the stop signal, and SIGKILL after `grace` seconds."""
        raise NotImplementedError

    async def remove_container(self, container_id: str) -> None:
        raise NotImplementedError

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None) -> tuple[int, bytes, bytes]:
        """Run `cmd` in the container (CRI's ExecSync): its exit code, stdout and stderr.
        ExecTimeout after `timeout` seconds (None: no limit), RuntimeFailure when it cannot run."""
        raise NotImplementedError

"""The kubelet core's pod sync: one de-duplicating work queue of pod uids, fed by the pod watch,
the runtime's events, probe results and a periodic relist. Each sync compares the pod's spec with
what the runtime reports and acts (sandbox, ephemeral containers, init containers in order, app
containers, restarts with CrashLoopBackOff, liveness and startup probe kills, postStart and preStop
hooks, image pulls with ImagePullBackOff, graceful deletion), then posts the status built by
status.py when it changed. Runtimes only execute; every decision is made here.
"""
from __future__ import annotations

import asyncio
import logging
import time

from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client
from kubeling.client.events import EventRecorder
from kubeling.client.workqueue import WorkQueue

from .handlers import Handlers, go_duration
from .podconfig import (ConfigBuilder, ContainerConfigError, format_pod, requires_non_root, spec_hash,
                        verify_run_as_non_root)
from .prober import ProbeManager
from .runtime import (EXITED, RUNNING, ContainerStatus, ImagePullError, NetworkNotReady, PodRuntimeStatus,
                      Runtime, RuntimeFailure, RuntimeUnavailable, SandboxStatus)
from .status import next_change, pod_status, should_restart
from .volumes import VolumeError

log = logging.getLogger("kubelet")
PODS = lookup("", "v1", "pods")
TERMINAL = ("Succeeded", "Failed")
MIN_GRACE = 2          # upstream's minimumGracePeriodInSeconds
RETRY = 10.0           # upstream's backOffPeriod: a pod whose sync could not start something is retried


class Backoff:
    """client-go's flowcontrol.Backoff as the kubelet uses it: per pod and key, 10 s doubling to
    300 s, and forgotten once the last failure is older than twice the cap (10 minutes of running)."""

    def __init__(self, initial: float = 10.0, cap: float = 300.0) -> None:
        self.initial, self.cap = initial, cap
        self.entries: dict[str, dict[str, tuple[float, float]]] = {}   # uid -> key -> (duration, last update)

    def _live(self, uid: str, key: str, at: float) -> tuple[float, float] | None:
        e = self.entries.get(uid, {}).get(key)
        return e if e is not None and at - e[1] <= 2 * self.cap else None

    def in_backoff_since(self, uid: str, key: str, event: float, now: float) -> bool:
        """Whether `now` is still within the back-off counted from `event` (a container's exit)."""
        e = self._live(uid, key, event)
        return e is not None and now - event < e[0]

    def next(self, uid: str, key: str, event: float) -> None:
        e = self._live(uid, key, event)
        self.entries.setdefault(uid, {})[key] = (self.initial if e is None else min(e[0] * 2, self.cap), event)

    def duration(self, uid: str, key: str) -> float:
        return self.entries.get(uid, {}).get(key, (self.initial, 0.0))[0]

    def until(self, uid: str, key: str) -> float:
        """When the back-off counted from the last update ends."""
        d, last = self.entries.get(uid, {}).get(key, (0.0, 0.0))
        return last + d

    def forget(self, uid: str) -> None:
        self.entries.pop(uid, None)


def grace_period(pod: dict, container: dict | None = None, probe: str = "") -> int:
    """upstream's setTerminationGracePeriod: deletionGracePeriodSeconds, else (a container killed
    for failing its liveness or startup probe) that probe's terminationGracePeriodSeconds, else
    terminationGracePeriodSeconds (30); at least 2 s."""
    g = pod["metadata"].get("deletionGracePeriodSeconds")
    if g is None and probe and container is not None:
        g = (container.get(f"{probe}Probe") or {}).get("terminationGracePeriodSeconds")
    if g is None:
        g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return max(MIN_GRACE, 30 if g is None else int(g))


def container_spec(pod: dict, name: str) -> dict | None:
    """The app, init or ephemeral container of that name."""
    spec = pod.get("spec") or {}
    return next((c for key in ("containers", "initContainers", "ephemeralContainers") for c in spec.get(key) or []
                 if c["name"] == name), None)


def _signature(st: PodRuntimeStatus) -> tuple:
    return (tuple((s.id, s.ready) for s in st.sandboxes), tuple((c.id, c.state) for c in st.containers))


def _status_only(old: dict, new: dict) -> bool:
    """The update changed nothing but status (and the bookkeeping that comes with any write)."""
    if old.get("spec") != new.get("spec"):
        return False
    skip = ("resourceVersion", "managedFields")
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return {k: v for k, v in om.items() if k not in skip} == {k: v for k, v in nm.items() if k not in skip}


class PodSyncer:
    """The pods bound to one node, kept converged on one runtime."""

    def __init__(self, client: Client, node_name: str, node_ip: str, runtime: Runtime, config: ConfigBuilder,
                 recorder: EventRecorder | None = None) -> None:
        self.client, self.node, self.node_ip = client, node_name, node_ip
        self.runtime, self.config, self.recorder = runtime, config, recorder
        self.queue = WorkQueue("kubelet_pod_workers")
        self.pods: dict[str, dict] = {}                       # uid -> the latest pod bound here
        self.removed_grace: dict[str, int] = {}               # uid of a pod gone from the API -> its grace
        self.reasons: dict[str, dict[str, tuple[str, str]]] = {}   # uid -> container -> why it waits
        self.backoff, self.image_backoff = Backoff(), Backoff()
        self.running: set[str] = set()                        # uids with a ready sandbox
        self.seen: dict[str, tuple] = {}                      # relist: uid -> containers and states
        self.synced = False      # the pod watch delivered its first list: unknown runtime pods are orphans
        runtime.on_change = self.queue.add
        self.handlers = Handlers(runtime) if runtime.probes else None     # hollow: no probes, no hooks
        self.probes = ProbeManager(self.handlers, self.queue.add, self._event) if self.handlers else None

    # ---- inputs -------------------------------------------------------------------
    def pod_changed(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        old = self.pods.get(uid)
        self.pods[uid] = pod
        if old is not None and _status_only(old, pod):
            return   # our own status write coming back (upstream's pod config drops these too)
        self.queue.add(uid)

    def pod_deleted(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        self.pods.pop(uid, None)
        self.removed_grace[uid] = grace_period(pod)
        self.queue.add(uid)

    async def relist(self) -> None:
        """Compare everything the runtime holds with the last look: sync pods whose containers
        changed, and those the API no longer has (orphans, e.g. deleted while the kubelet was down)."""
        pods = await self.runtime.list_pods()
        for uid, st in pods.items():
            sig = _signature(st)
            if uid not in self.pods or self.seen.get(uid) != sig:
                self.queue.add(uid)
            self.seen[uid] = sig
        for uid in [u for u in self.seen if u not in pods]:
            del self.seen[uid]
            if uid in self.pods:
                self.queue.add(uid)

    async def relist_loop(self) -> None:
        while True:
            try:
                await self.relist()
            except RuntimeUnavailable as e:
                log.warning("node %s: relisting containers: %s", self.node, e)
            await asyncio.sleep(self.runtime.relist_period)

    async def resync_loop(self, period: float) -> None:
        """Sync every pod at least once a period (upstream's --sync-frequency), so configMap and
        secret volumes follow their objects and nothing waits on a lost event."""
        while True:
            await asyncio.sleep(period)
            for uid in list(self.pods):
                self.queue.add(uid)

    def _event(self, pod: dict, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event({"kind": "Pod", "apiVersion": "v1", "metadata": pod["metadata"]}, type_, reason,
                                message)

    # ---- sync ---------------------------------------------------------------------
    async def sync(self, uid: str) -> None:
        pod = self.pods.get(uid)
        rt = await self.runtime.pod_status(uid)
        if pod is None:
            if self.synced:
                if rt is not None:
                    log.info("node %s: removing containers of pod %s/%s (%s), gone from the API", self.node,
                             rt.namespace, rt.name, uid)
                    await self._teardown(None, rt, self.removed_grace.get(uid, MIN_GRACE))
                self.removed_grace.pop(uid, None)
                await self._forget(uid)
            return
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            await self._delete(pod, rt)
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            if self.probes is not None:
                self.probes.remove_pod(uid)
            if rt is not None:
                await self._stop(pod, rt)
            self.running.discard(uid)
            return
        if rt is None and (pod.get("status") or {}).get("containerStatuses"):
            await self.runtime.recover(pod)
            rt = await self.runtime.pod_status(uid)
        if self.probes is not None:
            self.probes.add_pod(pod)
        wake = await self._converge(pod, rt)
        rt = await self.runtime.pod_status(uid)
        # the time the status describes: a (simulated) readiness due after it is waited for even when
        # the status write below takes longer than the ready delay
        now = time.time()
        status = pod_status(pod, rt, self.reasons.get(uid, {}), self.runtime.type, self.node_ip, now,
                            probe=self.probes.view(uid) if self.probes is not None else None)
        if self.probes is not None:
            self.probes.set_status(pod, status)
        old = pod.get("status") or {}
        if any(old.get(k) != v for k, v in status.items()):
            try:
                await self.client.patch(PODS, meta["name"], {"status": status}, meta["namespace"], "status")
            except ApiError as e:
                if not e.not_found:
                    raise
                return
        if status["phase"] in TERMINAL and rt is not None:
            await self._stop(pod, rt)
        if rt is not None and rt.sandbox is not None and rt.sandbox.ready and status["phase"] not in TERMINAL:
            self.running.add(uid)
        else:
            self.running.discard(uid)
        times = [t for t in (wake, next_change(rt, now)) if t is not None]
        if times:
            self.queue.add_after(uid, min(times) - time.time() + 0.01)

    async def _delete(self, pod: dict, rt: PodRuntimeStatus | None) -> None:
        """Graceful deletion: stop the containers within the grace period, remove them and the
        sandbox, then delete the pod for good (grace 0, only this uid)."""
        meta = pod["metadata"]
        if self.probes is not None:
            self.probes.remove_pod(meta["uid"])     # no liveness kill of a container on its way out
        if rt is not None:
            await self._teardown(pod, rt, grace_period(pod))
        await self._forget(meta["uid"])
        try:
            await self.client.delete(PODS, meta["name"], meta["namespace"], gracePeriodSeconds=0,
                                     preconditions={"uid": meta["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def _kill(self, pod: dict | None, c: ContainerStatus, grace: int, why: str = "") -> None:
        """upstream's killContainer: the Killing event, the preStop hook within the grace period,
        then the stop signal with what is left of it (at least 2 s), SIGKILL after."""
        spec = container_spec(pod, c.name) if pod is not None else None
        if pod is not None:
            self._event(pod, "Normal", "Killing", why or f"Stopping container {c.name}")
        hook = ((spec or {}).get("lifecycle") or {}).get("preStop")
        if pod is not None and spec is not None and hook and self.handlers is not None:
            started = time.monotonic()
            pod_ip = (pod.get("status") or {}).get("podIP", "")
            try:
                async with asyncio.timeout(grace):
                    message = await self.handlers.hook(hook, pod, spec, pod_ip, c.id)
            except TimeoutError:
                log.info("node %s: preStop hook of %s in %s not completed in the grace period (%ds)", self.node,
                         c.name, format_pod(pod), grace)
            else:
                if message is not None:
                    log.warning("node %s: %s", self.node, message)
                    self._event(pod, "Warning", "FailedPreStopHook", "PreStopHook failed")
            grace = max(MIN_GRACE, grace - int(time.monotonic() - started))
        await self.runtime.stop_container(c.id, grace)

    async def _teardown(self, pod: dict | None, rt: PodRuntimeStatus, grace: int) -> None:
        await asyncio.gather(*(self._kill(pod, c, grace) for c in rt.containers if c.state == RUNNING))
        for s in rt.sandboxes:
            if s.ready:
                await self.runtime.stop_sandbox(s.id)
        for c in rt.containers:
            await self.runtime.remove_container(c.id)
        for s in rt.sandboxes:
            await self.runtime.remove_sandbox(s.id)

    async def _stop(self, pod: dict, rt: PodRuntimeStatus) -> None:
        """A finished pod: nothing may run any more; its exited containers stay (their logs)."""
        await asyncio.gather(*(self._kill(pod, c, grace_period(pod)) for c in rt.containers if c.state == RUNNING))
        for s in rt.sandboxes:
            if s.ready:
                await self.runtime.stop_sandbox(s.id)

    async def _forget(self, uid: str) -> None:
        for d in (self.reasons, self.seen):
            d.pop(uid, None)
        self.backoff.forget(uid)
        self.image_backoff.forget(uid)
        self.running.discard(uid)
        if self.probes is not None:
            self.probes.remove_pod(uid)
        await self.config.remove_pod_dir(uid)

    async def _converge(self, pod: dict, rt: PodRuntimeStatus | None) -> float | None:
        """Act on the difference between spec and runtime; return when to look again (a back-off
        ending), if something waits on time."""
        spec, uid, now = pod.get("spec") or {}, pod["metadata"]["uid"], time.time()
        policy = spec.get("restartPolicy", "Always")
        try:
            await self.config.mount_volumes(pod)
        except VolumeError as e:
            self._event(pod, "Warning", "FailedMount", str(e))
            return now + RETRY
        sandbox = rt.sandbox if rt else None
        if sandbox is None or not sandbox.ready:
            if rt is not None and sandbox is not None:    # the sandbox died: its containers go with it
                await asyncio.gather(*(self._kill(pod, c, grace_period(pod)) for c in rt.containers
                                       if c.state == RUNNING))
                if policy == "Never" and rt.containers:
                    return None      # it ran once: no new sandbox, the pod ends with what its containers did
                self._event(pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
                for s in rt.sandboxes:
                    await self.runtime.remove_sandbox(s.id)
            attempt = sandbox.attempt + 1 if sandbox is not None else 0
            try:
                await self.runtime.run_sandbox(pod, self.config.sandbox_config(pod), attempt)
            except NetworkNotReady as e:
                self._event(pod, "Warning", "NetworkNotReady", str(e))
                return now + 2.0
            except RuntimeFailure as e:
                self._event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
                return now + RETRY
            rt = await self.runtime.pod_status(uid)
            if rt is None or rt.sandbox is None:
                return now + RETRY
            sandbox = rt.sandbox
        current = [c for c in rt.containers if c.sandbox_id == sandbox.id] if rt else []

        def latest(name: str) -> ContainerStatus | None:
            return next((c for c in current if c.name == name), None)
        wakes = []
        for c in spec.get("ephemeralContainers") or []:    # first, so a broken init container can be debugged
            if not self._ran(pod, c["name"], rt):
                target = latest(c.get("targetContainerName") or "")
                wakes.append(await self._start(pod, c, rt, sandbox, None, target))
        for c in spec.get("initContainers") or []:    # one at a time, in order, each to success
            cur = latest(c["name"])
            if cur is not None and cur.state == EXITED and cur.exit_code == 0:
                continue
            if cur is None or not (cur.state == RUNNING or cur.state == EXITED and policy == "Never"):
                wakes.append(await self._start(pod, c, rt, sandbox, cur))
            return min((w for w in wakes if w is not None), default=None)
        for c in spec.get("containers") or []:
            cur = latest(c["name"])
            if cur is not None and cur.state == RUNNING:
                if cur.spec_hash and cur.spec_hash != spec_hash(c):
                    await self._kill(pod, cur, grace_period(pod),
                                     f"Container {c['name']} definition changed, will be restarted")
                    cur = None
                elif self.probes is not None and (probe := self.probes.failed(cur.id)):
                    restart = policy != "Never"
                    why = f"Container {c['name']} failed {probe} probe" + (", will be restarted" if restart else "")
                    await self._kill(pod, cur, grace_period(pod, c, probe), why)
                    if not restart:
                        continue
                    # back-off is judged by the container that ended before this one, as upstream's doBackOff
                    cur = next((h for h in rt.history(c["name"])[1:] if h.state == EXITED), None) if rt else None
                else:
                    continue
            elif not should_restart(pod, c, cur):
                continue
            wakes.append(await self._start(pod, c, rt, sandbox, cur))
        return min((w for w in wakes if w is not None), default=None)

    @staticmethod
    def _ran(pod: dict, name: str, rt: PodRuntimeStatus | None) -> bool:
        """An ephemeral container is started once: never again once the runtime or the API saw it."""
        if rt is not None and rt.history(name):
            return True
        return any(s.get("name") == name and s.get("containerID")
                   for s in (pod.get("status") or {}).get("ephemeralContainerStatuses") or [])

    async def _start(self, pod: dict, c: dict, rt: PodRuntimeStatus | None, sandbox: SandboxStatus,
                     cur: ContainerStatus | None, target: ContainerStatus | None = None) -> float | None:
        """Start (or restart) one container unless it is in back-off (judged from `cur`, the one
        that ended), then run its postStart hook; why it could not start is kept as its waiting
        reason. An ephemeral container with a targetContainerName joins `target`'s PIDs."""
        meta, name, now = pod["metadata"], c["name"], time.time()
        uid = meta["uid"]
        reasons = self.reasons.setdefault(uid, {})
        if cur is not None and cur.state != RUNNING:
            ended = cur.finished_at or cur.created_at
            if self.backoff.in_backoff_since(uid, name, ended, now):
                d = self.backoff.duration(uid, name)
                who = format_pod(pod)
                reasons[name] = ("CrashLoopBackOff", f"back-off {go_duration(d)} restarting failed container={name} pod={who}")
                self._event(pod, "Warning", "BackOff", f"Back-off restarting failed container {name} in pod {who}")
                return ended + d
            self.backoff.next(uid, name, ended)
        wait = await self._ensure_image(pod, c, reasons)
        if wait is not None:
            return wait
        attempt = self._next_attempt(pod, name, rt)
        try:
            if c.get("targetContainerName") and target is None:
                raise ContainerConfigError(f"unable to find target container {c['targetContainerName']}")
            config = await self.config.container_config(pod, c, attempt, sandbox.ip)
            if requires_non_root(pod, c):     # only then does the image's user matter
                verify_run_as_non_root(pod, c, *await self.runtime.image_user(c.get("image", "")))
        except ContainerConfigError as e:
            reasons[name] = ("CreateContainerConfigError", str(e))
            self._event(pod, "Warning", "Failed", f"Error: {e}")
            return now + RETRY
        if target is not None:
            config.pid_target = target.id
        history = rt.history(name) if rt else []
        keep = history[0].id if history and history[0].state == EXITED else ""   # the lastState to report
        for old in history:
            if old.state != RUNNING and old.id != keep:
                await self.runtime.remove_container(old.id)
        try:
            cid = await self.runtime.create_container(sandbox.id, pod, config)
        except RuntimeFailure as e:
            reasons[name] = (e.reason, str(e))
            self._event(pod, "Warning", "Failed", f"Error: {e}")
            return now + RETRY
        self._event(pod, "Normal", "Created", f"Created container: {name}")
        try:
            await self.runtime.start_container(cid)
        except RuntimeFailure as e:
            reasons[name] = ("RunContainerError", str(e))
            self._event(pod, "Warning", "Failed", f"Error: {e}")
            return now + RETRY
        self._event(pod, "Normal", "Started", f"Started container {name}")
        reasons.pop(name, None)
        hook = (c.get("lifecycle") or {}).get("postStart")
        if hook and self.handlers is not None:
            message = await self.handlers.hook(hook, pod, c, sandbox.ip, cid)
            if message is not None:
                log.warning("node %s: %s", self.node, message)
                # the event leaves the hook's output out, as upstream's, so no secret leaks through it
                self._event(pod, "Warning", "FailedPostStartHook", "PostStartHook failed")
                await self._kill(pod, ContainerStatus(cid, name, attempt, RUNNING, c.get("image", ""), ""),
                                 grace_period(pod), "FailedPostStartHook")
                reasons[name] = ("PostStartHookError", message)
        return None

    async def _ensure_image(self, pod: dict, c: dict, reasons: dict[str, tuple[str, str]]) -> float | None:
        """imagePullPolicy: None when the image is there, else when to try again (ErrImagePull,
        then ImagePullBackOff 10 s doubling; ErrImageNeverPull)."""
        uid, name, image, now = pod["metadata"]["uid"], c["name"], c.get("image", ""), time.time()
        tag = image.rsplit("/", 1)[-1]
        policy = c.get("imagePullPolicy") or ("Always" if ":" not in tag or tag.endswith(":latest") else "IfNotPresent")
        present = await self.runtime.image_present(image)
        if policy == "Never" and not present:
            msg = f'Container image "{image}" is not present with pull policy of Never'
            reasons[name] = ("ErrImageNeverPull", msg)
            self._event(pod, "Warning", "ErrImageNeverPull", msg)
            return now + RETRY
        if present and (policy != "Always" or not self.runtime.can_pull(image)):
            self._event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
            return None
        if now < self.image_backoff.until(uid, image):
            reasons[name] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"')
            self._event(pod, "Warning", "Failed", "Error: ImagePullBackOff")
            return self.image_backoff.until(uid, image)
        self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        try:
            await self.runtime.pull_image(image)
        except ImagePullError as e:
            self.image_backoff.next(uid, image, now)
            reasons[name] = ("ErrImagePull", str(e))
            self._event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {e}')
            self._event(pod, "Warning", "Failed", "Error: ErrImagePull")
            return self.image_backoff.until(uid, image)
        self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {time.monotonic() - started:.3f}s')
        return None

    @staticmethod
    def _next_attempt(pod: dict, name: str, rt: PodRuntimeStatus | None) -> int:
        """One more than the newest container of this name, or than the restartCount the API
        shows for a container that ran (one removed behind the kubelet's back, `docker rm -f`)."""
        history = rt.history(name) if rt else []
        n = history[0].attempt + 1 if history else 0
        st = pod.get("status") or {}
        for s in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []) + \
                (st.get("ephemeralContainerStatuses") or []):
            if s.get("name") == name and s.get("containerID"):
                n = max(n, s.get("restartCount", 0) + 1)
        return n


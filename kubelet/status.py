"""The API's PodStatus from what the runtime reports (upstream's generateAPIPodStatus, getPhase
and the condition generators), as pure functions: the same for every runtime, and testable."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

from .runtime import EXITED, RUNNING, ContainerStatus, PodRuntimeStatus

ProbeView = Callable[[str, str], tuple[bool, bool]]
"""(container name, runtime id) of a running app container -> (started, ready) as its startup and
readiness probes say (upstream's prober UpdatePodStatus); without one both are true."""
APP, INIT, EPHEMERAL = "app", "init", "ephemeral"

UNKNOWN_TERMINATION = {"exitCode": 137, "reason": "ContainerStatusUnknown",
                       "message": "The container could not be located when the pod was deleted.  "
                                  "The container used to be Running"}


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def should_restart(pod: dict, container: dict, latest: ContainerStatus | None) -> bool:
    """Upstream's ShouldContainerBeRestarted: never run, not started, or dead and allowed by the
    restartPolicy."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    if latest is None or latest.state not in (RUNNING, EXITED):
        return True
    if latest.state == RUNNING:
        return False
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    return policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0)


def _terminated(c: ContainerStatus, runtime_type: str) -> dict:
    t = {"exitCode": c.exit_code, "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error")}
    if c.message:
        t["message"] = c.message
    return {**t, "startedAt": stamp(c.started_at) if c.started_at else None, "finishedAt": stamp(c.finished_at),
            "containerID": f"{runtime_type}://{c.id}"}


def _state(c: ContainerStatus, runtime_type: str) -> dict:
    if c.state == RUNNING:
        return {"running": {"startedAt": stamp(c.started_at)}}
    if c.state == EXITED:
        return {"terminated": _terminated(c, runtime_type)}
    return {"waiting": {}}   # created but not started, or unknown: waiting to run


def container_statuses(pod: dict, specs: list[dict], rt: PodRuntimeStatus | None, old_list: list[dict] | None,
                       reasons: dict[str, tuple[str, str]], runtime_type: str, now: float, kind: str = APP,
                       probe: ProbeView | None = None) -> list[dict]:
    """Upstream's convertToAPIContainerStatuses for app, init or ephemeral containers: the newest
    container of each name gives state, restartCount and ids, the one before it lastState; a
    container that failed to start (reasons: waiting reason and message by name) is waiting with
    that reason. started and ready as upstream's prober sets them: an app container is started once
    its startup probe succeeded and ready once its readiness probe did, an init container is ready
    when it completed, an ephemeral one is never ready and has no `started`."""
    has_init = bool((pod.get("spec") or {}).get("initContainers"))
    default = {"waiting": {"reason": "PodInitializing" if has_init else "ContainerCreating"}}
    old = {s["name"]: s for s in old_list or []}
    out = []
    for spec in specs:
        name = spec["name"]
        history = rt.history(name) if rt else []
        cur = history[0] if history else None
        prev = old.get(name) or {}
        st: dict = {"name": name, "state": default, "lastState": {}, "ready": False, "restartCount": 0,
                    "image": spec.get("image", ""), "imageID": "", "started": False}
        if cur is not None:
            cid = f"{runtime_type}://{cur.id}"
            st.update(state=_state(cur, runtime_type), restartCount=cur.attempt, image=cur.image or st["image"],
                      imageID=cur.image_id, containerID=cid)
            if kind == INIT:
                st.update(started=cur.state == RUNNING, ready=cur.state == EXITED and cur.exit_code == 0)
            elif kind == APP and cur.state == RUNNING:
                started, ready = probe(name, cur.id) if probe is not None else (True, True)
                st.update(started=started, ready=started and ready and now >= cur.ready_at)
            if len(history) > 1 and history[1].state == EXITED:
                st["lastState"] = {"terminated": _terminated(history[1], runtime_type)}
            elif prev.get("containerID") == cid:
                st["lastState"] = prev.get("lastState") or {}
            elif prev.get("containerID") and "running" in (prev.get("state") or {}):
                st["lastState"] = {"terminated": {**UNKNOWN_TERMINATION, "containerID": prev["containerID"]}}
        elif "terminated" in (prev.get("state") or {}):
            st = dict(prev)    # its container is gone (a stopped pod's), its end is still the truth
        elif prev:
            st.update(restartCount=prev.get("restartCount", 0), lastState=prev.get("lastState") or {})
            if "running" in (prev.get("state") or {}) and not st["lastState"]:
                # it ran and vanished (docker rm -f): it ended, code unknown, and it is restarted
                st["lastState"] = {"terminated": {**UNKNOWN_TERMINATION, "containerID": prev.get("containerID", "")}}
                if not pod["metadata"].get("deletionTimestamp"):
                    st["restartCount"] += 1
        if name in reasons and should_restart(pod, spec, cur):
            if "terminated" in st["state"]:
                st["lastState"] = st["state"]
            reason, message = reasons[name]
            st["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
            st["ready"] = st["started"] = False
        if kind == EPHEMERAL:
            st.pop("started", None)
        out.append(st)
    return out


def phase(pod: dict, init: list[dict], app: list[dict]) -> str:
    """Upstream's getPhase (without sidecars)."""
    spec = pod.get("spec") or {}
    pending_init = failed_init = 0
    for s in init:
        state, last = s.get("state") or {}, (s.get("lastState") or {}).get("terminated")
        if "terminated" in state:
            failed_init += state["terminated"].get("exitCode") != 0
        elif "waiting" in state and last:
            failed_init += last.get("exitCode") != 0
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for s in app:
        state = s.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif (s.get("lastState") or {}).get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if failed_init and spec.get("restartPolicy") == "Never":
        return "Failed"
    if pending_init or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        policy = spec.get("restartPolicy", "Always")
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _names(xs: list[str]) -> str:
    return "[" + " ".join(xs) + "]"


def conditions(pod: dict, init: list[dict], app: list[dict], pod_phase: str, sandbox_ready: bool,
               now: float) -> list[dict]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady and PodScheduled, in
    upstream's order and words; lastTransitionTime kept while a condition's status stays."""
    old = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}
    unready = [s["name"] for s in app if not s.get("ready")]
    incomplete = [s["name"] for s in init if (s.get("state") or {}).get("terminated", {}).get("exitCode", 1) != 0]
    any_started = any("running" in (s.get("state") or {}) or "terminated" in (s.get("state") or {})
                      or (s.get("lastState") or {}).get("terminated") for s in app)

    def ready(typ: str) -> tuple[bool, str, str]:
        if pod_phase == "Succeeded":
            return False, "PodCompleted", ""
        if pod_phase == "Failed":
            return False, "PodFailed", ""
        if unready:
            return False, "ContainersNotReady", f"containers with unready status: {_names(unready)}"
        return True, "", ""

    def initialized() -> tuple[bool, str, str]:
        if pod_phase == "Succeeded" and init:
            return True, "PodCompleted", ""
        if not incomplete or any_started:
            return True, "", ""
        return False, "ContainersNotInitialized", f"containers with incomplete status: {_names(incomplete)}"

    out, changed_at = [], ""
    for typ, (ok, reason, message) in (("PodReadyToStartContainers", (sandbox_ready, "", "")),
                                       ("Initialized", initialized()), ("Ready", ready("Ready")),
                                       ("ContainersReady", ready("ContainersReady")),
                                       ("PodScheduled", (True, "", ""))):
        status = "True" if ok else "False"
        prev = old.get(typ) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == status else None
        if not since:
            since = changed_at = changed_at or stamp(now)
        c = {"type": typ, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        out.append(c)
    return out


def pod_status(pod: dict, rt: PodRuntimeStatus | None, reasons: dict[str, tuple[str, str]], runtime_type: str,
               node_ip: str, now: float | None = None, probe: ProbeView | None = None) -> dict:
    """The status the kubelet posts: phase, conditions, IPs, start time and container statuses."""
    now = time.time() if now is None else now
    spec, old = pod.get("spec") or {}, pod.get("status") or {}
    init = container_statuses(pod, spec.get("initContainers") or [], rt, old.get("initContainerStatuses"),
                              reasons, runtime_type, now, INIT)
    app = container_statuses(pod, spec.get("containers") or [], rt, old.get("containerStatuses"), reasons,
                             runtime_type, now, APP, probe)
    sandbox = rt.sandbox if rt else None
    ready_sandbox = sandbox is not None and sandbox.ready and bool(sandbox.ip)
    ip = sandbox.ip if ready_sandbox else old.get("podIP", "")
    p = phase(pod, init, app)
    status = {"phase": p, "conditions": conditions(pod, init, app, p, ready_sandbox, now),
              "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
              "startTime": old.get("startTime") or stamp(now), "containerStatuses": app}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    if init:
        status["initContainerStatuses"] = init
    if spec.get("ephemeralContainers"):
        status["ephemeralContainerStatuses"] = container_statuses(
            pod, spec["ephemeralContainers"], rt, old.get("ephemeralContainerStatuses"), reasons, runtime_type, now,
            EPHEMERAL)
    return status


def next_change(rt: PodRuntimeStatus | None, now: float) -> float | None:
    """When the status will change with no runtime event: a (simulated) container becoming ready."""
    times = [c.ready_at for c in (rt.containers if rt else []) if c.state == RUNNING and now < c.ready_at < float("inf")]
    return min(times, default=None)


"""PodStatus from runtime states (kubelet/status.py): phases, conditions, container states, and the
cases where a container vanished or failed to start."""
from __future__ import annotations

from kubelet.runtime import EXITED, RUNNING, ContainerStatus, PodRuntimeStatus, SandboxStatus
from kubelet.status import phase, pod_status

T0 = 1_700_000_000.0


def pod(policy: str = "Always", containers=("a",), init=(), status: dict | None = None, **meta) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", **meta},
            "spec": {"restartPolicy": policy, "containers": [{"name": n, "image": "img"} for n in containers],
                     "initContainers": [{"name": n, "image": "img"} for n in init]},
            "status": status or {}}


def running(name: str, attempt: int = 0, cid: str = "") -> ContainerStatus:
    return ContainerStatus(cid or f"{name}{attempt}", name, attempt, RUNNING, "img", "docker://sha256:1", "s",
                           created_at=T0 + attempt, started_at=T0 + attempt)


def exited(name: str, code: int, attempt: int = 0, reason: str = "") -> ContainerStatus:
    return ContainerStatus(f"{name}{attempt}", name, attempt, EXITED, "img", "docker://sha256:1", "s",
                           created_at=T0 + attempt, started_at=T0 + attempt, finished_at=T0 + attempt + 0.5,
                           exit_code=code, reason=reason or ("Completed" if code == 0 else "Error"))


def rt(*containers: ContainerStatus, ready: bool = True) -> PodRuntimeStatus:
    return PodRuntimeStatus("u1", "p", "ns", [SandboxStatus("s", 0, ready, "10.1.0.5")],
                            sorted(containers, key=lambda c: -c.created_at))


def status(p: dict, r: PodRuntimeStatus | None, reasons: dict | None = None) -> dict:
    return pod_status(p, r, reasons or {}, "docker", "192.168.1.2", now=T0 + 100)


def conds(st: dict) -> dict[str, tuple[str, str | None, str | None]]:
    return {c["type"]: (c["status"], c.get("reason"), c.get("message")) for c in st["conditions"]}


def test_running_and_ready():
    st = status(pod(), rt(running("a")))
    c = st["containerStatuses"][0]
    assert st["phase"] == "Running" and c["ready"] and c["started"] and c["containerID"] == "docker://a0"
    assert c["state"] == {"running": {"startedAt": "2023-11-14T22:13:20Z"}} and c["lastState"] == {}
    assert st["podIP"] == "10.1.0.5" and st["hostIPs"] == [{"ip": "192.168.1.2"}]
    assert [c["type"] for c in st["conditions"]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                     "ContainersReady", "PodScheduled"]
    assert all(v[0] == "True" for v in conds(st).values())


def test_not_ready_names_the_containers_and_transition_times_stay():
    st = status(pod(containers=("a", "b", "c")), rt(running("a")))
    assert conds(st)["Ready"] == ("False", "ContainersNotReady", "containers with unready status: [b c]")
    assert st["phase"] == "Pending"
    again = status(pod(containers=("a", "b", "c"), status=st), rt(running("a")))
    assert again["conditions"] == st["conditions"]


def test_restart_shows_last_state_and_crash_loop_reason():
    r = rt(running("a", 1), exited("a", 2, 0))
    c = status(pod(), r)["containerStatuses"][0]
    assert c["restartCount"] == 1 and c["lastState"]["terminated"]["exitCode"] == 2
    r = rt(exited("a", 2, 1), exited("a", 2, 0))
    reasons = {"a": ("CrashLoopBackOff", "back-off 10s restarting failed container=a pod=p_ns(u1)")}
    st = status(pod(), r, reasons)
    c = st["containerStatuses"][0]
    assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff" and c["lastState"]["terminated"]["exitCode"] == 2
    assert st["phase"] == "Running" and not c["ready"]


def test_a_reason_does_not_hide_a_container_that_will_not_restart():
    st = status(pod("Never"), rt(exited("a", 1)), {"a": ("CrashLoopBackOff", "x")})
    assert st["phase"] == "Failed" and "terminated" in st["containerStatuses"][0]["state"]
    assert conds(st)["Ready"][1] == "PodFailed"


def test_never_started_containers_wait_with_the_reason():
    st = status(pod(), rt(), {"a": ("CreateContainerConfigError", 'configmap "x" not found')})
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "CreateContainerConfigError",
                                                               "message": 'configmap "x" not found'}}
    assert st["phase"] == "Pending" and st["containerStatuses"][0]["imageID"] == ""
    assert status(pod(), None)["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}


def test_a_container_removed_behind_the_kubelets_back_counts_as_a_restart():
    before = status(pod(), rt(running("a", cid="gone")))
    st = status(pod(status=before), rt())
    c = st["containerStatuses"][0]
    assert c["restartCount"] == 1 and c["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert c["lastState"]["terminated"]["exitCode"] == 137 and c["state"] == {"waiting": {"reason": "ContainerCreating"}}


def test_init_containers():
    p = pod(init=("i1", "i2"))
    st = status(p, rt(exited("i1", 0), running("i2")))
    assert st["phase"] == "Pending"
    assert conds(st)["Initialized"] == ("False", "ContainersNotInitialized", "containers with incomplete status: [i2]")
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    st = status(p, rt(exited("i1", 0), exited("i2", 0), running("a", 0)))
    assert st["phase"] == "Running" and conds(st)["Initialized"][0] == "True"
    assert status(pod("Never", init=("i1",)), rt(exited("i1", 1)))["phase"] == "Failed"


def test_phase_table():
    def cs(state: dict, last: dict | None = None) -> dict:
        return {"state": state, "lastState": last or {}}
    done, failed, run = {"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 1}}, {"running": {}}
    assert phase(pod("OnFailure"), [], [cs(done)]) == "Succeeded"
    assert phase(pod("Never"), [], [cs(done), cs(failed)]) == "Failed"
    assert phase(pod("OnFailure"), [], [cs(failed)]) == "Running"
    assert phase(pod("Always"), [], [cs(done)]) == "Running"
    assert phase(pod("Always"), [], [cs(run), cs({"waiting": {}})]) == "Pending"
    assert phase(pod("Always"), [], [cs({"waiting": {}}, failed)]) == "Running"


def test_oom_and_termination_message_reach_the_status():
    c = exited("a", 137, reason="OOMKilled")
    c.message = "bye"
    term = status(pod("Never"), rt(c))["containerStatuses"][0]["state"]["terminated"]
    assert (term["reason"], term["exitCode"], term["message"], term["containerID"]) == ("OOMKilled", 137, "bye", "docker://a0")


def test_completed_init_containers_are_ready_running_ones_started():
    st = status(pod(init=("i1", "i2")), rt(exited("i1", 0), running("i2")))
    i1, i2 = st["initContainerStatuses"]
    assert (i1["ready"], i1["started"], i2["ready"], i2["started"]) == (True, False, False, True)


def test_probes_decide_started_and_ready():
    def view(answer):
        return lambda name, cid: answer
    p = pod(containers=("a", "b"))
    st = pod_status(p, rt(running("a"), running("b")), {}, "docker", "192.168.1.2", now=T0 + 100,
                    probe=view((False, False)))
    assert [(c["started"], c["ready"]) for c in st["containerStatuses"]] == [(False, False), (False, False)]
    st = pod_status(p, rt(running("a"), running("b")), {}, "docker", "192.168.1.2", now=T0 + 100,
                    probe=view((True, False)))
    assert [(c["started"], c["ready"]) for c in st["containerStatuses"]] == [(True, False), (True, False)]
    assert conds(st)["Ready"] == ("False", "ContainersNotReady", "containers with unready status: [a b]")
    assert st["phase"] == "Running"


def test_ephemeral_containers_report_without_started_and_never_ready():
    p = pod()
    p["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox", "targetContainerName": "a"}]
    st = status(p, rt(running("a")))
    assert st["ephemeralContainerStatuses"] == [{"name": "dbg", "state": {"waiting": {"reason": "ContainerCreating"}},
                                                 "lastState": {}, "ready": False, "restartCount": 0,
                                                 "image": "busybox", "imageID": ""}]
    st = status(p, rt(running("a"), exited("dbg", 0)))
    dbg = st["ephemeralContainerStatuses"][0]
    assert "terminated" in dbg["state"] and not dbg["ready"] and "started" not in dbg
    assert st["phase"] == "Running" and conds(st)["Ready"][0] == "True"      # not counted in readiness

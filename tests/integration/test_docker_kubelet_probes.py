"""Probes, lifecycle hooks, downwardAPI/projected/memory volumes and ephemeral containers on real
Docker, with the store, apiserver and `--runtime docker` kubelet of test_docker_kubelet.py (its
fixtures and helpers, imported). Pods are bound to the node directly and judged by what the API
shows; each test has its own namespace, and everything the kubelet made is removed afterwards."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from tests.integration.test_docker_kubelet import (busybox, cluster, containers, create_pod, docker,  # noqa: F401
                                                   get_pod, ns, ready, status_when)
from tests.support.clusters import free_port, wait_for


def events(cluster, ns: str, pod: str) -> list[tuple[str, str]]:
    """(reason, message) of the pod's events."""
    items = cluster.http("GET", f"/api/v1/namespaces/{ns}/events")[1].get("items") or []
    return [(e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == pod]


def event_with(cluster, ns: str, pod: str, reason: str, text: str, timeout: float = 30) -> str:
    """The message of the pod's first `reason` event that contains `text`, once there is one."""
    def find():
        return next((m for r, m in events(cluster, ns, pod) if r == reason and text in m), None)
    try:
        return wait_for(find, timeout, f"a {reason} event with {text!r}")
    except TimeoutError:
        raise AssertionError(f"no {reason} event with {text!r} in {events(cluster, ns, pod)}") from None


def cid(st: dict, name: str, key: str = "containerStatuses") -> str:
    return containers(st, key)[name]["containerID"].removeprefix("docker://")


def started(st: dict, name: str = "c") -> bool:
    return bool((containers(st).get(name) or {}).get("started"))


def exec_probe(*command: str, **timing) -> dict:
    return {"exec": {"command": list(command)}, **timing}


def test_liveness_exec_failure_kills_and_restarts_the_container(cluster, ns):
    probe = exec_probe("cat", "/tmp/healthy", periodSeconds=1, failureThreshold=2)
    create_pod(cluster, ns, "live", [busybox("c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 3600",
                                             livenessProbe=probe)])
    st = status_when(cluster, ns, "live", lambda st: containers(st).get("c", {}).get("restartCount", 0) >= 2,
                     "two liveness restarts", timeout=90)
    last = containers(st)["c"]["lastState"]["terminated"]
    assert last["reason"] == "Error" and last["exitCode"] in (137, 143)
    event_with(cluster, ns, "live", "Unhealthy",
               "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory")
    event_with(cluster, ns, "live", "Killing", "Container c failed liveness probe, will be restarted")


def test_readiness_http_get_flips_ready_with_the_served_file(cluster, ns):
    web = {"name": "web", "image": "nginx", "imagePullPolicy": "IfNotPresent",
           "ports": [{"name": "http", "containerPort": 80}],
           "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http",
                                          "httpHeaders": [{"name": "X-Probe", "value": "yes"}]},
                              "periodSeconds": 1, "failureThreshold": 1}}
    create_pod(cluster, ns, "web", [web])
    st = status_when(cluster, ns, "web", ready, "Ready once nginx answers")
    web_id = cid(st, "web")
    docker("exec", web_id, "mv", "/usr/share/nginx/html/index.html", "/tmp/index.html")

    def unready(st):
        conds = {c["type"]: c for c in st.get("conditions") or []}
        return conds["Ready"]["status"] == "False" and not containers(st)["web"]["ready"]
    st = status_when(cluster, ns, "web", unready, "not Ready once the page is gone", timeout=30)
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["ContainersReady"]["message"] == "containers with unready status: [web]"
    assert st["phase"] == "Running" and containers(st)["web"]["restartCount"] == 0
    event_with(cluster, ns, "web", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
    docker("exec", web_id, "mv", "/tmp/index.html", "/usr/share/nginx/html/index.html")
    status_when(cluster, ns, "web", ready, "Ready again once the page is back", timeout=30)
    log = docker("logs", web_id)
    assert '"GET /index.html HTTP/1.1" 404' in log and "kube-probe/1.32" in log


def test_startup_probe_gates_liveness_and_readiness(cluster, ns):
    gate = exec_probe("test", "-f", "/tmp/started", periodSeconds=1, failureThreshold=30)
    strict = exec_probe("test", "-f", "/tmp/started", periodSeconds=1, failureThreshold=1)
    create_pod(cluster, ns, "slow", [busybox("c", "sleep 4; touch /tmp/started; exec sleep 3600", startupProbe=gate,
                                             livenessProbe=strict, readinessProbe=strict)])
    st = status_when(cluster, ns, "slow", lambda st: "running" in containers(st).get("c", {}).get("state", {}),
                     "running")
    began = time.monotonic()
    assert not started(st) and not containers(st)["c"]["ready"]
    st = status_when(cluster, ns, "slow", ready, "started, then ready")
    assert time.monotonic() - began > 1.5        # the startup probe held it back
    assert started(st) and containers(st)["c"]["restartCount"] == 0     # liveness waited for the start

    never = exec_probe("false", periodSeconds=1, failureThreshold=2)
    create_pod(cluster, ns, "stuck", [busybox("c", "exec sleep 3600", startupProbe=never)])
    status_when(cluster, ns, "stuck", lambda st: containers(st).get("c", {}).get("restartCount", 0) >= 1,
                "restarted for failing its startup probe", timeout=60)
    event_with(cluster, ns, "stuck", "Killing", "Container c failed startup probe, will be restarted")


def test_tcp_socket_readiness(cluster, ns):
    probe = {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1}
    create_pod(cluster, ns, "tcp", [busybox("c", "sleep 3; exec httpd -f -p 8080 -h /tmp", readinessProbe=probe)])
    st = status_when(cluster, ns, "tcp", ready, "Ready once the port listens")
    message = event_with(cluster, ns, "tcp", "Unhealthy", "Readiness probe failed: dial tcp")
    assert message == f"Readiness probe failed: dial tcp {st['podIP']}:8080: connect: connection refused"


def test_post_start_hook_runs_and_its_failure_kills_the_container(cluster, ns):
    hook = {"postStart": {"exec": {"command": ["sh", "-c", "echo hooked > /tmp/hook"]}}}
    create_pod(cluster, ns, "hooked", [busybox("c", "until [ -f /tmp/hook ]; do sleep 0.1; done; "
                                                    "cat /tmp/hook > /dev/termination-log", lifecycle=hook)],
               restartPolicy="Never")
    st = status_when(cluster, ns, "hooked", lambda st: st.get("phase") == "Succeeded", "the app saw the hook's file")
    assert containers(st)["c"]["state"]["terminated"]["message"] == "hooked\n"

    broken = {"postStart": {"exec": {"command": ["sh", "-c", "echo no; exit 3"]}}}
    create_pod(cluster, ns, "broken", [busybox("c", "exec sleep 3600", lifecycle=broken)])

    def waiting_hook_error(st):
        c = containers(st).get("c") or {}
        return c.get("state", {}).get("waiting", {}).get("reason") in ("PostStartHookError", "CrashLoopBackOff") and \
            "terminated" in c.get("lastState", {})
    st = status_when(cluster, ns, "broken", waiting_hook_error, "killed for its failed postStart hook")
    event_with(cluster, ns, "broken", "FailedPostStartHook", "PostStartHook failed")
    event_with(cluster, ns, "broken", "Killing", "FailedPostStartHook")


def test_pre_stop_hook_runs_before_the_stop_signal_on_delete(cluster, ns, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    os.chmod(marks, 0o777)
    hook = {"preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /marks/prestop"]}}}
    create_pod(cluster, ns, "bye", [busybox("c", "trap 'cat /marks/prestop > /marks/term; exit 0' TERM; "
                                                 "while true; do sleep 0.2; done",
                                            lifecycle=hook, volumeMounts=[{"name": "marks", "mountPath": "/marks"}])],
               volumes=[{"name": "marks", "hostPath": {"path": str(marks), "type": "Directory"}}])
    status_when(cluster, ns, "bye", ready, "Running")
    cluster.kubectl("-n", ns, "delete", "pod", "bye", "--wait=false")
    wait_for(lambda: cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/bye")[0] == 404, 30, "the pod gone")
    assert (marks / "prestop").read_text() == "stopping\n"
    assert (marks / "term").read_text() == "stopping\n"       # the hook ran before SIGTERM reached the app


def test_downward_api_volume_follows_the_labels(cluster, ns):
    items = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
             {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}}]
    body = {"metadata": {"name": "info", "labels": {"app": "demo", "tier": "web"}},
            "spec": {"nodeName": cluster.node, "terminationGracePeriodSeconds": 5,
                     "containers": [busybox("c", "exec sleep 3600", resources={"limits": {"cpu": "250m"}},
                                            volumeMounts=[{"name": "podinfo", "mountPath": "/etc/podinfo"}])],
                     "volumes": [{"name": "podinfo", "downwardAPI": {"items": items}}]}}
    assert cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", body)[0] == 201
    st = status_when(cluster, ns, "info", ready, "Running")
    c = cid(st, "c")
    assert docker("exec", c, "cat", "/etc/podinfo/labels") == 'app="demo"\ntier="web"'
    assert docker("exec", c, "cat", "/etc/podinfo/name", "/etc/podinfo/cpu") == "info250"
    cluster.kubectl("-n", ns, "label", "--overwrite", "pod", "info", "tier=db", "extra=1")
    wait_for(lambda: docker("exec", c, "cat", "/etc/podinfo/labels") == 'app="demo"\nextra="1"\ntier="db"', 30,
             "the labels file rewritten")


def test_service_account_token_authenticates_from_inside_the_pod(cluster, ns):
    """The kube-api-access volume the apiserver adds (token, ca.crt, namespace), used from inside the
    pod. Two honest detours: the test apiserver listens on 127.0.0.1, which a container on the pod
    bridge cannot reach, so the pod uses the host's network; and busybox's wget cannot handshake
    with the apiserver (its TLS 1.2 hello has no signature_algorithms, so OpenSSL's security level
    refuses it), so an nginx in the pod makes the TLS connection, verifying the apiserver with the
    pod's ca.crt as kubernetes.default.svc (as in-cluster clients do), while wget sends the pod's
    token through it."""
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    local = free_port()
    proxy = (f"server {{ listen 127.0.0.1:{local}; location / {{ proxy_pass https://127.0.0.1:{cluster.port}; "
             f"proxy_ssl_verify on; proxy_ssl_name kubernetes.default.svc; proxy_ssl_trusted_certificate {sa}/ca.crt; "
             "} }\n")
    cluster.kubectl("-n", ns, "create", "configmap", "proxy", f"--from-literal=default.conf={proxy}")
    script = (f'T=$(cat {sa}/token); U="http://127.0.0.1:{local}/api/v1/namespaces/$(cat {sa}/namespace)/pods"; '
              'until timeout 3 wget -qO /tmp/with --header "Authorization: Bearer $T" "$U"; do sleep 0.2; done; '
              'timeout 3 wget -qO /tmp/without "$U" 2> /tmp/err; '
              f'{{ grep -o \'"kind":"PodList"\' /tmp/with; grep -o "401 Unauthorized" /tmp/err; ls {sa}; '
              f'md5sum < {sa}/ca.crt; }} > /dev/termination-log')
    nginx = {"name": "tls", "image": "nginx", "imagePullPolicy": "IfNotPresent",
             "volumeMounts": [{"name": "proxy", "mountPath": "/etc/nginx/conf.d"}]}
    create_pod(cluster, ns, "client", [busybox("c", script), nginx], hostNetwork=True, restartPolicy="Never",
               volumes=[{"name": "proxy", "configMap": {"name": "proxy"}}])
    spec = get_pod(cluster, ns, "client")["spec"]
    volume = next(v for v in spec["volumes"] if v["name"].startswith("kube-api-access-"))
    assert [list(s) for s in volume["projected"]["sources"]] == \
        [["serviceAccountToken"], ["configMap"], ["downwardAPI"]]
    assert volume["projected"]["sources"][0]["serviceAccountToken"] == {"expirationSeconds": 3607, "path": "token"}
    assert all({"name": volume["name"], "readOnly": True, "mountPath": sa} in c["volumeMounts"]
               for c in spec["containers"])
    st = status_when(cluster, ns, "client", lambda st: "terminated" in containers(st).get("c", {}).get("state", {}),
                     "the requests made")
    term = containers(st)["c"]["state"]["terminated"]
    ca_md5 = hashlib.md5(cluster.ca.read_bytes()).hexdigest()
    assert (term["exitCode"], term.get("message", "").split()) == \
        (0, ['"kind":"PodList"', "401", "Unauthorized", "ca.crt", "namespace", "token", ca_md5, "-"]), term


def test_memory_empty_dir_is_a_shared_tmpfs(cluster, ns):
    mount = [{"name": "cache", "mountPath": "/cache"}]
    create_pod(cluster, ns, "mem", [busybox("writer", "echo shared > /cache/f; exec sleep 3600", volumeMounts=mount),
                                    busybox("reader", "exec sleep 3600", volumeMounts=mount)],
               volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}])
    st = status_when(cluster, ns, "mem", ready, "Running")
    reader = cid(st, "reader")
    line = next(x for x in docker("exec", reader, "cat", "/proc/mounts").splitlines() if x.split()[1] == "/cache")
    assert line.split()[0] == "tmpfs" and line.split()[2] == "tmpfs" and "size=16384k" in line
    wait_for(lambda: docker("exec", reader, "cat", "/cache/f", check=False) == "shared\n", 30, "the writer's file")
    uid = get_pod(cluster, ns, "mem")["metadata"]["uid"]
    host = next(x.split()[1] for x in Path("/proc/self/mounts").read_text().splitlines() if f"/pods/{uid}/" in x)
    cluster.kubectl("-n", ns, "delete", "pod", "mem", "--wait=false")
    wait_for(lambda: cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/mem")[0] == 404, 30, "the pod gone")
    wait_for(lambda: f"/pods/{uid}/" not in Path("/proc/self/mounts").read_text(), 30, "the tmpfs unmounted")
    assert not Path(host).exists()


def test_ephemeral_container_joins_the_target_and_is_never_restarted(cluster, ns):
    create_pod(cluster, ns, "debugme", [busybox("app", "exec sleep 3600")])
    status_when(cluster, ns, "debugme", ready, "Running")
    cluster.kubectl("-n", ns, "debug", "debugme", "--image=busybox", "--image-pull-policy=IfNotPresent", "--target=app",
                    "--container=debugger", "--", "sh", "-c", "ps > /dev/termination-log")

    def ended(st):
        s = containers(st, "ephemeralContainerStatuses").get("debugger") or {}
        return "terminated" in s.get("state", {}) and s
    st = status_when(cluster, ns, "debugme", lambda st: ended(st), "the debugger ran and ended")
    debugger = containers(st, "ephemeralContainerStatuses")["debugger"]
    assert "sleep 3600" in debugger["state"]["terminated"]["message"]     # it saw the target's processes
    assert debugger["restartCount"] == 0 and not debugger["ready"] and "started" not in debugger
    assert ready(st) and containers(st)["app"]["restartCount"] == 0
    first = debugger["containerID"]
    deadline = time.monotonic() + 6          # three sync periods: it stays as it ended
    while time.monotonic() < deadline:
        again = containers(get_pod(cluster, ns, "debugme")["status"], "ephemeralContainerStatuses")["debugger"]
        assert again["containerID"] == first and "terminated" in again["state"]

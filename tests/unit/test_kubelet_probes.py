"""Probe decisions (kubelet/prober.py), probe and hook actions (kubelet/handlers.py) and the pod
sync's liveness kills, against upstream's worker.doProbe, prober and kuberuntime behaviour: when
a probe runs, what runs of results mean, the messages users see, and a restart after a failure."""
from __future__ import annotations

import asyncio
import socket
import time

import grpc
import pytest
from aiohttp import web

from kubelet.handlers import (FAILURE, SUCCESS, WARNING, Handlers, ProbeError, grpc_probe, http_request,
                              resolve_port, tcp_probe)
from kubelet.hollow import HollowRuntime
from kubelet.podconfig import ConfigBuilder, DNSSettings
from kubelet.podsync import PodSyncer, grace_period
from kubelet.prober import LIVENESS, READINESS, STARTUP, UNKNOWN, ProbeManager, ProbeWorker, Results
from kubelet.runtime import ExecTimeout, RuntimeFailure

T0 = 1_700_000_000.0
STARTED = "2023-11-14T22:13:20Z"          # T0


def pod(**meta) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", **meta},
            "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "img"}]}}


def status(state: dict | None = None, started: bool = True, cid: str = "docker://c1", phase: str = "Running") -> dict:
    c = {"name": "c", "containerID": cid, "state": state or {"running": {"startedAt": STARTED}}, "started": started}
    return {"phase": phase, "podIP": "10.1.0.5", "containerStatuses": [c]}


class Notes:
    def __init__(self) -> None:
        self.synced: list[str] = []

    def __call__(self, uid: str) -> None:
        self.synced.append(uid)


def worker(kind: str, **spec) -> tuple[ProbeWorker, Results, Notes]:
    notes = Notes()
    results = Results(notes)
    return ProbeWorker(kind, "c", {"periodSeconds": 1, **spec}, results), results, notes


# ---- when a probe runs (worker.doProbe) -------------------------------------------------------
def test_a_new_container_starts_from_the_initial_result_without_a_sync():
    for kind, initial in ((READINESS, FAILURE), (LIVENESS, SUCCESS), (STARTUP, UNKNOWN)):
        w, results, notes = worker(kind)
        w.check(pod(), status(started=kind != STARTUP), T0 + 5)
        assert results.get("c1") == initial and notes.synced == []


def test_nothing_to_probe_waits_and_a_finished_pod_stops_the_worker():
    w, _, _ = worker(READINESS)
    assert w.check(pod(), None, T0) is True
    assert w.check(pod(), {"phase": "Running", "containerStatuses": []}, T0) is True
    assert w.check(pod(), status(phase="Succeeded"), T0) is False


def test_initial_delay_then_probe():
    w, _, _ = worker(LIVENESS, initialDelaySeconds=10)
    assert w.check(pod(), status(), T0 + 9.9) is True
    assert w.check(pod(), status(), T0 + 10) is None


def test_startup_gates_the_others_and_stops_once_started():
    live, _, _ = worker(LIVENESS)
    start, _, _ = worker(STARTUP)
    assert live.check(pod(), status(started=False), T0 + 1) is True       # not started: liveness waits
    assert start.check(pod(), status(started=False), T0 + 1) is None      # the startup probe runs
    assert live.check(pod(), status(started=True), T0 + 1) is None
    assert start.check(pod(), status(started=True), T0 + 1) is True


def test_a_stopped_container_is_a_failure_and_ends_probing_only_when_never_restarted():
    w, results, notes = worker(READINESS)
    w.check(pod(), status(), T0)
    w.record(SUCCESS, "u1")
    assert results.get("c1") == SUCCESS
    assert w.check(pod(), status({"terminated": {"exitCode": 1}}), T0) is True
    assert results.get("c1") == FAILURE and notes.synced == ["u1", "u1"]
    never = pod()
    never["spec"]["restartPolicy"] = "Never"
    assert w.check(never, status({"terminated": {"exitCode": 1}}), T0) is False


def test_deletion_quiets_liveness_but_not_readiness():
    deleting = pod(deletionTimestamp="2023-11-14T22:14:00Z")
    live, results, _ = worker(LIVENESS)
    live.check(pod(), status(), T0)
    results.set("c1", FAILURE, "u1")
    assert live.check(deleting, status(), T0 + 1) is False and results.get("c1") == SUCCESS
    ready, _, _ = worker(READINESS)
    assert ready.check(deleting, status(), T0 + 1) is None


def test_failure_threshold_then_on_hold_until_a_new_container():
    w, results, notes = worker(LIVENESS, failureThreshold=3)
    assert w.check(pod(), status(), T0 + 1) is None
    w.record(FAILURE, "u1")
    w.record(FAILURE, "u1")
    assert results.get("c1") == SUCCESS and notes.synced == []        # below the threshold: unchanged
    w.record(FAILURE, "u1")
    assert results.get("c1") == FAILURE and notes.synced == ["u1"]
    assert w.check(pod(), status(), T0 + 2) is True                  # on hold: it is being restarted
    assert w.check(pod(), status(cid="docker://c2"), T0 + 2) is None and results.get("c1") is None
    assert results.get("c2") == SUCCESS


def test_a_success_breaks_a_run_of_failures_and_success_threshold_counts_too():
    w, results, _ = worker(READINESS, failureThreshold=2, successThreshold=2)
    w.check(pod(), status(), T0 + 1)
    for r in (SUCCESS, FAILURE, SUCCESS, FAILURE):
        w.record(r, "u1")
    assert results.get("c1") == FAILURE               # the initial value: no run reached a threshold
    w.record(SUCCESS, "u1")
    w.record(SUCCESS, "u1")
    assert results.get("c1") == SUCCESS
    w.record(FAILURE, "u1")
    assert results.get("c1") == SUCCESS
    w.record(FAILURE, "u1")
    assert results.get("c1") == FAILURE


# ---- started and ready in the status (UpdatePodStatus) ---------------------------------------
class NoHandlers(Handlers):
    def __init__(self) -> None:
        super().__init__(HollowRuntime("n"))


async def test_view_started_and_ready_follow_the_results_and_trigger_readiness():
    notes = Notes()
    m = ProbeManager(NoHandlers(), notes, lambda *a: None)
    p = pod()
    p["spec"]["containers"][0].update(startupProbe={"periodSeconds": 60}, readinessProbe={"periodSeconds": 60})
    m.add_pod(p)
    view = m.view("u1")
    assert view("c", "c1") == (False, False)          # a startup probe that has not run: not started
    m.results[STARTUP].set("c1", SUCCESS, "u1")
    readiness = m.workers[("u1", "c", READINESS)]
    readiness.trigger.clear()
    assert view("c", "c1") == (True, False) and readiness.trigger.is_set()   # not ready: probe it now
    m.results[READINESS].set("c1", SUCCESS, "u1")
    assert view("c", "c1") == (True, True)
    assert m.view("u1")("other", "x1") == (True, True)   # no probes: started and ready
    m.results[LIVENESS].set("c1", FAILURE, "u1")
    assert m.failed("c1") == "liveness" and m.failed("c9") == ""
    m.remove_pod("u1")
    assert m.workers == {}
    await asyncio.sleep(0)


def test_grace_period_of_a_probe_kill():
    p = pod()
    p["spec"]["terminationGracePeriodSeconds"] = 30
    c = {"name": "c", "livenessProbe": {"terminationGracePeriodSeconds": 5}}
    assert grace_period(p, c, "liveness") == 5 and grace_period(p, c, "startup") == 30 and grace_period(p) == 30
    p["metadata"]["deletionGracePeriodSeconds"] = 7
    assert grace_period(p, c, "liveness") == 7
    c["livenessProbe"]["terminationGracePeriodSeconds"] = 0
    p["metadata"].pop("deletionGracePeriodSeconds")
    assert grace_period(p, c, "liveness") == 2


# ---- actions -------------------------------------------------------------------------------
class ExecRuntime(HollowRuntime):
    """Answers exec_sync from a script: (code, stdout, stderr), or an exception to raise."""

    def __init__(self, answer) -> None:
        super().__init__("n")
        self.answer, self.calls = answer, []

    async def exec_sync(self, container_id, cmd, timeout):
        self.calls.append((container_id, cmd, timeout))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_exec_probe_results_and_messages():
    container = {"name": "c", "env": [{"name": "FILE", "value": "/tmp/ok"}, {"name": "REF", "valueFrom": {}}]}
    spec = {"exec": {"command": ["cat", "$(FILE)", "$(REF)", "$(NONE)"]}, "timeoutSeconds": 3}
    rt = ExecRuntime((1, b"out\n", b"cat: can't open\n"))
    assert await Handlers(rt).probe(spec, container, "", "c1") == (FAILURE, "out\ncat: can't open\n")
    assert rt.calls == [("c1", ["cat", "/tmp/ok", "", "$(NONE)"], 3.0)]   # static env only, as upstream
    assert await Handlers(ExecRuntime((0, b"", b""))).probe(spec, container, "", "c1") == (SUCCESS, "")
    timeout = ExecTimeout('command "cat /tmp/ok" timed out')
    assert await Handlers(ExecRuntime(timeout)).probe(spec, container, "", "c1") == \
        (FAILURE, 'command "cat /tmp/ok" timed out')
    with pytest.raises(ProbeError, match="is not running"):
        await Handlers(ExecRuntime(RuntimeFailure("container c1 is not running"))).probe(spec, container, "", "c1")


def test_ports_by_number_name_or_numeric_string():
    c = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(80, c) == 80 and resolve_port("http", c) == 8080 and resolve_port("81", c) == 81
    with pytest.raises(ProbeError, match=r'^strconv.Atoi: parsing "web": invalid syntax$'):
        resolve_port("web", c)
    with pytest.raises(ProbeError, match="^invalid port number: 0$"):
        resolve_port(0, c)


def test_http_request_defaults_and_headers():
    url, headers = http_request({"path": "/healthz?x=1", "port": 80, "scheme": "HTTPS",
                                 "httpHeaders": [{"name": "Host", "value": "example"}]}, {"name": "c"}, "10.1.0.5",
                                "probe")
    assert url == "https://10.1.0.5:80/healthz?x=1"
    assert headers == [("Host", "example"), ("User-Agent", "kube-probe/1.32"), ("Accept", "*/*")]
    _, headers = http_request({"port": 80, "httpHeaders": [{"name": "Accept", "value": ""}]}, {"name": "c"}, "h",
                              "lifecycle")
    assert headers == [("User-Agent", "kube-lifecycle/1.32")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def http_server():
    seen: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.path == "/ok":
            return web.Response(text="fine")
        if request.path == "/here":
            raise web.HTTPFound("/ok")
        if request.path == "/away":
            raise web.HTTPFound("http://elsewhere.invalid/", text="moved")
        if request.path == "/slow":
            await asyncio.sleep(1.5)
        return web.Response(status=503, text="secret detail")
    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, seen
    await runner.cleanup()


async def test_http_probe_results_and_messages(http_server):
    port, seen = http_server
    h, c = Handlers(HollowRuntime("n")), {"name": "c"}

    def spec(path: str) -> dict:
        return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"}, "timeoutSeconds": 1}
    assert await h.probe(spec("/ok"), c, "127.0.0.1", "") == (SUCCESS, "fine")
    assert seen[-1]["User-Agent"] == "kube-probe/1.32" and seen[-1]["Accept"] == "*/*"
    assert "Accept-Encoding" not in seen[-1]
    assert await h.probe(spec("/here"), c, "127.0.0.1", "") == (SUCCESS, "fine")       # same host: followed
    assert await h.probe(spec("/away"), c, "127.0.0.1", "") == \
        (WARNING, "Probe terminated redirects, Response body: moved")
    assert await h.probe(spec("/bad"), c, "127.0.0.1", "") == (FAILURE, "HTTP probe failed with statuscode: 503")
    assert await h.probe(spec("/slow"), c, "127.0.0.1", "") == \
        (FAILURE, (f'Get "http://127.0.0.1:{port}/slow": context deadline exceeded (Client.Timeout exceeded while '
                   'awaiting headers)'))
    closed = free_port()
    assert await h.probe({"httpGet": {"path": "/", "port": closed}, "timeoutSeconds": 1}, c, "127.0.0.1", "") == \
        (FAILURE, f'Get "http://127.0.0.1:{closed}/": dial tcp 127.0.0.1:{closed}: connect: connection refused')


async def test_tcp_probe(http_server):
    port, _ = http_server
    assert await tcp_probe("127.0.0.1", port, 1) == (SUCCESS, "")
    closed = free_port()
    assert await tcp_probe("127.0.0.1", closed, 1) == \
        (FAILURE, f"dial tcp 127.0.0.1:{closed}: connect: connection refused")


@pytest.fixture
async def grpc_server():
    """A gRPC server with grpc.health.v1.Health/Check: "" is SERVING, "db" NOT_SERVING, "x" NotFound."""
    answers = {b"": b"\x08\x01", b"\x0a\x02db": b"\x08\x02"}

    async def check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if request not in answers:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return answers[request]
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=bytes, response_serializer=bytes)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(None)


async def test_grpc_probe(grpc_server):
    port = grpc_server
    assert await grpc_probe("127.0.0.1", port, "", 1) == (SUCCESS, "service healthy")
    assert await grpc_probe("127.0.0.1", port, "db", 1) == (FAILURE, 'service unhealthy (responded with "NOT_SERVING")')
    assert await grpc_probe("127.0.0.1", port, "x", 1) == \
        (FAILURE, "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service")
    closed = free_port()
    started = time.monotonic()
    assert await grpc_probe("127.0.0.1", closed, "", 1) == \
        (FAILURE, f'timeout: failed to connect service "127.0.0.1:{closed}" within 1s: context deadline exceeded')
    assert time.monotonic() - started < 3


async def test_grpc_probe_of_a_server_without_the_health_service():
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        result, message = await grpc_probe("127.0.0.1", port, "", 1)
    finally:
        await server.stop(None)
    assert result == FAILURE and message.startswith(
        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ")


async def test_hook_messages():
    p, c = pod(), {"name": "c"}
    hook = {"exec": {"command": ["sh", "-c", "exit 3"]}}
    assert await Handlers(ExecRuntime((0, b"", b""))).hook(hook, p, c, "", "c1") is None
    message = await Handlers(ExecRuntime((3, b"out", b"err"))).hook(hook, p, c, "", "c1")
    assert message == ('Exec lifecycle hook ([sh -c exit 3]) for Container "c" in Pod "p_ns(u1)" failed - error: '
                       "command 'sh -c exit 3' exited with 3: err, message: \"outerr\"")
    closed = free_port()
    message = await Handlers(ExecRuntime(None)).hook({"httpGet": {"path": "/stop", "port": closed}}, p, c,
                                                     "127.0.0.1", "c1")
    assert message == (f'HTTP lifecycle hook (/stop) for Container "c" in Pod "p_ns(u1)" failed - error: Get '
                       f'"http://127.0.0.1:{closed}/stop": dial tcp 127.0.0.1:{closed}: connect: connection refused')
    assert await Handlers(ExecRuntime(None)).hook({"sleep": {"seconds": 0}}, p, c, "", "c1") is None


# ---- the pod sync acts on a failed liveness probe ----------------------------------------------
class Client:
    def __init__(self) -> None:
        self.patches: list[dict] = []

    async def patch(self, resource, name, body, namespace=None, sub=None, **kw):
        self.patches.append(body["status"])
        return {}


async def test_a_liveness_failure_kills_and_restarts_with_upstreams_events(monkeypatch):
    rt = HollowRuntime("n")
    client = Client()
    config = ConfigBuilder(client, "10.0.0.1", "/nonexistent", DNSSettings([], "cluster.local"), False, {})
    syncer = PodSyncer(client, "n", "10.0.0.1", rt, config)
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(syncer, "_event", lambda pod, typ, reason, message: events.append((reason, message)))
    syncer.probes = ProbeManager(NoHandlers(), lambda uid: None, syncer._event)
    p = {"metadata": {"name": "p", "namespace": "ns", "uid": "0123456789abcdef"},
         "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox", "livenessProbe": {
             "exec": {"command": ["false"]}, "periodSeconds": 3600, "terminationGracePeriodSeconds": 3}}]},
         "status": {"phase": "Pending"}}
    syncer.pods[p["metadata"]["uid"]] = p
    await syncer.sync(p["metadata"]["uid"])
    first = client.patches[-1]["containerStatuses"][0]
    assert first["ready"] and first["restartCount"] == 0
    syncer.probes.results[LIVENESS].set(first["containerID"].removeprefix("hollow://"), FAILURE, "u")
    p["status"] = client.patches[-1]
    await syncer.sync(p["metadata"]["uid"])
    again = client.patches[-1]["containerStatuses"][0]
    assert again["restartCount"] == 1 and "running" in again["state"] and again["lastState"]["terminated"]
    assert ("Killing", "Container c failed liveness probe, will be restarted") in events
    syncer.probes.remove_pod(p["metadata"]["uid"])

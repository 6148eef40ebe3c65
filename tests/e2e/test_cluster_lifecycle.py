"""The docker compose cluster end to end, part two (issue 12, e2e items 4, 5 and 8): a rolling update
watched pod by pod and undone, the HPA on real CPU load, and the faults a cluster exists for —
the store leader, an apiserver, the active scheduler and controller-manager, and a node going away.

Uses the cluster and namespace fixtures of conftest.py. Every fault test starts from a healthy
cluster and puts it back (the containers it killed or stopped started again, healthy) in a
`finally`. `docker kill`/`docker stop` are deliberate stops to Docker, which no restart policy
undoes (ARCHITECTURE §6); self-healing is tested with a crash: the container's main process
SIGKILLed from the host's PID namespace (a namespace's init ignores `kill -9` sent from inside it).
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import datetime

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from tests.e2e.test_cluster import exec_in, pods, ready
from tests.support.clusters import wait_for
from tests.support.compose import KUBECONFIG, ROOT, kubectl

pytestmark = pytest.mark.e2e
PROJECT = "kubeling"
ETCD = [f"{PROJECT}-etcd-{i}-1" for i in (1, 2, 3)]
APISERVER_1, APISERVER_2_URL = f"{PROJECT}-apiserver-1-1", "https://127.0.0.1:6444"
NODE_2 = f"{PROJECT}-node-2-1"
LOOPS = {"kube-scheduler": [f"{PROJECT}-scheduler-{i}-1" for i in (1, 2)],
         "kube-controller-manager": [f"{PROJECT}-controller-manager-{i}-1" for i in (1, 2)]}
# pods of these tests go away at once when their namespace is deleted
QUICK_EXIT = {"terminationGracePeriodSeconds": 0}


# --- docker ---------------------------------------------------------------------------------------

def docker(*args: str, check: bool = True, timeout: float = 60) -> str:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and p.returncode:
        raise AssertionError(f"docker {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container))[0]


def healthy(container: str) -> bool:
    state = inspect(container)["State"]
    return state["Status"] == "running" and (state.get("Health") or {}).get("Status", "healthy") == "healthy"


def compose_services() -> list[str]:
    """Every long-running container of the compose project (not the one-shot jobs)."""
    names = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
                   "--format", "{{.Names}}").split()
    return sorted(n for n in names if "bootstrap" not in n and "addons" not in n)


def cluster_healthy() -> bool:
    if not all(healthy(c) for c in compose_services()):
        return False
    nodes = json.loads(kubectl("get", "nodes", "-o", "json", check=False) or '{"items": []}')["items"]
    return len(nodes) >= 2 and all(_condition(n, "Ready") == "True" for n in nodes)


def wait_cluster_healthy(timeout: float = 180) -> None:
    wait_for(cluster_healthy, timeout, "every compose container healthy and every node Ready", interval=1)


def restore(*containers: str) -> None:
    """Start what a test killed or stopped (a deliberate stop stays down otherwise), wait healthy."""
    for c in containers:
        if inspect(c)["State"]["Status"] != "running":
            docker("start", c)
    wait_cluster_healthy()


def crash(container: str) -> None:
    """SIGKILL the container's main process as a crash would: from the host's PID namespace (a
    throwaway container with --pid=host, so it works with a remote engine too), since PID 1 of a
    container ignores `kill -9` from inside its own namespace."""
    pid = inspect(container)["State"]["Pid"]
    assert pid > 0, f"{container} is not running"
    docker("run", "--rm", "--pid=host", "--entrypoint", "sh", "kubeling/control-plane:dev", "-c", f"kill -9 {pid}")


# --- API helpers ----------------------------------------------------------------------------------

def _condition(obj: dict, kind: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def api() -> k8s.ApiClient:
    return k8s_config.new_client_from_config(str(KUBECONFIG))


def apply(namespace: str, obj: dict, *flags: str) -> None:
    kubectl(*flags, "-n", namespace, "apply", "-f", "-", input=json.dumps(obj))


def deployment(name: str, image: str, replicas: int, command: list[str] | None = None,
               container: dict | None = None, pod: dict | None = None, **spec) -> dict:
    c = {"name": name, "image": image, **({"command": command} if command else {}), **(container or {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, **spec,
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {**QUICK_EXIT, "containers": [c], **(pod or {})}}}}


def sleeper(name: str, replicas: int) -> dict:
    return deployment(name, "busybox", replicas, ["sleep", "3600"])


def live_ready(namespace: str, name: str, *flags: str) -> list[dict]:
    items = json.loads(kubectl(*flags, "-n", namespace, "get", "pods", "-l", f"app={name}", "-o", "json"))["items"]
    return [p for p in items if ready(p) and not p["metadata"].get("deletionTimestamp")]


def wait_ready(namespace: str, name: str, count: int, timeout: float, *flags: str) -> list[dict]:
    def enough() -> list[dict] | None:
        p = live_ready(namespace, name, *flags)
        return p if len(p) >= count else None
    return wait_for(enough, timeout, f"{count} Ready pods of {namespace}/{name}", interval=1)


def lease_holder(lease: str) -> str:
    return kubectl("-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}", check=False)


# --- item 4: rolling update ----------------------------------------------------------------------

def _since(ts: str) -> float:
    return time.time() - datetime.fromisoformat(ts).timestamp()   # "...Z" or the client's "...+00:00"


class PodWatch(threading.Thread):
    """Watches a namespace's pods (list, then watch from its resourceVersion) and keeps, after
    every event, the largest number of live pods (not terminating, not finished) and the smallest
    number available (Ready for at least min_ready seconds)."""

    def __init__(self, namespace: str, min_ready: float) -> None:
        super().__init__(daemon=True)
        self.ns, self.min_ready = namespace, min_ready
        self.client = api()
        self.v1 = k8s.CoreV1Api(self.client)
        self.watch = k8s_watch.Watch()
        self.pods: dict[str, dict] = {}
        self.max_live, self.min_available, self.events, self.images = 0, 1 << 30, 0, set()
        self.error: BaseException | None = None
        listed = self.client.sanitize_for_serialization(self.v1.list_namespaced_pod(namespace))
        self.rv = listed["metadata"]["resourceVersion"]
        for p in listed["items"]:
            self.pods[p["metadata"]["name"]] = p
        self._sample()

    def _sample(self) -> None:
        live = [p for p in self.pods.values()
                if not p["metadata"].get("deletionTimestamp") and p.get("status", {}).get("phase") not in
                ("Succeeded", "Failed")]
        available = [p for p in live if any(c["type"] == "Ready" and c["status"] == "True" and
                                            _since(c["lastTransitionTime"]) >= self.min_ready
                                            for c in p["status"].get("conditions") or [])]
        self.max_live = max(self.max_live, len(live))
        self.min_available = min(self.min_available, len(available))
        self.images |= {c["image"] for p in live for c in p["spec"]["containers"]}

    def run(self) -> None:
        try:
            for ev in self.watch.stream(self.v1.list_namespaced_pod, self.ns, resource_version=self.rv,
                                        timeout_seconds=300):
                obj = self.client.sanitize_for_serialization(ev["object"])
                name = obj["metadata"]["name"]
                if ev["type"] == "DELETED":
                    self.pods.pop(name, None)
                else:
                    self.pods[name] = obj
                self.events += 1
                self._sample()
        except BaseException as e:   # noqa: BLE001 - reported by the test
            self.error = e

    def stop(self) -> None:
        self.watch.stop()
        self.client.rest_client.pool_manager.clear()


def test_rolling_update_stays_within_surge_and_unavailability_and_undo_returns(cluster, ns):
    # the seed's Deployment, minReadySeconds 5 as written there
    apply(ns, deployment("nginx", "nginx:1.25", 3, minReadySeconds=5, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}))
    wait_for(lambda: json.loads(kubectl("-n", ns, "get", "deploy", "nginx", "-o", "json"))["status"]
             .get("availableReplicas") == 3, 180, "nginx 3/3 available", interval=1)
    watcher = PodWatch(ns, min_ready=5)
    assert watcher.max_live == 3 and watcher.min_available == 3, (watcher.max_live, watcher.min_available)
    watcher.start()
    try:
        kubectl("-n", ns, "set", "image", "deployment/nginx", "nginx=nginx:latest")
        kubectl("-n", ns, "rollout", "status", "deployment/nginx", "--timeout=180s", timeout=200)
        wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in pods(ns, "app=nginx")} == {"nginx:latest"},
                 60, "only nginx:latest pods left", interval=1)
        assert watcher.is_alive(), f"the watch ended early ({watcher.error!r})"
    finally:
        watcher.stop()
    assert watcher.events, f"the watch saw no events ({watcher.error!r})"
    print(f"rollout watch: {watcher.events} events, at most {watcher.max_live} pods, at least "
          f"{watcher.min_available} available")
    assert watcher.images == {"nginx:1.25", "nginx:latest"}, watcher.images
    assert watcher.max_live <= 4, f"the watch saw {watcher.max_live} pods at once (3 + maxSurge 1)"
    assert watcher.min_available >= 2, f"the watch saw {watcher.min_available} available (3 - maxUnavailable 1)"

    kubectl("-n", ns, "rollout", "undo", "deployment/nginx")
    kubectl("-n", ns, "rollout", "status", "deployment/nginx", "--timeout=180s", timeout=200)
    image = kubectl("-n", ns, "get", "deploy", "nginx", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image == "nginx:1.25"
    wait_for(lambda: (p := live_ready(ns, "nginx")) and len(p) == 3 and
             {q["spec"]["containers"][0]["image"] for q in pods(ns, "app=nginx")} == {"nginx:1.25"},
             60, "3 Ready nginx:1.25 pods and nothing else", interval=1)
    history = kubectl("-n", ns, "rollout", "history", "deployment/nginx")
    assert "2" in history and "3" in history, history   # revision 1 came back as revision 3


# --- item 5: autoscaling ---------------------------------------------------------------------------

def test_autoscale_scales_up_under_cpu_load_and_back_down_when_it_stops(cluster, ns):
    # each replica burns what its 100m limit allows (the machine may have 2 CPUs) until /tmp/stop
    # exists: 500 % of its 20m request against a 10 % target
    apply(ns, deployment("burn", "busybox", 1, ["sh", "-c", "while [ ! -e /tmp/stop ]; do :; done; exec sleep 3600"],
                         container={"resources": {"requests": {"cpu": "20m"}, "limits": {"cpu": "100m"}}}))
    wait_ready(ns, "burn", 1, 90)
    kubectl("-n", ns, "autoscale", "deployment", "burn", "--cpu-percent=10", "--min=1", "--max=3")
    # the controller-manager keeps the default 5-minute downscale window (deploy/compose.yaml);
    # autoscaling/v2 lets one HPA shorten its own
    kubectl("-n", ns, "patch", "hpa", "burn", "--type=merge",
            "-p", '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":15}}}}')

    def hpa() -> dict:
        return json.loads(kubectl("-n", ns, "get", "hpa", "burn", "-o", "json"))

    def replicas() -> int:
        return json.loads(kubectl("-n", ns, "get", "deploy", "burn", "-o", "json"))["spec"]["replicas"]

    up = wait_for(lambda: (st := hpa().get("status") or {}).get("desiredReplicas", 0) > 1 and st, 120,
                  "the HPA to want more replicas", interval=2)
    usage = [m["resource"]["current"].get("averageUtilization", 0) for m in up.get("currentMetrics") or []]
    assert usage and usage[0] > 10, up
    wait_for(lambda: replicas() > 1, 30, "the Deployment scaled up", interval=1)
    assert replicas() <= 3
    # stop the load in every replica, including any the HPA still adds
    stopped: set[str] = set()

    def calm() -> bool:
        for p in live_ready(ns, "burn"):
            name = p["metadata"]["name"]
            if name not in stopped and exec_in(ns, name, "touch /tmp/stop && echo ok").strip() == "ok":
                stopped.add(name)
        status = hpa().get("status") or {}
        return status.get("desiredReplicas") == 1 and replicas() == 1
    wait_for(calm, 150, "the HPA to scale back to 1 once the load stopped", interval=3)


# --- item 8: faults --------------------------------------------------------------------------------

ETCD_STATUS = ("import json, urllib.request; print(urllib.request.urlopen(urllib.request.Request("
               "'http://127.0.0.1:2379/v3/maintenance/status', data=b'{}', method='POST'), timeout=3).read().decode())")


def etcd_status(container: str) -> dict | None:
    try:
        out = docker("exec", container, "python3", "-c", ETCD_STATUS, check=False, timeout=15)
        return json.loads(out) if out.strip() else None
    except (ValueError, OSError, subprocess.TimeoutExpired):
        return None


def etcd_leader(members: list[str]) -> str | None:
    """The member container that the live members agree leads."""
    status = {c: s for c in members if (s := etcd_status(c))}
    ids = {s["header"]["member_id"]: c for c, s in status.items()}
    leaders = {s.get("leader") for s in status.values()}
    return ids.get(leaders.pop()) if len(leaders) == 1 else None


class Writer(threading.Thread):
    """Creates ConfigMaps one after another; keeps the names the API acknowledged."""

    def __init__(self, namespace: str) -> None:
        super().__init__(daemon=True)
        self.ns, self.v1 = namespace, k8s.CoreV1Api(api())
        self.acked: list[str] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            name = f"w-{i}"
            i += 1
            try:
                self.v1.create_namespaced_config_map(self.ns, {"metadata": {"name": name}, "data": {"i": str(i)}},
                                                     _request_timeout=10)
                self.acked.append(name)
            except Exception as e:   # noqa: BLE001 - unacknowledged: may or may not exist
                self.failures.append(f"{type(e).__name__}: {getattr(e, 'status', '')} {getattr(e, 'reason', '')}"[:200])
                time.sleep(0.2)


class Prober(threading.Thread):
    """Reads through the API (a list that goes to the store) with a 5 s deadline, one after another;
    keeps the longest time between two answers."""

    def __init__(self, namespace: str) -> None:
        super().__init__(daemon=True)
        self.ns, self.v1 = namespace, k8s.CoreV1Api(api())
        self.last = time.monotonic()
        self.longest, self.failures = 0.0, []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.v1.list_namespaced_config_map(self.ns, limit=1, _request_timeout=5)
                now = time.monotonic()
                self.longest, self.last = max(self.longest, now - self.last), now
            except Exception as e:   # noqa: BLE001
                self.failures.append(repr(e)[:200])
            time.sleep(0.2)
        self.longest = max(self.longest, time.monotonic() - self.last)


def test_store_leader_killed_while_a_deployment_scales(cluster, ns):
    wait_cluster_healthy()
    apply(ns, sleeper("scale", 1))
    wait_ready(ns, "scale", 1, 90)
    leader = wait_for(lambda: etcd_leader(ETCD), 30, "an etcdnode leader")
    writer, prober = Writer(ns), Prober(ns)
    writer.start()
    prober.start()
    try:
        wait_for(lambda: len(writer.acked) >= 5, 30, "writes acknowledged before the kill")
        kubectl("-n", ns, "scale", "deployment", "scale", "--replicas=10")
        docker("kill", leader)
        acked_at_kill = len(writer.acked)
        survivors = [c for c in ETCD if c != leader]
        new = wait_for(lambda: etcd_leader(survivors), 30, "a new leader among the other two members")
        assert new != leader
        wait_for(lambda: len(writer.acked) >= acked_at_kill + 20, 30, "writes acknowledged after the kill")
        writer.done.set()
        prober.done.set()
        writer.join(15)
        prober.join(15)
        print(f"killed {leader}, new leader {new}: {len(writer.acked)} writes acknowledged, "
              f"{len(writer.failures)} failed {writer.failures[:3]}; "
              f"reads: longest gap {prober.longest:.2f} s, {len(prober.failures)} failed")
        assert prober.longest <= 5, f"the API went {prober.longest:.1f} s without answering: {prober.failures[:5]}"
        listed = json.loads(kubectl("-n", ns, "get", "configmaps", "-o", "json"))["items"]
        present = {c["metadata"]["name"] for c in listed}
        lost = [n for n in writer.acked if n not in present]
        assert not lost, f"{len(lost)} of {len(writer.acked)} acknowledged writes lost: {lost[:10]}"
        wait_ready(ns, "scale", 10, 240)
    finally:
        writer.done.set()
        prober.done.set()
        restore(leader)
    wait_for(lambda: etcd_leader(ETCD), 30, "all three members agreeing on a leader")


def test_apiserver_killed_requests_go_through_the_other(cluster, ns):
    wait_cluster_healthy()
    other = ("--server", APISERVER_2_URL)
    assert kubectl(*other, "get", "--raw", "/readyz") == "ok"
    try:
        docker("kill", APISERVER_1)
        assert kubectl("--request-timeout=5s", "get", "--raw", "/readyz", check=False, timeout=15) != "ok", \
            "apiserver-1 still answers"
        start = time.monotonic()
        assert "node-1" in kubectl(*other, "get", "nodes", timeout=10)
        assert time.monotonic() - start < 5
        # the scheduler, controller-manager and kubelets reach the API by the alias `kubernetes`,
        # now only apiserver-2
        kubectl(*other, "-n", ns, "apply", "-f", "-", input=json.dumps(sleeper("after", 2)))
        wait_ready(ns, "after", 2, 120, *other)
    finally:
        restore(APISERVER_1)
    assert kubectl("get", "--raw", "/readyz") == "ok"


def test_active_scheduler_and_controller_manager_crash_standbys_take_over_and_they_come_back(cluster, ns):
    wait_cluster_healthy()
    hostnames = {inspect(c)["Config"]["Hostname"]: c for cs in LOOPS.values() for c in cs}
    # holderIdentity is "<hostname>_<uuid>"; the hostname is the container's
    holders = wait_for(lambda: (h := {lease: lease_holder(lease) for lease in LOOPS}) and
                       all(v.split("_")[0] in hostnames for v in h.values()) and h, 30,
                       "both leases held by running containers", interval=1)
    active = {lease: hostnames[h.split("_")[0]] for lease, h in holders.items()}
    restarts = {c: inspect(c)["RestartCount"] for c in active.values()}
    try:
        for c in active.values():
            crash(c)
        wait_for(lambda: all(lease_holder(lease) not in ("", old) for lease, old in holders.items()), 90,
                 "new holders of the scheduler and controller-manager leases", interval=1)
        print({lease: (active[lease], "->", hostnames.get(lease_holder(lease).split("_")[0])) for lease in LOOPS})
        apply(ns, sleeper("after", 2))
        wait_ready(ns, "after", 2, 120)

        def back(c: str) -> bool:
            info = inspect(c)
            return info["RestartCount"] > restarts[c] and healthy(c)
        for c in active.values():
            wait_for(lambda c=c: back(c), 90, f"{c} restarted by its restart policy and healthy", interval=1)
    finally:
        restore(*active.values())


def test_node_stopped_goes_not_ready_and_its_pods_move_then_it_comes_back(cluster, ns):
    wait_cluster_healthy()
    tolerate = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
                for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    apply(ns, deployment("web", "nginx", 4, pod={"tolerations": tolerate}))
    kubectl("-n", ns, "expose", "deployment", "web", "--port=80")
    placed = wait_ready(ns, "web", 4, 180)
    on_node_2 = {p["metadata"]["uid"]: p["status"]["podIP"] for p in placed if p["spec"]["nodeName"] == "node-2"}
    assert on_node_2, "no pod on node-2 to move"

    def endpoint_ips() -> set[str]:
        ep = json.loads(kubectl("-n", ns, "get", "endpoints", "web", "-o", "json"))
        return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
    wait_for(lambda: len(endpoint_ips()) == 4, 60, "4 endpoints", interval=1)
    try:
        docker("stop", NODE_2, timeout=60)
        wait_for(lambda: _condition(json.loads(kubectl("get", "node", "node-2", "-o", "json")), "Ready") != "True",
                 90, "node-2 NotReady after the grace period", interval=1)
        def all_on_node_1() -> list[dict] | None:
            p = live_ready(ns, "web")
            return p if len(p) == 4 and all(q["spec"]["nodeName"] == "node-1" for q in p) else None
        moved = wait_for(all_on_node_1, 120, "4 Ready pods, all on node-1", interval=1)
        wait_for(lambda: endpoint_ips() == {p["status"]["podIP"] for p in moved}, 60,
                 "the endpoints only node-1's pods", interval=1)
        assert not endpoint_ips() & set(on_node_2.values())
    finally:
        restore(NODE_2)
    # back: the evicted pods' objects and containers are cleaned up on node-2
    wait_for(lambda: not {p["metadata"]["uid"] for p in pods(ns, "app=web")} & set(on_node_2), 120,
             "the evicted pods gone from the API", interval=1)
    wait_for(lambda: not any(uid in name for name in docker("exec", NODE_2, "docker", "ps", "-a", "--format",
                                                              "{{.Names}}").split() for uid in on_node_2),
             120, "node-2's stale containers removed", interval=2)


def test_down_and_up_keeps_every_object_and_the_workloads_run_again(cluster, ns):
    """`make down && make up`: the data is on volumes, so objects survive and pods run again."""
    kubectl("-n", ns, "create", "configmap", "kept", "--from-literal=a=1")
    apply(ns, sleeper("kept", 2))
    wait_ready(ns, "kept", 2, 120)
    script = str(ROOT / "deploy" / "cluster.sh")
    for step in ("down", "up"):
        done = subprocess.run(["bash", script, step], capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    wait_cluster_healthy()
    assert kubectl("-n", ns, "get", "configmap", "kept", "-o", "jsonpath={.data.a}") == "1"
    wait_ready(ns, "kept", 2, 180)

"""The kubelet on real Docker: a store, an apiserver and one `--runtime docker` kubelet on a private
pod CIDR; pods are bound to its node directly (no scheduler) and judged by what the API shows.
Every container and network the kubelet makes carries its node's label and is removed afterwards."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import subprocess
import time

import pytest

from kubelet import podnetwork
from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer, Component


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=60).stdout


def engine_up() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_cidr() -> str:
    """A 10.250.N.0/24 no Docker network on this engine overlaps, different for each run."""
    taken = []
    for net in docker("network", "ls", "-q").split():
        for cfg in json.loads(docker("network", "inspect", net))[0].get("IPAM", {}).get("Config") or []:
            if cfg.get("Subnet"):
                taken.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    for n in secrets.SystemRandom().sample(range(256), 256):
        cidr = ipaddress.ip_network(f"10.250.{n}.0/24")
        if not any(cidr.overlaps(t) for t in taken):
            return str(cidr)
    raise RuntimeError("no free 10.250.N.0/24")


def remove_node_objects(node: str) -> None:
    label = f"label=kubeling.io/node={node}"
    ids = docker("ps", "-aq", "--filter", label, check=False).split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    for net in docker("network", "ls", "-q", "--filter", label, check=False).split():
        docker("network", "rm", net, check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not engine_up():
        pytest.skip("no Docker engine (bash deploy/install-docker.sh && bash deploy/build-images.sh)")
    tmp = tmp_path_factory.mktemp("docker-kubelet")
    node = f"dk-{secrets.token_hex(3)}"
    store = EtcdnodeCluster(tmp / "store", size=1)
    api = kubelet = None
    try:
        store.start_all()
        api = ApiServer(tmp / "api", store.client_urls).start()
        api.node, api.cidr = node, free_cidr()
        kubelet = Component(tmp, "kubelet", [
            "--kubeconfig", str(api.kubeconfig), "--hostname-override", node, "--node-ip", "127.0.0.1",
            "--runtime", "docker", "--root-dir", str(tmp / "kubelet"), "--cluster-dns", "10.96.0.10",
            "--cluster-domain", "cluster.local", "--pod-cidr", api.cidr, "--healthz-port", str(free_port()),
            "--port", str(free_port()),
            "--node-status-update-frequency", "2", "--sync-frequency", "2"]).start()
        api.kubelet = kubelet
        wait_for(lambda: api.http("GET", f"/api/v1/nodes/{node}")[0] == 200, 60, "the docker node registered")
        yield api
    finally:
        if kubelet is not None:
            kubelet.stop()
        remove_node_objects(node)
        if getattr(api, "cidr", None):
            asyncio.run(podnetwork.remove(api.cidr, "10.0.0.0/8"))
        if api is not None:
            api.stop()
        store.stop()


_count = iter(range(10_000))


@pytest.fixture
def ns(cluster, request):
    """A namespace with what the controller-manager (not run here) would put in it: the default
    ServiceAccount and kube-root-ca.crt, which every pod's kube-api-access volume needs."""
    name = f"d{next(_count)}-" + "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:40]
    assert cluster.http("POST", "/api/v1/namespaces", {"metadata": {"name": name}})[0] == 201
    assert cluster.http("POST", f"/api/v1/namespaces/{name}/serviceaccounts", {"metadata": {"name": "default"}})[0] == 201
    ca = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": cluster.ca.read_text()}}
    assert cluster.http("POST", f"/api/v1/namespaces/{name}/configmaps", ca)[0] == 201
    return name


def create_pod(cluster, ns: str, name: str, containers: list[dict], **spec) -> None:
    body = {"metadata": {"name": name}, "spec": {"nodeName": cluster.node, "terminationGracePeriodSeconds": 5,
                                                  "containers": containers, **spec}}
    code, resp, _ = cluster.http("POST", f"/api/v1/namespaces/{ns}/pods", body)
    assert code == 201, resp


def get_pod(cluster, ns: str, name: str) -> dict:
    return cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/{name}")[1]


def status_when(cluster, ns: str, name: str, pred, what: str, timeout: float = 60) -> dict:
    def check():
        st = get_pod(cluster, ns, name).get("status") or {}
        return st if pred(st) else None
    try:
        return wait_for(check, timeout, what)
    except TimeoutError:
        raise AssertionError(f"{what}: {json.dumps(get_pod(cluster, ns, name).get('status'), indent=1)}\n"
                             f"{cluster.kubelet.log.read_text()[-3000:]}") from None


def containers(st: dict, key: str = "containerStatuses") -> dict[str, dict]:
    return {c["name"]: c for c in st.get(key) or []}


def ready(st: dict) -> bool:
    return st.get("phase") == "Running" and any(c["type"] == "Ready" and c["status"] == "True"
                                                for c in st.get("conditions") or [])


def busybox(name: str, script: str, **extra) -> dict:
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", script],
            **extra}


def test_two_containers_reach_each_other_over_localhost(cluster, ns):
    create_pod(cluster, ns, "pair", [
        busybox("web", "echo hello-from-web > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"),
        busybox("client", "until timeout 2 wget -qO /tmp/got http://127.0.0.1:8080/index.html; do sleep 0.2; done;"
                          " cat /tmp/got; exec sleep 3600")])
    st = status_when(cluster, ns, "pair", ready, "the pair Running and Ready")
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(cluster.cidr)
    assert st["podIPs"] == [{"ip": st["podIP"]}] and st["hostIP"] == "127.0.0.1"
    cs = containers(st)
    assert all(c["ready"] and c["started"] and c["restartCount"] == 0 for c in cs.values())
    assert cs["web"]["containerID"].startswith("docker://") and cs["web"]["imageID"].startswith("docker")
    types = [c["type"] for c in st["conditions"]]
    assert types == ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    client = cs["client"]["containerID"].removeprefix("docker://")
    wait_for(lambda: "hello-from-web" in docker("logs", client), 30, "the client fetched the page over localhost")
    row = cluster.kubectl("-n", ns, "get", "pod", "pair", "-o", "wide").stdout.splitlines()[1].split()
    assert row[1:4] == ["2/2", "Running", "0"] and row[5] == st["podIP"] and row[6] == cluster.node
    events = cluster.kubectl("-n", ns, "get", "events").stdout
    assert "Created container: web" in events and "Started container client" in events
    assert 'Container image "busybox" already present on machine' in events


def test_node_reports_the_engine_and_the_host(cluster):
    def ready_node():
        node = cluster.http("GET", f"/api/v1/nodes/{cluster.node}")[1]
        return {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True" and node
    node = wait_for(ready_node, 30, "the node Ready once its pod network exists")
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"] == "docker://" + docker("version", "-f", "{{.Server.Version}}").strip()
    assert info["kubeletVersion"].startswith("v1.") and info["operatingSystem"] == "linux"
    assert node["status"]["capacity"]["cpu"] == docker("info", "-f", "{{.NCPU}}").strip()
    assert node["status"]["capacity"]["memory"].endswith("Ki")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == cluster.node
    assert cluster.http("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{cluster.node}")[0] == 200


def test_crash_loop_back_off(cluster, ns):
    create_pod(cluster, ns, "crasher", [busybox("c", "exit 1")])

    def looping(st):
        c = containers(st).get("c") or {}
        return c.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" and c["restartCount"] >= 1
    st = status_when(cluster, ns, "crasher", looping, "CrashLoopBackOff")
    c = containers(st)["c"]
    assert st["phase"] == "Running" and not c["ready"]
    assert c["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=c pod=crasher_")
    assert c["lastState"]["terminated"]["exitCode"] == 1 and c["lastState"]["terminated"]["reason"] == "Error"
    row = cluster.kubectl("-n", ns, "get", "pod", "crasher").stdout.splitlines()[1].split()
    assert row[1:3] == ["0/1", "CrashLoopBackOff"] and int(row[3]) >= 1
    st = status_when(cluster, ns, "crasher", lambda st: containers(st)["c"]["restartCount"] >= 2, "a restart after 10 s",
                     timeout=40)


def test_restart_policy_never_success_is_completed(cluster, ns):
    create_pod(cluster, ns, "once", [busybox("c", "echo done > /dev/termination-log")], restartPolicy="Never")
    st = status_when(cluster, ns, "once", lambda st: st.get("phase") == "Succeeded", "Succeeded")
    term = containers(st)["c"]["state"]["terminated"]
    assert (term["exitCode"], term["reason"], term["message"]) == (0, "Completed", "done\n")
    assert {c["type"]: c.get("reason") for c in st["conditions"]}["Ready"] == "PodCompleted"
    assert cluster.kubectl("-n", ns, "get", "pod", "once").stdout.splitlines()[1].split()[2] == "Completed"


def test_init_containers_run_in_order(cluster, ns):
    work = [{"name": "work", "mountPath": "/work"}]
    create_pod(cluster, ns, "inits", [busybox("app", 'test "$(cat /work/order)" = "first second" && exec sleep 3600',
                                              volumeMounts=work)],
               initContainers=[busybox("first", "echo -n first > /work/order", volumeMounts=work),
                               busybox("second", "echo -n ' second' >> /work/order", volumeMounts=work)],
               volumes=[{"name": "work", "emptyDir": {}}])
    st = status_when(cluster, ns, "inits", ready, "the app after both init containers")
    inits = containers(st, "initContainerStatuses")
    assert [inits[n]["state"]["terminated"]["reason"] for n in ("first", "second")] == ["Completed", "Completed"]
    assert inits["first"]["state"]["terminated"]["finishedAt"] <= inits["second"]["state"]["terminated"]["startedAt"]
    assert containers(st)["app"]["restartCount"] == 0


def test_env_from_config_map_and_the_error_when_it_is_missing(cluster, ns):
    env = [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
           {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
           {"name": "WHO", "value": "$(GREETING) from $(POD_NAME)"},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    create_pod(cluster, ns, "envy", [busybox("c", 'echo "$GREETING|$POD_IP|$NODE|$WHO" > /dev/termination-log',
                                             env=env)], restartPolicy="Never")

    def config_error(st):
        return (containers(st).get("c") or {}).get("state", {}).get("waiting", {}).get("reason") == "CreateContainerConfigError"
    st = status_when(cluster, ns, "envy", config_error, "CreateContainerConfigError")
    assert containers(st)["c"]["state"]["waiting"]["message"] == 'configmap "settings" not found'
    assert st["phase"] == "Pending"
    assert cluster.kubectl("-n", ns, "get", "pod", "envy").stdout.splitlines()[1].split()[2] == "CreateContainerConfigError"
    cluster.kubectl("-n", ns, "create", "configmap", "settings", "--from-literal=greeting=hi")
    st = status_when(cluster, ns, "envy", lambda st: st.get("phase") == "Succeeded", "started once the ConfigMap exists")
    # $(POD_NAME) is defined after WHO, so it stays as written, as on Kubernetes
    assert containers(st)["c"]["state"]["terminated"]["message"] == \
        f"hi|{st['podIP']}|{cluster.node}|hi from $(POD_NAME)\n"


def test_dns_settings_hostname_and_hosts_file(cluster, ns):
    create_pod(cluster, ns, "dns", [busybox("c", "{ cat /etc/resolv.conf; hostname; grep dns /etc/hosts; } "
                                                 "> /dev/termination-log")], restartPolicy="Never")
    st = status_when(cluster, ns, "dns", lambda st: st.get("phase") == "Succeeded", "Succeeded")
    lines = containers(st)["c"]["state"]["terminated"]["message"].splitlines()
    assert lines[0] == "nameserver 10.96.0.10"
    assert lines[1].startswith(f"search {ns}.svc.cluster.local svc.cluster.local cluster.local")
    assert lines[2] == "options ndots:5" and lines[3] == "dns" and lines[4] == f"{st['podIP']}\tdns"


def test_missing_image_is_err_image_pull_then_back_off(cluster, ns):
    create_pod(cluster, ns, "noimage", [{"name": "c", "image": "kubeling-test/nosuch:1"}])

    def reason(st):
        return (containers(st).get("c") or {}).get("state", {}).get("waiting", {}).get("reason")
    st = status_when(cluster, ns, "noimage", lambda st: reason(st) == "ErrImagePull", "ErrImagePull")
    assert 'failed to pull and unpack image "docker.io/kubeling-test/nosuch:1"' in \
        containers(st)["c"]["state"]["waiting"]["message"]
    st = status_when(cluster, ns, "noimage", lambda st: reason(st) == "ImagePullBackOff", "ImagePullBackOff", 30)
    assert containers(st)["c"]["state"]["waiting"]["message"] == 'Back-off pulling image "kubeling-test/nosuch:1"'
    assert st["phase"] == "Pending"


def test_a_removed_container_comes_back_with_restart_count_1(cluster, ns):
    create_pod(cluster, ns, "phoenix", [busybox("c", "exec sleep 3600")])
    st = status_when(cluster, ns, "phoenix", ready, "Running")
    first = containers(st)["c"]["containerID"]
    docker("rm", "-f", first.removeprefix("docker://"))

    def back(st):
        c = containers(st).get("c") or {}
        return ready(st) and c.get("containerID") != first and c.get("restartCount") == 1
    st = status_when(cluster, ns, "phoenix", back, "a new container, restartCount 1")
    row = cluster.kubectl("-n", ns, "get", "pod", "phoenix").stdout.splitlines()[1].split()
    assert row[1:4] == ["1/1", "Running", "1"]


def test_kubelet_restart_adopts_running_containers(cluster, ns):
    create_pod(cluster, ns, "steady", [busybox("c", "exec sleep 3600")])
    before = status_when(cluster, ns, "steady", ready, "Running")
    cluster.kubelet.kill()
    cluster.kubelet.start()
    create_pod(cluster, ns, "after", [busybox("c", "exec sleep 3600")])
    status_when(cluster, ns, "after", ready, "a pod started by the restarted kubelet")
    after = get_pod(cluster, ns, "steady")["status"]
    assert containers(after)["c"]["containerID"] == containers(before)["c"]["containerID"]
    assert containers(after)["c"]["restartCount"] == 0 and after["startTime"] == before["startTime"]
    assert containers(after)["c"]["state"] == containers(before)["c"]["state"] and after["podIP"] == before["podIP"]
    assert docker("inspect", "-f", "{{.State.Running}}", containers(after)["c"]["containerID"][9:]).strip() == "true"


def test_deletion_removes_containers_and_sandbox(cluster, ns):
    create_pod(cluster, ns, "doomed", [busybox("c", "exec sleep 3600")])
    st = status_when(cluster, ns, "doomed", ready, "Running")
    uid = get_pod(cluster, ns, "doomed")["metadata"]["uid"]
    assert len(docker("ps", "-aq", "--filter", f"label=io.kubernetes.pod.uid={uid}").split()) == 2  # app + pause
    cluster.kubectl("-n", ns, "delete", "pod", "doomed", "--wait=false")
    wait_for(lambda: cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/doomed")[0] == 404, 30, "the pod gone")
    assert docker("ps", "-aq", "--filter", f"label=io.kubernetes.pod.uid={uid}").split() == []
    assert st["podIP"]


def test_limits_reach_docker_and_oom_is_reported(cluster, ns):
    create_pod(cluster, ns, "hog", [busybox("c", 'x=$(head -c 100m /dev/zero | tr "\\0" a); echo ${#x}',
                                            resources={"limits": {"memory": "32Mi", "cpu": "200m"}})],
               restartPolicy="Never")
    st = status_when(cluster, ns, "hog", lambda st: st.get("phase") == "Failed", "Failed")
    term = containers(st)["c"]["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137)
    limits = json.loads(docker("inspect", "-f", "{{json .HostConfig}}", containers(st)["c"]["containerID"][9:]))
    assert (limits["Memory"], limits["CpuQuota"], limits["CpuPeriod"]) == (32 * 2**20, 20_000, 100_000)
    assert limits["RestartPolicy"]["Name"] == "no"


def test_graceful_deletion_sigterm_then_sigkill_after_the_grace_period(cluster, ns, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    os.chmod(marks, 0o777)
    mount = [{"name": "marks", "mountPath": "/marks"}]
    create_pod(cluster, ns, "bye", [
        busybox("polite", "trap 'echo TERM > /marks/polite; exit 0' TERM; while true; do sleep 0.2; done",
                volumeMounts=mount),
        busybox("stubborn", "trap 'echo TERM > /marks/stubborn' TERM; while true; do sleep 0.2; done",
                volumeMounts=mount)],
        volumes=[{"name": "marks", "hostPath": {"path": str(marks), "type": "Directory"}}],
        terminationGracePeriodSeconds=3)
    status_when(cluster, ns, "bye", ready, "Running")
    started = time.monotonic()
    cluster.kubectl("-n", ns, "delete", "pod", "bye", "--wait=false")
    wait_for(lambda: cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/bye")[0] == 404, 30, "the pod gone")
    assert 3 <= time.monotonic() - started < 20          # the stubborn one was killed when the grace ran out
    assert (marks / "polite").read_text() == "TERM\n" and (marks / "stubborn").read_text() == "TERM\n"


def test_host_network_pod_uses_the_node_address(cluster, ns):
    create_pod(cluster, ns, "hostnet", [busybox("c", "exec sleep 3600")], hostNetwork=True)
    st = status_when(cluster, ns, "hostnet", ready, "Running")
    assert st["podIP"] == "127.0.0.1" == st["hostIP"]


def test_config_map_and_secret_volumes(cluster, ns):
    create_pod(cluster, ns, "files", [busybox("c", "{ cat /cfg/conf/app.conf; echo; ls /cfg; stat -L -c %a /cfg/conf/app.conf;"
                                                   " cat /sec/token; echo; stat -L -c %a /sec/token; } > /dev/termination-log",
                                              volumeMounts=[{"name": "cfg", "mountPath": "/cfg"},
                                                            {"name": "sec", "mountPath": "/sec", "readOnly": True}])],
               restartPolicy="Never",
               volumes=[{"name": "cfg", "configMap": {"name": "app", "items": [{"key": "app.conf", "path": "conf/app.conf"}],
                                                      "defaultMode": 0o640}},
                        {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}}])
    wait_for(lambda: 'configmap "app" not found' in cluster.kubectl("-n", ns, "get", "events").stdout, 30,
             "a FailedMount event while the ConfigMap is missing")
    st = get_pod(cluster, ns, "files")["status"]
    assert containers(st)["c"]["state"] == {"waiting": {"reason": "ContainerCreating"}} and st["phase"] == "Pending"
    cluster.kubectl("-n", ns, "create", "configmap", "app", "--from-literal=app.conf=port=80", "--from-literal=other=x")
    cluster.kubectl("-n", ns, "create", "secret", "generic", "creds", "--from-literal=token=s3cret")
    st = status_when(cluster, ns, "files", lambda st: st.get("phase") == "Succeeded", "Succeeded once both exist")
    assert containers(st)["c"]["state"]["terminated"]["message"].splitlines() == ["port=80", "conf", "640", "s3cret", "400"]


def test_a_config_map_change_reaches_the_running_container(cluster, ns):
    cluster.kubectl("-n", ns, "create", "configmap", "live", "--from-literal=mode=old")
    create_pod(cluster, ns, "watcher", [busybox("c", "until grep -q new /cfg/mode; do sleep 0.2; done; "
                                                     "cat /cfg/mode > /dev/termination-log",
                                                volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])],
               restartPolicy="Never", volumes=[{"name": "cfg", "configMap": {"name": "live"}}])
    status_when(cluster, ns, "watcher", ready, "Running with the old value")
    cluster.kubectl("-n", ns, "patch", "configmap", "live", "-p", '{"data":{"mode":"new"}}')
    st = status_when(cluster, ns, "watcher", lambda st: st.get("phase") == "Succeeded", "the new value seen inside")
    assert containers(st)["c"]["state"]["terminated"]["message"] == "new"


def test_a_dead_sandbox_is_replaced_and_its_containers_restarted(cluster, ns):
    create_pod(cluster, ns, "resandbox", [busybox("c", "exec sleep 3600")])
    st = status_when(cluster, ns, "resandbox", ready, "Running")
    uid = get_pod(cluster, ns, "resandbox")["metadata"]["uid"]
    pause = docker("ps", "-q", "--filter", f"label=io.kubernetes.pod.uid={uid}",
                   "--filter", "label=io.kubernetes.docker.type=podsandbox").split()
    assert len(pause) == 1
    docker("kill", pause[0])

    def recreated(st):
        return ready(st) and containers(st)["c"]["restartCount"] == 1
    after = status_when(cluster, ns, "resandbox", recreated, "a new sandbox and the container restarted")
    assert after["podIP"] and containers(after)["c"]["containerID"] != containers(st)["c"]["containerID"]
    assert "Pod sandbox changed, it will be killed and re-created." in cluster.kubectl("-n", ns, "get", "events").stdout


def test_pull_policy_never_with_a_missing_image(cluster, ns):
    create_pod(cluster, ns, "never", [{"name": "c", "image": "kubeling-test/absent:2", "imagePullPolicy": "Never"}])

    def never(st):
        return (containers(st).get("c") or {}).get("state", {}).get("waiting", {}).get("reason") == "ErrImageNeverPull"
    st = status_when(cluster, ns, "never", never, "ErrImageNeverPull")
    assert containers(st)["c"]["state"]["waiting"]["message"] == \
        'Container image "kubeling-test/absent:2" is not present with pull policy of Never'

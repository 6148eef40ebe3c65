"""Pod features of a real `--runtime docker` kubelet that need more than the pod: PersistentVolumeClaims
bound by the controller-manager's persistentvolume-binder (run here alone) to hostPath and local
PersistentVolumes, the Services' environment variables, and runAsNonRoot against the image's user."""
from __future__ import annotations

import secrets

import pytest

from tests.integration.test_docker_kubelet import (busybox, cluster, containers, create_pod, docker, get_pod,  # noqa: F401
                                                   ns, status_when)
from tests.support.clusters import free_port, wait_for
from tests.support.control_plane import Component


@pytest.fixture(scope="module")
def binder(cluster, tmp_path_factory):
    proc = Component(tmp_path_factory.mktemp("binder"), "controllers", [
        "--kubeconfig", str(cluster.kubeconfig), "--controllers", "persistentvolume-binder",
        "--port", str(free_port())]).start()
    yield proc
    proc.stop()


def create(cluster, path: str, body: dict) -> dict:
    code, resp, _ = cluster.http("POST", path, body)
    assert code == 201, resp
    return resp


def volume(cluster, name: str, source: dict, size: str, policy: str = "Retain", cls: str = "") -> None:
    create(cluster, "/api/v1/persistentvolumes", {"metadata": {"name": name}, "spec": {
        "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": policy,
        "storageClassName": cls, **source}})


def claim(cluster, ns: str, name: str, size: str, cls: str = "") -> None:
    create(cluster, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, "storageClassName": cls}})


def phase(cluster, path: str) -> str | None:
    code, obj, _ = cluster.http("GET", path)
    return obj.get("status", {}).get("phase") if code == 200 else None


def events(cluster, ns: str) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in cluster.http("GET", f"/api/v1/namespaces/{ns}/events")[1]["items"]]


def done(st: dict) -> bool:
    return st.get("phase") in ("Succeeded", "Failed")


def message(st: dict) -> str:
    return containers(st)["c"]["state"]["terminated"]["message"]


def test_a_claim_keeps_its_data_from_one_pod_to_the_next(cluster, ns, binder, tmp_path):
    data = tmp_path / "pv" / "vol"           # DirectoryOrCreate: the kubelet makes it
    pv = f"{ns}-pv"          # a class of its own: no other test's volume is a candidate
    volume(cluster, pv, {"hostPath": {"path": str(data), "type": "DirectoryOrCreate"}}, "2Gi", cls=ns)
    volume(cluster, f"{ns}-big", {"hostPath": {"path": str(tmp_path / "big")}}, "10Gi", cls=ns)   # fits, not the smallest
    for name in (pv, f"{ns}-big"):       # both candidates, before the claim comes
        wait_for(lambda: phase(cluster, f"/api/v1/persistentvolumes/{name}") == "Available", 30, f"{name} Available")
    claim(cluster, ns, "notes", "500Mi", ns)
    pvc_path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims/notes"
    wait_for(lambda: phase(cluster, pvc_path) == "Bound", 30, "the claim Bound")
    pvc = cluster.http("GET", pvc_path)[1]
    assert pvc["spec"]["volumeName"] == pv and pvc["status"]["capacity"] == {"storage": "2Gi"}
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    bound = cluster.http("GET", f"/api/v1/persistentvolumes/{pv}")[1]
    assert bound["status"]["phase"] == "Bound" and bound["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    row = cluster.kubectl("-n", ns, "get", "pvc", "notes").stdout.splitlines()[1].split()
    assert row[1:6] == ["Bound", pv, "2Gi", "RWO", ns]
    mount = [{"name": "d", "mountPath": "/data"}]
    create_pod(cluster, ns, "writer", [busybox("c", "echo kept > /data/note", volumeMounts=mount)],
               restartPolicy="Never", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "notes"}}])
    assert status_when(cluster, ns, "writer", done, "the writer done")["phase"] == "Succeeded"
    assert (data / "note").read_text() == "kept\n"
    cluster.kubectl("-n", ns, "delete", "pod", "writer", "--wait=false")
    wait_for(lambda: cluster.http("GET", f"/api/v1/namespaces/{ns}/pods/writer")[0] == 404, 30, "the writer gone")
    create_pod(cluster, ns, "reader", [busybox("c", "{ cat /data/note; touch /data/x 2>/dev/null && echo rw || echo ro; }"
                                                    " > /dev/termination-log", volumeMounts=mount)],
               restartPolicy="Never",
               volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "notes", "readOnly": True}}])
    st = status_when(cluster, ns, "reader", done, "the reader done")
    assert st["phase"] == "Succeeded" and message(st) == "kept\nro\n"
    cluster.kubectl("-n", ns, "delete", "pod", "reader", "--wait=false")
    cluster.kubectl("-n", ns, "delete", "pvc", "notes")
    wait_for(lambda: phase(cluster, f"/api/v1/persistentvolumes/{pv}") == "Released", 30, "Retain: the volume Released")
    assert (data / "note").exists()
    for name in (pv, f"{ns}-big"):
        cluster.http("DELETE", f"/api/v1/persistentvolumes/{name}")


def test_an_unbound_claim_holds_the_pod_until_a_volume_appears(cluster, ns, binder, tmp_path):
    claim(cluster, ns, "late", "1Gi")
    wait_for(lambda: ("FailedBinding", "no persistent volumes available for this claim and no storage class is set")
             in events(cluster, ns), 30, "FailedBinding on the claim")
    create_pod(cluster, ns, "waiter", [busybox("c", "echo ok > /data/mark", volumeMounts=[{"name": "d", "mountPath": "/data"}])],
               restartPolicy="Never", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "late"}}])
    failed = ("FailedMount", ("Unable to attach or mount volumes: unmounted volumes=[d], unattached volumes=[], "
                              f"failed to process volumes=[d]: error processing PVC {ns}/late: PVC is not bound"))
    wait_for(lambda: failed in events(cluster, ns), 30, "FailedMount while the claim is unbound")
    st = get_pod(cluster, ns, "waiter")["status"]
    assert st["phase"] == "Pending" and containers(st)["c"]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    local = tmp_path / "disk"
    local.mkdir()
    pv = f"{ns}-local"
    affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [cluster.node]}]}]}}
    volume(cluster, pv, {"local": {"path": str(local)}, "nodeAffinity": affinity}, "5Gi", "Delete")
    st = status_when(cluster, ns, "waiter", done, "the pod started once the claim bound", timeout=60)
    assert st["phase"] == "Succeeded" and (local / "mark").read_text() == "ok\n"
    cluster.kubectl("-n", ns, "delete", "pod", "waiter", "--wait=false")
    cluster.kubectl("-n", ns, "delete", "pvc", "late")
    wait_for(lambda: cluster.http("GET", f"/api/v1/persistentvolumes/{pv}")[0] == 404, 30, "Delete: the volume deleted")
    assert (local / "mark").exists()          # the object goes; the data on the node stays


def test_service_environment_variables(cluster, ns):
    svc = create(cluster, f"/api/v1/namespaces/{ns}/services", {"metadata": {"name": "my-web"}, "spec": {
        "selector": {"app": "x"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                                            {"name": "dns", "port": 53, "protocol": "UDP"}]}})
    create(cluster, f"/api/v1/namespaces/{ns}/services", {"metadata": {"name": "headless"}, "spec": {
        "clusterIP": "None", "selector": {"app": "x"}, "ports": [{"port": 80}]}})
    create(cluster, f"/api/v1/namespaces/{ns}/services", {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "example.com"}})
    ip = svc["spec"]["clusterIP"]
    kubernetes_ip = cluster.http("GET", "/api/v1/namespaces/default/services/kubernetes")[1]["spec"]["clusterIP"]
    create_pod(cluster, ns, "envs", [busybox("c", "env | grep -E '^(MY_WEB|HEADLESS|EXT|KUBERNETES)_' | sort "
                                                  "> /dev/termination-log",
                                             env=[{"name": "MY_WEB_SERVICE_PORT", "value": "8000"}])],
               restartPolicy="Never")
    st = status_when(cluster, ns, "envs", done, "the pod done")
    assert message(st).splitlines() == sorted([
        f"KUBERNETES_PORT=tcp://{kubernetes_ip}:443", f"KUBERNETES_PORT_443_TCP=tcp://{kubernetes_ip}:443",
        f"KUBERNETES_PORT_443_TCP_ADDR={kubernetes_ip}", "KUBERNETES_PORT_443_TCP_PORT=443",
        "KUBERNETES_PORT_443_TCP_PROTO=tcp", f"KUBERNETES_SERVICE_HOST={kubernetes_ip}", "KUBERNETES_SERVICE_PORT=443",
        "KUBERNETES_SERVICE_PORT_HTTPS=443",
        f"MY_WEB_PORT=tcp://{ip}:80", f"MY_WEB_PORT_53_UDP=udp://{ip}:53", f"MY_WEB_PORT_53_UDP_ADDR={ip}",
        "MY_WEB_PORT_53_UDP_PORT=53", "MY_WEB_PORT_53_UDP_PROTO=udp", f"MY_WEB_PORT_80_TCP=tcp://{ip}:80",
        f"MY_WEB_PORT_80_TCP_ADDR={ip}", "MY_WEB_PORT_80_TCP_PORT=80", "MY_WEB_PORT_80_TCP_PROTO=tcp",
        f"MY_WEB_SERVICE_HOST={ip}", "MY_WEB_SERVICE_PORT=8000", "MY_WEB_SERVICE_PORT_DNS=53",
        "MY_WEB_SERVICE_PORT_HTTP=80"])


@pytest.fixture
def named_user_image():
    """busybox whose image config says `USER nobody` (made with docker commit: nothing is pulled)."""
    image = f"kubeling-test/named-user:{secrets.token_hex(3)}"
    cid = docker("create", "--label", "io.kubeling.test=1", "busybox", "true").strip()
    try:
        docker("commit", "--change", "USER nobody", cid, image)
    finally:
        docker("rm", "-f", cid, check=False)
    yield image
    docker("rmi", "-f", image, check=False)


def test_run_as_non_root(cluster, ns, named_user_image):
    non_root = {"runAsNonRoot": True}
    create_pod(cluster, ns, "as-root", [busybox("c", "id -u")], securityContext=non_root, restartPolicy="Never")
    create_pod(cluster, ns, "as-name", [{"name": "c", "image": named_user_image, "imagePullPolicy": "Never",
                                         "command": ["id", "-u"]}], securityContext=non_root, restartPolicy="Never")
    create_pod(cluster, ns, "as-1000", [busybox("c", "id -u > /dev/termination-log",
                                                securityContext={"runAsUser": 1000})],
               securityContext=non_root, restartPolicy="Never")

    def config_error(st):
        return (containers(st).get("c") or {}).get("state", {}).get("waiting", {}).get("reason") == \
            "CreateContainerConfigError"
    for name, text in (("as-root", "image will run as root"),
                       ("as-name", "image has non-numeric user (nobody), cannot verify user is non-root")):
        st = status_when(cluster, ns, name, config_error, f"{name}: CreateContainerConfigError")
        uid = get_pod(cluster, ns, name)["metadata"]["uid"]
        assert containers(st)["c"]["state"]["waiting"]["message"] == \
            f'container has runAsNonRoot and {text} (pod: "{name}_{ns}({uid})", container: c)'
        assert st["phase"] == "Pending"
    st = status_when(cluster, ns, "as-1000", done, "the runAsUser 1000 pod done")
    assert st["phase"] == "Succeeded" and message(st) == "1000\n"
    for name in ("as-root", "as-name"):
        cluster.kubectl("-n", ns, "delete", "pod", name, "--wait=false")

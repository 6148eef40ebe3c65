"""downwardAPI and projected volumes, service account tokens and memory emptyDir sizes
(kubelet/volumes.py, kubelet/tokens.py, kubelet/downward.py), and the kube-api-access volume the
ServiceAccount admission adds (apiserver/admission.py), against upstream's shapes and messages."""
from __future__ import annotations

import os
import stat
import time
from datetime import datetime, timezone

import pytest

from apiserver.admission import admit_pod
from kubeling.client import ApiError
from kubelet.downward import format_map
from kubelet.tokens import TokenManager, needs_refresh
from kubelet.volumes import VolumeError, VolumeManager
from tests.unit.test_kubelet_podconfig import FakeClient as ObjectClient

SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeClient:
    """ConfigMaps by name, and TokenRequests answered with numbered tokens (or refused)."""

    def __init__(self, configmaps: dict | None = None, accounts: tuple[str, ...] = ("default",)) -> None:
        self.configmaps = configmaps or {}
        self.accounts = accounts
        self.requests: list[tuple[str, dict]] = []

    async def get(self, resource, name, namespace=None, sub=None):
        if resource.plural == "configmaps" and name in self.configmaps:
            return {"data": self.configmaps[name]}
        raise ApiError(404, {"reason": "NotFound", "message": f'{resource.plural} "{name}" not found'})

    async def create(self, resource, body, namespace=None, sub_of=None, sub=None):
        assert (resource.plural, sub) == ("serviceaccounts", "token")
        if sub_of not in self.accounts:
            raise ApiError(404, {"reason": "NotFound", "message": f'serviceaccounts "{sub_of}" not found'})
        self.requests.append((sub_of, body))
        lifetime = body["spec"]["expirationSeconds"]
        return {"spec": {**body["spec"], "expirationSeconds": lifetime},
                "status": {"token": f"token-{len(self.requests)}", "expirationTimestamp": stamp(time.time() + lifetime)}}


def pod(volumes: list[dict], **spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"b": 'say "hi"', "a": "1"},
                         "annotations": {"note": "x\ny"}},
            "spec": {"serviceAccountName": "default", "volumes": volumes,
                     "containers": [{"name": "c", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}}], **spec}}


def files(path) -> dict[str, tuple[str, int]]:
    """What a container sees in the volume: name -> (content, mode), through the ..data links."""
    return {name: ((path / name).read_text(), stat.S_IMODE(os.stat(path / name).st_mode))
            for name in os.listdir(path) if not name.startswith("..") and (path / name).is_file()}


def test_format_map_is_go_quoted_sorted_and_has_no_final_newline():
    assert format_map({"b": 'say "hi"', "a": "1", "c": "x\ny"}) == 'a="1"\nb="say \\"hi\\""\nc="x\\ny"'


async def test_downward_api_volume_files(tmp_path):
    items = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
             {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}, "mode": 0o600},
             {"path": "sub/name", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
             {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]
    m = VolumeManager(FakeClient(), tmp_path, {"memory": "8Gi"})
    await m.setup(pod([{"name": "info", "downwardAPI": {"items": items, "defaultMode": 0o644}}]))
    got = files(tmp_path / "u1/volumes/kubernetes.io~downward-api/info")
    assert got["labels"] == ('a="1"\nb="say \\"hi\\""', 0o644) and got["annotations"] == ('note="x\\ny"', 0o600)
    assert got["cpu"][0] == "250" and got["mem"][0] == "64"
    assert (tmp_path / "u1/volumes/kubernetes.io~downward-api/info/sub/name").read_text() == "p"


async def test_downward_api_errors_are_aggregated(tmp_path):
    items = [{"path": "a", "fieldRef": {"fieldPath": "spec.nodeName"}},
             {"path": "b", "resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}}]
    m = VolumeManager(FakeClient(), tmp_path, {})
    with pytest.raises(VolumeError) as e:
        await m.setup(pod([{"name": "info", "downwardAPI": {"items": items}}]))
    assert str(e.value) == ('MountVolume.SetUp failed for volume "info" : '
                            "[unsupported fieldPath: spec.nodeName, container nope not found]")


async def test_the_kube_api_access_volume_is_token_ca_and_namespace(tmp_path):
    p = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    admit_pod(p)
    client = FakeClient({"kube-root-ca.crt": {"ca.crt": "CA PEM\n", "other": "x"}})
    m = VolumeManager(client, tmp_path, {})
    await m.setup(p)
    name = p["spec"]["volumes"][0]["name"]
    got = files(tmp_path / f"u1/volumes/kubernetes.io~projected/{name}")
    assert got == {"token": ("token-1", 0o644), "ca.crt": ("CA PEM\n", 0o644), "namespace": ("ns", 0o644)}
    assert client.requests == [("default", {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
        "audiences": None, "expirationSeconds": 3607,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}}})]
    await m.setup(p)
    assert len(client.requests) == 1            # fresh enough: the cached token is written again


async def test_projected_errors_name_every_missing_source(tmp_path):
    p = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
         "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "busybox"}]}}
    admit_pod(p)
    with pytest.raises(VolumeError) as e:
        await VolumeManager(FakeClient(), tmp_path, {}).setup(p)
    assert str(e.value) == (f'MountVolume.SetUp failed for volume "{p["spec"]["volumes"][0]["name"]}" : '
                            '[failed to fetch token: serviceaccounts "robot" not found, '
                            'configmap "kube-root-ca.crt" not found]')


async def test_projected_audience_secret_and_optional_sources(tmp_path):
    client = FakeClient({"settings": {"mode": "fast"}})
    sources = [{"serviceAccountToken": {"path": "vault", "audience": "vault", "expirationSeconds": 600}},
               {"configMap": {"name": "settings"}},
               {"secret": {"name": "absent", "optional": True}}]
    m = VolumeManager(client, tmp_path, {})
    await m.setup(pod([{"name": "all", "projected": {"sources": sources, "defaultMode": 0o440}}]))
    assert files(tmp_path / "u1/volumes/kubernetes.io~projected/all") == {"vault": ("token-1", 0o440),
                                                                         "mode": ("fast", 0o440)}
    assert client.requests[0][1]["spec"]["audiences"] == ["vault"]


def test_a_token_is_refreshed_at_80_percent_of_its_life_or_after_a_day():
    expires = 10_000.0
    assert not needs_refresh(expires, 3600, expires - 3600 + 2879)
    assert needs_refresh(expires, 3600, expires - 3600 + 2881)
    assert needs_refresh(expires + 365 * 86400, 365 * 86400, expires + 86401)


async def test_a_failed_refresh_keeps_the_valid_token(monkeypatch):
    client = FakeClient()
    tokens = TokenManager(client)
    p = pod([])
    assert await tokens.token(p, "", 600) == "token-1"
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 590)        # due for refresh
    assert await tokens.token(p, "", 600) == "token-2"
    client.accounts = ()
    monkeypatch.setattr(time, "time", lambda: now + 590 + 590)
    assert await tokens.token(p, "", 600) == "token-2"        # refused, but not yet expired
    monkeypatch.setattr(time, "time", lambda: now + 590 + 601)
    with pytest.raises(Exception, match="expired and refresh failed"):
        await tokens.token(p, "", 600)
    tokens.forget("u1")
    assert tokens.cache == {}


def test_memory_volume_size_is_the_least_of_node_pod_and_size_limit(tmp_path):
    m = VolumeManager(FakeClient(), tmp_path, {"memory": "8Gi"})
    vol = {"name": "m", "emptyDir": {"medium": "Memory"}}
    assert m._memory_size(pod([vol]), vol) == 64 * 2**20                        # the pod's limit
    no_limits = pod([vol], containers=[{"name": "c"}])
    assert m._memory_size(no_limits, vol) == 8 * 2**30                         # the node's allocatable
    small = {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
    assert m._memory_size(pod([small]), small) == 16 * 2**20
    big = {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
    assert m._memory_size(pod([big]), big) == 64 * 2**20


def test_admission_mounts_the_token_into_init_and_app_containers_once():
    p = {"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "i"}],
        "containers": [{"name": "a", "volumeMounts": [{"name": "own", "mountPath": SA}]}, {"name": "b"}],
        "volumes": [{"name": "own", "emptyDir": {}}]}}
    admit_pod(p)
    vol = p["spec"]["volumes"][-1]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == len("kube-api-access-") + 5
    assert vol["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}}]}
    mount = {"name": vol["name"], "readOnly": True, "mountPath": SA}
    assert p["spec"]["initContainers"][0]["volumeMounts"] == [mount]
    assert p["spec"]["containers"][0]["volumeMounts"] == [{"name": "own", "mountPath": SA}]     # its own wins
    assert p["spec"]["containers"][1]["volumeMounts"] == [mount]
    opted_out = {"metadata": {"name": "p"}, "spec": {"automountServiceAccountToken": False, "containers": [{"name": "a"}]}}
    admit_pod(opted_out)
    assert "volumes" not in opted_out["spec"] and "volumeMounts" not in opted_out["spec"]["containers"][0]


def test_admission_leaves_a_malformed_spec_to_validation():
    p = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}], "volumes": {"not": "a list"}}}
    admit_pod(p)
    assert p["spec"]["volumes"] == {"not": "a list"} and "volumeMounts" not in p["spec"]["containers"][0]
    p = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "volumeMounts": "x"}]}}
    admit_pod(p)
    assert p["spec"]["containers"] == [{"name": "a", "volumeMounts": "x"}] and "volumes" not in p["spec"]



def claim(phase: str = "Bound", volume: str = "pv1") -> dict:
    return {"metadata": {"name": "data", "namespace": "ns", "uid": "claim-uid"}, "spec": {"volumeName": volume},
            "status": {"phase": phase}}


def volume(source: dict, ref_uid: str | None = "claim-uid") -> dict:
    ref = {"name": "data", "namespace": "ns", "uid": ref_uid} if ref_uid is not None else None
    return {"metadata": {"name": "pv1"}, "spec": {**source, "claimRef": ref, "volumeMode": "Filesystem"}}


async def test_a_claim_mounts_its_bound_volume(tmp_path):
    target = tmp_path / "data" / "made"
    client = ObjectClient({("persistentvolumeclaims", "data"): claim(),
                          ("persistentvolumes", "pv1"): volume({"hostPath": {"path": str(target),
                                                                             "type": "DirectoryOrCreate"}})})
    m = VolumeManager(client, tmp_path / "pods", {})
    p = pod([{"name": "v", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}])
    await m.setup(p)
    assert target.is_dir() and m.host_path(p, "v") == str(target) and m.read_only(p, "v")
    assert m.host_path(p, "v", "sub") == str(target / "sub") and (target / "sub").is_dir()
    del client.objects[("persistentvolumeclaims", "data")]
    await m.setup(p)          # found once, kept for the pod's life (a running pod keeps its volume)
    await m.teardown("u1")
    assert m.claims == {}


async def test_claims_that_cannot_be_used_wait_with_upstreams_messages(tmp_path):
    p = pod([{"name": "v", "persistentVolumeClaim": {"claimName": "data"}},
             {"name": "e", "emptyDir": {}}])
    head = ("Unable to attach or mount volumes: unmounted volumes=[v], unattached volumes=[], "
            "failed to process volumes=[v]: error processing PVC ns/data: ")
    local = {"local": {"path": str(tmp_path / "absent")}}
    for objects, message in (
            ({}, 'failed to fetch PVC from API server: persistentvolumeclaims "data" not found'),
            ({("persistentvolumeclaims", "data"): claim("Pending", "")}, "PVC is not bound"),
            ({("persistentvolumeclaims", "data"): claim()},
             'failed to fetch PV pv1 from API server: persistentvolumes "pv1" not found'),
            ({("persistentvolumeclaims", "data"): claim(), ("persistentvolumes", "pv1"): volume(local, None)},
             "found PV object pv1 but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"),
            ({("persistentvolumeclaims", "data"): claim(), ("persistentvolumes", "pv1"): volume(local, "other")},
             "found PV object pv1 but its pv.Spec.ClaimRef.UID other does not point to claim.UID claim-uid")):
        with pytest.raises(VolumeError) as e:
            await VolumeManager(ObjectClient(objects), tmp_path / "pods", {}).setup(p)
        assert str(e.value) == head + message
    assert (tmp_path / "pods/u1/volumes/kubernetes.io~empty-dir/e").is_dir()     # the other volumes are ready
    objects = {("persistentvolumeclaims", "data"): claim(), ("persistentvolumes", "pv1"): volume(local)}
    with pytest.raises(VolumeError) as e:
        await VolumeManager(ObjectClient(objects), tmp_path / "pods", {}).setup(p)
    assert str(e.value) == (f'MountVolume.NewMounter initialization failed for volume "pv1" : '
                            f'path "{tmp_path / "absent"}" does not exist')

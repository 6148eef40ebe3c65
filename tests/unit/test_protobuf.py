"""Protobuf request bodies decode to the same dict kubectl would have sent as JSON.

The REAL_* bodies were sent by kubectl 1.32 (`kubectl create ...` against a local stub) and the expected
dicts are what the same command prints with `--dry-run=client -o json`. The other bodies are built field
by field with tests/support/pbenc.py."""
from __future__ import annotations

import random

import pytest

from apiserver.api import protobuf
from apiserver.api.protobuf import GO_JSON, KINDS, MESSAGES, _go_duration, decode_object, short_name
from tests.support.pbenc import MAGIC, b, entry, envelope, fixed32, fixed64, i, int_or_string, key, m, qty, \
    qty_entry, s, varint

REAL_DEPLOYMENT = bytes.fromhex(  # kubectl create deployment web --image=nginx:1.25 --replicas=2 --port=80
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412c4010a260a0377656212001a0764656661756c7422002a00"
    "3200380042005a0a0a036170701203776562128b010802120c0a0a0a0361707012037765621a710a1c0a0012001a0022002a0032"
    "00380042005a0a0a036170701203776562125112330a056e67696e78120a6e67696e783a312e32352a00320a0a00100018502200"
    "2a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00"
    "280038001a0c0800100018002000280038001a002200")
REAL_DEPLOYMENT_ZERO = bytes.fromhex(  # kubectl create deployment idle --image=nginx --replicas=0
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b6010a280a0469646c6512001a0764656661756c7422002a"
    "003200380042005a0b0a03617070120469646c65127c0800120d0a0b0a03617070120469646c651a610a1d0a0012001a0022002a"
    "003200380042005a0b0a03617070120469646c65124012220a056e67696e7812056e67696e782a0042006a007200800100880100"
    "900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000"
    "280038001a002200")
REAL_SECRET = bytes.fromhex(  # kubectl create secret generic s --from-literal=password=s3cr3t --from-file=bin=<binary>
    "6b3873000a0c0a027631120653656372657412450a180a017312001a0764656661756c7422002a0032003800420012130a036269"
    "6e120c000102fffe2062696e61727912120a0870617373776f726412067333637233741a001a002200")
REAL_NODEPORT = bytes.fromhex(  # kubectl create service nodeport svc --tcp=80:8080 --node-port=30080
    "6b3873000a0d0a02763112075365727669636512710a260a0373766312001a0764656661756c7422002a003200380042005a0a0a"
    "03617070120373766312430a1d0a0738302d38303830120354435018502207080010903f1a002880eb01120a0a03617070120373"
    "76631a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200")
REAL_NAMED_PORT = bytes.fromhex(  # kubectl create service clusterip named --tcp=443:https --tcp=80:8080
    "6b3873000a0d0a027631120753657276696365129a010a2a0a056e616d656412001a0764656661756c7422002a00320038004200"
    "5a0c0a0361707012056e616d656412680a220a093434332d6874747073120354435018bb03220b080110001a0568747470732800"
    "0a1b0a0738302d38303830120354435018502207080010903f1a002800120c0a0361707012056e616d65641a002209436c757374"
    "657249503a00420052005a00600068001a020a001a002200")
REAL_HPA = bytes.fromhex(  # kubectl autoscale deployment web --max=5 --min=2 --cpu-percent=80
    "6b3873000a290a0e6175746f7363616c696e672f76311217486f72697a6f6e74616c506f644175746f7363616c6572123f0a130a"
    "0377656212001a0022002a0032003800420012220a1a0a0a4465706c6f796d656e7412037765621a07617070732f763110021805"
    "20501a04180020001a002200")
REAL_JOB = bytes.fromhex(  # kubectl create job j --image=busybox -- echo hi
    "6b3873000a0f0a0862617463682f763112034a6f621289010a180a016a12001a0764656661756c7422002a003200380042001263"
    "32610a100a0012001a0022002a00320038004200124d122a0a016a120762757379626f781a046563686f1a0268692a0042006a00"
    "7200800100880100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a08200028"
    "0030003a001a002200")
REAL_CONFIGMAP = bytes.fromhex(  # kubectl create configmap cm --from-literal=a=b --from-literal=c=d
    "6b3873000a0f0a0276311209436f6e6669674d6170122b0a190a02636d12001a0764656661756c7422002a003200380042001206"
    "0a016112016212060a01631201641a002200")
REAL_NAMESPACE = bytes.fromhex(  # kubectl create namespace ns1
    "6b3873000a0f0a02763112094e616d657370616365121b0a130a036e733112001a0022002a0032003800420012001a020a001a00"
    "2200")
REAL_SERVICEACCOUNT = bytes.fromhex(  # kubectl create serviceaccount sa
    "6b3873000a140a027631120e536572766963654163636f756e74121b0a190a02736112001a0764656661756c7422002a00320038"
    "0042001a002200")

META = {"namespace": "default", "creationTimestamp": None}


def test_real_deployment():
    assert decode_object(REAL_DEPLOYMENT) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", **META, "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                                       "ports": [{"containerPort": 80}], "resources": {}}]}},
                 "strategy": {}},
        "status": {}}


def test_explicit_zero_replicas_survives():
    obj = decode_object(REAL_DEPLOYMENT_ZERO)
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "nginx", "resources": {}}]
    assert "minReadySeconds" not in obj["spec"] and "paused" not in obj["spec"]


def test_real_secret_with_binary_data():
    assert decode_object(REAL_SECRET) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", **META},
        "data": {"bin": "AAEC//4gYmluYXJ5", "password": "czNjcjN0"}}


def test_real_services_int_and_named_target_ports():
    assert decode_object(REAL_NODEPORT) == {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", **META, "labels": {"app": "svc"}},
        "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
                 "selector": {"app": "svc"}, "type": "NodePort"},
        "status": {"loadBalancer": {}}}
    ports = decode_object(REAL_NAMED_PORT)["spec"]["ports"]
    assert ports == [{"name": "443-https", "protocol": "TCP", "port": 443, "targetPort": "https"},
                     {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}]


def test_real_hpa():
    assert decode_object(REAL_HPA) == {
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "creationTimestamp": None},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                 "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80},
        "status": {"currentReplicas": 0, "desiredReplicas": 0}}


def test_real_job_configmap_namespace_serviceaccount():
    assert decode_object(REAL_JOB) == {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", **META},
        "spec": {"template": {"metadata": {"creationTimestamp": None},
                              "spec": {"containers": [{"name": "j", "image": "busybox", "command": ["echo", "hi"],
                                                       "resources": {}}],
                                       "restartPolicy": "Never"}}},
        "status": {}}
    assert decode_object(REAL_CONFIGMAP) == {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "cm", **META}, "data": {"a": "b", "c": "d"}}
    assert decode_object(REAL_NAMESPACE) == {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": "ns1", "creationTimestamp": None},
                                             "spec": {}, "status": {}}
    assert decode_object(REAL_SERVICEACCOUNT) == {"apiVersion": "v1", "kind": "ServiceAccount",
                                                  "metadata": {"name": "sa", **META}}


# --- bodies built field by field ------------------------------------------------------------------------

def objmeta(num: int, name: str, **labels: str) -> bytes:
    """ObjectMeta the way gogo writes it: every non-pointer field, zero or not, and an empty creationTimestamp."""
    return m(num, s(1, name), s(2, ""), s(3, "default"), s(4, ""), s(5, ""), s(6, ""), i(7, 0), m(8),
             *(entry(11, k, v) for k, v in labels.items()))


CONTAINER = m(
    2, s(1, "app"), s(2, "registry.local/app:1"), s(3, "/bin/app"), s(4, "--port=8080"), s(4, "-v"), s(5, "/srv"),
    m(6, s(1, "http"), i(2, 0), i(3, 8080), s(4, "TCP"), s(5, "")),
    m(7, s(1, "PLAIN"), s(2, "x")),
    m(7, s(1, "FROM_CM"), s(2, ""), m(3, m(3, m(1, s(1, "cfg")), s(2, "level"), i(3, 0)))),
    m(7, s(1, "FROM_SECRET"), s(2, ""), m(3, m(4, m(1, s(1, "creds")), s(2, "token")))),
    m(7, s(1, "POD_IP"), s(2, ""), m(3, m(1, s(1, "v1"), s(2, "status.podIP")))),
    m(19, s(1, "CFG_"), m(2, m(1, s(1, "cfg")))),
    m(8, qty_entry(1, "cpu", "500m"), qty_entry(1, "memory", "128Mi"), qty_entry(2, "cpu", "250m")),
    m(9, s(1, "data"), i(2, 1), s(3, "/data"), s(4, ""), s(6, "")),
    m(10, m(1, m(2, s(1, "/healthz"), int_or_string(2, "http"), s(3, ""), s(4, "HTTP"))),
      i(2, 3), i(3, 1), i(4, 10), i(5, 1), i(6, 3)),
    m(11, m(1, m(3, int_or_string(1, 8080), s(2, ""))), i(2, 0), i(3, 0), i(4, 0), i(5, 0), i(6, 0)),
    m(22, m(1, m(1, s(1, "cat"), s(1, "/tmp/ready"))), i(2, 0), i(3, 0), i(4, 0), i(5, 0), i(6, 0)),
    s(13, "/dev/termination-log"), s(14, "IfNotPresent"),
    m(15, i(2, 0), i(4, 0), i(6, 1), i(7, 0)),
    i(16, 0), i(17, 0), i(18, 1), s(20, "File"))

POD_SPEC = m(
    2,
    m(1, s(1, "data"), m(2, m(10, s(1, "data-pvc"), i(2, 0)))),
    m(1, s(1, "cfg"), m(2, m(19, m(1, s(1, "cfg")), m(2, s(1, "a.yaml"), s(2, "a.yaml")), i(3, 0o644)))),
    m(1, s(1, "creds"), m(2, m(6, s(1, "creds"), i(4, 0)))),
    m(1, s(1, "scratch"), m(2, m(2, s(1, "Memory"), qty(2, "64Mi")))),
    m(1, s(1, "host"), m(2, m(1, s(1, "/var/log"), s(2, "Directory")))),
    m(1, s(1, "token"), m(2, m(26, m(1, m(4, s(1, "api"), i(2, 3600), s(3, "token")))))),
    CONTAINER,
    m(20, s(1, "init"), s(2, "busybox"), s(3, "true"), m(8), s(13, ""), s(14, ""), i(16, 0), i(17, 0), i(18, 0)),
    s(3, "Always"), i(4, 30), s(6, "ClusterFirst"), entry(7, "disk", "ssd"), s(8, "runner"), s(9, "runner"),
    s(10, ""), i(11, 0), i(12, 0), i(13, 0),
    m(14, i(2, 1000), b(4, varint(1000) + varint(2000)), i(5, 0)),   # packed supplementalGroups, fsGroup 0
    s(16, ""), s(17, ""), s(19, "default-scheduler"), s(24, ""))

EXPECTED_POD_SPEC = {
    "volumes": [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a.yaml", "path": "a.yaml"}],
                                      "defaultMode": 0o644}},
        {"name": "creds", "secret": {"secretName": "creds", "optional": False}},
        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "api", "expirationSeconds": 3600, "path": "token"}}]}},
    ],
    "containers": [{
        "name": "app", "image": "registry.local/app:1", "command": ["/bin/app"], "args": ["--port=8080", "-v"],
        "workingDir": "/srv",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "PLAIN", "value": "x"},
                {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level",
                                                                      "optional": False}}},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
        "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
        "volumeMounts": [{"name": "data", "readOnly": True, "mountPath": "/data"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                          "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10,
                          "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"tcpSocket": {"port": 8080}},
        "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}},
        "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent",
        "securityContext": {"privileged": False, "runAsUser": 0, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False},
        "tty": True, "terminationMessagePolicy": "File"}],
    "initContainers": [{"name": "init", "image": "busybox", "command": ["true"], "resources": {}}],
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
    "nodeSelector": {"disk": "ssd"}, "serviceAccountName": "runner", "serviceAccount": "runner",
    "securityContext": {"runAsUser": 1000, "supplementalGroups": [1000, 2000], "fsGroup": 0},
    "schedulerName": "default-scheduler",
}


def test_pod_with_the_common_podspec_fields():
    """Checked against kubectl's own rendering of this PodSpec (inside a Deployment template)."""
    body = envelope("v1", "Pod", objmeta(1, "web-0", app="web") + POD_SPEC + m(3))
    assert decode_object(body) == {"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": "web-0", **META, "labels": {"app": "web"}},
                                   "spec": EXPECTED_POD_SPEC, "status": {}}


def test_deployment_strategy_selector_expressions_and_pointer_zeros():
    spec = m(2, i(1, 3),
             m(2, m(2, s(1, "tier"), s(2, "In"), s(3, "web"), s(3, "api")), m(2, s(1, "canary"), s(2, "DoesNotExist"))),
             m(3, objmeta(1, "", app="web"), POD_SPEC),
             m(4, s(1, "RollingUpdate"), m(2, int_or_string(1, 0), int_or_string(2, "25%"))),
             i(5, 0), i(6, 0), i(7, 0), i(9, 600))
    obj = decode_object(envelope("apps/v1", "Deployment", objmeta(1, "web") + spec + m(3)))
    assert obj["spec"] == {
        "replicas": 3,
        "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                                          {"key": "canary", "operator": "DoesNotExist"}]},
        "template": {"metadata": {"namespace": "default", "creationTimestamp": None, "labels": {"app": "web"}},
                     "spec": EXPECTED_POD_SPEC},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "revisionHistoryLimit": 0, "progressDeadlineSeconds": 600}   # minReadySeconds/paused: zero, omitempty
    assert obj["status"] == {}


def test_job_pointer_fields_keep_zero():
    spec = m(2, i(1, 1), i(2, 1), i(7, 0), i(8, 0), s(9, "NonIndexed"), i(10, 0), m(6, m(1, m(8)), m(2, s(3, "Never"))))
    obj = decode_object(envelope("batch/v1", "Job", objmeta(1, "once") + spec))
    assert obj["spec"] == {"parallelism": 1, "completions": 1, "backoffLimit": 0, "ttlSecondsAfterFinished": 0,
                           "completionMode": "NonIndexed", "suspend": False,
                           "template": {"metadata": {"creationTimestamp": None},
                                        "spec": {"restartPolicy": "Never", "containers": None}}}


def test_unset_fields_take_go_json_defaults():
    """Value structs are always in Go's JSON; fields without omitempty too (null for pointers and slices)."""
    assert decode_object(envelope("v1", "ConfigMap", b"")) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"creationTimestamp": None}}
    assert decode_object(envelope("apps/v1", "Deployment", b"")) == {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"creationTimestamp": None},
        "spec": {"selector": None, "template": {"metadata": {"creationTimestamp": None}, "spec": {"containers": None}},
                 "strategy": {}},
        "status": {}}
    port = decode_object(envelope("v1", "Service", m(2, m(1, s(1, "p")))))["spec"]["ports"]
    assert port == [{"name": "p", "port": 0, "targetPort": 0}]


def test_times_quantities_and_special_types():
    meta = m(1, s(1, "x"), m(8, i(1, 1700000000), i(2, 999_999_999)), m(9, i(1, 0)), i(10, 0),
             m(13, s(1, "ReplicaSet"), s(3, "rs"), s(4, "uid-1"), s(5, "apps/v1"), i(6, 1)))
    lease = m(2, s(1, "node-1"), i(2, 40), m(3, i(1, 1700000000), i(2, 123_456_789)), m(4), i(5, 0))
    obj = decode_object(envelope("coordination.k8s.io/v1", "Lease", meta + lease))
    assert obj["metadata"] == {"name": "x", "creationTimestamp": "2023-11-14T22:13:20Z",
                               "deletionTimestamp": "1970-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0,
                               "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "uid-1",
                                                    "apiVersion": "apps/v1", "controller": True}]}
    assert obj["spec"] == {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                           "acquireTime": "2023-11-14T22:13:20.123456Z", "renewTime": None, "leaseTransitions": 0}
    assert [_go_duration(n) for n in (0, 5, 1500, 1_500_000, 1_500_000_000, 3_600_000_000_000, 90 * 10**9, -2500)] \
        == ["0s", "5ns", "1.5µs", "1.5ms", "1.5s", "1h0m0s", "1m30s", "-2.5µs"]


def test_delete_options_and_eviction():
    opts = i(1, 0) + m(2, s(1, "uid-1")) + s(4, "Foreground") + s(5, "All")
    expected = {"gracePeriodSeconds": 0, "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Foreground",
                "dryRun": ["All"]}
    for api_version in ("v1", "meta.k8s.io/v1", "apps/v1"):
        assert decode_object(envelope(api_version, "DeleteOptions", opts)) == {
            "apiVersion": api_version, "kind": "DeleteOptions", **expected}
    eviction = decode_object(envelope("policy/v1", "Eviction", objmeta(1, "web-0") + m(2, opts)))
    assert eviction["deleteOptions"] == expected


def test_token_request_renames_uid():
    spec = m(2, s(1, "api"), m(3, s(1, "Pod"), s(2, "v1"), s(3, "p"), s(4, "pod-uid")), i(4, 600))
    obj = decode_object(envelope("authentication.k8s.io/v1", "TokenRequest", m(1) + spec))
    assert obj["spec"] == {"audiences": ["api"], "expirationSeconds": 600,
                           "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "pod-uid"}}


def test_wire_details_like_protobuf():
    """Unknown fields of every wire type are skipped, repeated singular messages merge, the last scalar
    wins, map entries may omit their value, invalid UTF-8 becomes U+FFFD as in Go's JSON."""
    unknown = i(99, 7) + fixed64(98, 1) + b(97, b"\xff\x00") + fixed32(96, 2)
    meta = m(1, unknown, s(1, "first"), entry(11, "a", "1")) + m(1, s(1, "second"), entry(11, "b", "2"), unknown)
    data = entry(2, "ok", "yes") + m(2, s(1, "novalue")) + entry(2, "bad", b"\xff")
    obj = decode_object(MAGIC + m(1, s(1, "v1"), s(2, "ConfigMap"), unknown) + b(2, unknown + meta + data)
                        + s(4, "") + i(9, 1))
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "second", "labels": {"a": "1", "b": "2"}, "creationTimestamp": None},
                   "data": {"ok": "yes", "novalue": "", "bad": "\ufffd"}}


# --- malformed input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"", b"k8s", b"\x00k8s" + REAL_CONFIGMAP[4:], b'{"kind":"ConfigMap"}', b"K8S\x00" + REAL_CONFIGMAP[4:],
], ids=["empty", "short", "shifted", "json", "wrong-magic"])
def test_bad_magic(body):
    with pytest.raises(ValueError, match="k8s"):
        decode_object(body)


@pytest.mark.parametrize("body, message", [
    (MAGIC + b"\x0a", "truncated"),                                            # length varint missing
    (MAGIC + b"\x0a\xff", "truncated"),                                        # unterminated varint
    (MAGIC + b"\x0a\x10\x0a\x02", "truncated"),                                # length past the end
    (REAL_DEPLOYMENT[:100], "truncated"),
    (MAGIC + key(1, 0) + varint(5), "wire type"),                              # typeMeta as a varint
    (envelope("v1", "ConfigMap", i(1, 5)), "wire type"),                       # metadata as a varint
    (envelope("v1", "ConfigMap", m(1, i(1, 5))), "wire type"),                 # name as a varint
    (envelope("v1", "ConfigMap", m(1, fixed32(7, 5))), "wire type"),           # generation as fixed32
    (envelope("v1", "ConfigMap", key(50, 3)), "wire type"),                    # groups are not supported
    (envelope("v1", "ConfigMap", key(50, 7)), "wire type"),
    (envelope("v1", "ConfigMap", b"\x00\x00"), "field number 0"),
    (envelope("v1", "Frobnicator", b""), "no protobuf schema"),
    (envelope("example.com/v1", "ConfigMap", b""), "no protobuf schema"),
    (MAGIC + b(2, b""), "no protobuf schema"),                                 # no typeMeta at all
    (MAGIC + m(1, s(1, "v1"), s(2, "ConfigMap")) + s(3, "gzip"), "contentEncoding"),
    (envelope("v1", "Pod", m(2, m(2, s(1, "c"), m(8, qty_entry(1, "cpu", "lots"))))), "quantit"),
    (envelope("v1", "Service", m(2, m(1, m(4, i(1, 2))))), "IntOrString"),
    (envelope("apps/v1", "ControllerRevision", m(2, b(1, b"{not json"))), "JSON"),
    (envelope("v1", "ConfigMap", m(1, m(8, i(1, 10**15)))), "out of range"),
])
def test_malformed_raises_value_error(body, message):
    with pytest.raises(ValueError, match=message):
        decode_object(body)


def test_every_truncation_and_random_garbage_raises_only_value_error():
    rng = random.Random(1234)
    type_end, raw_end = 27, len(REAL_DEPLOYMENT) - 4   # field boundaries: typeMeta | raw | "" | ""
    for cut in range(len(REAL_DEPLOYMENT)):
        try:
            decode_object(REAL_DEPLOYMENT[:cut])
        except ValueError:
            continue
        assert cut in (type_end, raw_end, raw_end + 2), f"a cut at {cut} should be truncated"
    bodies = [bytes(rng.randrange(256) for _ in range(rng.randrange(64))) for _ in range(500)]
    bodies += [MAGIC + body for body in bodies]
    bodies += [envelope("apps/v1", "Deployment", bytes(rng.randrange(256) for _ in range(rng.randrange(200))))
               for _ in range(500)]
    for base in (REAL_DEPLOYMENT, REAL_NODEPORT, REAL_SECRET, REAL_HPA):
        for _ in range(300):
            mutated = bytearray(base)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(4, len(mutated))] = rng.randrange(256)
            bodies.append(bytes(mutated))
    for body in bodies:
        try:
            assert isinstance(decode_object(body), dict)
        except ValueError:
            pass


def test_deep_nesting_is_bounded(monkeypatch):
    """Unknown fields are skipped without descending into them, so nesting far past Python's recursion
    limit decodes; known fields recurse at most MAX_DEPTH deep, beyond which the body is a ValueError."""
    nested = b""
    for _ in range(5000):
        nested = m(99, nested)
    body = envelope("v1", "ConfigMap", m(1, s(1, "cm"), nested) + nested + entry(2, "k", "v"))
    assert decode_object(body) == {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "cm", "creationTimestamp": None}, "data": {"k": "v"}}
    assert decode_object(REAL_DEPLOYMENT)["spec"]["template"]["spec"]["containers"][0]["ports"]   # 5 deep
    monkeypatch.setattr(protobuf, "MAX_DEPTH", 4)
    with pytest.raises(ValueError, match="message nesting too deep"):
        decode_object(REAL_DEPLOYMENT)


def test_schema_tables_are_consistent():
    messages = {short_name(name): table for name, table in MESSAGES.items()}
    for message, tokens in GO_JSON.items():
        assert message in messages, message
        names = {f[0] for f in messages[message].values()}
        for token in tokens.split():
            assert token.lstrip("*!^").partition("=")[0] in names, (message, token)
    for kind, message in KINDS.items():
        assert message in MESSAGES, kind

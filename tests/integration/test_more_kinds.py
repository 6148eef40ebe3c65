"""The served-and-validated built-in kinds (networking, storage, RBAC, certificates, node, flow control,
admission, PodTemplate) with the real kubectl and the official Python client: CRUD and watch, upstream's
columns, defaults and validation messages, the bootstrap RBAC policy and APIServices, and the user checks
`kubectl api-resources`, `kubectl get all -A` and `kubectl cluster-info dump`."""
from __future__ import annotations

import base64
import itertools
import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, config, watch

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)

_names = itertools.count()


def unique(prefix: str) -> str:
    """Cluster-scoped objects are shared by the module's tests: one name each."""
    return f"{prefix}-{next(_names)}"


@pytest.fixture(scope="module")
def api(control_plane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(control_plane.kubeconfig))


def kubectl(cp, *args: str, input: str | None = None) -> str:
    return cp.kubectl(*args, input=input).stdout


def kubectl_error(cp, *args: str, input: str | None = None) -> str:
    p = cp.kubectl(*args, input=input, check=False)
    assert p.returncode != 0, p.stdout
    return p.stderr.strip()


def table(text: str) -> list[list[str]]:
    """kubectl's columns, split on runs of two or more spaces (cells may hold single spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def csr_pem(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .sign(key, hashes.SHA256()))
    return base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode()


# --- discovery, bootstrap objects and the user checks ---------------------------------------------

# Kubernetes 1.32's `kubectl api-resources` rows for these kinds: NAME, SHORTNAMES, APIVERSION, NAMESPACED, KIND.
API_RESOURCES = [
    ("podtemplates", "", "v1", "true", "PodTemplate"),
    ("mutatingwebhookconfigurations", "", "admissionregistration.k8s.io/v1", "false", "MutatingWebhookConfiguration"),
    ("validatingwebhookconfigurations", "", "admissionregistration.k8s.io/v1", "false",
     "ValidatingWebhookConfiguration"),
    ("apiservices", "", "apiregistration.k8s.io/v1", "false", "APIService"),
    ("certificatesigningrequests", "csr", "certificates.k8s.io/v1", "false", "CertificateSigningRequest"),
    ("flowschemas", "", "flowcontrol.apiserver.k8s.io/v1", "false", "FlowSchema"),
    ("prioritylevelconfigurations", "", "flowcontrol.apiserver.k8s.io/v1", "false", "PriorityLevelConfiguration"),
    ("ingressclasses", "", "networking.k8s.io/v1", "false", "IngressClass"),
    ("ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"),
    ("networkpolicies", "netpol", "networking.k8s.io/v1", "true", "NetworkPolicy"),
    ("runtimeclasses", "", "node.k8s.io/v1", "false", "RuntimeClass"),
    ("clusterrolebindings", "", "rbac.authorization.k8s.io/v1", "false", "ClusterRoleBinding"),
    ("clusterroles", "", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"),
    ("rolebindings", "", "rbac.authorization.k8s.io/v1", "true", "RoleBinding"),
    ("roles", "", "rbac.authorization.k8s.io/v1", "true", "Role"),
    ("csidrivers", "", "storage.k8s.io/v1", "false", "CSIDriver"),
    ("csinodes", "", "storage.k8s.io/v1", "false", "CSINode"),
    ("storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass"),
    ("volumeattachments", "", "storage.k8s.io/v1", "false", "VolumeAttachment"),
]


def test_api_resources_lists_the_kinds(control_plane):
    out = kubectl(control_plane, "api-resources")
    header, *lines = out.splitlines()
    starts = [header.index(h) for h in ("NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")]
    rows = {tuple(line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])) for line in lines}
    for row in API_RESOURCES:
        assert row in rows, row
    wide = kubectl(control_plane, "api-resources", "-o", "wide", "--api-group=admissionregistration.k8s.io")
    assert "api-extensions" in wide


def test_bootstrap_cluster_roles_and_bindings(control_plane):
    names = [row[0] for row in table(kubectl(control_plane, "get", "clusterroles"))]
    assert names[0] == "NAME"
    for name in ("admin", "cluster-admin", "edit", "view", "system:aggregate-to-admin", "system:aggregate-to-edit",
                 "system:aggregate-to-view", "system:basic-user", "system:discovery", "system:public-info-viewer",
                 "system:kube-scheduler", "system:kube-controller-manager", "system:node", "system:volume-scheduler",
                 "system:certificates.k8s.io:kube-apiserver-client-approver",
                 "system:controller:deployment-controller", "system:controller:generic-garbage-collector"):
        assert name in names, name
    rows = table(kubectl(control_plane, "get", "clusterrolebinding", "cluster-admin", "-o", "wide"))
    assert rows[0] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert rows[1][:2] == ["cluster-admin", "ClusterRole/cluster-admin"] and rows[1][-1] == "system:masters"
    rows = table(kubectl(control_plane, "get", "clusterrolebinding", "system:controller:job-controller", "-o", "wide"))
    assert rows[1][1] == "ClusterRole/system:controller:job-controller" and rows[1][-1] == "kube-system/job-controller"
    node = json.loads(kubectl(control_plane, "get", "clusterrolebinding", "system:node", "-o", "json"))
    assert "subjects" not in node   # kept without subjects since the Node authorizer
    admin = json.loads(kubectl(control_plane, "get", "clusterrole", "admin", "-o", "json"))
    assert admin["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
    assert admin["aggregationRule"] == {"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]}
    granted = {(g, r) for rule in admin["rules"] for g in rule.get("apiGroups", []) for r in rule.get("resources", [])}
    assert {("rbac.authorization.k8s.io", "rolebindings"), ("", "pods"), ("apps", "deployments"),
            ("", "secrets")} <= granted   # its own, edit's and view's rules
    view = json.loads(kubectl(control_plane, "get", "clusterrole", "view", "-o", "json"))
    assert not any("secrets" in rule.get("resources", []) for rule in view["rules"])
    cluster_admin = json.loads(kubectl(control_plane, "get", "clusterrole", "cluster-admin", "-o", "json"))
    assert cluster_admin["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                      {"nonResourceURLs": ["*"], "verbs": ["*"]}]


def test_bootstrap_namespaced_roles(control_plane):
    rows = table(kubectl(control_plane, "get", "roles", "-A"))
    assert rows[0] == ["NAMESPACE", "NAME", "CREATED AT"]
    assert {(r[0], r[1]) for r in rows[1:]} >= {
        ("kube-public", "system:controller:bootstrap-signer"),
        ("kube-system", "extension-apiserver-authentication-reader"),
        ("kube-system", "system::leader-locking-kube-controller-manager"),
        ("kube-system", "system::leader-locking-kube-scheduler"),
        ("kube-system", "system:controller:bootstrap-signer"), ("kube-system", "system:controller:cloud-provider"),
        ("kube-system", "system:controller:token-cleaner")}
    rows = table(kubectl(control_plane, "-n", "kube-system", "get", "rolebinding",
                         "system::extension-apiserver-authentication-reader", "-o", "wide"))
    assert rows[1][1] == "Role/extension-apiserver-authentication-reader"
    assert rows[1][3] == "system:kube-controller-manager, system:kube-scheduler"


def test_local_api_services(control_plane):
    rows = table(kubectl(control_plane, "get", "apiservices"))
    assert rows[0] == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    by_name = {r[0]: r for r in rows[1:]}
    for name in ("v1.", "v1.apps", "v1.rbac.authorization.k8s.io", "v2.autoscaling", "v1.networking.k8s.io"):
        assert by_name[name][1:3] == ["Local", "True"], name


def test_get_all_and_cluster_info_dump(control_plane, ns, tmp_path):
    kubectl(control_plane, "-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080")
    out = kubectl(control_plane, "get", "all", "-A")
    assert "service/kubernetes" in out and f"{ns}" in out and "service/web" in out
    kubectl(control_plane, "cluster-info", "dump", "--namespaces", f"default,kube-system,{ns}",
            "--output-directory", str(tmp_path))
    for name in ("nodes.json", f"{ns}/services.json", f"{ns}/events.json", f"{ns}/replication-controllers.json",
                 f"{ns}/pods.json", f"{ns}/deployments.json", f"{ns}/daemonsets.json", f"{ns}/replicasets.json"):
        assert (tmp_path / name).is_file(), name
    services = json.loads((tmp_path / ns / "services.json").read_text())
    assert [s["metadata"]["name"] for s in services["items"]] == ["web"]
    assert kubectl(control_plane, "cluster-info", "dump").count('"kind": "NodeList"') == 1


def test_api_priority_and_fairness_defaults(control_plane):
    rows = table(kubectl(control_plane, "get", "flowschemas"))
    assert rows[0] == ["NAME", "PRIORITYLEVEL", "MATCHINGPRECEDENCE", "DISTINGUISHERMETHOD", "AGE", "MISSINGPL"]
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in rows[1:]] == [
        ("exempt", "exempt", "1", "<none>", "False"), ("probes", "exempt", "2", "<none>", "False"),
        ("system-leader-election", "leader-election", "100", "ByUser", "False"),
        ("endpoint-controller", "workload-high", "150", "ByUser", "False"),
        ("workload-leader-election", "leader-election", "200", "ByUser", "False"),
        ("system-node-high", "node-high", "400", "ByUser", "False"),
        ("system-nodes", "system", "500", "ByUser", "False"),
        ("kube-controller-manager", "workload-high", "800", "ByNamespace", "False"),
        ("kube-scheduler", "workload-high", "800", "ByNamespace", "False"),
        ("kube-system-service-accounts", "workload-high", "900", "ByNamespace", "False"),
        ("service-accounts", "workload-low", "9000", "ByUser", "False"),
        ("global-default", "global-default", "9900", "ByUser", "False"),
        ("catch-all", "catch-all", "10000", "ByUser", "False")]
    rows = table(kubectl(control_plane, "get", "prioritylevelconfigurations", "exempt", "catch-all", "workload-low"))
    assert rows[0] == ["NAME", "TYPE", "NOMINALCONCURRENCYSHARES", "QUEUES", "HANDSIZE", "QUEUELENGTHLIMIT", "AGE"]
    assert [r[:6] for r in rows[1:]] == [["exempt", "Exempt", "<none>", "<none>", "<none>", "<none>"],
                                         ["catch-all", "Limited", "5", "<none>", "<none>", "<none>"],
                                         ["workload-low", "Limited", "100", "128", "6", "50"]]


# --- kubectl: apply, get columns, defaults ------------------------------------------------------------

def manifests(ns: str, sc: str, rc: str) -> str:
    return f"""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: {ns}}}
spec:
  ingressClassName: nginx
  tls: [{{hosts: [foo.example.com], secretName: web-tls}}]
  rules:
  - host: foo.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
  - host: bar.example.com
    http:
      paths:
      - {{path: /api, pathType: Exact, backend: {{service: {{name: api, port: {{name: http}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: db, namespace: {ns}}}
spec:
  podSelector: {{matchLabels: {{role: db}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{role: frontend}}}}}}]
    ports: [{{port: 6379}}]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {sc}
  annotations: {{storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {{name: {rc}}}
handler: runsc
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: pod-reader, namespace: {ns}}}
rules:
- {{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: read-pods, namespace: {ns}}}
roleRef: {{kind: Role, name: pod-reader}}
subjects:
- {{kind: User, name: jane}}
- {{kind: Group, name: devs}}
- {{kind: ServiceAccount, name: default, namespace: {ns}}}
"""


def test_apply_then_get_columns_and_defaults(control_plane, ns):
    sc, rc = unique("standard"), unique("gvisor")
    out = kubectl(control_plane, "apply", "-f", "-", input=manifests(ns, sc, rc))
    assert "ingress.networking.k8s.io/web created" in out and f"storageclass.storage.k8s.io/{sc} created" in out
    rows = table(kubectl(control_plane, "-n", ns, "get", "ingress"))
    assert rows[0] == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert rows[1][:-1] == ["web", "nginx", "foo.example.com,bar.example.com", "80, 443"]   # ADDRESS still empty
    rows = table(kubectl(control_plane, "-n", ns, "get", "netpol"))
    assert rows[0] == ["NAME", "POD-SELECTOR", "AGE"] and rows[1][:2] == ["db", "role=db"]
    rows = table(kubectl(control_plane, "get", "sc", sc))
    assert rows[0] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
    assert rows[1][:5] == [f"{sc} (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", "false"]
    rows = table(kubectl(control_plane, "get", "runtimeclass", rc))
    assert rows[0] == ["NAME", "HANDLER", "AGE"] and rows[1][:2] == [rc, "runsc"]
    rows = table(kubectl(control_plane, "-n", ns, "get", "role"))
    assert rows[0] == ["NAME", "CREATED AT"] and rows[1][0] == "pod-reader"
    rows = table(kubectl(control_plane, "-n", ns, "get", "rolebinding", "-o", "wide"))
    assert rows == [["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"],
                    ["read-pods", "Role/pod-reader", rows[1][2], "jane", "devs", f"{ns}/default"]]

    policy = json.loads(kubectl(control_plane, "-n", ns, "get", "netpol", "db", "-o", "json"))
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 6379, "protocol": "TCP"}]
    binding = json.loads(kubectl(control_plane, "-n", ns, "get", "rolebinding", "read-pods", "-o", "json"))
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"}
    assert [s.get("apiGroup") for s in binding["subjects"]] == [
        "rbac.authorization.k8s.io", "rbac.authorization.k8s.io", None]
    storage = json.loads(kubectl(control_plane, "get", "sc", sc, "-o", "json"))
    assert storage["reclaimPolicy"] == "Delete"
    # a second apply changes nothing
    again = kubectl(control_plane, "apply", "-f", "-", input=manifests(ns, sc, rc))
    assert "ingress.networking.k8s.io/web unchanged" in again
    kubectl(control_plane, "delete", "sc", sc)
    kubectl(control_plane, "delete", "runtimeclass", rc)


def test_pod_templates_and_webhook_configurations(control_plane, ns):
    kubectl(control_plane, "-n", ns, "apply", "-f", "-", input="""\
apiVersion: v1
kind: PodTemplate
metadata: {name: tpl}
template:
  metadata: {labels: {app: web}}
  spec:
    containers: [{name: web, image: nginx}]
""")
    assert table(kubectl(control_plane, "-n", ns, "get", "podtemplates")) == [
        ["NAME", "CONTAINERS", "IMAGES", "POD LABELS"], ["tpl", "web", "nginx", "app=web"]]
    tpl = json.loads(kubectl(control_plane, "-n", ns, "get", "podtemplate", "tpl", "-o", "json"))
    assert tpl["template"]["spec"]["restartPolicy"] == "Always"   # pod template defaults
    name = unique("hooks")
    kubectl(control_plane, "apply", "-f", "-", input=f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: {name}}}
webhooks:
- name: check.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {{service: {{namespace: {ns}, name: hook}}}}
  rules: [{{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]
""")
    rows = table(kubectl(control_plane, "get", "validatingwebhookconfigurations", name))
    assert rows[0] == ["NAME", "WEBHOOKS", "AGE"] and rows[1][:2] == [name, "1"]
    config = json.loads(kubectl(control_plane, "get", "validatingwebhookconfigurations", name, "-o", "json"))
    hook = config["webhooks"][0]
    assert (hook["failurePolicy"], hook["matchPolicy"], hook["timeoutSeconds"], hook["rules"][0]["scope"],
            hook["clientConfig"]["service"]["port"]) == ("Fail", "Equivalent", 10, "*", 443)
    kubectl(control_plane, "delete", "validatingwebhookconfigurations", name)


def test_ingress_class_columns_defaults_and_generation(control_plane, api):
    net = client.NetworkingV1Api(api)
    name = unique("external-lb")
    made = net.create_ingress_class(client.V1IngressClass(
        metadata=client.V1ObjectMeta(name=name), spec=client.V1IngressClassSpec(
            controller="example.com/ingress-controller", parameters=client.V1IngressClassParametersReference(
                api_group="k8s.example.com", kind="IngressParameters", name="external-lb"))))
    assert (made.metadata.generation, made.spec.parameters.scope) == (1, "Cluster")
    rows = table(kubectl(control_plane, "get", "ingressclass", name))
    assert rows[0] == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert rows[1][:3] == [name, "example.com/ingress-controller", "IngressParameters.k8s.example.com/external-lb"]
    patched = net.patch_ingress_class(name, {"spec": {"parameters": {"name": "internal-lb"}}})
    assert patched.metadata.generation == 2
    with pytest.raises(client.ApiException) as e:
        net.patch_ingress_class(name, {"spec": {"controller": "example.com/other"}})
    assert json.loads(e.value.body)["message"] == (
        f'IngressClass.networking.k8s.io "{name}" is invalid: spec.controller: Invalid value: "example.com/other": '
        "field is immutable")
    net.delete_ingress_class(name)


# --- validation messages as a user sees them --------------------------------------------------------

def test_validation_messages_on_create(control_plane, ns):
    err = kubectl_error(control_plane, "-n", ns, "create", "-f", "-", input="""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad}
spec:
  rules:
  - host: foo.example.com
    http:
      paths:
      - {path: /, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /x, pathType: Regex, backend: {service: {name: web}}}
      - {path: relative, pathType: Prefix, backend: {service: {name: web, port: {number: 70000}}}}
""")
    assert err == (
        'The Ingress "bad" is invalid: \n'
        "* spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified\n"
        '* spec.rules[0].http.paths[1].pathType: Unsupported value: "Regex": supported values: "Exact", '
        '"ImplementationSpecific", "Prefix"\n'
        "* spec.rules[0].http.paths[1].backend: Required value: port name or number is required\n"
        '* spec.rules[0].http.paths[2].path: Invalid value: "relative": must be an absolute path\n'
        "* spec.rules[0].http.paths[2].backend.service.port.number: Invalid value: 70000: must be between 1 and "
        "65535, inclusive")
    err = kubectl_error(control_plane, "-n", ns, "create", "-f", "-", input="""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad}
spec:
  podSelector: {matchExpressions: [{key: tier, operator: In}]}
  policyTypes: [Ingress, Sideways]
  ingress: [{ports: [{protocol: ICMP, port: 80}]}]
""")
    assert err == ('The NetworkPolicy "bad" is invalid: \n'
                   "* spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` "
                   "is 'In' or 'NotIn'\n"
                   '* spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", '
                   '"SCTP"\n'
                   '* spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"')
    err = kubectl_error(control_plane, "create", "-f", "-", input="""\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: bad}
reclaimPolicy: Recycle
""")
    assert err == ('The StorageClass "bad" is invalid: \n* provisioner: Required value\n'
                   '* reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"')
    err = kubectl_error(control_plane, "-n", ns, "create", "-f", "-", input="""\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bad}
subjects: [{kind: Robot, name: r2}]
""")
    assert err == ('The RoleBinding "bad" is invalid: \n'
                   '* roleRef.kind: Unsupported value: "": supported values: "Role", "ClusterRole"\n'
                   "* roleRef.name: Required value\n"
                   '* subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", '
                   '"Group"')
    err = kubectl_error(control_plane, "-n", ns, "create", "-f", "-", input="""\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: bad}
rules: [{apiGroups: [""], resources: [pods]}]
""")
    assert err == ('The Role "bad" is invalid: rules[0].verbs: Required value: verbs must contain at least one '
                   'value')
    err = kubectl_error(control_plane, "create", "-f", "-", input="""\
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: bad}
handler: Not_A_Label
""")
    assert err.startswith('The RuntimeClass "bad" is invalid: handler: Invalid value: "Not_A_Label": a lowercase '
                          "RFC 1123 label must consist of")
    err = kubectl_error(control_plane, "create", "-f", "-", input=f"""\
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {{name: {unique("bad-csr")}}}
spec:
  request: {base64.b64encode(b"not a pem").decode()}
  usages: [client auth, flying]
  expirationSeconds: 60
""")
    assert "spec.request: Invalid value: []byte{0x6e, 0x6f, 0x74" in err
    assert "PEM block type must be CERTIFICATE REQUEST" in err
    assert '* spec.usages[1]: Unsupported value: "flying": supported values: "any", "cert sign",' in err
    assert "* spec.signerName: Required value" in err
    assert ("* spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds "
            "(10 minutes)") in err


def test_webhook_configuration_messages(control_plane):
    err = kubectl_error(control_plane, "create", "-f", "-", input="""\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: bad}
webhooks:
- name: hook
  clientConfig: {url: "http://hooks.example.com/mutate"}
- name: a.example.com
  sideEffects: Sometimes
  admissionReviewVersions: [v2]
  timeoutSeconds: 60
  clientConfig: {service: {name: hook}}
""")
    assert err == ('The MutatingWebhookConfiguration "bad" is invalid: \n'
                   '* webhooks[0].name: Invalid value: "hook": should be a domain with at least three segments '
                   'separated by dots\n'
                   "* webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1\n"
                   "* webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun\n"
                   '* webhooks[0].clientConfig.url: Invalid value: "http": \'https\' is the only allowed URL scheme\n'
                   '* webhooks[1].admissionReviewVersions: Invalid value: []string{"v2"}: must include at least one '
                   "of v1, v1beta1\n"
                   '* webhooks[1].sideEffects: Unsupported value: "Sometimes": supported values: "None", '
                   '"NoneOnDryRun"\n'
                   "* webhooks[1].timeoutSeconds: Invalid value: 60: the timeout value must be between 1 and 30 "
                   "seconds\n"
                   "* webhooks[1].clientConfig.service.namespace: Required value: service namespace is required")


def test_volume_attachment_and_pod_template_messages(control_plane, ns):
    err = kubectl_error(control_plane, "create", "-f", "-", input="""\
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {name: bad}
spec: {attacher: csi.example.com, nodeName: node-1, source: {}}
""")
    assert err == ('The VolumeAttachment "bad" is invalid: spec.source: Required value: must specify exactly one of '
                   "inlineVolumeSpec and persistentVolumeName")
    err = kubectl_error(control_plane, "-n", ns, "create", "-f", "-", input="""\
apiVersion: v1
kind: PodTemplate
metadata: {name: bad}
template: {spec: {containers: []}}
""")
    assert err == 'The PodTemplate "bad" is invalid: template.spec.containers: Required value'


def test_api_service_and_csi_driver_messages(control_plane):
    err = kubectl_error(control_plane, "create", "-f", "-", input="""\
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1.foo}
spec: {group: bar.example.com, version: v1, groupPriorityMinimum: 0, versionPriority: 15}
""")
    assert err == ('The APIService "v1.foo" is invalid: \n'
                   '* metadata.name: Invalid value: "v1.foo": must be `spec.version+"."+spec.group`: '
                   '"v1.bar.example.com"\n'
                   "* spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000")
    name = unique("csi.example.com")
    kubectl(control_plane, "apply", "-f", "-", input=f"""\
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {{name: {name}}}
spec: {{}}
""")
    err = kubectl_error(control_plane, "patch", "csidriver", name, "--type=merge",
                        "-p", '{"spec":{"attachRequired":false}}')
    assert err == f'The CSIDriver "{name}" is invalid: spec.attachRequired: Invalid value: false: field is immutable'
    kubectl(control_plane, "delete", "csidriver", name)


def test_rbac_names_may_hold_colons(control_plane):
    name = unique("system:test:reader")
    kubectl(control_plane, "apply", "-f", "-", input=f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "{name}"}}
rules: [{{nonResourceURLs: [/healthz], verbs: [get]}}]
""")
    assert table(kubectl(control_plane, "get", "clusterrole", name, "--no-headers"))[0][0] == name
    err = kubectl_error(control_plane, "create", "-f", "-", input="""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "a%b"}
""")
    assert err == """The ClusterRole "a%b" is invalid: metadata.name: Invalid value: "a%b": may not contain '%'"""
    kubectl(control_plane, "delete", "clusterrole", name)


def test_immutable_fields_on_update(control_plane, ns):
    sc, rc = unique("slow"), unique("kata")
    kubectl(control_plane, "apply", "-f", "-", input=manifests(ns, sc, rc))
    err = kubectl_error(control_plane, "-n", ns, "patch", "rolebinding", "read-pods", "--type=merge",
                        "-p", '{"roleRef":{"name":"other"}}')
    assert err == ('The RoleBinding "read-pods" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:'
                   '"rbac.authorization.k8s.io", Kind:"Role", Name:"other"}: cannot change roleRef')
    err = kubectl_error(control_plane, "patch", "sc", sc, "--type=merge",
                        "-p", '{"parameters":{"a":"b"},"provisioner":"example.com/other"}')
    assert err == (f'The StorageClass "{sc}" is invalid: \n'
                   "* parameters: Forbidden: updates to parameters are forbidden.\n"
                   "* provisioner: Forbidden: updates to provisioner are forbidden.")
    err = kubectl_error(control_plane, "patch", "runtimeclass", rc, "--type=merge", "-p", '{"handler":"runc"}')
    assert err == f'The RuntimeClass "{rc}" is invalid: handler: Invalid value: "runc": field is immutable'
    # what may change does
    kubectl(control_plane, "patch", "sc", sc, "--type=merge", "-p", '{"allowVolumeExpansion":true}')
    assert table(kubectl(control_plane, "get", "sc", sc, "--no-headers"))[0][4] == "true"
    kubectl(control_plane, "delete", "sc", sc)
    kubectl(control_plane, "delete", "runtimeclass", rc)


# --- the official Python client: create, get, list, watch, update, patch, delete ------------------------

def test_python_client_ingress_lifecycle_and_watch(api, ns):
    net = client.NetworkingV1Api(api)
    body = client.V1Ingress(
        metadata=client.V1ObjectMeta(name="shop"),
        spec=client.V1IngressSpec(rules=[client.V1IngressRule(
            host="shop.example.com", http=client.V1HTTPIngressRuleValue(paths=[client.V1HTTPIngressPath(
                path="/", path_type="Prefix", backend=client.V1IngressBackend(service=client.V1IngressServiceBackend(
                    name="shop", port=client.V1ServiceBackendPort(number=80))))]))]))
    created = net.create_namespaced_ingress(ns, body)
    assert created.spec.rules[0].http.paths[0].path_type == "Prefix"
    start = net.list_namespaced_ingress(ns).metadata.resource_version
    created.spec.ingress_class_name = "nginx"
    replaced = net.replace_namespaced_ingress("shop", ns, created)
    assert replaced.metadata.generation == 2
    patched = net.patch_namespaced_ingress("shop", ns, {"metadata": {"labels": {"tier": "front"}}})
    assert patched.metadata.labels == {"tier": "front"} and patched.metadata.generation == 2
    status = net.patch_namespaced_ingress_status(
        "shop", ns, {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}})
    assert status.status.load_balancer.ingress[0].ip == "10.0.0.9"
    net.delete_namespaced_ingress("shop", ns)
    events = []
    for event in watch.Watch().stream(net.list_namespaced_ingress, ns, resource_version=start, timeout_seconds=10):
        events.append((event["type"], event["object"].spec.ingress_class_name))
        if event["type"] == "DELETED":
            break
    assert events[0] == ("MODIFIED", "nginx") and events[-1][0] == "DELETED"
    with pytest.raises(client.ApiException) as e:
        net.read_namespaced_ingress("shop", ns)
    assert e.value.status == 404


def test_python_client_rbac_storage_node(api, ns):
    rbac = client.RbacAuthorizationV1Api(api)
    name = unique("pod-watcher")
    role = rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=[
        client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["watch"])]))
    assert role.rules[0].verbs == ["watch"]
    rbac.patch_cluster_role(name, {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch"]}]})
    assert rbac.read_cluster_role(name).rules[0].verbs == ["get", "watch"]
    binding = rbac.create_namespaced_role_binding(ns, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="watchers"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name),
        subjects=[client.RbacV1Subject(kind="Group", name="watchers")]))
    assert binding.subjects[0].api_group == "rbac.authorization.k8s.io"
    binding.role_ref.name = "view"
    with pytest.raises(client.ApiException) as e:
        rbac.replace_namespaced_role_binding("watchers", ns, binding)
    assert e.value.status == 422 and "cannot change roleRef" in json.loads(e.value.body)["message"]
    assert [b.metadata.name for b in rbac.list_namespaced_role_binding(ns).items] == ["watchers"]
    rbac.delete_namespaced_role_binding("watchers", ns)
    rbac.delete_cluster_role(name)

    storage = client.StorageV1Api(api)
    sc = unique("fast")
    made = storage.create_storage_class(client.V1StorageClass(metadata=client.V1ObjectMeta(name=sc),
                                                              provisioner="example.com/fast"))
    assert (made.reclaim_policy, made.volume_binding_mode) == ("Delete", "Immediate")
    assert sc in [s.metadata.name for s in storage.list_storage_class().items]
    storage.delete_storage_class(sc)

    node = client.NodeV1Api(api)
    rc = unique("runc")
    node.create_runtime_class(client.V1RuntimeClass(metadata=client.V1ObjectMeta(name=rc), handler="runc"))
    node.patch_runtime_class(rc, {"metadata": {"labels": {"a": "b"}}})
    assert node.read_runtime_class(rc).metadata.labels == {"a": "b"}
    node.delete_runtime_class(rc)


def test_csr_create_and_columns(control_plane, api):
    name = unique("jane")
    certs = client.CertificatesV1Api(api)
    made = certs.create_certificate_signing_request(client.V1CertificateSigningRequest(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1CertificateSigningRequestSpec(request=csr_pem("jane"), usages=["client auth"],
                                                    signer_name="kubernetes.io/kube-apiserver-client",
                                                    expiration_seconds=86400)))
    assert made.spec.usages == ["client auth"]
    rows = table(kubectl(control_plane, "get", "csr", name))
    assert rows[0] == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    assert rows[1][0] == name and rows[1][2] == "kubernetes.io/kube-apiserver-client"
    assert rows[1][-2:] == ["24h", "Pending"]
    assert made.spec.username and rows[1][3] == made.spec.username   # the requester, from the request's user
    assert "system:authenticated" in made.spec.groups
    # kubectl approves through the approval subresource; a signer's status write keeps the approval
    assert "approved" in kubectl(control_plane, "certificate", "approve", name)
    approved = certs.read_certificate_signing_request(name)
    cond = approved.status.conditions[0]
    assert (cond.type, cond.status, cond.reason) == ("Approved", "True", "KubectlApprove")
    assert table(kubectl(control_plane, "get", "csr", name))[1][-1] == "Approved"
    body = certs.read_certificate_signing_request(name)
    body.status.conditions = []
    body.status.certificate = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    signed = certs.replace_certificate_signing_request_status(name, body)
    assert [c.type for c in signed.status.conditions] == ["Approved"] and signed.status.certificate
    body = certs.read_certificate_signing_request(name)
    body.spec.usages = ["server auth"]
    assert certs.replace_certificate_signing_request(name, body).spec.usages == ["client auth"]
    certs.delete_certificate_signing_request(name)


def test_kubectl_create_commands_send_protobuf_the_server_reads(control_plane, ns):
    """kubectl create role|rolebinding|clusterrole|clusterrolebinding|ingress send protobuf bodies."""
    cr, crb = unique("cr"), unique("crb")
    kubectl(control_plane, "create", "role", "r", "-n", ns, "--verb=get,list", "--resource=pods")
    kubectl(control_plane, "create", "rolebinding", "rb", "-n", ns, "--role=r", "--user=alice",
            "--serviceaccount=default:default")
    kubectl(control_plane, "create", "clusterrole", cr, "--verb=get", "--resource=nodes")
    kubectl(control_plane, "create", "clusterrolebinding", crb, f"--clusterrole={cr}", "--group=devs")
    kubectl(control_plane, "create", "ingress", "ing", "-n", ns, "--rule=foo.com/bar*=svc:8080", "--class=nginx")
    rb = json.loads(kubectl(control_plane, "get", "rolebinding", "rb", "-n", ns, "-o", "json"))
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
    assert {"kind": "ServiceAccount", "name": "default", "namespace": "default"} in rb["subjects"]
    row = table(kubectl(control_plane, "get", "clusterrolebinding", crb, "-o", "wide"))[1]
    assert row[1] == f"ClusterRole/{cr}" and row[-1] == "devs"
    ing = json.loads(kubectl(control_plane, "get", "ingress", "ing", "-n", ns, "-o", "json"))
    path = ing["spec"]["rules"][0]["http"]["paths"][0]
    assert ing["spec"]["ingressClassName"] == "nginx" and ing["spec"]["rules"][0]["host"] == "foo.com"
    assert (path["path"], path["pathType"], path["backend"]["service"]) == (
        "/bar", "Prefix", {"name": "svc", "port": {"number": 8080}})

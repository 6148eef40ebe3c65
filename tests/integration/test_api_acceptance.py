"""Issue 13's acceptance, as a user: one `kubectl apply -f` of a manifest with a ReplicationController, a
StatefulSet with its headless Service and volumeClaimTemplates, a CronJob, a PodDisruptionBudget, a quota, a
CustomResourceDefinition and two of its objects; then each behaves as on Kubernetes, and `kubectl drain`
respects the budget. The cluster: a 3-member store, an apiserver, the scheduler, the controller-manager and
a hollow kubelet with two nodes."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.hollow import hollow_cluster

CRD = (Path(__file__).parent / "data" / "certificate-crd.yaml").read_text()
MANIFEST = """
apiVersion: v1
kind: PersistentVolume
metadata: {name: acc-pv-0}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/acc-pv-0}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: acc-pv-1}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/acc-pv-1}}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: frontend}
spec:
  replicas: 2
  selector: {app: frontend}
  template:
    metadata: {labels: {app: frontend}}
    spec: {containers: [{name: nginx, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx
        volumeMounts: [{name: data, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: tick, image: busybox, command: [date]}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: frontend}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: frontend}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota}
spec:
  hard: {pods: "10", count/configmaps: "5"}
---
""" + CRD + """
---
apiVersion: certs.example.com/v1
kind: Certificate
metadata: {name: site}
spec: {secretName: site-tls, issuerRef: {name: ca}, dnsNames: [site.example.com]}
---
apiVersion: certs.example.com/v1
kind: Certificate
metadata: {name: api}
spec: {secretName: api-tls, issuerRef: {name: ca}, dnsNames: [api.example.com]}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with hollow_cluster(tmp_path_factory.mktemp("acceptance"), "*", nodes=2) as api:
        yield api


@pytest.fixture
def ns(cluster, request):
    name = "acc-" + request.node.name.removeprefix("test_")[:20].replace("_", "-")
    cluster.kubectl("create", "namespace", name)
    return name


def _json(api, *args: str) -> dict:
    return json.loads(api.kubectl(*args, "-o", "json").stdout)


def _until(fn, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_one_manifest_applies_and_every_kind_behaves(cluster, ns):
    kc = cluster.kubectl
    first = kc("apply", "-n", ns, "-f", "-", input=MANIFEST, check=False)
    if first.returncode != 0:
        # as against Kubernetes: objects of a CRD created by the same apply may not map yet
        assert "ensure CRDs are installed first" in first.stderr or "no matches for kind" in first.stderr, first.stderr
        kc("wait", "--for", "condition=established", "--timeout=30s", "crd/certificates.certs.example.com")
        kc("apply", "-n", ns, "-f", "-", input=MANIFEST)
    # the RC keeps two pods and heals
    ready = lambda name, want: _until(lambda: _json(cluster, "get", "-n", ns, name)["status"].get("readyReplicas") == want)
    assert ready("rc/frontend", 2)
    victim = _json(cluster, "get", "-n", ns, "pods", "-l", "app=frontend")["items"][0]["metadata"]["name"]
    kc("delete", "-n", ns, "pod", victim, "--grace-period=0", "--force")
    assert _until(lambda: victim not in {p["metadata"]["name"] for p in _json(
        cluster, "get", "-n", ns, "pods", "-l", "app=frontend")["items"]} and len(_json(
            cluster, "get", "-n", ns, "pods", "-l", "app=frontend")["items"]) == 2)
    # the StatefulSet: ordinal pods with stable names and claims bound to the volumes
    assert ready("sts/web", 2)
    pods = sorted(p["metadata"]["name"] for p in _json(cluster, "get", "-n", ns, "pods", "-l", "app=web")["items"])
    assert pods == ["web-0", "web-1"]
    assert _until(lambda: sorted((c["metadata"]["name"], c["status"].get("phase")) for c in _json(
        cluster, "get", "-n", ns, "pvc")["items"]) == [("data-web-0", "Bound"), ("data-web-1", "Bound")])
    assert _json(cluster, "get", "-n", ns, "pod", "web-1")["spec"]["subdomain"] == "web"
    # defaults give RollingUpdate a partition of 0, so kubectl reports a partitioned roll out, as on Kubernetes
    assert "partitioned roll out complete: 2 new pods have been updated" in kc(
        "rollout", "status", "-n", ns, "sts/web", "--timeout=30s").stdout
    # the budget's status is kept: two healthy, none may go
    assert _until(lambda: (_json(cluster, "get", "-n", ns, "pdb/frontend").get("status") or {}).get("currentHealthy") == 2)
    assert _json(cluster, "get", "-n", ns, "pdb/frontend")["status"]["disruptionsAllowed"] == 0
    # the quota counts what the namespace holds (the CronJob may have added a pod meanwhile)
    def quota_matches() -> bool:
        running = [p for p in _json(cluster, "get", "-n", ns, "pods")["items"]
                   if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
        used = (_json(cluster, "get", "-n", ns, "quota/quota").get("status") or {}).get("used", {})
        return len(running) >= 4 and used.get("pods") == str(len(running))
    assert _until(quota_matches), (_json(cluster, "get", "-n", ns, "quota/quota").get("status"),
                                   [(p["metadata"]["name"], p["status"].get("phase"), p["metadata"].get("deletionTimestamp"))
                                    for p in _json(cluster, "get", "-n", ns, "pods")["items"]])
    # the custom objects, with their printer columns
    table = kc("get", "-n", ns, "certificates").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "SECRET", "AGE"] and {r.split()[0] for r in table[1:]} == {"api", "site"}
    # the CronJob is scheduled (its first Job within a minute and a bit)
    assert _until(lambda: _json(cluster, "get", "-n", ns, "jobs")["items"], 75)
    assert _json(cluster, "get", "-n", ns, "cronjob/tick")["status"].get("lastScheduleTime")
    # owners take their dependents with them (the garbage collector), claims stay (Retain)
    kc("delete", "-n", ns, "sts/web", "rc/frontend")
    assert _until(lambda: not [p for p in _json(cluster, "get", "-n", ns, "pods")["items"]
                               if p["metadata"]["labels"].get("app") in ("web", "frontend")])
    assert _until(lambda: not _json(cluster, "get", "-n", ns, "controllerrevisions")["items"])
    assert len(_json(cluster, "get", "-n", ns, "pvc")["items"]) == 2


def test_drain_respects_the_disruption_budget(cluster, ns):
    kc = cluster.kubectl
    kc("apply", "-n", ns, "-f", "-", input=_rc_and_budget())
    assert _until(lambda: (_json(cluster, "get", "-n", ns, "pdb/drained").get("status") or {}).get("currentHealthy") == 2)
    node = _json(cluster, "get", "-n", ns, "pods", "-l", "app=drained")["items"][0]["spec"]["nodeName"]
    blocked = kc("drain", node, "--pod-selector", "app=drained", "--timeout=6s", "--ignore-daemonsets", check=False)
    assert blocked.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in blocked.stdout + blocked.stderr
    kc("patch", "-n", ns, "pdb/drained", "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
    assert _until(lambda: _json(cluster, "get", "-n", ns, "pdb/drained")["status"].get("disruptionsAllowed", 0) >= 1)
    drained = kc("drain", node, "--pod-selector", "app=drained", "--timeout=60s", "--ignore-daemonsets")
    assert "evicted" in drained.stdout and f"node/{node} drained" in drained.stdout
    kc("uncordon", node)


def _rc_and_budget() -> str:
    docs = MANIFEST.split("\n---\n")
    picked = "\n---\n".join(d for d in docs if "kind: ReplicationController" in d or "kind: PodDisruptionBudget" in d)
    return picked.replace("frontend", "drained")   # pods of its own, apart from the other test's

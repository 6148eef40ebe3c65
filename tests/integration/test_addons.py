"""Cluster add-ons from deploy/cluster/addons: created once, left alone after."""
from __future__ import annotations

from pathlib import Path

from kubeling import addons
from kubeling.client.config import load_kubeconfig

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)

ADDONS = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "addons"


def test_kube_dns_addon_is_created_once(control_plane):
    cfg = load_kubeconfig(control_plane.kubeconfig)
    docs = addons.objects(ADDONS)
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Service", "Deployment"]
    first = addons.ensure(cfg, docs)
    assert first == ["serviceaccounts/coredns created", "services/kube-dns created", "deployments/coredns created"]
    svc = control_plane.http("GET", "/api/v1/namespaces/kube-system/services/kube-dns")[1]
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert addons.ensure(cfg, docs)[1] == "services/kube-dns unchanged"

"""The cluster's credentials bootstrap: every identity gets a token and a kubeconfig, once."""
from __future__ import annotations

import csv

from kubeling import credentials
from kubeling.client.config import load_kubeconfig


def test_each_identity_has_a_token_and_a_kubeconfig_kept_across_runs(tmp_path):
    paths = credentials.ensure(tmp_path, "https://apiserver:6443", "https://127.0.0.1:6443")
    rows = list(csv.reader((tmp_path / "tokens.csv").open()))
    assert [r[1] for r in rows] == [user for _, user, _ in credentials.IDENTITIES]
    assert rows[0][3] == "system:masters" and rows[3][3] == "system:nodes"
    admin, kubelet = load_kubeconfig(paths[0]), load_kubeconfig(tmp_path / "kubelet.kubeconfig")
    assert admin.server == "https://127.0.0.1:6443" and admin.token == rows[0][0]
    assert kubelet.server == "https://apiserver:6443" and kubelet.token == rows[3][0]
    assert kubelet.ca_data == (tmp_path / "ca.crt").read_bytes()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    credentials.ensure(tmp_path, "https://apiserver:6443", "https://127.0.0.1:6443")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert {"sa.key", "sa.pub", "ca.key", "peer-password"} <= set(before)

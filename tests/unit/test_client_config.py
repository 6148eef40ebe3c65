"""Client configuration: a pod's in-cluster config, and token files re-read as client-go does."""
from __future__ import annotations

import pytest

from kubeling.client.config import ClientConfig, in_cluster_config


def sa_dir(tmp_path, token: str = "t1"):
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "ca.crt").write_text("CA")
    (tmp_path / "namespace").write_text("kube-system")
    return tmp_path


def test_in_cluster_config_is_the_service_env_and_the_service_account_files(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = in_cluster_config(sa_dir(tmp_path))
    assert (cfg.server, cfg.bearer(), cfg.ca_data, cfg.namespace) == ("https://10.96.0.1:443", "t1", b"CA", "kube-system")


def test_outside_a_pod_in_cluster_config_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ValueError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"):
        in_cluster_config(sa_dir(tmp_path))


def test_a_rotated_token_file_is_read_again_after_a_minute(tmp_path, monkeypatch):
    import kubeling.client.config as config
    clock = [1000.0]
    monkeypatch.setattr(config.time, "monotonic", lambda: clock[0])
    d = sa_dir(tmp_path)
    cfg = ClientConfig("https://x", "", None, token_file=str(d / "token"))
    assert cfg.bearer() == "t1"
    (d / "token").write_text("t2")
    clock[0] += 30
    assert cfg.bearer() == "t1"
    clock[0] += 31
    assert cfg.bearer() == "t2"

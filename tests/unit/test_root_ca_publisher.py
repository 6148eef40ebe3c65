"""The CA the root-ca-cert-publisher publishes: --root-ca-file (a PEM bundle, checked at start) or
else the certificate authority of the controller-manager's kubeconfig."""
import argparse

import pytest

from controllers.rootcacert import RootCACertPublisher, read_root_ca
from kubeling.client import Client
from kubeling.client.config import load_kubeconfig
from kubeling.client.informer import InformerFactory
from kubeling.kubeconfig import write
from kubeling.pki import ensure_ca


def publisher(client: Client, root_ca: bytes | None) -> RootCACertPublisher:
    return RootCACertPublisher(client, InformerFactory(client), None, argparse.Namespace(root_ca=root_ca))  # type: ignore[arg-type]


def test_root_ca_file_must_hold_a_certificate(tmp_path):
    ensure_ca(tmp_path)
    assert read_root_ca(str(tmp_path / "ca.crt")).startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(ValueError, match="data does not contain any valid RSA or ECDSA certificates"):
        read_root_ca(str(tmp_path / "ca.key"))
    with pytest.raises(ValueError, match=f"error parsing root-ca-file at {tmp_path}/none: open .*: no such file"):
        read_root_ca(str(tmp_path / "none"))


def test_without_root_ca_file_the_kubeconfigs_ca_is_published(tmp_path):
    ensure_ca(tmp_path)
    ca = (tmp_path / "ca.crt").read_bytes()
    write(tmp_path / "kubeconfig", "https://127.0.0.1:6443", ca, "token")
    client = Client(load_kubeconfig(tmp_path / "kubeconfig"))
    assert publisher(client, None).root_ca == ca
    assert publisher(client, b"other bundle").root_ca == b"other bundle"

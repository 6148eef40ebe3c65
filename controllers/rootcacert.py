"""root-ca-cert-publisher: a `kube-root-ca.crt` ConfigMap in every namespace holding the CA bundle
pods use to verify the apiserver (projected service-account volumes mount it); re-created when
deleted, put back when edited."""
from __future__ import annotations

from pathlib import Path

from cryptography import x509

from kubeling.api.resources import lookup
from kubeling.client import ApiError

from .base import Controller, namespace_terminating

CONFIGMAPS, NAMESPACES = lookup("", "v1", "configmaps"), lookup("", "v1", "namespaces")
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


def read_root_ca(path: str) -> bytes:
    """--root-ca-file: a PEM bundle of at least one certificate (kube-controller-manager's readCA)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"error parsing root-ca-file at {path}: open {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError(f"error parsing root-ca-file at {path}: "
                         "data does not contain any valid RSA or ECDSA certificates") from None
    return data


class RootCACertPublisher(Controller):
    """Keyed by namespace: namespaces added (or updated while Active) and edits or deletions of
    the ConfigMap queue their namespace. The CA is --root-ca-file's, else the kubeconfig's."""
    name = "root-ca-cert-publisher"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.root_ca = getattr(self.opts, "root_ca", None) or self.client.config.ca_data or b""
        self.configmaps = self.factory.get(CONFIGMAPS)
        self.namespaces = self.factory.get(NAMESPACES)
        self.configmaps.add_handler(None, lambda old, new: self.on_configmap(new), self.on_configmap)
        self.namespaces.add_handler(lambda ns: self.queue.add(ns["metadata"]["name"]), self.on_namespace_update)

    def on_configmap(self, cm: dict) -> None:
        if cm["metadata"]["name"] == ROOT_CA_CONFIGMAP:
            self.queue.add(cm["metadata"]["namespace"])

    def on_namespace_update(self, old: dict, new: dict) -> None:
        if (new.get("status") or {}).get("phase") == "Active":
            self.queue.add(new["metadata"]["name"])

    async def sync(self, key: str) -> None:
        data = {"ca.crt": self.root_ca.decode()}
        cm = self.configmaps.get(f"{key}/{ROOT_CA_CONFIGMAP}")
        if cm is None:
            try:
                await self.client.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": data}, key)
            except ApiError as e:
                # a namespace that is gone or terminating gets nothing, and is not retried
                if not (e.not_found or namespace_terminating(e)):
                    raise
            return
        annotations = cm["metadata"].get("annotations") or {}
        if cm.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        await self.client.update(CONFIGMAPS, {**cm, "data": data, "metadata": {
            **cm["metadata"], "annotations": {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}}}, key)

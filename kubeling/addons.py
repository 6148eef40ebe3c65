"""Cluster add-ons (kube-dns...): objects from YAML files created when absent, as kubeadm's addon
phase does once a control plane answers. Objects a user changed are left as they are."""
from __future__ import annotations

import time
from pathlib import Path

import yaml

from .api.resources import by_kind
from .client.blocking import request
from .client.config import ClientConfig


def objects(directory: Path) -> list[dict]:
    """Every object of every *.yaml file, in file-name order (so a namespace file can come first)."""
    return [doc for f in sorted(directory.glob("*.yaml")) for doc in yaml.safe_load_all(f.read_text()) if doc]


def ensure(cfg: ClientConfig, docs: list[dict], timeout: float = 120.0) -> list[str]:
    """Create each object unless it exists; waits (up to `timeout`) for the apiserver to answer.
    Returns one line per object: created or unchanged."""
    deadline = time.monotonic() + timeout
    done = []
    for doc in docs:
        r = by_kind(doc["apiVersion"], doc["kind"])
        if r is None:
            raise ValueError(f"unknown kind {doc['apiVersion']}/{doc['kind']}")
        meta = doc["metadata"]
        path = r.base_path(meta.get("namespace", "default") if r.namespaced else None)
        while True:
            try:
                # looked up first: a second create of a Service with a fixed ClusterIP is 422, not 409
                code, body = request(cfg, "GET", f"{path}/{meta['name']}")
                if code == 404:
                    code, body = request(cfg, "POST", path, doc)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        if code not in (200, 201, 409):
            raise ValueError(f"{doc['kind']} {meta['name']}: {body.get('message', code)}")
        done.append(f"{r.plural}/{meta['name']} {'created' if code == 201 else 'unchanged'}")
    return done

"""Shared fixtures: real store clusters on loopback, cleaned up after use."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.clusters import EtcdCluster, EtcdnodeCluster
from tests.support.control_plane import ApiServer

BACKENDS = {"etcdnode": EtcdnodeCluster, "etcd": EtcdCluster}
_counter = itertools.count()


@pytest.fixture(scope="module", params=list(BACKENDS))
def store(request, tmp_path_factory):
    """A running 3-member cluster of each backend (etcdnode and real etcd 3.4)."""
    cls = BACKENDS[request.param]
    if cls is EtcdCluster and not EtcdCluster.available():
        pytest.skip("real etcd is not installed (make deps)")
    cluster = cls(tmp_path_factory.mktemp(request.param), size=3)
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def make_cluster(tmp_path):
    """Factory for tests that need a cluster of their own (failure scenarios)."""
    made = []

    def make(size: int = 3, backend: str = "etcdnode", **kwargs):
        cluster = BACKENDS[backend](tmp_path / f"c{next(_counter)}", size=size, **kwargs)
        made.append(cluster)
        return cluster.start_all()

    yield make
    for cluster in made:
        cluster.stop()


@pytest.fixture
def key_prefix(request):
    """A key prefix unique to the test, since module clusters are shared."""
    return f"/t/{request.node.name}/{next(_counter)}/"


@contextmanager
def _control_plane(tmp: Path) -> Iterator[ApiServer]:
    store = EtcdnodeCluster(tmp / "store", size=3)
    api = None
    try:
        store.start_all()
        api = ApiServer(tmp / "api", store.client_urls).start()
        api.store = store
        yield api
    finally:
        if api is not None:
            api.stop()
        store.stop()


@pytest.fixture(scope="session")
def shared_control_plane(tmp_path_factory):
    """The control plane of every module that sets SHARES_CONTROL_PLANE = True: modules that only
    talk to the API, each test in namespaces of its own, need not pay for starting one each."""
    with _control_plane(tmp_path_factory.mktemp("shared-cp")) as api:
        yield api


@pytest.fixture(scope="module")
def control_plane(request, tmp_path_factory):
    """A 3-member etcdnode store with one apiserver on it, shared by a test module: the session's
    shared one when the module sets SHARES_CONTROL_PLANE = True, else the module's own (modules that
    run controllers or node agents, whose loops would act on every other module's objects)."""
    if getattr(request.module, "SHARES_CONTROL_PLANE", False):
        yield request.getfixturevalue("shared_control_plane")
        return
    with _control_plane(tmp_path_factory.mktemp("cp")) as api:
        yield api


@pytest.fixture
def ns(control_plane, request):
    """A fresh namespace for one test (cluster objects are shared by the module, or by every sharing module)."""
    name = f"t{next(_counter)}-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    code, body, _ = control_plane.http("POST", "/api/v1/namespaces",
                                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert code == 201, body
    return name

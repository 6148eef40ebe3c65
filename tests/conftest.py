"""Shared fixtures: real store clusters on loopback, cleaned up after use."""

from __future__ import annotations

import itertools

import pytest

from tests.support.clusters import EtcdCluster, EtcdnodeCluster

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

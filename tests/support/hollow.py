"""A control plane with a scheduler, chosen controllers and hollow kubelets, for workload tests whose
pods need only to be scheduled, Running and Ready (no containers)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer, Component


@contextmanager
def hollow_cluster(tmp: Path, controllers: str, nodes: int = 1, ready_delay: float = 0.2, store_size: int = 3,
                   kubelet_args: list[str] | None = None) -> Iterator[ApiServer]:
    """The apiserver of a running cluster; `controllers` is the controller-manager's --controllers;
    kubelet_args replace the hollow kubelet's node flags (default: `nodes` nodes named node-<i>)."""
    store = EtcdnodeCluster(tmp / "store", size=store_size)
    procs: list[Component] = []
    api = None
    try:
        store.start_all()
        api = ApiServer(tmp / "api", store.client_urls).start()
        kc = str(api.kubeconfig)
        procs = [
            Component(tmp, "scheduler", ["--kubeconfig", kc, "--port", str(free_port())]).start(),
            Component(tmp, "controllers", ["--kubeconfig", kc, "--port", str(free_port()),
                                           "--controllers", controllers]).start(),
            Component(tmp, "kubelet", ["--kubeconfig", kc, "--healthz-port", str(free_port()), "--ready-delay",
                                       str(ready_delay), "--node-status-update-frequency", "1",
                                       *(kubelet_args or ["--hostname-override", "node", "--hollow-nodes",
                                                          str(nodes)])]).start(),
        ]
        wait_for(lambda: len(api.http("GET", "/api/v1/nodes")[1].get("items", [])) == nodes, 30, "hollow nodes")
        api.procs = procs
        yield api
    finally:
        for p in procs:
            p.stop()
        if api is not None:
            api.stop()
        store.stop()


def namespace(api: ApiServer, request) -> str:
    """A fresh namespace named after the test (the `ns` fixture of the modules using these clusters)."""
    name = "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:40]
    code, body, _ = api.http("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    return name

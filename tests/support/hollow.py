"""A control plane with a scheduler, chosen controllers and hollow kubelets, for workload tests whose
pods need only to be scheduled, Running and Ready (no containers)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.support.clusters import EtcdnodeCluster, free_port, wait_for
from tests.support.control_plane import ApiServer, Component


@contextmanager
def hollow_cluster(tmp: Path, controllers: str, nodes: int = 1, ready_delay: float = 0.2) -> Iterator[ApiServer]:
    """The apiserver of a running cluster; `controllers` is the controller-manager's --controllers."""
    store = EtcdnodeCluster(tmp / "store", size=3)
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
            Component(tmp, "kubelet", ["--kubeconfig", kc, "--hostname-override", "node", "--hollow-nodes",
                                       str(nodes), "--healthz-port", str(free_port()), "--ready-delay",
                                       str(ready_delay), "--node-status-update-frequency", "1"]).start(),
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

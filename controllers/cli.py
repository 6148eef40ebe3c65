"""`python -m controllers`: the controller-manager (every controller in one process), leader-elected."""
from __future__ import annotations

import argparse
import asyncio
import logging
import random

from prometheus_client import CollectorRegistry

from kubeling.client.events import EventRecorder
from kubeling.client.informer import InformerFactory
from kubeling.component import add_leader_election_flags, load_client, run_elected, run_main

from .base import EVENT_SOURCES
from .cronjob import CronJobController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .endpoints import EndpointsController
from .garbagecollector import GarbageCollector
from .hpa import HPAController
from .namespace import NamespaceController
from .nodelifecycle import NodeIpamController, NodeLifecycleController, ServiceAccountController
from .persistentvolume import PersistentVolumeBinder
from .replicaset import ReplicaSetController
from .replicationcontroller import ReplicationControllerController
from .resourcequota import ResourceQuotaController
from .rootcacert import RootCACertPublisher, read_root_ca
from .statefulset import StatefulSetController
from .workloads import DaemonSetController, JobController, TTLAfterFinishedController

CONTROLLERS = {"replicaset": ReplicaSetController, "deployment": DeploymentController,
               "replicationcontroller": ReplicationControllerController, "statefulset": StatefulSetController,
               "resourcequota": ResourceQuotaController,
               "namespace": NamespaceController, "garbagecollector": GarbageCollector,
               "endpoint": EndpointsController, "nodelifecycle": NodeLifecycleController,
               "nodeipam": NodeIpamController, "serviceaccount": ServiceAccountController,
               "horizontalpodautoscaling": HPAController, "daemonset": DaemonSetController,
               "job": JobController, "ttl-after-finished": TTLAfterFinishedController,
               "root-ca-cert-publisher": RootCACertPublisher, "persistentvolume-binder": PersistentVolumeBinder,
               "cronjob": CronJobController, "disruption": DisruptionController}


def enabled(spec: str) -> list[str]:
    """kube-controller-manager's --controllers: '*' for all, 'name' to enable, '-name' to disable."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    names = set(CONTROLLERS) if "*" in items else set()
    for s in items:
        if s.startswith("-"):
            names.discard(s[1:])
        elif s != "*":
            if s not in CONTROLLERS:
                raise ValueError(f"unknown controller {s!r} (known: {', '.join(sorted(CONTROLLERS))})")
            names.add(s)
    return sorted(names)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="controllers", description="kubeling's controller-manager.")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--controllers", default="*", help="'*', names, and -name to disable one")
    p.add_argument("--min-resync-period", type=float, default=12 * 3600.0,
                   help="seconds; informers re-deliver every object after a random period between this and twice it")
    add_leader_election_flags(p, "run only while holding the kube-controller-manager Lease")
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                   help="seconds without a heartbeat before a node is marked Unknown and tainted unreachable")
    p.add_argument("--node-monitor-period", type=float, default=5.0, help="seconds between node health checks")
    p.add_argument("--allocate-node-cidrs", action="store_true", help="give each node a podCIDR from --cluster-cidr")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=float, default=15.0)
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=float, default=300.0,
                   help="seconds of recommendations whose maximum a scale-down may not go below")
    p.add_argument("--hpa-metrics-source", choices=["api", "annotations"], default="api",
                   help="pod usage from metrics.k8s.io, or from metrics.kubeling.io/<resource> pod annotations")
    p.add_argument("--root-ca-file", help="PEM CA bundle published as kube-root-ca.crt in every namespace "
                   "(default: the certificate authority of --kubeconfig)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=10257, help="plain-HTTP /healthz and /metrics")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0)
    return p


async def _run(a: argparse.Namespace, names: list[str]) -> int:
    client = load_client(a.kubeconfig, "kube-controller-manager/v1.32.0")
    if client is None:
        return 1

    async def lead() -> None:
        factory = InformerFactory(client, resync=a.min_resync_period * (1 + random.random()))
        ctrls = [CONTROLLERS[n](client, factory, EventRecorder(client, EVENT_SOURCES.get(n, "controller-manager")), a)
                 for n in names]
        factory.start()
        await factory.wait_synced()
        logging.getLogger("controllers").info("started controllers: %s", ", ".join(names))
        await asyncio.gather(*(c.run() for c in ctrls))
    return await run_elected(a, client, "kube-controller-manager", CollectorRegistry(), lead)


def main(argv: list[str] | None = None) -> None:
    p = build_parser()
    a = p.parse_args(argv)
    try:
        names = enabled(a.controllers)
        a.root_ca = read_root_ca(a.root_ca_file) if a.root_ca_file else None
    except ValueError as e:
        p.error(str(e))
    run_main(_run(a, names), a.verbosity)

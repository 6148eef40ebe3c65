"""`python -m apiserver`: flags spelled like kube-apiserver's, certificates, start-up and clean shutdown."""
from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import socket
import sys
from pathlib import Path

import uvicorn

from kubeling.api.resources import lookup
from kubeling.component import run_main
from kubeling.etcd import EtcdClient
from kubeling.etcd.errors import EtcdError
from kubeling.pki import ensure_client_cert, ensure_serving_cert
from kubeling.serving import Server, listen

log = logging.getLogger("apiserver")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apiserver", description="kubeling's Kubernetes API server (HTTPS).")
    p.add_argument("--etcd-servers", required=True, help="comma-separated etcd (or etcdnode) client URLs")
    p.add_argument("--bind-address", default="0.0.0.0", help="IP address to serve HTTPS on")
    p.add_argument("--secure-port", type=int, default=6443, help="port to serve HTTPS on")
    p.add_argument("--cert-dir", default="/var/run/kubernetes",
                   help="directory of the cluster CA and serving certificate (generated when absent)")
    p.add_argument("--token-auth-file", required=True,
                   help="static bearer tokens, CSV: token,user,uid,\"group1,group2\"")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/16", help="CIDR for Service cluster IPs")
    p.add_argument("--service-node-port-range", default="30000-32767", help="port range for NodePort Services")
    p.add_argument("--advertise-address", default="", help="IP address advertised to the cluster (default: bind address)")
    p.add_argument("--watch-cache-history", type=int, default=100_000, help="watch events kept for resuming watches")
    p.add_argument("--watch-bookmark-interval", type=float, default=60.0,
                   help="seconds between BOOKMARK events to watchers that allow them")
    p.add_argument("--watch-queue-length", type=int, default=50_000,
                   help="live events one watcher may fall behind before it is closed as too slow "
                        "(kubeling's own; kube-apiserver sizes its watcher buffers itself)")
    p.add_argument("--service-account-key-file", action="append", default=[],
                   help="PEM public (or private) key verifying ServiceAccount tokens; repeatable "
                        "(default: the signing key's public half)")
    p.add_argument("--service-account-signing-key-file", default="",
                   help="PEM private key signing ServiceAccount tokens (default: CERT_DIR/sa.key, created when absent)")
    p.add_argument("--service-account-issuer", action="append", default=[],
                   help="identifier put in the \"iss\" claim of issued tokens; repeatable: the first signs new "
                        "tokens, all are accepted (default: https://kubernetes.default.svc.cluster.local)")
    p.add_argument("--api-audiences", action="append", default=[],
                   help="comma-separated identifiers of the API: ServiceAccount tokens must be bound to at least "
                        "one of them; repeatable (default: the service account issuers)")
    p.add_argument("--kubelet-client-certificate", default="",
                   help="client certificate presented to kubelets (default: CERT_DIR/apiserver-kubelet-client.crt, "
                        "issued by the cluster CA when absent)")
    p.add_argument("--kubelet-client-key", default="", help="its key")
    p.add_argument("--max-requests-inflight", type=int, default=400,
                   help="maximum concurrent non-mutating requests (watches excluded); 0 means no limit")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=200,
                   help="maximum concurrent mutating requests; 0 means no limit")
    p.add_argument("--v", "-v", dest="verbosity", type=int, default=0, help="log verbosity (0 info, 4+ debug)")
    return p


def _check_args(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    try:
        ipaddress.ip_network(a.service_cluster_ip_range, strict=False)
    except ValueError:
        p.error(f"--service-cluster-ip-range: {a.service_cluster_ip_range!r} is not a CIDR")
    lo, _, hi = a.service_node_port_range.partition("-")
    if not (lo.isdigit() and (hi or lo).isdigit() and 0 < int(lo) <= int(hi or lo) < 65536):
        p.error(f"--service-node-port-range: {a.service_node_port_range!r} is not a port range like 30000-32767")
    if not Path(a.token_auth_file).is_file():
        p.error(f"--token-auth-file: {a.token_auth_file}: no such file")
    try:
        ipaddress.ip_address(a.bind_address)
    except ValueError:
        p.error(f"--bind-address: {a.bind_address!r} is not an IP address")
    a.service_account_issuer = a.service_account_issuer or ["https://kubernetes.default.svc.cluster.local"]
    if "" in a.service_account_issuer or len(set(a.service_account_issuer)) != len(a.service_account_issuer):
        p.error("--service-account-issuer: issuers must be non-empty and distinct")
    a.api_audiences = [x.strip() for v in a.api_audiences for x in v.split(",") if x.strip()] or a.service_account_issuer


async def _run(a: argparse.Namespace) -> int:
    from .admission import ServiceAllocator
    from .app import build_app
    from .auth import TokenFileError, load_tokens
    from .bootstrap import SystemReconciler
    from . import registry
    from .componentstatus import ComponentStatuses
    from .metrics import ResourceMetrics
    from .handlers import Handler
    from .proxy import KubeletProxy
    from .storage import Storage
    from .watchcache import WatchCache

    try:
        tokens = load_tokens(a.token_auth_file)
    except (OSError, TokenFileError) as e:
        print(f"error: --token-auth-file: {e}", file=sys.stderr)
        return 1
    # listen first, like kube-apiserver: a taken port is one line (ListenError) before etcd is touched
    listener = listen(a.bind_address, a.secure_port)
    advertise = a.advertise_address or (a.bind_address if a.bind_address not in ("0.0.0.0", "::") else "127.0.0.1")
    sans = list(dict.fromkeys([a.bind_address, advertise, "127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                               "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
                               str(ipaddress.ip_network(a.service_cluster_ip_range, strict=False).network_address + 1),
                               socket.gethostname()]))
    sans = [s for s in sans if s not in ("0.0.0.0", "::")]
    cert_dir = Path(a.cert_dir)
    crt, key = ensure_serving_cert(cert_dir, "apiserver", "kube-apiserver", sans)

    etcd_urls = [u.strip() for u in a.etcd_servers.split(",") if u.strip()]
    etcd = EtcdClient(etcd_urls, timeout=10.0)
    try:
        await asyncio.wait_for(etcd.get("/registry/health-probe", count_only=True), 15)
    except (EtcdError, OSError, asyncio.TimeoutError) as e:
        print(f"error: cannot reach etcd at {a.etcd_servers}: {e or type(e).__name__}", file=sys.stderr)
        await etcd.close()
        return 1
    storage = Storage(etcd)
    cache = WatchCache(etcd, history=a.watch_cache_history, bookmark_interval=a.watch_bookmark_interval,
                       queue_length=a.watch_queue_length)
    alloc = ServiceAllocator(a.service_cluster_ip_range, a.service_node_port_range, cache)
    reconciler = SystemReconciler(storage, alloc, advertise, a.secure_port)
    await reconciler.reconcile()
    cache.start()
    await asyncio.wait_for(cache.ready.wait(), 60)
    from apiserver.api import openapi
    openapi.openapi_v2_bytes()   # build the schemas now, not on the first request
    # The watch cache holds every object: full collections over it cost tens of milliseconds of
    # stalled requests. Freeze what exists and collect the young generations less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    kubelet_client = ((Path(a.kubelet_client_certificate), Path(a.kubelet_client_key)) if a.kubelet_client_certificate
                      else ensure_client_cert(cert_dir, "apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                              "system:masters"))
    proxy = KubeletProxy(cache, storage, kubelet_client)
    handler = Handler(storage, cache, alloc, proxy=proxy)
    registry.serve_computed(lookup("", "v1", "componentstatuses"), ComponentStatuses(etcd_urls))
    metrics = ResourceMetrics(cache, proxy)
    registry.serve_computed(lookup("metrics.k8s.io", "v1beta1", "nodes"), metrics.nodes)
    registry.serve_computed(lookup("metrics.k8s.io", "v1beta1", "pods"), metrics.pods)
    from kubeling.pki import ensure_keypair
    from .auth import (Authenticator, ServiceAccountAuthenticator, TokenReviews, load_private,
                       load_public)
    signing = Path(a.service_account_signing_key_file) if a.service_account_signing_key_file else cert_dir / "sa.key"
    if not a.service_account_signing_key_file:
        ensure_keypair(signing, cert_dir / "sa.pub")
    try:
        handler.sa_signer = load_private(signing)
        public = [load_public(Path(f)) for f in a.service_account_key_file] or [handler.sa_signer.public_key()]
    except (OSError, ValueError) as e:
        print(f"error: service account keys: {e}", file=sys.stderr)
        return 1
    handler.sa_issuer, handler.sa_audiences = a.service_account_issuer[0], a.api_audiences
    authenticator = Authenticator(tokens, ServiceAccountAuthenticator(public, a.service_account_issuer,
                                                                      a.api_audiences, cache))
    registry.serve_computed(lookup("authentication.k8s.io", "v1", "tokenreviews"), TokenReviews(authenticator))
    app = build_app(handler, authenticator, f"{advertise}:{a.secure_port}", cache, proxy,
                    a.max_requests_inflight, a.max_mutating_requests_inflight)
    config = uvicorn.Config(app, host=a.bind_address, port=a.secure_port, ssl_certfile=str(crt), ssl_keyfile=str(key),
                            log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2, proxy_headers=False,
                            ws_per_message_deflate=False, http=app.streaming.protocol)
    server = Server(config)
    log.info("serving on https://%s:%d (etcd %s)", a.bind_address, a.secure_port, a.etcd_servers)
    from .customresources import CustomResourceDefinitions
    reconciling = asyncio.create_task(reconciler.run())
    serving_crds = asyncio.create_task(CustomResourceDefinitions(cache, storage).run())
    try:
        await server.serve(sockets=[listener])
    finally:
        reconciling.cancel()
        serving_crds.cancel()
        app.streaming.close()
        await cache.stop()
        await proxy.close()
        await etcd.close()
        log.info("stopped")
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> None:
    p = build_parser()
    a = p.parse_args(argv)
    _check_args(p, a)
    run_main(_run(a), a.verbosity)

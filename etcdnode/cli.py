"""`python -m etcdnode`: flags spelled like etcd's, process wiring and clean shutdown."""

from __future__ import annotations

import argparse
import gc
import asyncio
import logging
import os
import socket
import sys
from urllib.parse import urlsplit

from kubeling.serving import ListenError, listen

from .housekeeping import Housekeeper, parse_duration, parse_retention


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="etcdnode",
        description="A Raft-replicated MVCC key-value store serving etcd's v3 API (gRPC and its JSON gateway, "
                    "on one client port).",
    )
    p.add_argument("--name", default="default", help="human-readable name for this member")
    p.add_argument("--data-dir", help="path to the data directory (default: ${name}.etcd)")
    p.add_argument("--listen-client-urls", default="http://127.0.0.1:2379",
                   help="comma-separated URLs to serve the client API on")
    p.add_argument("--advertise-client-urls", default="",
                   help="this member's client URLs as MemberList reports them (default: --listen-client-urls)")
    p.add_argument("--initial-cluster-client-urls", default="",
                   help="comma-separated name=URL client URLs of the members, for MemberList (etcd learns them "
                        "through Raft; membership is static here)")
    p.add_argument("--listen-peer-urls", default="",
                   help="URL to listen on for Raft peers (default: this member's address in --initial-cluster)")
    p.add_argument("--initial-cluster", default="",
                   help="comma-separated name=host:port peer addresses of every member (default: ${name}=127.0.0.1:2380)")
    p.add_argument("--initial-cluster-token", default="", help="accepted for compatibility with etcd")
    p.add_argument("--initial-cluster-state", default="new", choices=["new", "existing"],
                   help="accepted for compatibility with etcd")
    p.add_argument("--peer-password-file", required=True,
                   help="file holding the shared secret that encrypts and authenticates peer traffic")
    p.add_argument("--max-request-bytes", type=int, default=1572864,
                   help="maximum client request size in bytes (default 1.5 MiB, like etcd)")
    p.add_argument("--max-txn-ops", type=int, default=128, help="maximum operations per transaction branch")
    p.add_argument("--auto-compaction-retention", default="0",
                   help="periodic: hours or a duration (e.g. 5m) of history to keep; revision: revisions to keep; 0 disables")
    p.add_argument("--auto-compaction-mode", default="periodic", choices=["periodic", "revision"])
    p.add_argument("--experimental-watch-progress-notify-interval", default="10m",
                   help="interval of progress notifications to watchers that asked for them")
    p.add_argument("--heartbeat-interval", type=int, default=100, help="Raft heartbeat interval in ms")
    p.add_argument("--election-timeout", type=int, default=1000, help="Raft election timeout in ms")
    p.add_argument("--request-timeout", type=float, default=7.0,
                   help="seconds after which a request whose entry did not commit fails as timed out")
    p.add_argument("--snapshot-count", type=int, default=20000,
                   help="Raft entries after which the log is compacted into a snapshot (full dump)")
    p.add_argument("--unsafe-no-fsync", action="store_true",
                   help="do not fsync the Raft log and snapshots before acknowledging (unsafe: a power loss can "
                        "lose acknowledged writes; for tests and benchmarks, as in etcd 3.5)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def host_port(addr: str) -> tuple[str, int]:
    if "//" in addr:
        u = urlsplit(addr)
        if not u.hostname or not u.port:
            raise ValueError(f"URL {addr!r} needs a host and a port")
        return u.hostname, u.port
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address {addr!r} is not host:port")
    return host, int(port)


def parse_cluster(spec: str) -> dict[str, str]:
    members: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, addr = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--initial-cluster entry {item!r} is not name=host:port")
        host, port = host_port(addr)
        members[name] = f"{host}:{port}"
    return members


def parse_client_urls(args: argparse.Namespace, cluster: dict[str, str]) -> dict[str, list[str]]:
    """Member name -> client URLs: --initial-cluster-client-urls, then this member's own
    --advertise-client-urls (else its --listen-client-urls unless listed)."""
    urls: dict[str, list[str]] = {}
    for item in filter(None, (s.strip() for s in args.initial_cluster_client_urls.split(","))):
        name, sep, url = item.partition("=")
        if not sep or name not in cluster:
            raise ValueError(f"--initial-cluster-client-urls entry {item!r} is not name=URL of a member")
        try:
            host_port(url)
        except ValueError as e:
            raise ValueError(f"--initial-cluster-client-urls: {e}") from None
        urls.setdefault(name, []).append(url)
    own = args.advertise_client_urls or ("" if args.name in urls else args.listen_client_urls)
    if own:
        urls[args.name] = [u.strip() for u in own.split(",") if u.strip()]
    return urls


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cluster = parse_cluster(args.initial_cluster or f"{args.name}=127.0.0.1:2380")
        if args.name not in cluster:
            raise ValueError(f"--name {args.name!r} is not in --initial-cluster ({', '.join(cluster)})")
        client_addrs = [host_port(u) for u in args.listen_client_urls.split(",") if u.strip()]
        peer_addr = host_port(args.listen_peer_urls) if args.listen_peer_urls else host_port(cluster[args.name])
        client_urls = parse_client_urls(args, cluster)
        retention = parse_retention(args.auto_compaction_retention, args.auto_compaction_mode)
        progress = parse_duration(args.experimental_watch_progress_notify_interval)
        with open(args.peer_password_file) as f:
            password = f.read().strip()
        if not password:
            raise ValueError(f"--peer-password-file {args.peer_password_file} is empty")
    except OSError as e:
        parser.exit(2, f"etcdnode: error: --peer-password-file: {e.strerror}: {e.filename}\n")
    except ValueError as e:
        parser.exit(2, f"etcdnode: error: {e}\n")
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s %(name)s member={args.name} %(message)s",
    )
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    # The MVCC store is a large, long-lived heap: young-generation collections every 700
    # allocations and full collections over it stall commits. Collect less often.
    gc.set_threshold(50_000, 50, 100)
    # fail fast with one clear line when a port is taken (pysyncobj would retry the peer port forever),
    # before saying anything is served
    try:
        listen(*peer_addr).close()
        client_socks = [listen(h, p) for h, p in client_addrs]
    except ListenError as e:
        parser.exit(1, f"etcdnode: error: {e}\n")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args, cluster, client_urls, f"{peer_addr[0]}:{peer_addr[1]}", client_socks, password,
                      retention, progress))


async def serve(args: argparse.Namespace, cluster: dict[str, str], client_urls: dict[str, list[str]],
                peer_bind: str, socks: list[socket.socket], password: str, retention: float,
                progress: float) -> None:
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from kubeling.serving import Server

    from .mvcc import MVCCStore
    from .raft import RaftConfig, RaftNode
    # pysyncobj forks to write its dumps; the child never uses gRPC, so grpc's fork handlers (and their
    # "skipping fork() handlers" message on every dump) are not wanted. Read when grpc is first imported.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    from .cmux import sniffing_protocol
    from .grpcapi import GrpcApi
    from .server import EtcdApp

    log = logging.getLogger("etcdnode")
    loop = asyncio.get_running_loop()
    store = MVCCStore()
    self_addr = cluster[args.name]
    cfg = RaftConfig(
        self_addr=self_addr, peers=list(cluster.values()), data_dir=args.data_dir or f"{args.name}.etcd",
        password=password, election_min=args.election_timeout / 1000 * 0.6,
        election_max=args.election_timeout / 1000 * 1.4, heartbeat=args.heartbeat_interval / 1000,
        request_timeout=args.request_timeout, log_compaction_entries=args.snapshot_count,
        fsync=not args.unsafe_no_fsync,
        extra={"bindAddress": peer_bind} if peer_bind != self_addr else {},
    )
    raft = RaftNode(cfg, store, loop)
    app = EtcdApp(store, raft, name=args.name, cluster=cluster, client_urls=client_urls,
                  max_request_bytes=args.max_request_bytes, max_txn_ops=args.max_txn_ops, progress_interval=progress)
    grpc_api = GrpcApi(app)
    grpc_port = await grpc_api.start()
    keeper = Housekeeper(store, raft, retention, args.auto_compaction_mode)
    keeper.start()
    watchdog = asyncio.create_task(_report_peers(raft, cluster, log))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            proxy_headers=False, timeout_graceful_shutdown=0.5, timeout_keep_alive=30,
                            http=sniffing_protocol(HttpToolsProtocol, ("127.0.0.1", grpc_port)))
    server = Server(config)
    log.info("serving clients on %s, peers on %s, data in %s", args.listen_client_urls, peer_bind, cfg.data_dir)
    try:
        await server.serve(sockets=socks)
    finally:
        await grpc_api.stop()
        watchdog.cancel()
        await keeper.stop()
        raft.destroy()
        log.info("stopped")


async def _report_peers(raft, cluster: dict[str, str], log: logging.Logger) -> None:
    """Say clearly, once every few seconds, when this member cannot reach a leader."""
    names = {addr: name for name, addr in cluster.items()}
    while True:
        await asyncio.sleep(5)
        if raft.leader() is None:
            st = raft.status()
            down = [f"{names.get(k.removeprefix('partner_node_status_server_'), '?')}"
                    f"({k.removeprefix('partner_node_status_server_')})"
                    for k, v in st.items() if k.startswith("partner_node_status_server_") and v != 2]
            log.warning("no leader; unreachable peers: %s", ", ".join(down) or "none")

"""The `kubeling` command: bring a local cluster up and down."""

from __future__ import annotations

import argparse

from .launcher import Launcher, host_ip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="kubeling", description="kubeling: a small but real Kubernetes.")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a local cluster in the background (a 3-member etcdnode store)")
    up.add_argument("--run-dir", default="run", help="where data, logs and pids live (default ./run)")
    up.add_argument("--docker-nodes", type=int, default=2,
                    help="kubelets running pods on this machine's Docker engine (node-1, node-2, ...)")
    up.add_argument("--hollow-nodes", type=int, default=0,
                    help="simulated nodes in one extra kubelet process (hollow-0, ...), for scale")
    down = sub.add_parser("down", help="stop what `kubeling up` started")
    down.add_argument("--run-dir", default="run")
    kc = sub.add_parser("kubeconfig", help="write an admin kubeconfig with the cluster CA embedded")
    kc.add_argument("--server", required=True, help="apiserver URL, e.g. https://127.0.0.1:6443")
    kc.add_argument("--cert-dir", required=True, help="the apiserver's --cert-dir (holds ca.crt)")
    kc.add_argument("--token-file", required=True, help="the apiserver's --token-auth-file")
    kc.add_argument("--user", default=None, help="whose token to use (default: the first line)")
    kc.add_argument("-o", "--output", required=True, help="kubeconfig file to write")
    boot = sub.add_parser("bootstrap", help="make a cluster's credentials once: CA, ServiceAccount key, "
                          "component tokens and kubeconfigs (kept when present)")
    boot.add_argument("--dir", required=True, help="where to write them (a volume every component mounts)")
    boot.add_argument("--server", default="https://kubernetes:6443", help="the apiserver as components reach it")
    boot.add_argument("--admin-server", default="https://127.0.0.1:6443", help="the apiserver as the admin reaches it")
    add = sub.add_parser("addons", help="create the cluster add-ons (kube-dns) that are missing")
    add.add_argument("--kubeconfig", required=True)
    add.add_argument("--server", default="", help="reach the apiserver here instead of the kubeconfig's server")
    add.add_argument("--dir", required=True, help="a folder of YAML manifests")
    args = p.parse_args(argv)
    if args.cmd == "addons":
        from pathlib import Path
        from . import addons
        from .client.config import load_kubeconfig
        try:
            cfg = load_kubeconfig(args.kubeconfig)
            if args.server:
                cfg.server = args.server.rstrip("/")
            for line in addons.ensure(cfg, addons.objects(Path(args.dir))):
                print(line)
        except (OSError, ValueError) as e:
            raise SystemExit(f"kubeling: error: addons: {e}")
        return
    if args.cmd == "bootstrap":
        from pathlib import Path
        from .credentials import ensure
        try:
            for path in ensure(Path(args.dir), args.server, args.admin_server):
                print(f"wrote {path}")
        except OSError as e:
            raise SystemExit(f"kubeling: error: {e}")
        return
    if args.cmd == "kubeconfig":
        from pathlib import Path
        from .kubeconfig import first_token, write
        ca = Path(args.cert_dir) / "ca.crt"
        try:
            token = first_token(Path(args.token_file), args.user)
            write(Path(args.output), args.server, ca.read_bytes(), token)
        except (OSError, ValueError) as e:
            raise SystemExit(f"kubeling: error: {e}")
        print(f"wrote {args.output}")
        return
    launcher = Launcher(args.run_dir)
    if args.cmd == "up":
        urls = launcher.up()
        kubeconfig = launcher.up_apiserver(urls)
        launcher.up_control_loops(kubeconfig, args.docker_nodes, args.hollow_nodes)
        nodes = [f"node-{i}" for i in range(1, args.docker_nodes + 1)]
        if nodes:
            launcher.up_network(kubeconfig, host_ip(), nodes[0])
        launcher.wait_nodes(nodes)
        hollow = f" and {args.hollow_nodes} hollow nodes" if args.hollow_nodes else ""
        network = ", kube-proxy and kubedns (kube-system/kube-dns, 10.96.0.10)" if nodes else ""
        print("kubeling is up: 3 etcdnode members, an apiserver, the scheduler, the controller-manager, "
              f"{len(nodes)} Docker nodes ({', '.join(nodes)}){hollow}{network}")
        print(f"  store:     {','.join(urls)}")
        print(f"  apiserver: https://127.0.0.1:6443  (CA {launcher.run / 'pki' / 'ca.crt'})")
        print(f"  logs:      {launcher.run / 'logs'}")
        print(f"export KUBECONFIG={kubeconfig}")
        print("  then:  kubectl get namespaces")
        print("  stop:  make down")
    else:
        stopped = launcher.down()
        print(f"stopped {len(stopped)} processes" if stopped else "nothing to stop")

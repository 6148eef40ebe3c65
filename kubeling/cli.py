"""The `kubeling` command: bring a local cluster up and down."""

from __future__ import annotations

import argparse

from .launcher import Launcher


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="kubeling", description="kubeling: a small but real Kubernetes.")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a local cluster in the background (a 3-member etcdnode store)")
    up.add_argument("--run-dir", default="run", help="where data, logs and pids live (default ./run)")
    down = sub.add_parser("down", help="stop what `kubeling up` started")
    down.add_argument("--run-dir", default="run")
    args = p.parse_args(argv)
    launcher = Launcher(args.run_dir)
    if args.cmd == "up":
        urls = launcher.up()
        print("kubeling store is up: 3 etcdnode members")
        print(f"  client URLs: {','.join(urls)}")
        print(f"  logs:        {launcher.run / 'logs'}")
        print("  try:  curl -s -X POST http://127.0.0.1:2379/v3/kv/put -d '{\"key\":\"Zm9v\",\"value\":\"YmFy\"}'")
        print("        curl -s -X POST http://127.0.0.1:2379/v3/kv/range -d '{\"key\":\"Zm9v\"}'")
        print("  stop: make down")
    else:
        stopped = launcher.down()
        print(f"stopped {len(stopped)} processes" if stopped else "nothing to stop")

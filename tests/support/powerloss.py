"""Simulated power loss for etcdnode members: record what each member made durable, then keep only that.

`python -m tests.support.powerloss TRACE DELAY etcdnode-args...` runs a member with the syncing system calls
interposed: each fsync/fdatasync first takes DELAY seconds (a slow disk, which widens any window in which
something is acknowledged before it is synced), then appends the file's path and size to TRACE; each
rename appends the move. A member killed with SIGKILL keeps its page cache, so `cut` then throws away what a
power loss would: every file is truncated to its size at its last sync, a file never synced is removed,
and the Raft log gets a torn half record at its end, as a write cut by the power would leave.
"""

from __future__ import annotations

import gzip
import os
import sys
import time
from pathlib import Path

TORN = b"\x40\x00\x00\x00\x13\x37torn-record"


def _interpose(trace: str, delay: float) -> None:
    out = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(line: str) -> None:
        os.write(out, (line + "\n").encode())

    def synced(real):
        def sync(fd: int) -> None:
            time.sleep(delay)
            real(fd)
            path = os.readlink(f"/proc/self/fd/{fd}")
            if os.path.isfile(path):
                record(f"sync\t{path}\t{os.fstat(fd).st_size}")
        return sync

    real_replace = os.replace

    def replace(src, dst) -> None:
        real_replace(src, dst)
        record(f"move\t{os.path.abspath(src)}\t{os.path.abspath(dst)}")

    os.fsync, os.fdatasync, os.replace = synced(os.fsync), synced(os.fdatasync), replace


def durable_sizes(trace: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for line in trace.read_text().splitlines():
        kind, a, b = line.split("\t")
        if kind == "sync":
            sizes[a] = int(b)
        elif a in sizes:
            sizes[b] = sizes.pop(a)
        else:
            sizes.pop(b, None)    # moved over by a file that was never synced
    return sizes


def cut(data_dir: Path, trace: Path) -> dict[str, int]:
    """Leave ``data_dir`` as a power loss after the traced syncs would; returns the bytes dropped per file."""
    sizes = durable_sizes(trace) if trace.exists() else {}
    dropped: dict[str, int] = {}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        size = path.stat().st_size
        keep = sizes.get(str(path.resolve()))
        if keep is None:
            path.unlink()
            dropped[path.name] = size
            continue
        with open(path, "r+b") as f:
            f.truncate(keep)
            if path.name == "raft.log":
                f.seek(keep)
                f.write(TORN)
        dropped[path.name] = size - keep
    return dropped


def durable_copies(data_dir: Path, keys: list[bytes]) -> dict[bytes, bool]:
    """Which keys are in this member's Raft log or full dump (after `cut`: what survived the power loss).

    Keys are searched as bytes in the log's records and the unzipped dump, so they must not be
    substrings of one another (fixed-width keys)."""
    member = data_dir / "member"
    blob = (member / "raft.log").read_bytes() if (member / "raft.log").exists() else b""
    if (member / "raft.dump").exists():
        with gzip.open(member / "raft.dump") as f:
            blob += f.read()
    return {k: k in blob for k in keys}


if __name__ == "__main__":
    _interpose(sys.argv[1], float(sys.argv[2]))
    from etcdnode.cli import main

    main(sys.argv[3:])

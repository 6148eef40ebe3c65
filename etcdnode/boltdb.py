"""A writer of bbolt database files: the format of etcd's backend and of its snapshots.

`etcdctl snapshot status` opens a snapshot as a bbolt file (checking every page is reachable or
free), and `etcdctl snapshot restore` turns one into an etcd data directory; so etcdnode's
Snapshot RPC streams one, built here from scratch: two meta pages, an empty freelist, and for
each bucket a B+tree of leaf pages (with overflow pages when large) under branch pages.
Nothing is ever updated in place, so there are no free pages and no inline buckets.
"""

from __future__ import annotations

import struct

PAGE_SIZE = 4096
MAGIC = 0xED0CDAED
VERSION = 2
BRANCH, LEAF, META, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_LEAF = 0x01
PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, ksize, vsize
BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, ksize, pgid
META_BODY = struct.Struct("<IIIIQQQQQ")  # magic, version, page size, flags, root (pgid, seq), freelist, pgid, txid
MAX_ELEMENTS = 1024  # per page: a page's element count is a uint16


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class _Writer:
    def __init__(self) -> None:
        self.pages: list[bytes] = [b"", b""]  # meta pages, filled last

    def add(self, flags: int, count: int, body: bytes) -> int:
        """Append a page (and its overflow pages) holding ``body``; return its id."""
        pgid = len(self.pages)
        size = PAGE_HEADER.size + len(body)
        n = -(-size // PAGE_SIZE)
        data = PAGE_HEADER.pack(pgid, flags, count, n - 1) + body
        data += b"\0" * (n * PAGE_SIZE - len(data))
        self.pages.append(data)
        self.pages.extend([b""] * (n - 1))  # overflow pages live inside ``data``
        return pgid

    def leaf(self, items: list[tuple[bytes, bytes, int]]) -> int:
        elems, blob = [], b""
        for i, (k, v, flags) in enumerate(items):
            pos = (len(items) - i) * LEAF_ELEMENT.size + len(blob)
            elems.append(LEAF_ELEMENT.pack(flags, pos, len(k), len(v)))
            blob += k + v
        return self.add(LEAF, len(items), b"".join(elems) + blob)

    def branch(self, children: list[tuple[bytes, int]]) -> int:
        elems, blob = [], b""
        for i, (k, pgid) in enumerate(children):
            pos = (len(children) - i) * BRANCH_ELEMENT.size + len(blob)
            elems.append(BRANCH_ELEMENT.pack(pos, len(k), pgid))
            blob += k
        return self.add(BRANCH, len(children), b"".join(elems) + blob)

    def tree(self, items: list[tuple[bytes, bytes, int]]) -> int:
        """A B+tree over sorted ``items``; its root page id."""
        level = [(chunk[0][0] if chunk else b"", self.leaf(chunk))
                 for chunk in _chunks(items, MAX_ELEMENTS)] or [(b"", self.leaf([]))]
        while len(level) > 1:
            level = [(chunk[0][0], self.branch(chunk)) for chunk in _chunks(level, MAX_ELEMENTS)]
        return level[0][1]

    def meta(self, pgid: int, root: int, freelist: int, txid: int) -> bytes:
        body = META_BODY.pack(MAGIC, VERSION, PAGE_SIZE, 0, root, 0, freelist, len(self.pages), txid)
        data = PAGE_HEADER.pack(pgid, META, 0, 0) + body + struct.pack("<Q", _fnv64a(body))
        return data + b"\0" * (PAGE_SIZE - len(data))


def _chunks(items: list, n: int) -> list[list]:
    return [items[i:i + n] for i in range(0, len(items), n)]


def build(buckets: dict[bytes, list[tuple[bytes, bytes]]]) -> bytes:
    """A bbolt database file holding ``buckets`` (name -> key/value pairs, any order)."""
    w = _Writer()
    freelist = w.add(FREELIST, 0, b"")
    roots = []
    for name in sorted(buckets):
        root = w.tree([(k, v, 0) for k, v in sorted(buckets[name])])
        roots.append((name, struct.pack("<QQ", root, 0), BUCKET_LEAF))
    root = w.tree(roots)
    w.pages[0] = w.meta(0, root, freelist, 0)
    w.pages[1] = w.meta(1, root, freelist, 1)
    return b"".join(w.pages)

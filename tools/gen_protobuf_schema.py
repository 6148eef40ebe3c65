#!/usr/bin/env python3
"""Generate apiserver/api/protobuf_schema.py from the protobuf descriptors compiled into a kubectl binary.

kubectl embeds k8s.io/api's gzipped FileDescriptorProtos; reading them gives the exact field
numbers, names and types of the release (no hand-copied tables).

    .venv/bin/python tools/gen_protobuf_schema.py [/path/to/kubectl-1.32] > apiserver/api/protobuf_schema.py
"""
from __future__ import annotations

import glob
import pprint
import re
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from apiserver.api.wire import fields  # noqa: E402

FILES = [
    "k8s.io/api/core/v1", "k8s.io/api/apps/v1", "k8s.io/api/batch/v1", "k8s.io/api/autoscaling/v1",
    "k8s.io/api/autoscaling/v2", "k8s.io/api/coordination/v1", "k8s.io/api/discovery/v1", "k8s.io/api/events/v1",
    "k8s.io/api/policy/v1", "k8s.io/api/authentication/v1", "k8s.io/api/scheduling/v1",
    "k8s.io/api/networking/v1", "k8s.io/api/rbac/v1", "k8s.io/api/storage/v1", "k8s.io/api/certificates/v1",
    "k8s.io/api/node/v1", "k8s.io/api/flowcontrol/v1", "k8s.io/api/admissionregistration/v1", "k8s.io/apimachinery/pkg/apis/meta/v1", "k8s.io/apimachinery/pkg/api/resource",
    "k8s.io/apimachinery/pkg/util/intstr", "k8s.io/apimachinery/pkg/runtime",
]
SCALARS = {1: "d", 2: "f", 3: "i", 4: "i", 5: "i", 6: "i", 7: "i", 8: "u", 9: "s", 12: "b", 13: "i", 15: "i", 16: "i",
           17: "z", 18: "z"}
GROUPS = {"core": "", "coordination": "coordination.k8s.io", "discovery": "discovery.k8s.io", "events": "events.k8s.io",
          "authentication": "authentication.k8s.io", "scheduling": "scheduling.k8s.io",
          "networking": "networking.k8s.io", "rbac": "rbac.authorization.k8s.io", "storage": "storage.k8s.io",
          "certificates": "certificates.k8s.io", "node": "node.k8s.io", "flowcontrol": "flowcontrol.apiserver.k8s.io",
          "admissionregistration": "admissionregistration.k8s.io"}


def descriptors(binary: Path) -> dict[str, bytes]:
    data = binary.read_bytes()
    out: dict[str, bytes] = {}
    for m in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start():m.start() + 4_000_000])
        except zlib.error:
            continue
        name = next((v for n, wt, v in fields_safe(raw) if n == 1), b"").decode(errors="replace")
        for f in FILES:
            if name == f + "/generated.proto":
                out[f] = raw
    return out


def fields_safe(raw: bytes):
    try:
        yield from fields(raw)
    except ValueError:
        return


def parse_message(buf: bytes, prefix: str, messages: dict, maps: dict) -> None:
    name, flist, nested, is_map = "", [], [], False
    for n, wt, v in fields(buf):
        if n == 1:
            name = v.decode()
        elif n == 2:
            flist.append(v)
        elif n == 3:
            nested.append(v)
        elif n == 7:
            is_map = any(on == 7 and ov for on, _, ov in fields(v))
    full = f"{prefix}.{name}"
    for nb in nested:
        parse_message(nb, full, messages, maps)
    table = {}
    for fb in flist:
        f = {"label": 1, "nullable": True}
        for n, wt, v in fields(fb):
            if n == 1:
                f["name"] = v.decode()
            elif n == 3:
                f["number"] = v
            elif n == 4:
                f["label"] = v
            elif n == 5:
                f["type"] = v
            elif n == 6:
                f["type_name"] = v.decode().lstrip(".")
            elif n == 8:   # FieldOptions: gogoproto.nullable is extension 65001
                for on, _, ov in fields(v):
                    if on == 65001:
                        f["nullable"] = bool(ov)
        typ = SCALARS.get(f.get("type"), f.get("type_name", "?")) if f.get("type") != 11 else f["type_name"]
        table[f["number"]] = (f["name"], typ, f["label"] == 3, f["nullable"])
    if is_map:
        maps[full] = table[2][1]
    else:
        messages[full] = table


def main() -> None:
    if len(sys.argv) > 1:
        binary = Path(sys.argv[1])
    else:
        candidates = sorted(glob.glob("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")) or sorted(glob.glob("/usr/**/kubectl.1.3*", recursive=True))
        binary = Path(candidates[0])
    found = descriptors(binary)
    missing = [f for f in FILES if f not in found]
    if missing:
        sys.exit(f"descriptors not found in {binary}: {missing}")
    messages: dict = {}
    maps: dict = {}
    for f in FILES:
        package = ""
        for n, wt, v in fields(found[f]):
            if n == 2:
                package = v.decode()
        for n, wt, v in fields(found[f]):
            if n == 4:
                parse_message(v, package, messages, maps)
    # resolve map fields: type "map:<value type>"
    for table in messages.values():
        for num, (name, typ, rep, nullable) in list(table.items()):
            if typ in maps:
                table[num] = (name, "map:" + maps[typ], False, nullable)
    kinds = {}
    for full, table in messages.items():
        parts = full.split(".")
        if parts[:3] != ["k8s", "io", "api"] or len(parts) != 6:
            continue
        group, version, kind = parts[3], parts[4], parts[5]
        if table.get(1, ("",))[0] == "metadata" and table[1][1].endswith("ObjectMeta"):
            g = GROUPS.get(group, group)
            kinds[f"{g}/{version}" if g else version, kind] = full
    print('"""Protobuf schema of the Kubernetes 1.32 API (generated by tools/gen_protobuf_schema.py from the')
    print('descriptors compiled into kubectl 1.32; do not edit).')
    print()
    print("MESSAGES: message -> {field number: (json name, type, repeated, nullable)}; type is a message name,")
    print("'map:<value type>', or s(tring) b(ytes) i(nt) z(igzag int) u (bool) d(ouble) f(loat).")
    print('KINDS: (apiVersion, kind) -> message."""')
    print("# flake8: noqa")
    print("MESSAGES = " + pprint.pformat(messages, width=120, compact=True))
    print("KINDS = " + pprint.pformat(kinds, width=120, compact=True))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate apiserver/api/schema.json.gz: the Kubernetes 1.32 OpenAPI definitions the apiserver serves.

The apiserver's OpenAPI documents, unknown-field detection and strategic-merge/apply metadata all
come from this one file, cut from upstream's spec so they cannot drift from Kubernetes: every
definition reachable from the kinds in kubeling/api/resources.py (and their lists), the bodies of
the subresources (Scale, Binding, Eviction, TokenRequest) and the meta types every group serves
(Status, DeleteOptions, WatchEvent, APIResourceList, Patch), copied verbatim (descriptions, types and
formats, required, $refs, x-kubernetes-* extensions), with x-kubernetes-group-version-kind lists cut
to the group-versions served here; plus the query parameters' types and descriptions. Regenerate
after adding a row to the resource table:

    .venv/bin/python tools/gen_schema.py [kubernetes-1.32-swagger.json [output]]

(gzipped JSON keeps the ~1 MB of descriptions at ~150 KB and loads in a few milliseconds.)
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from kubeling.api.resources import RESOURCES  # noqa: E402

SWAGGER = ROOT.parent / "shared" / "reference" / "kubernetes-1.32-swagger.json"
OUT = ROOT / "apiserver" / "api" / "schema.json.gz"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# (group, version, kind) of subresource request/response bodies.
SUBRESOURCE_KINDS = [("autoscaling", "v1", "Scale"), ("", "v1", "Binding"), ("policy", "v1", "Eviction"),
                     ("authentication.k8s.io", "v1", "TokenRequest")]
META_ROOTS = [META + n for n in ("Status", "DeleteOptions", "WatchEvent", "APIResourceList", "Patch")]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"].rsplit("/", 1)[1]
        for v in node.values():
            yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def roots(defs: dict) -> list[str]:
    by_gvk = {(x["group"], x["version"], x["kind"]): name for name, d in defs.items()
              for x in d.get("x-kubernetes-group-version-kind", ())}
    out = list(META_ROOTS)
    for r in RESOURCES:
        for kind in (r.kind, r.list_kind):
            name = by_gvk.get((r.group, r.version, kind))
            if name is None:   # metrics.k8s.io: an aggregated API upstream, not in kube-apiserver's spec
                print(f"no definition for {r.api_version} {kind}: left out", file=sys.stderr)
            else:
                out.append(name)
    return out + [by_gvk[gvk] for gvk in SUBRESOURCE_KINDS]


def parameters(spec: dict) -> dict[str, dict]:
    """Query parameter name -> {type, description}, as upstream words them (first use wins)."""
    out: dict[str, dict] = {}
    for item in spec["paths"].values():
        for op in [item] + [v for k, v in item.items() if k != "parameters"]:
            for p in op.get("parameters", ()):
                if "$ref" in p:
                    p = spec["parameters"][p["$ref"].rsplit("/", 1)[1]]
                if p["in"] == "query" and p["name"] not in out:
                    out[p["name"]] = {"type": p["type"], "description": p.get("description", "")}
    return dict(sorted(out.items()))


def main() -> None:
    spec = json.loads((Path(sys.argv[1]) if len(sys.argv) > 1 else SWAGGER).read_text())
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else OUT
    defs = spec["definitions"]
    served = {(r.group, r.version) for r in RESOURCES} | {(g, v) for g, v, _ in SUBRESOURCE_KINDS}
    keep: dict[str, Any] = {}
    todo = roots(defs)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep[name] = dict(defs[name])
            todo += refs(defs[name])
    for d in keep.values():
        if "x-kubernetes-group-version-kind" in d:
            d["x-kubernetes-group-version-kind"] = [x for x in d["x-kubernetes-group-version-kind"]
                                                    if (x["group"], x["version"]) in served]
    data = {"definitions": dict(sorted(keep.items())), "parameters": parameters(spec)}
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    out.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    print(f"{out}: {len(keep)} definitions, {len(raw)} B json, {out.stat().st_size} B gzipped", file=sys.stderr)


if __name__ == "__main__":
    main()

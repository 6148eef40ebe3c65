"""The downward API: pod fields and container resources as text, for env (podconfig.py) and for
downwardAPI and projected volumes (volumes.py) alike (upstream's fieldpath and resource helpers)."""
from __future__ import annotations

import re

from kubeling.api import quantity
from kubeling.api.gofmt import quote

_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['(.+)'\]")


class FieldError(Exception):
    """A field or resource that cannot be resolved; the message is upstream's."""


def format_map(m: dict[str, str]) -> str:
    """fieldpath.FormatMap: `key="value"` lines sorted by key, Go-quoted, no final newline (the
    labels and annotations files)."""
    return "\n".join(f"{k}={quote(m[k])}" for k in sorted(m))


def metadata_field(pod: dict, path: str) -> str:
    """fieldpath.ExtractFieldPathAsString: the metadata fields a volume may show."""
    meta = pod["metadata"]
    m = _SUBSCRIPT.fullmatch(path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return meta.get(path.split(".")[1], "")
    raise FieldError(f"unsupported fieldPath: {path}")


def field_value(pod: dict, path: str, node_ip: str, pod_ip: str) -> str:
    """An env var's fieldRef: the runtime fields (node, addresses, service account) or metadata."""
    spec = pod.get("spec") or {}
    runtime = {"spec.nodeName": spec.get("nodeName", ""), "spec.serviceAccountName": spec.get("serviceAccountName", ""),
               "status.hostIP": node_ip, "status.hostIPs": node_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip}
    return runtime[path] if path in runtime else metadata_field(pod, path)


def resource_value(pod: dict, container: dict | None, ref: dict, allocatable: dict[str, str]) -> str:
    """limits/requests of cpu, memory or ephemeral-storage of ref.containerName (else `container`)
    over the divisor, rounded up; a missing limit is the node's allocatable, as upstream."""
    target = container
    if ref.get("containerName"):
        spec = pod.get("spec") or {}
        target = next((x for x in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                       if x["name"] == ref["containerName"]), None)
    if target is None:
        raise FieldError(f"container {ref.get('containerName', '')} not found")
    kind, _, res = ref["resource"].partition(".")
    resources = target.get("resources") or {}
    raw = (resources.get(kind) or {}).get(res)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(res)
    if raw is None:
        raw = allocatable.get(res, "0") if kind == "limits" else "0"
    divisor = quantity.parse(ref.get("divisor") or "1") or 1
    value = quantity.parse(raw) / divisor
    return str(int(value.to_integral_value(rounding="ROUND_CEILING")))

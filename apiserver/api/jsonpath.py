"""The JSONPath subset CRD printer columns and scale paths use (`.status.replicas`, `.spec.items[0].name`,
`.spec.items[*].name`, `.status.conditions[?(@.type=="Ready")].status`), as kubectl's jsonpath reads them."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_STEP = re.compile(r"""\.(?P<key>[^.\[]+)|\[(?P<index>-?\d+|\*)\]|\[\?\(@\.(?P<field>[\w.]+)\s*==\s*(?P<q>["']?)(?P<value>[^"'\])]*)(?P=q)\)\]|\['(?P<qkey>[^']+)'\]""")


@lru_cache(maxsize=512)
def _steps(path: str) -> tuple[tuple[str, Any], ...]:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    out, pos = [], 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {path[pos:]!r}")
        if m.group("key") is not None or m.group("qkey") is not None:
            out.append(("key", m.group("key") or m.group("qkey")))
        elif m.group("index") is not None:
            out.append(("index", m.group("index")))
        else:
            out.append(("filter", (tuple(m.group("field").split(".")), m.group("value"))))
        pos = m.end()
    return tuple(out)


def find(obj: Any, path: str) -> list[Any]:
    """Every value path selects in obj (empty when nothing matches)."""
    try:
        steps = _steps(path)
    except ValueError:
        return []
    current = [obj]
    for kind, arg in steps:
        nxt: list[Any] = []
        for node in current:
            if kind == "key" and isinstance(node, dict) and arg in node:
                nxt.append(node[arg])
            elif kind == "index" and isinstance(node, list):
                if arg == "*":
                    nxt.extend(node)
                elif -len(node) <= int(arg) < len(node):
                    nxt.append(node[int(arg)])
            elif kind == "filter" and isinstance(node, list):
                fields, value = arg
                nxt.extend(item for item in node if _field(item, fields) == value)
        current = nxt
    return current


def _field(item: Any, fields: tuple[str, ...]) -> Any:
    for f in fields:
        if not isinstance(item, dict):
            return None
        item = item.get(f)
    return str(item).lower() if isinstance(item, bool) else (str(item) if item is not None else None)

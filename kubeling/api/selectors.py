"""Label and field selectors: parsing the query-string forms and matching objects."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from kubeling.api.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str                       # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op == "=":
            return present and labels[self.key] == self.values[0]
        if self.op == "!=":
            return not present or labels[self.key] != self.values[0]
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # notin


class LabelSelector:
    """A parsed selector; empty selects everything."""

    def __init__(self, reqs: list[Requirement]):
        self.reqs = reqs

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.reqs)

    def __bool__(self) -> bool:
        return bool(self.reqs)

    def equality_pairs(self) -> dict[str, str]:
        return {r.key: r.values[0] for r in self.reqs if r.op == "="}


_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_request(f"unable to parse requirement: {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def _check_key(key: str) -> None:
    if not _LABEL_KEY.match(key):
        raise bad_request(f'unable to parse requirement: invalid label key "{key}": name part must consist of '
                          "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def _check_value(value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise bad_request(f'unable to parse requirement: invalid label value: "{value}": a valid label must be an empty '
                          "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h` as Kubernetes does."""
    if not text or not text.strip():
        return LabelSelector([])
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise bad_request(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        t = toks[i]
        i += 1
        return t

    while i < len(toks):
        t = take()
        if t == "!":
            key = take()
            _check_key(key)
            reqs.append(Requirement(key, "!"))
        else:
            key = t
            _check_key(key)
            nxt = toks[i] if i < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                i += 1
                value = toks[i] if i < len(toks) and toks[i] != "," else ""
                if value:
                    i += 1
                _check_value(value)
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (value,)))
            elif nxt in ("in", "notin"):
                i += 1
                if take() != "(":
                    raise bad_request(f"unable to parse requirement: found '{toks[i-1]}', expected: '(' ")
                values: list[str] = []
                while True:
                    v = take()
                    if v == ")":
                        break
                    if v == ",":
                        continue
                    _check_value(v)
                    values.append(v)
                reqs.append(Requirement(key, nxt, tuple(values)))
            else:
                raise bad_request(f"unable to parse requirement: found '{nxt}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise bad_request(f"unable to parse requirement: found '{toks[i]}', expected: ','")
            i += 1
    return LabelSelector(reqs)


def selector_from_object(sel: dict[str, Any] | None) -> LabelSelector | None:
    """metav1.LabelSelector -> LabelSelector; None for a nil selector (matches nothing)."""
    if sel is None:
        return None
    reqs = [Requirement(k, "=", (v,)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for e in sel.get("matchExpressions") or []:
        reqs.append(Requirement(e["key"], ops[e["operator"]], tuple(e.get("values") or ())))
    return LabelSelector(reqs)


def selector_to_string(sel: dict[str, Any] | None) -> str:
    """Render a metav1.LabelSelector the way Kubernetes prints it (sorted)."""
    if not sel:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, vals = e["operator"], ",".join(sorted(e.get("values") or []))
        parts.append({"In": f"{e['key']} in ({vals})", "NotIn": f"{e['key']} notin ({vals})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}[op])
    return ",".join(sorted(parts))


# ---- field selectors -------------------------------------------------------

def _path(*keys: str) -> Callable[[dict], str]:
    def get(obj: dict) -> str:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(k)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)
    return get


_META = {"metadata.name": _path("metadata", "name"), "metadata.namespace": _path("metadata", "namespace")}

# Per plural: the extra fields Kubernetes indexes for field selectors.
FIELDS: dict[str, dict[str, Callable[[dict], str]]] = {
    "pods": {f: _path(*f.split(".")) for f in (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName")},
    "events": {f: _path(*f.split(".")) for f in (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type")},
    "secrets": {"type": _path("type")},
    "nodes": {"spec.unschedulable": _path("spec", "unschedulable")},
    "namespaces": {"status.phase": _path("status", "phase")},
    "replicasets": {"status.replicas": _path("status", "replicas")},
    "jobs": {"status.successful": _path("status", "successful")},
}
FIELDS["events"]["source"] = _path("source", "component")


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool
    get: Callable[[dict], str]


class FieldSelector:
    def __init__(self, reqs: list[FieldRequirement]):
        self.reqs = reqs

    def matches(self, obj: dict) -> bool:
        return all((r.get(obj) == r.value) != r.negate for r in self.reqs)

    def __bool__(self) -> bool:
        return bool(self.reqs)

    def exact(self, field: str) -> str | None:
        for r in self.reqs:
            if r.field == field and not r.negate:
                return r.value
        return None


def parse_field_selector(text: str | None, plural: str, kind: str = "") -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector([])
    known = {**_META, **FIELDS.get(plural, {})}
    reqs = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^!=]+)(==|!=|=)(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in known:
            raise bad_request(f'field label not supported: {field}')
        reqs.append(FieldRequirement(field, value, op == "!=", known[field]))
    return FieldSelector(reqs)

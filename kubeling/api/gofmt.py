"""Go's fmt rendering of decoded JSON values, for messages Kubernetes builds with %v, %q and %#v.

Clients (and people) compare these messages with upstream's, so a Python repr such as
`{'app': 'b'}` or `['10.96.0.1']` must read `map[app:b]`, `map[string]string{"app":"b"}` or
`[]string{"10.96.0.1"}` depending on the verb upstream uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\\": "\\\\", '"': '\\"'}


@dataclass(frozen=True)
class Typed:
    """A JSON value with the Go type upstream's %#v shows: Typed(None, "map[string]string") renders as
    `map[string]string(nil)` where a bare None would be an untyped nil."""
    value: Any
    type: str


@dataclass(frozen=True)
class GoStruct:
    """A Go struct value for %#v: `v1.LabelSelector{MatchLabels:map[string]string(nil), ...}`.

    fields: (Go field name, JSON value, Go type) in declaration order."""
    type_name: str
    fields: tuple[tuple[str, Any, str], ...]


def quote(s: str) -> str:
    """strconv.Quote (%q): printable characters as they are, the others escaped."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _float(f: float) -> str:
    """%v of a float64: shortest digits, exponent form below 1e-4 and from 1e6 on ('g' with shortest)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    sign, digits, exponent = Decimal(repr(f)).normalize().as_tuple()
    text = "".join(map(str, digits)) if f else "0"
    exp = len(text) + int(exponent) - 1 if f else 0
    minus = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return minus + format(Decimal(text).scaleb(exp - len(text) + 1), "f")


def go_value(v: Any) -> str:
    """fmt's %v: strings bare, maps as map[k:v] with sorted keys, slices as [a b], nil as <nil>."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_value(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_value(x) for x in v) + "]"
    if isinstance(v, GoStruct):
        return "{" + " ".join(go_value(value) for _, value, _ in v.fields) + "}"
    if isinstance(v, Typed):
        return go_value(v.value)
    return _scalar(v, quoted=False)


def _scalar(v: Any, quoted: bool) -> str:
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, str) and quoted:
        return quote(v)
    return str(v)


def go_type(v: Any) -> str:
    """The Go type a decoded JSON value most plausibly had (for %#v when the caller does not say)."""
    if isinstance(v, GoStruct):
        return v.type_name
    if isinstance(v, Typed):
        return v.type
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map[string]" + _element_type(list(v.values()))
    if isinstance(v, (list, tuple)):
        return "[]" + _element_type(list(v))
    return "interface {}"


def _element_type(values: list) -> str:
    """One type for all elements, or interface {} (mixed, nil or none at all)."""
    types = {go_type(x) for x in values}
    return types.pop() if len(types) == 1 else "interface {}"


def go_syntax(v: Any, typ: str | None = None) -> str:
    """fmt's %#v of v as a value of Go type typ (inferred when None): `map[string]string{"a":"b"}`,
    `[]string{"x", "y"}`, `[]string(nil)`, `v1.LabelSelector{MatchLabels:...}`."""
    if isinstance(v, Typed):
        v, typ = v.value, v.type
    if v is None:   # a typed nil shows its type; an untyped one (typ None) is <nil>
        return f"{typ}(nil)" if typ and typ.startswith(("[]", "map[", "*", "interface")) else "<nil>"
    typ = typ or go_type(v)
    if typ == "interface {}":
        typ = go_type(v)
        if typ == "interface {}":
            return _scalar(v, quoted=True)
    if isinstance(v, GoStruct):
        return v.type_name + "{" + ", ".join(f"{name}:{go_syntax(value, t)}" for name, value, t in v.fields) + "}"
    if isinstance(v, dict) and typ.startswith("map["):
        value_type = typ[typ.index("]") + 1:]
        return typ + "{" + ", ".join(f"{quote(str(k))}:{go_syntax(v[k], value_type)}" for k in sorted(v)) + "}"
    if isinstance(v, (list, tuple)) and typ.startswith("[]"):
        return typ + "{" + ", ".join(go_syntax(x, typ[2:]) for x in v) + "}"
    return _scalar(v, quoted=True)


def field_value(v: Any) -> str:
    """How field.Error (Kubernetes 1.32, apimachinery/pkg/util/validation/field) renders a bad value:
    nil as "null" (quoted), int/float/bool with %v, strings with %q, anything else with %#v."""
    if v is None:
        return quote("null")
    if isinstance(v, (bool, int, float)):
        return _scalar(v, quoted=False)
    if isinstance(v, str):
        return quote(v)
    return go_syntax(v)

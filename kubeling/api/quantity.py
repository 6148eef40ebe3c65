"""Resource quantities ("100m", "1.5", "128Mi", "1G", "1e3") as numbers."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
           "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse(q: str | int | float | None) -> Decimal:
    if q is None or q == "":
        return Decimal(0)
    if isinstance(q, (int, float)):
        return Decimal(str(q))
    m = _RE.match(q.strip())
    if not m:
        raise ValueError(f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {q!r}")
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2) or ""]
    except InvalidOperation:
        raise ValueError(f"invalid quantity {q!r}") from None


def milli(q: str | int | float | None) -> int:
    """CPU in millicores (rounded up, as Kubernetes does)."""
    v = parse(q) * 1000
    return int(v.to_integral_value(rounding="ROUND_CEILING"))


def value(q: str | int | float | None) -> int:
    """Bytes or counts (rounded up)."""
    return int(parse(q).to_integral_value(rounding="ROUND_CEILING"))

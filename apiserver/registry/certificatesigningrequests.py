"""CertificateSigningRequests: the requester is recorded from the request's user, the spec never changes
after create, and approval (the approval subresource) is kept apart from what a signer writes (status)."""
from __future__ import annotations

from ..codec import deepcopy
from . import Strategy, now_rfc3339

APPROVAL = ("Approved", "Denied")


def _conditions(obj: dict) -> list[dict]:
    return list((obj.get("status") or {}).get("conditions") or [])


def _stamped(conds: list[dict], old: list[dict]) -> list[dict]:
    """Conditions with upstream's timestamps: lastUpdateTime when unset, lastTransitionTime on a change."""
    before = {(c.get("type"), c.get("status")): c for c in old}
    out = []
    for c in conds:
        c = dict(c)
        prev = before.get((c.get("type"), c.get("status")))
        c.setdefault("lastUpdateTime", prev.get("lastUpdateTime") if prev else now_rfc3339())
        c.setdefault("lastTransitionTime", prev.get("lastTransitionTime", c["lastUpdateTime"]) if prev else now_rfc3339())
        out.append(c)
    return out


class CertificateSigningRequestStrategy(Strategy):
    def prepare_for_create(self, obj: dict, user: dict | None = None) -> None:
        spec = obj.setdefault("spec", {})
        for k in ("username", "uid", "groups", "extra"):
            spec.pop(k, None)
        for k in ("username", "uid", "groups", "extra"):
            if (user or {}).get(k):
                spec[k] = user[k]
        obj["status"] = {}

    def prepare_for_update(self, new: dict, old: dict, sub: str | None) -> dict:
        if sub is None:   # metadata only
            new["spec"], new["status"] = old.get("spec", {}), old.get("status", {})
            return new
        merged = deepcopy(old)
        wanted = _conditions(new)
        if sub == "approval":   # approval conditions from the request, the signer's from what is stored
            conds = [c for c in _conditions(old) if c.get("type") not in APPROVAL] + \
                    [c for c in wanted if c.get("type") in APPROVAL]
        else:                   # status: the signer's certificate and conditions; approval stays
            conds = [c for c in _conditions(old) if c.get("type") in APPROVAL] + \
                    [c for c in wanted if c.get("type") not in APPROVAL]
            if "certificate" in (new.get("status") or {}):
                merged.setdefault("status", {})["certificate"] = new["status"]["certificate"]
        status = merged.setdefault("status", {})
        status["conditions"] = _stamped(conds, _conditions(old))
        if not status["conditions"]:
            status.pop("conditions")
        return merged


STRATEGIES = {("certificates.k8s.io", "certificatesigningrequests"): CertificateSigningRequestStrategy}

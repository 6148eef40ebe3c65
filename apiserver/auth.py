"""Bearer-token authentication from a kube-apiserver style static token CSV (token,user,uid,"g1,g2")."""
from __future__ import annotations

import csv
from pathlib import Path


class TokenFileError(ValueError):
    pass


def load_tokens(path: str | Path) -> dict[str, dict]:
    users: dict[str, dict] = {}
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3:
                raise TokenFileError(f"{path}:{lineno}: need token,user,uid[,\"groups\"]")
            token, user, uid = (c.strip() for c in row[:3])
            groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
            users[token] = {"username": user, "uid": uid, "groups": groups + ["system:authenticated"]}
    return users


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ServiceAccountAuthenticator:
    """JWTs signed by --service-account-signing-key-file; the ServiceAccount must still exist."""

    def __init__(self, public_keys: list, issuer: str, cache) -> None:
        self.public_keys, self.issuer, self.cache = public_keys, issuer, cache

    def authenticate(self, token: str) -> dict | None:
        from kubeling import jwt
        if token.count(".") != 2 or not self.public_keys:
            return None
        claims = jwt.verify(token, self.public_keys, self.issuer)
        if claims is None:
            return None
        k8s = claims.get("kubernetes.io") or {}
        ns, sa = k8s.get("namespace"), (k8s.get("serviceaccount") or {})
        if not ns or not sa.get("name"):
            return None
        live = self.cache.get(f"/registry/serviceaccounts/{ns}/{sa['name']}")
        if live is None or (sa.get("uid") and live["metadata"].get("uid") != sa["uid"]):
            return None
        return {"username": f"system:serviceaccount:{ns}:{sa['name']}", "uid": sa.get("uid", ""),
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]}

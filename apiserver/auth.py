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

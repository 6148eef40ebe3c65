"""Bearer-token authentication: kube-apiserver's static token CSV (token,user,uid,"g1,g2") and
ServiceAccount JWTs, checked as upstream's authenticator does (issuer, signature, API audiences,
times with a minute of leeway, and the kubernetes.io claims against the objects still stored)."""
from __future__ import annotations

import base64
import csv
import hashlib
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeling.api.resources import lookup

log = logging.getLogger("apiserver.auth")
LEEWAY = 60   # seconds; go-jose's DefaultLeeway, which upstream's validator applies to exp, nbf and iat
_CURVE_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


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


def load_private(path: Path) -> Any:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    algorithm(key)   # refuse key types upstream cannot sign with, at start-up
    return key


def load_public(path: Path) -> Any:
    """A verification key from a PEM public key, or from the public half of a PEM private key."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    algorithm(key)
    return key


def algorithm(key: Any) -> str:
    """The JWS algorithm upstream's token generator uses for this key: RS256 for RSA, ES256/384/512
    by curve for ECDSA."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name in _CURVE_ALGS:
        return _CURVE_ALGS[key.curve.name]
    raise ValueError(f"unsupported service account key type {type(key).__name__}: need RSA or ECDSA P-256/384/521")


def key_id(public: Any) -> str:
    """upstream's keyIDFromPublicKey: base64url(SHA-256(DER SubjectPublicKeyInfo)), the tokens' `kid`."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def sign_token(claims: dict, key: Any) -> str:
    return jwt.encode(claims, key, algorithm=algorithm(key), headers={"kid": key_id(key.public_key())})


def _deleted_long_ago(obj: dict, now: float) -> bool:
    """Deleted more than LEEWAY ago (and still stored for its finalizers): its tokens no longer count."""
    ts = obj["metadata"].get("deletionTimestamp")
    return bool(ts) and datetime.fromisoformat(ts).timestamp() < now - LEEWAY


class ServiceAccountAuthenticator:
    """JWTs from TokenRequest: signed by one of the keys, issued by one of the issuers, meant for one of
    the API audiences, within their times, and naming a ServiceAccount (and bound object) that still
    exists with the UID in the token. A token for another audience authenticates nobody here."""

    def __init__(self, public_keys: list, issuers: list[str], api_audiences: list[str], cache) -> None:
        self.keys = [(key_id(k), k) for k in public_keys]
        self.issuers, self.api_audiences, self.cache = issuers, api_audiences, cache

    def authenticate(self, token: str, audiences: list[str] | None = None) -> tuple[dict, list[str]] | None:
        """(user, the token's audiences among the wanted ones); wanted: the API audiences unless a
        TokenReview names others."""
        claims = self._verified_claims(token)
        if claims is None:
            return None
        wanted = audiences or self.api_audiences
        auds = claims.get("aud") or self.api_audiences   # tokens without one are for the API only
        if isinstance(auds, str):
            auds = [auds]
        matched = [a for a in wanted if isinstance(auds, list) and a in auds]
        if not matched:
            log.debug("token audiences %s are invalid for the target audiences %s", auds, wanted)
            return None
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, dict) or not self._objects_live(k8s):
            return None
        ns, sa = k8s["namespace"], k8s["serviceaccount"]
        return ({"username": f"system:serviceaccount:{ns}:{sa['name']}", "uid": sa["uid"],
                 "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]},
                matched)

    def _verified_claims(self, token: str) -> dict | None:
        """The claims of a token of ours whose signature, issuer and times check out."""
        if token.count(".") != 2:
            return None
        try:
            header = jwt.get_unverified_header(token)
            if jwt.decode(token, options={"verify_signature": False}).get("iss") not in self.issuers:
                return None   # not a ServiceAccount token of this cluster
        except jwt.InvalidTokenError:
            return None
        kid = header.get("kid")
        for key_kid, key in self.keys:
            if kid and kid != key_kid:
                continue
            try:
                return jwt.decode(token, key, algorithms=[algorithm(key)], issuer=self.issuers, leeway=LEEWAY,
                                  options={"verify_aud": False})
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError as e:
                log.debug("service account token rejected: %s", e)
                return None
        return None

    def _objects_live(self, k8s: dict) -> bool:
        """The ServiceAccount and any object the token is bound to still exist, with the claimed UIDs
        (a node claim is checked only for node-bound tokens; pod-bound ones carry it as information)."""
        ns, sa = k8s.get("namespace"), k8s.get("serviceaccount")
        if not ns or not isinstance(sa, dict) or not sa.get("name"):
            return False
        now = time.time()
        refs = [("serviceaccounts", ns, sa)]
        refs += [(plural, ns, k8s[kind]) for kind, plural in (("pod", "pods"), ("secret", "secrets")) if kind in k8s]
        if "node" in k8s and "pod" not in k8s:
            refs.append(("nodes", None, k8s["node"]))
        for plural, namespace, ref in refs:
            if not isinstance(ref, dict):
                return False
            obj = self.cache.get(lookup("", "v1", plural).key(namespace, ref.get("name") or ""))
            if obj is None or _deleted_long_ago(obj, now) or obj["metadata"].get("uid") != ref.get("uid"):
                log.debug("service account token invalidated: %s %s/%s gone or replaced", plural, namespace, ref.get("name"))
                return False
        return True


class Authenticator:
    """Who a bearer token is: the static token file first, then ServiceAccount JWTs. Used for every
    request and by TokenReview (which the kubelets call to check tokens sent to them)."""

    def __init__(self, tokens: dict[str, dict], service_accounts: ServiceAccountAuthenticator | None) -> None:
        self.tokens, self.service_accounts = tokens, service_accounts

    def authenticate(self, token: str, audiences: list[str] | None = None) -> tuple[dict, list[str]] | None:
        """(user, audiences the token is valid for) or None. Static tokens are audience-agnostic:
        they are valid for whatever was asked (the API audiences by default)."""
        user = self.tokens.get(token)
        if user is not None:
            default = self.service_accounts.api_audiences if self.service_accounts else []
            return user, list(audiences or default)
        if self.service_accounts is not None:
            return self.service_accounts.authenticate(token, audiences)
        return None


class TokenReviews:
    """authentication.k8s.io/v1 TokenReview: create-only, answered from the authenticator."""

    warning = ""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def create(self, body: dict) -> dict:
        spec = body.get("spec") or {}
        token, audiences = spec.get("token"), spec.get("audiences") or None
        if not isinstance(token, str) or not token:
            from kubeling.api.errors import invalid_error, required
            raise invalid_error("authentication.k8s.io", "TokenReview", "", [required("spec.token")])
        result = self.authenticator.authenticate(token, audiences)
        status: dict = {"user": {}}
        if result is not None:
            user, auds = result
            status = {"authenticated": True, "user": {k: user[k] for k in ("username", "uid", "groups") if user.get(k)},
                      "audiences": auds}
        return {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

"""RS256 JSON Web Tokens for ServiceAccounts (signing with the apiserver's key, verifying with public keys)."""
from __future__ import annotations

import base64
import time
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def ensure_keypair(key_path: Path, pub_path: Path) -> None:
    """Create an RSA signing key and its public half when absent (what kubeadm's sa.key/sa.pub are)."""
    if key_path.exists() and pub_path.exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), None)


def load_public(path: Path):
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, None).public_key()
    return serialization.load_pem_public_key(data)


def sign(claims: dict, key) -> str:
    header = _b64(orjson.dumps({"alg": "RS256", "typ": "JWT"}))
    payload = _b64(orjson.dumps(claims))
    sig = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(sig)}"


def verify(token: str, public_keys: list, issuer: str | None = None, now: float | None = None) -> dict | None:
    """The claims when the signature, expiry and issuer check out, else None."""
    try:
        header, payload, sig = token.split(".")
        if orjson.loads(_unb64(header)).get("alg") != "RS256":
            return None
        signed = f"{header}.{payload}".encode()
        raw_sig = _unb64(sig)
    except (ValueError, orjson.JSONDecodeError):
        return None
    for key in public_keys:
        try:
            key.verify(raw_sig, signed, padding.PKCS1v15(), hashes.SHA256())
            break
        except InvalidSignature:
            continue
    else:
        return None
    try:
        claims = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    t = now if now is not None else time.time()
    if not isinstance(claims, dict) or ("exp" in claims and t > claims["exp"]) or ("nbf" in claims and t < claims["nbf"] - 60):
        return None
    if issuer and claims.get("iss") != issuer:
        return None
    return claims

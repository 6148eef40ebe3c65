"""ServiceAccount tokens for projected volumes, as upstream's kubelet token manager gets them: a
TokenRequest (`serviceaccounts/<name>/token`) bound to the pod, cached per pod, account, audience
and lifetime, and requested again once 80% of its lifetime (or 24 hours) has passed, so the file a
container reads is always valid. A failed refresh keeps serving the old token until it expires."""
from __future__ import annotations

import random
import time
from datetime import datetime

from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client

SERVICEACCOUNTS = lookup("", "v1", "serviceaccounts")
MAX_TTL = 24 * 3600.0      # upstream's maxTTL: refresh at least daily
MAX_JITTER = 10.0          # upstream's maxJitter


class TokenError(Exception):
    """No valid token could be had; the message is upstream's."""


def needs_refresh(expires: float, lifetime: int, now: float, jitter: float = 0.0) -> bool:
    """upstream's requiresRefresh: within 20% of the lifetime (plus a jitter) of the expiry, or
    older than 24 hours."""
    issued = expires - lifetime
    return now > issued + MAX_TTL - jitter or now > expires - lifetime * 20 // 100 - jitter


class TokenManager:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.cache: dict[tuple[str, str, str, int, str], tuple[str, float, int]] = {}   # -> token, expiry, lifetime

    async def token(self, pod: dict, audience: str, expiration: int) -> str:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ns, account = meta.get("namespace", "default"), spec.get("serviceAccountName") or "default"
        key = (ns, account, audience, expiration, meta["uid"])
        cached = self.cache.get(key)
        now = time.time()
        if cached is not None and not needs_refresh(cached[1], cached[2], now, random.random() * MAX_JITTER):
            return cached[0]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else None, "expirationSeconds": expiration,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                            "uid": meta["uid"]}}}
        try:
            tr = await self.client.create(SERVICEACCOUNTS, body, ns, sub_of=account, sub="token")
        except ApiError as e:
            message = (e.status or {}).get("message") or str(e)
            if cached is None:
                raise TokenError(f"failed to fetch token: {message}") from None
            if now >= cached[1]:
                raise TokenError(f"token {'/'.join(map(str, key))} expired and refresh failed: {message}") from None
            return cached[0]
        expires = datetime.fromisoformat(tr["status"]["expirationTimestamp"]).timestamp()
        token = tr["status"]["token"]
        self.cache[key] = (token, expires, int((tr.get("spec") or {}).get("expirationSeconds") or expiration))
        return token

    def forget(self, uid: str) -> None:
        """The pod is gone: its tokens are never asked for again."""
        for key in [k for k in self.cache if k[4] == uid]:
            del self.cache[key]

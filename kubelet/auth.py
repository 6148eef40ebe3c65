"""Who may use the kubelet's API: upstream's `--anonymous-auth=false` with x509 and webhook token
authentication. The apiserver presents its kubelet-client certificate (signed by the cluster CA,
which `--client-ca-file` names); anyone else needs a bearer token the apiserver's TokenReview
accepts. Reviews are cached for two minutes, as upstream's webhook token cache does."""
from __future__ import annotations

import logging
import ssl
import time

from aiohttp import web

from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client

log = logging.getLogger("kubelet.auth")
TOKENREVIEWS = lookup("authentication.k8s.io", "v1", "tokenreviews")
CACHE_SECONDS = 120.0


class KubeletAuth:
    def __init__(self, client_ca: bytes | None, client: Client | None, anonymous: bool = False) -> None:
        """client_ca: PEM of the CA whose client certificates are accepted."""
        self.client_ca, self.client, self.anonymous = client_ca, client, anonymous
        self._reviews: dict[str, tuple[float, bool]] = {}

    def configure(self, context: ssl.SSLContext) -> None:
        """Ask for (but do not require) a client certificate, verified against the client CA."""
        if self.client_ca is not None:
            context.load_verify_locations(cadata=self.client_ca.decode())
            context.verify_mode = ssl.CERT_OPTIONAL

    async def allowed(self, request: web.Request) -> bool:
        if self.anonymous:
            return True
        if self.client_ca is not None and request.transport is not None \
                and request.transport.get_extra_info("peercert"):
            return True    # the TLS layer verified it against the client CA
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer " and self.client is not None:
            return await self._reviewed(header[7:].strip())
        return False

    async def _reviewed(self, token: str) -> bool:
        now = time.monotonic()
        hit = self._reviews.get(token)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            review = await self.client.create(TOKENREVIEWS, {"apiVersion": "authentication.k8s.io/v1",
                                                             "kind": "TokenReview", "spec": {"token": token}})
        except ApiError as e:
            log.warning("token review failed: %s", e)
            return False   # not cached: the apiserver may answer next time
        ok = bool((review.get("status") or {}).get("authenticated"))
        if len(self._reviews) > 4096:
            self._reviews.clear()
        self._reviews[token] = (now, ok)
        return ok

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if request.path != "/healthz" and not await self.allowed(request):
            return web.Response(status=401, text="Unauthorized")
        return await handler(request)

"""ServiceAccounts: the token subresource (upstream's TokenREST)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from kubeling.api import errors as E
from kubeling.api.errors import bad_request
from kubeling.api.resources import lookup

from ..auth import sign_token
from ..request import Reply, Request
from . import Strategy


class ServiceAccountStrategy(Strategy):
    async def create_subresource(self, handler, req: Request) -> Reply | None:
        return await token_request(handler, req) if req.subresource == "token" else None


async def token_request(handler, req: Request) -> Reply:
    """serviceaccounts/<name>/token (upstream's TokenREST): a signed JWT naming
    system:serviceaccount:<ns>:<name> for the requested audiences (default: the API audiences),
    optionally bound to a Pod, Secret or Node whose deletion invalidates it."""
    if handler.sa_signer is None:
        raise E.generic_not_found()
    body = handler.decode(req) if req.body else {}
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    for part, want in (("name", req.name), ("namespace", req.namespace)):
        if meta.get(part) and meta[part] != want:
            raise E.invalid_error("authentication.k8s.io", "TokenRequest", req.name or "", [E.invalid(
                f"metadata.{part}", meta[part], f"must match the service account {part} if specified")])
    sa = await handler.current(req)
    if sa is None:
        raise handler.not_found(req)
    expiry = spec["expirationSeconds"] if spec.get("expirationSeconds") is not None else 3600
    if not isinstance(expiry, int) or not 600 <= expiry <= 1 << 32:
        too_short = not isinstance(expiry, int) or expiry < 600
        raise E.invalid_error("authentication.k8s.io", "TokenRequest", "", [E.invalid(
            "spec.expirationSeconds", expiry, "may not specify a duration less than 10 minutes" if too_short
            else "may not specify a duration larger than 2^32 seconds")])
    k8s: dict[str, Any] = {"namespace": req.namespace,
                           "serviceaccount": {"name": req.name, "uid": sa["metadata"]["uid"]}}
    ref = spec.get("boundObjectRef")
    if ref:
        group, _, version = (ref.get("apiVersion") or "").rpartition("/")
        kind, ref_name = ref.get("kind") or "", ref.get("name") or ""
        if group or kind not in ("Pod", "Secret", "Node"):
            raise bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
        key = lookup("", "v1", kind.lower() + "s").key(None if kind == "Node" else req.namespace, ref_name)
        obj = handler.cache.get(key) or await handler.storage.get(key)
        if obj is None:
            raise E.not_found("", kind.lower() + "s", ref_name)
        if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName") != req.name:
            raise bad_request(f'cannot bind token for serviceaccount "{req.name}" to pod running with '
                              "different serviceaccount name.")
        uid = obj["metadata"]["uid"]
        if ref.get("uid") and ref["uid"] != uid:
            raise E.conflict("", kind, ref_name, f"the UID in the bound object reference ({ref['uid']}) does not "
                             "match the UID in record. The object might have been deleted and then recreated")
        k8s[kind.lower()] = {"name": ref_name, "uid": uid}
        node_name = (obj.get("spec") or {}).get("nodeName") if kind == "Pod" else None
        if node_name:   # pod-bound tokens also name the pod's node (its UID when the node exists)
            node = handler.cache.get(lookup("", "v1", "nodes").key(None, node_name))
            k8s["node"] = {"name": node_name, **({"uid": node["metadata"]["uid"]} if node else {})}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    iat = int(now.timestamp())
    audiences = spec.get("audiences") or handler.sa_audiences
    claims = {"aud": audiences, "exp": iat + expiry, "iat": iat, "iss": handler.sa_issuer, "jti": str(uuid.uuid4()),
              "kubernetes.io": k8s, "nbf": iat, "sub": f"system:serviceaccount:{req.namespace}:{req.name}"}
    return Reply(201, {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                       "metadata": {**meta, "name": req.name, "namespace": req.namespace,
                                    "creationTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
                       "spec": {**spec, "audiences": audiences, "expirationSeconds": expiry, "boundObjectRef": ref},
                       "status": {"token": sign_token(claims, handler.sa_signer),
                                  "expirationTimestamp": (now + timedelta(seconds=expiry)).strftime("%Y-%m-%dT%H:%M:%SZ")}})


STRATEGIES = {("", "serviceaccounts"): ServiceAccountStrategy}

"""What the server serves beyond the built-in table: the custom resources its discovery lists."""
from __future__ import annotations

from kubeling.api.resources import GROUP_ORDER, Resource

from .rest import ApiError, Client


async def custom_resources(client: Client) -> list[Resource]:
    """One row per custom resource, in its group's preferred version (upstream controllers use
    discovery the same way to find what a namespace or an owner may hold)."""
    groups = (await client.request("GET", client.config.server + "/apis") or {}).get("groups") or []
    out: list[Resource] = []
    for g in groups:
        name, preferred = g.get("name", ""), (g.get("preferredVersion") or {}).get("version", "")
        if name in GROUP_ORDER or not preferred:
            continue
        try:
            listing = await client.request("GET", f"{client.config.server}/apis/{name}/{preferred}")
        except ApiError as e:
            if e.not_found:   # the definition went away meanwhile
                continue
            raise
        for r in (listing or {}).get("resources") or []:
            if "/" not in r["name"]:
                out.append(Resource(name, preferred, r["kind"], r["name"], r["namespaced"],
                                    verbs=tuple(r.get("verbs") or ()), singular=r.get("singularName", ""),
                                    custom=True))
    return out

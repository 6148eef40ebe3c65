"""Discovery documents (legacy and aggregated v2) generated from the resource table."""
from __future__ import annotations

from typing import Any

from kubeling.api.resources import Resource, for_group_version, group_versions

VERSION_INFO = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "kubeling", "gitTreeState": "clean",
    "buildDate": "2026-11-24T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64",
}

_SUB_VERBS = {
    "status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "binding": ["create"],
    "eviction": ["create"], "log": ["get"], "exec": ["create", "get"], "attach": ["create", "get"],
    "token": ["create"], "finalize": ["update"], "proxy": ["create", "delete", "get", "patch", "update"],
}
_SUB_KIND = {
    "scale": ("autoscaling", "v1", "Scale"), "binding": ("", "v1", "Binding"), "eviction": ("policy", "v1", "Eviction"),
    "exec": ("", "v1", "PodExecOptions"), "attach": ("", "v1", "PodAttachOptions"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"), "proxy": ("", "v1", "NodeProxyOptions"),
}


def _sub_kind(r: Resource, sub: str) -> tuple[str, str, str]:
    return _SUB_KIND.get(sub, (r.group, r.version, r.kind))


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> dict:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def api_group_list() -> dict:
    groups = [_group(g, vs) for g, vs in group_versions().items() if g and vs]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict | None:
    vs = group_versions().get(name)
    if not name or not vs:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, vs)}


def resource_list(group: str, version: str) -> dict | None:
    rs = for_group_version(group, version)
    if not rs:
        return None
    out: list[dict[str, Any]] = []
    for r in rs:
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular_name, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": sorted(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            g, v, k = _sub_kind(r, sub)
            e: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                 "kind": k, "verbs": _SUB_VERBS.get(sub, ["get"])}
            if g != r.group or v != r.version:
                e["group"], e["version"] = g, v
            out.append(e)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def aggregated(legacy: bool, version: str = "v2") -> dict:
    """apidiscovery.k8s.io/v2 APIGroupDiscoveryList for /api (legacy) or /apis."""
    items = []
    for g, vs in group_versions().items():
        if (g == "") != legacy or not vs:
            continue
        versions = []
        for v in vs:
            resources = []
            for r in for_group_version(g, v):
                e: dict[str, Any] = {
                    "resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                    "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular_name,
                    "verbs": sorted(r.verbs)}
                if r.short_names:
                    e["shortNames"] = list(r.short_names)
                if r.categories:
                    e["categories"] = list(r.categories)
                subs = []
                for sub in r.subresources:
                    sg, sv, sk = _sub_kind(r, sub)
                    subs.append({"subresource": sub, "responseKind": {"group": sg, "version": sv, "kind": sk},
                                 "verbs": _SUB_VERBS.get(sub, ["get"])})
                if subs:
                    e["subresources"] = subs
                resources.append(e)
            versions.append({"version": v, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": g} if g else {}, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated discovery version the client asked for first, if any."""
    for part in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" \
                and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
        if part.strip().split(";")[0].strip() in ("application/json", "*/*"):
            return None
    return None

"""CustomResourceDefinitions: their validation and defaults, and deletion held by the cleanup finalizer
until the apiserver (apiserver/customresources.py) has removed every object of the definition."""
from __future__ import annotations

import re

from kubeling.api import errors as E
from kubeling.api.errors import Cause

from apiserver.api import structural

from . import DeleteStep, Strategy, now_rfc3339

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                  "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def set_condition(crd: dict, ctype: str, status: str, reason: str, message: str) -> None:
    """Set a status condition, keeping lastTransitionTime when the status does not change."""
    conds = crd.setdefault("status", {}).get("conditions") or []
    old = next((c for c in conds if c.get("type") == ctype), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now_rfc3339()
    cond = {"type": ctype, "status": status, "lastTransitionTime": since, "reason": reason, "message": message}
    crd["status"]["conditions"] = [cond if c is old else c for c in conds] if old else [*conds, cond]


def storage_version(crd: dict) -> str | None:
    return next((v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")), None)


class CustomResourceDefinitionStrategy(Strategy):
    def apply_defaults(self, obj: dict) -> None:
        super().apply_defaults(obj)
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if names.get("kind"):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        spec.setdefault("conversion", {"strategy": "None"})
        for v in spec.get("versions") or []:
            if isinstance(v, dict):
                v.setdefault("served", True)
                v.setdefault("storage", False)

    def prepare_for_create(self, obj: dict, user: dict | None = None) -> None:
        """Conditions and accepted names are the apiserver's to set once the names are checked."""
        sv = storage_version(obj)
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""},
                         "storedVersions": [sv] if sv else []}

    def prepare_for_update(self, new: dict, old: dict, sub: str | None) -> dict:
        new = super().prepare_for_update(new, old, sub)
        sv = storage_version(new)
        stored = (new.get("status") or {}).get("storedVersions")
        if sub is None and sv and stored is not None and sv not in stored:
            new["status"]["storedVersions"] = [*stored, sv]
        return new

    def validate(self, obj: dict, old: dict | None) -> None:
        causes = _crd_errors(obj, old)
        if causes:
            raise E.invalid_error("apiextensions.k8s.io", "CustomResourceDefinition",
                                  obj["metadata"].get("name", ""), causes)
        super().validate(obj, old)

    def mark_for_deletion(self, new: dict, current: dict, finalizers: list[str], grace, now) -> DeleteStep:
        """Deletion waits for the definition's objects to be removed (upstream's REST.Delete)."""
        if current["metadata"].get("deletionTimestamp"):
            return "unchanged"
        if CLEANUP_FINALIZER not in finalizers:
            finalizers = [*finalizers, CLEANUP_FINALIZER]
        set_condition(new, "Terminating", "True", "InstanceDeletionPending",
                      "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon")
        return super().mark_for_deletion(new, current, finalizers, grace, now)


def _crd_errors(crd: dict, old: dict | None) -> list[Cause]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group") or "", names.get("plural") or "", names.get("kind") or ""
    out: list[Cause] = []
    name = crd["metadata"].get("name", "")
    if plural and group and name != f"{plural}.{group}":
        out.append(E.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        out.append(E.required("spec.group", ""))
    elif "." not in group:
        out.append(E.invalid("spec.group", group, "should be a domain with at least one dot"))
    for field in ("plural", "singular"):
        value = names.get(field)
        if field == "plural" and not value:
            out.append(E.required("spec.names.plural", ""))
        elif value and not _DNS_LABEL.fullmatch(value):
            out.append(E.invalid(f"spec.names.{field}", value, _DNS_LABEL_MSG))
    if not kind:
        out.append(E.required("spec.names.kind", ""))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        out.append(E.required("spec.scope", "") if not spec.get("scope")
                   else E.not_supported("spec.scope", spec["scope"], ["Cluster", "Namespaced"]))
    versions = spec.get("versions") or []
    if not versions:
        out.append(E.invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        out.append(E.invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
    seen: set[str] = set()
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            out.append(E.invalid(path, v, "must be an object"))
            continue
        vname = v.get("name") or ""
        if not vname:
            out.append(E.required(f"{path}.name", ""))
        elif vname in seen:
            out.append(E.invalid("spec.versions", versions, "must contain unique version names"))
        seen.add(vname)
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            out.append(E.required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        else:
            out.extend(structural.structural_errors(schema, f"{path}.schema.openAPIV3Schema"))
        scale = (v.get("subresources") or {}).get("scale")
        if scale is not None:
            for field in ("specReplicasPath", "statusReplicasPath"):
                if not scale.get(field):
                    out.append(E.required(f"{path}.subresources.scale.{field}", ""))
    if old is not None:
        ospec = old.get("spec") or {}
        if ospec.get("scope") and spec.get("scope") != ospec.get("scope"):
            out.append(E.invalid("spec.scope", spec.get("scope"), "field is immutable"))
        if ospec.get("group") and group != ospec.get("group"):
            out.append(E.invalid("spec.group", group, "field is immutable"))
    return out


STRATEGIES = {("apiextensions.k8s.io", "customresourcedefinitions"): CustomResourceDefinitionStrategy}

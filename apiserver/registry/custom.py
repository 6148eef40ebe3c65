"""Objects of a CustomResourceDefinition: one strategy per served version, built from the CRD by
apiserver/customresources.py and registered at run time (no STRATEGIES table: nothing is known before)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from kubeling.api import errors as E
from kubeling.api.resources import Resource

from apiserver.api import structural, tables, validation
from apiserver.api.jsonpath import find

from . import Strategy

NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some resources "
            "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
            "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
            "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


class CustomResourceStrategy(Strategy):
    def __init__(self, resource: Resource, version: dict, storage_version: str) -> None:
        super().__init__(resource)
        self.schema: dict = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        self.scale: dict | None = (version.get("subresources") or {}).get("scale")
        self.storage_api_version = f"{resource.group}/{storage_version}"
        self.columns = [tables.Column("Name", lambda o, n: o["metadata"].get("name", ""), NAME_DOC, "string", 0, "name")]
        self.columns += [_column(c) for c in version.get("additionalPrinterColumns") or [AGE_COLUMN]]

    # versions: the None conversion strategy only rewrites apiVersion
    def from_storage(self, obj: dict) -> dict:
        return obj if obj.get("apiVersion") == self.resource.api_version else {**obj, "apiVersion": self.resource.api_version}

    def to_storage(self, obj: dict) -> dict:
        if obj.get("apiVersion") == self.storage_api_version:
            return obj
        return {"apiVersion": self.storage_api_version, **{k: v for k, v in obj.items() if k != "apiVersion"}}

    def apply_defaults(self, obj: dict) -> None:
        structural.apply_defaults(self.schema, obj)

    def validate(self, obj: dict, old: dict | None) -> None:
        r = self.resource
        causes = validation.validate(r, obj, old) + structural.validate(self.schema, obj)
        if causes:
            raise E.invalid_error(r.group, r.kind, obj.get("metadata", {}).get("name", ""), causes)

    def to_table(self, objs: list[dict], now: Any, include_object: str, list_meta: dict | None) -> dict:
        return tables.to_table(self.resource, objs, now, include_object, list_meta, columns=self.columns)

    # scale: where the CRD says the replica counts and the selector live
    def replicas(self, obj: dict) -> Any:
        return _first(find(obj, self.scale["specReplicasPath"])) if self.scale else None

    def set_replicas(self, obj: dict, replicas: Any) -> None:
        node = obj
        *parents, last = self.scale["specReplicasPath"].lstrip(".").split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = replicas

    def scale_of(self, obj: dict) -> dict:
        out = super().scale_of(obj)
        out["spec"]["replicas"] = self.replicas(obj) or 0
        out["status"]["replicas"] = _first(find(obj, self.scale["statusReplicasPath"])) or 0
        return out

    def scale_selector(self, obj: dict) -> str:
        path = (self.scale or {}).get("labelSelectorPath")
        return (_first(find(obj, path)) or "") if path else ""


def _first(values: list) -> Any:
    return values[0] if values else None


def _column(c: dict) -> tables.Column:
    path, typ = c.get("jsonPath", ""), c.get("type", "string")

    def cell(obj: dict, now: datetime) -> Any:
        values = find(obj, path)
        if not values:
            return None
        v = values[0] if len(values) == 1 else values
        if typ == "date" and isinstance(v, str):
            return tables.since(v, now)
        if typ in ("integer", "number", "boolean") or isinstance(v, (int, float, bool)) and typ != "string":
            return v
        return v if isinstance(v, str) else _text(v)
    return tables.Column(c.get("name", ""), cell, c.get("description", ""), typ, c.get("priority", 0), c.get("format", ""))


def _text(v: Any) -> str:
    import orjson
    return orjson.dumps(v).decode() if isinstance(v, (dict, list)) else str(v)

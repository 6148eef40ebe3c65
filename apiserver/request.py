"""One API request as the generic handler and the per-kind strategies see it, and the reply they build."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from kubeling.api import errors as E
from kubeling.api.resources import Resource

from .codec import Target

TRUE = ("1", "t", "T", "true", "TRUE", "True")


@dataclass
class Request:
    verb: str
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None
    query: dict[str, str]
    body: bytes
    content_type: str
    target: Target
    user: dict
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False   # set by check_dry_run once the request's options are validated

    def q(self, key: str, default: str = "") -> str:
        return self.query.get(key, default)

    def flag(self, key: str) -> bool:
        """A boolean query parameter, parsed like Go's strconv.ParseBool."""
        return self.query.get(key, "") in TRUE

    @property
    def manager(self) -> str:
        fm = self.q("fieldManager")
        if fm:
            return fm
        return (self.user_agent.split("/", 1)[0] or "unknown")[:128]


@dataclass
class Reply:
    code: int
    body: Any
    stream: AsyncIterator[bytes] | None = None


OPTIONS_KIND = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions",
                "delete": "DeleteOptions", "deletecollection": "DeleteOptions"}


def check_dry_run(req: Request, from_body: Any = None) -> None:
    """dryRun comes from the query or, for deletes, the DeleteOptions body; only "All" is valid.

    Everything but the write runs for a dry run, so an unknown value must fail before anything
    is written rather than be taken for a real request."""
    values: list = []
    if "dryRun" in req.query:
        values.append(req.query["dryRun"])
    if from_body is not None:
        values.extend(from_body if isinstance(from_body, list) else [from_body])
    if any(v != "All" for v in values):
        shown = "[]string{" + ", ".join('"' + str(v).replace('"', '\\"') + '"' for v in values) + "}"
        raise E.invalid_error("meta.k8s.io", OPTIONS_KIND.get(req.verb, "CreateOptions"), "", [E.Cause(
            "FieldValueNotSupported", f'Unsupported value: {shown}: supported values: "All"', "dryRun")])
    req.dry_run = bool(values)

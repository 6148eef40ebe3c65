"""Kubernetes `Status` errors: one exception type carrying reason, code and causes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeling.api.gofmt import field_value


@dataclass
class Cause:
    """A field-level problem, as in metav1.StatusCause."""
    type: str       # FieldValueRequired, FieldValueInvalid, FieldValueDuplicate, FieldValueNotSupported, FieldValueForbidden, FieldValueTooLong ...
    message: str    # e.g. 'Required value' or 'Invalid value: "x": must be ...'
    field: str      # e.g. 'spec.template.spec.containers[0].name'

    def render(self) -> str:
        """How Kubernetes prints a cause inside the Status message."""
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.message, "field": self.field}


# Helpers mirroring k8s.io/apimachinery/pkg/util/validation/field error constructors.
def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), path)


def _fmt(value: Any) -> str:
    return field_value(value)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {_fmt(value)}: {detail}", path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", f"Duplicate value: {_fmt(value)}", path)


def not_supported(path: str, value: Any, valid: list[str]) -> Cause:
    quoted = ", ".join(_fmt(v) for v in valid)
    return Cause("FieldValueNotSupported", f"Unsupported value: {_fmt(value)}: supported values: {quoted}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}", path)


def too_long(path: str, value: Any, limit: int) -> Cause:
    return Cause("FieldValueTooLong", f"Too long: may not be more than {limit} bytes", path)


class StatusError(Exception):
    """Raised anywhere in request handling; rendered as a metav1.Status."""

    def __init__(self, code: int, reason: str, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """metav1.Status in Go's field order (clients compare error text verbatim)."""
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason}
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:   # StatusDetails fields are omitempty
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{_qualified(group, plural)} "{name}" not found',
                       details=_details(name, group, plural))


def already_exists(group: str, plural: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_qualified(group, plural)} "{name}" already exists',
                       details=_details(name, group, plural))


def conflict(group: str, plural: str, name: str, detail: str) -> StatusError:
    return StatusError(409, "Conflict", f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {detail}',
                       details=_details(name, group, plural))


def stale_conflict(group: str, plural: str, name: str) -> StatusError:
    return conflict(group, plural, name, "the object has been modified; please apply your changes to the latest version and try again")


def invalid_error(group: str, kind: str, name: str, causes: list[Cause]) -> StatusError:
    """422 Invalid, message formatted like apierrors.NewInvalid."""
    gk = f"{kind}.{group}" if group else kind
    if len(causes) == 1:
        msg = f'{gk} "{name}" is invalid: {causes[0].render()}'
    else:
        msg = f'{gk} "{name}" is invalid: [' + ", ".join(c.render() for c in causes) + "]"
    details = _details(name, group, kind)
    details["causes"] = [c.to_dict() for c in causes]
    return StatusError(422, "Invalid", msg, details=details)


def generic_not_found() -> StatusError:
    """A path no resource serves (upstream's NewGenericServerResponse: empty details, not none)."""
    return StatusError(404, "NotFound", "the server could not find the requested resource", details={})


def generic_method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                       details={})


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden_error(message: str, details: dict[str, Any] | None = None) -> StatusError:
    return StatusError(403, "Forbidden", message, details=details)


def method_not_allowed(verb: str, what: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", f"{verb} is not supported on resources of kind \"{what}\"")


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf')


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_many_requests(message: str = "Too many requests, please try again later.") -> StatusError:
    return StatusError(429, "TooManyRequests", message, details={"retryAfterSeconds": 1}, headers={"Retry-After": "1"})


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}",
                       details={"causes": [{"message": message}]})


def request_entity_too_large(limit: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")

"""Errors of the etcd v3 client, classified from etcd's gRPC code and message."""

from __future__ import annotations

UNAVAILABLE_CODES = {4, 14}  # DeadlineExceeded, Unavailable


class EtcdError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


class CompactedError(EtcdError):
    """The requested revision is older than the store's compacted revision."""

    def __init__(self, code: int = 11, message: str = "etcdserver: mvcc: required revision has been compacted",
                 http_status: int = 400, compact_revision: int = 0) -> None:
        super().__init__(code, message, http_status)
        self.compact_revision = compact_revision


class FutureRevisionError(EtcdError):
    pass


class LeaseNotFoundError(EtcdError):
    pass


class EtcdUnavailable(EtcdError):
    """No endpoint answered, or the cluster could not commit in time.

    maybe_applied is True when a write may have reached a member: the caller must not
    assume it failed (retrying a non-idempotent write could apply it twice)."""

    def __init__(self, code: int, message: str, http_status: int = 0, maybe_applied: bool = False) -> None:
        super().__init__(code, message, http_status)
        self.maybe_applied = maybe_applied


def from_body(body: dict, http_status: int) -> EtcdError:
    code = int(body.get("code", 2))
    message = str(body.get("message") or body.get("error") or "unknown error")
    if "required revision has been compacted" in message:
        return CompactedError(code, message, http_status)
    if "required revision is a future revision" in message:
        return FutureRevisionError(code, message, http_status)
    if "requested lease not found" in message:
        return LeaseNotFoundError(code, message, http_status)
    if code in UNAVAILABLE_CODES:
        return EtcdUnavailable(code, message, http_status, maybe_applied="timed out" in message)
    return EtcdError(code, message, http_status)

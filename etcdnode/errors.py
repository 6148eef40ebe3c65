"""etcd's errors: gRPC code and message (both wires) and the JSON gateway's HTTP status."""

from __future__ import annotations

# gRPC status codes used by etcd
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
FAILED_PRECONDITION = 9
RESOURCE_EXHAUSTED = 8
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14

# grpc-gateway's mapping of gRPC codes to HTTP status
HTTP_STATUS = {
    CANCELLED: 408,
    UNKNOWN: 500,
    INVALID_ARGUMENT: 400,
    DEADLINE_EXCEEDED: 504,
    NOT_FOUND: 404,
    RESOURCE_EXHAUSTED: 429,
    FAILED_PRECONDITION: 412,
    OUT_OF_RANGE: 400,
    UNIMPLEMENTED: 501,
    INTERNAL: 500,
    UNAVAILABLE: 503,
}


class EtcdError(Exception):
    """An error with etcd's gRPC code and message; travels through the Raft log as a result."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def to_tuple(self) -> tuple[str, int, str]:
        return ("err", self.code, self.message)


def _err(code: int, message: str):
    return lambda: EtcdError(code, message)


compacted = _err(OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
future_rev = _err(OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
key_not_found = _err(INVALID_ARGUMENT, "etcdserver: key not found")
empty_key = _err(INVALID_ARGUMENT, "etcdserver: key is not provided")
duplicate_key = _err(INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")
too_many_ops = _err(INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
request_too_large = _err(INVALID_ARGUMENT, "etcdserver: request is too large")
lease_not_found = _err(NOT_FOUND, "etcdserver: requested lease not found")
lease_exists = _err(FAILED_PRECONDITION, "etcdserver: lease already exists")
lease_ttl_too_large = _err(OUT_OF_RANGE, "etcdserver: too large lease TTL")
timeout = _err(UNAVAILABLE, "etcdserver: request timed out")
timeout_leader_fail = _err(
    UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure"
)

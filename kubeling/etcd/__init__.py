"""Async client for etcd's v3 JSON API (real etcd 3.4+ and kubeling's etcdnode)."""

from .client import EtcdClient, Watch
from .errors import CompactedError, EtcdError, EtcdUnavailable, FutureRevisionError, LeaseNotFoundError
from .types import (Compare, DeleteResponse, Event, Header, KeyValue, LeaseGrantResponse, LeaseTTLResponse, Op,
                    PutResponse, RangeResponse, StatusResponse, TxnResponse, WatchResponse, prefix_end)

__all__ = [
    "EtcdClient", "Watch", "CompactedError", "EtcdError", "EtcdUnavailable", "FutureRevisionError",
    "LeaseNotFoundError", "Compare", "DeleteResponse", "Event", "Header", "KeyValue", "LeaseGrantResponse",
    "LeaseTTLResponse", "Op", "PutResponse", "RangeResponse", "StatusResponse", "TxnResponse", "WatchResponse",
    "prefix_end",
]

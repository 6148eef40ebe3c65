"""client-go's metrics for every component built on kubeling.client: work queues, REST requests,
leader election. One process-wide registry that each component's /metrics serves."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
_BUCKETS = tuple(1e-8 * 10 ** i for i in range(10))   # upstream ExponentialBuckets(10e-9, 10, 10)

WORKQUEUE_ADDS = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", ["name"],
                         registry=REGISTRY)
WORKQUEUE_DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=REGISTRY)
WORKQUEUE_RETRIES = Counter("workqueue_retries_total", "Total number of retries handled by workqueue", ["name"],
                            registry=REGISTRY)
WORKQUEUE_QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds", "How long in seconds an item stays in workqueue before being requested.",
    ["name"], buckets=_BUCKETS, registry=REGISTRY)
WORKQUEUE_WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
    ["name"], buckets=_BUCKETS, registry=REGISTRY)
REST_CLIENT_REQUESTS = Counter("rest_client_requests_total",
                               "Number of HTTP requests, partitioned by status code, method, and host.",
                               ["code", "method", "host"], registry=REGISTRY)
LEADER_ELECTION_MASTER = Gauge(
    "leader_election_master_status", "Gauge of if the reporting system is master of the relevant lease, 0 "
    "indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to "
    "group by name.", ["name"], registry=REGISTRY)

"""Watch resume and slow watchers through a real apiserver with a short watcher queue.

The apiserver runs with --watch-queue-length 10 and --watch-cache-history 100, so the cases that
need 50,000 / 100,000 events at the defaults take tens here.
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clusters import EtcdnodeCluster
from tests.support.control_plane import ApiServer

QUEUE = 10
HISTORY = 100


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[ApiServer]:
    tmp = tmp_path_factory.mktemp("watch-resume")
    store = EtcdnodeCluster(tmp / "store", size=1)
    server = None
    try:
        store.start_all()
        server = ApiServer(tmp / "api", store.client_urls, extra_args=[
            "--watch-queue-length", str(QUEUE), "--watch-cache-history", str(HISTORY)]).start()
        yield server
    finally:
        if server is not None:
            server.stop()
        store.stop()


_names = iter(range(10**6))


@pytest.fixture
def base(api: ApiServer) -> str:
    """The configmaps collection of a fresh namespace."""
    name = f"w{next(_names)}"
    code, body, _ = api.http("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    return f"/api/v1/namespaces/{name}/configmaps"


def create(api: ApiServer, base: str, name: str, data: dict | None = None) -> dict:
    code, body, _ = api.http("POST", base, {"metadata": {"name": name}, "data": data or {}})
    assert code == 201, body
    return body


def list_rv(api: ApiServer, base: str) -> str:
    return api.http("GET", base)[1]["metadata"]["resourceVersion"]


class WatchStream:
    """One watch response read line by line over a raw TLS socket.

    `rcvbuf` shrinks the client's receive buffer, so that a client not reading backs the
    apiserver up within a few megabytes, as a slow client does."""

    def __init__(self, api: ApiServer, path: str, rcvbuf: int | None = None) -> None:
        raw = socket.socket()
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(30)
        raw.connect(("127.0.0.1", api.port))
        ctx = ssl.create_default_context(cafile=str(api.ca))
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api.token}\r\n"
                          f"Accept: application/json\r\n\r\n".encode())
        self.resp = http.client.HTTPResponse(self.sock)
        self.resp.begin()   # headers come once the watcher is registered
        assert self.resp.status == 200

    def events(self, deadline: float, count: int | None = None) -> tuple[list[dict], bool]:
        """Events until `count` of them or the end of the response; (events, ended).

        Fails when `deadline` (time.monotonic) passes first."""
        out: list[dict] = []
        while count is None or len(out) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"watch still open after {len(out)} events"
            self.sock.settimeout(left)
            try:
                line = self.resp.readline()
            except TimeoutError:
                raise AssertionError(f"watch silent and still open after {len(out)} events") from None
            if not line:
                return out, True
            out.append(json.loads(line))
        return out, False

    def close(self) -> None:
        self.resp.close()
        self.sock.close()


def names(events: list[dict]) -> list[str]:
    return [e["object"]["metadata"]["name"] for e in events]


def test_resume_across_more_events_than_the_queue_delivers_all_in_order(api, base):
    rv = list_rv(api, base)
    want = [f"c{i:02}" for i in range(4 * QUEUE)]
    for name in want:
        create(api, base, name)
    w = WatchStream(api, f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=60")
    try:
        events, ended = w.events(time.monotonic() + 20, len(want))
    finally:
        w.close()
    assert not ended
    assert [e["type"] for e in events] == ["ADDED"] * len(want)
    assert names(events) == want
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs) and rvs[0] > int(rv)


def test_resume_older_than_the_history_is_expired(api, base):
    rv = list_rv(api, base)
    for i in range(HISTORY + 1):
        create(api, base, f"h{i:03}")
    w = WatchStream(api, f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=60")
    try:
        events, ended = w.events(time.monotonic() + 20)
    finally:
        w.close()
    assert ended and len(events) == 1
    status = events[0]["object"]
    assert events[0]["type"] == "ERROR"
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith(f"too old resource version: {rv} (")


def test_initial_state_larger_than_the_queue_is_sent_whole(api, base):
    want = [f"s{i:02}" for i in range(3 * QUEUE)]
    for name in want:
        create(api, base, name)
    for query in ("", "&resourceVersion=0"):
        w = WatchStream(api, f"{base}?watch=true&timeoutSeconds=60{query}")
        try:
            events, _ = w.events(time.monotonic() + 20, len(want))
        finally:
            w.close()
        assert [(e["type"], n) for e, n in zip(events, names(events))] == [("ADDED", n) for n in want]
    w = WatchStream(api, f"{base}?watch=true&timeoutSeconds=60&sendInitialEvents=true"
                         "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
    try:
        events, _ = w.events(time.monotonic() + 20, len(want) + 1)
    finally:
        w.close()
    assert names(events[:-1]) == want
    assert events[-1]["type"] == "BOOKMARK"
    assert events[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_a_slow_watcher_is_dropped_its_stream_ends_and_it_resumes(api, base):
    """A client that stops reading is closed: the response ends (not at timeoutSeconds) and
    re-watching from the last resourceVersion it got delivers the rest."""
    size = 256 * 1024
    # Enough to fill the largest send buffer the kernel gives the apiserver, then the queue.
    wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    want = [f"big{i:03}" for i in range(wmem_max // size + QUEUE + 16)]
    rv = list_rv(api, base)
    slow = WatchStream(api, f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=300", rcvbuf=16 * 1024)
    try:
        for name in want:
            create(api, base, name, {"blob": "x" * size})
        got, ended = slow.events(time.monotonic() + 20)
    finally:
        slow.close()
    assert ended   # well before timeoutSeconds
    assert 0 < len(got) < len(want) and names(got) == want[:len(got)]
    last = got[-1]["object"]["metadata"]["resourceVersion"]
    again = WatchStream(api, f"{base}?watch=true&resourceVersion={last}&timeoutSeconds=60")
    try:
        rest, _ = again.events(time.monotonic() + 30, len(want) - len(got))
    finally:
        again.close()
    assert names(rest) == want[len(got):]

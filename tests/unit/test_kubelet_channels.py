"""The kubelet API's wire formats (kubelet/streams.py): channel framing per protocol, the error
channel's Status, resize messages, Docker's multiplexed frames and log options."""
from __future__ import annotations

import json
import struct

import pytest

from kubelet.streams import CLOSE, BadRequest, Channels, DockerFrames, LogOptions, ResizeDecoder, negotiate, \
    parse_bool, parse_time


def test_negotiation_follows_the_clients_order():
    assert negotiate("v5.channel.k8s.io, v4.channel.k8s.io") == "v5.channel.k8s.io"
    assert negotiate("v4.channel.k8s.io,v5.channel.k8s.io") == "v4.channel.k8s.io"
    assert negotiate("SPDY/3.1, v4.base64.channel.k8s.io") == "v4.base64.channel.k8s.io"
    assert negotiate(None) == "" and negotiate("") == ""
    assert negotiate("v9.channel.k8s.io") is None


@pytest.mark.parametrize("protocol,version,b64", [("v5.channel.k8s.io", 5, False), ("v4.channel.k8s.io", 4, False),
                                                  ("v4.base64.channel.k8s.io", 4, True), ("v3.channel.k8s.io", 3, False),
                                                  ("channel.k8s.io", 1, False), ("base64.channel.k8s.io", 1, True),
                                                  ("", 1, False)])
def test_protocol_versions(protocol, version, b64):
    ch = Channels(protocol)
    assert (ch.version, ch.base64) == (version, b64)


def test_binary_framing():
    ch = Channels("v5.channel.k8s.io")
    assert ch.encode(1, b"out") == b"\x01out"
    assert ch.encode(2, b"") == b"\x02"
    assert ch.decode(b"\x00in") == (0, b"in")
    assert ch.decode(bytes([CLOSE, 0])) == (CLOSE, b"\x00")
    assert ch.decode(b"") is None
    # the Python client's write_stdin("...") sends a text frame on binary protocols: raw, not base64
    assert Channels("v4.channel.k8s.io").decode("\x00echo hi\n") == (0, b"echo hi\n")


def test_base64_framing():
    ch = Channels("v4.base64.channel.k8s.io")
    assert ch.encode(1, b"hi\n") == "1aGkK"
    assert ch.decode("0aGkK") == (0, b"hi\n")
    assert ch.decode("") is None


def test_status_v4_and_v5_shapes_as_upstream():
    for protocol in ("v4.channel.k8s.io", "v5.channel.k8s.io"):
        ch = Channels(protocol)
        assert ch.status(0) == b'{"metadata":{},"status":"Success"}'
        failure = json.loads(ch.status(42))
        assert failure["status"] == "Failure" and failure["reason"] == "NonZeroExitCode"
        assert failure["details"] == {"causes": [{"reason": "ExitCode", "message": "42"}]}
        assert failure["message"].startswith("command terminated with non-zero exit code: ")
        internal = json.loads(ch.status(None, "engine gone"))
        assert (internal["reason"], internal["code"], internal["message"]) == (
            "InternalError", 500, "Internal error occurred: engine gone")


def test_status_before_v4_is_text_and_silent_on_success():
    for protocol in ("channel.k8s.io", "v2.channel.k8s.io", "v3.channel.k8s.io"):
        ch = Channels(protocol)
        assert ch.status(0) is None and ch.status(None) is None
        assert ch.status(3) == b"command terminated with non-zero exit code: Error executing in Docker Container: 3"


def test_resize_messages_split_and_joined():
    sizes = ResizeDecoder()
    assert sizes.feed(b'{"Width":80,"Height":24}') == [(80, 24)]
    assert sizes.feed(b'{"Width":100,') == []
    assert sizes.feed(b'"Height":30}\n{"Width":1,"Height":2}\n') == [(100, 30), (1, 2)]


def test_docker_frames():
    def frame(kind: int, data: bytes) -> bytes:
        return bytes([kind, 0, 0, 0]) + struct.pack(">I", len(data)) + data
    frames = DockerFrames()
    stream = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"")
    assert frames.feed(stream[:5]) == []
    assert frames.feed(stream[5:13]) == [(1, b"out\n")]
    assert frames.feed(stream[13:]) == [(2, b"err\n"), (1, b"")]


def test_parse_bool_as_go():
    assert [parse_bool(v) for v in ("1", "true", "True", "TRUE", "t", "0", "false", "False")] == [True] * 5 + [False] * 3
    with pytest.raises(BadRequest, match='parsing "yes"'):
        parse_bool("yes")


def test_log_options():
    opts = LogOptions.from_query({"follow": "true", "tailLines": "10", "timestamps": "1", "limitBytes": "5",
                                  "sinceSeconds": "60"}, now=1000.0)
    assert (opts.follow, opts.tail_lines, opts.timestamps, opts.limit_bytes, opts.since) == (True, 10, True, 5, 940.0)
    assert LogOptions.from_query({"sinceTime": "2026-01-02T03:04:05Z"}, now=0).since == parse_time("2026-01-02T03:04:05Z")
    assert LogOptions.from_query({}, now=0) == LogOptions()
    for bad, text in [({"tailLines": "-1"}, "tailLines"), ({"limitBytes": "0"}, "limitBytes"),
                      ({"sinceSeconds": "0"}, "sinceSeconds"), ({"tailLines": "x"}, "invalid syntax"),
                      ({"sinceSeconds": "1", "sinceTime": "2026-01-02T03:04:05Z"}, "at most one of"),
                      ({"sinceTime": "yesterday"}, "parsing time")]:
        with pytest.raises(BadRequest, match=text):
            LogOptions.from_query(bad, now=0)


def test_parse_time():
    assert parse_time("1970-01-01T00:00:10Z") == 10.0
    assert parse_time("1970-01-01T01:00:10+01:00") == 10.0
    assert parse_time("1970-01-01T00:00:10.25Z") == 10.25

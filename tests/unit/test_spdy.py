"""apiserver/spdy.py: SPDY/3.1 frames and the server session, checked against bytes the real
kubectl 1.27 sent (captured from `kubectl exec -i` and `kubectl port-forward` talking to a stub)."""
from __future__ import annotations

import asyncio
import zlib

import pytest

from apiserver import spdy
from apiserver.spdy import (
    Data,
    Framer,
    GoAway,
    HeadersFrame,
    Ping,
    RstStream,
    Session,
    Settings,
    SynReply,
    SynStream,
    WindowUpdate,
)

# kubectl 1.27 `echo hi | kubectl exec -i x -- cat`: SYN_STREAMs error, stdin, stdout, stderr (each
# header block continuing one zlib stream), "hi\n" on stdin, then stdin's FIN.
KUBECTL_EXEC = bytes.fromhex(
    "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff"
    "800300010000001700000003000000000000c22e555c92929907000000ffff800300010000001900000005000000000000"
    "c22ac5565c92925f5a02000000ffff800300010000001500000007000000000000c229975a5404000000ffff0000000300"
    "00000368690a0000000301000000")
# kubectl 1.27 `kubectl port-forward x 18081:80` and one connection sending "hello": the error
# stream (closed at once), the data stream, the data and its FIN, and a PING.
KUBECTL_PORT_FORWARD = bytes.fromhex(
    "800300010000003d0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc64"
    "61c0c0c0c0590489c44c50e2663400000000ffff0000000101000000800300010000001a00000003000000000000826a25"
    "a406d56850299508000000ffff000000030000000568656c6c6f0000000301000000800300060000000400000001")


def test_decodes_kubectl_exec_streams():
    frames = Framer().feed(KUBECTL_EXEC)
    assert frames == [SynStream(1, {"streamtype": ["error"]}), SynStream(3, {"streamtype": ["stdin"]}),
                      SynStream(5, {"streamtype": ["stdout"]}), SynStream(7, {"streamtype": ["stderr"]}),
                      Data(3, b"hi\n"), Data(3, b"", spdy.FLAG_FIN)]


def test_decodes_kubectl_port_forward_streams_byte_by_byte():
    framer, frames = Framer(), []
    for i in range(len(KUBECTL_PORT_FORWARD)):
        frames += framer.feed(KUBECTL_PORT_FORWARD[i:i + 1])
    assert frames == [SynStream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}),
                      Data(1, b"", spdy.FLAG_FIN),
                      SynStream(3, {"port": ["80"], "requestid": ["0"], "streamtype": ["data"]}),
                      Data(3, b"hello"), Data(3, b"", spdy.FLAG_FIN), Ping(1)]


def test_header_blocks_use_spdy3_dictionary_like_upstream():
    # zlib header 78 f9 (best compression, preset dictionary) and the dictionary's Adler-32, as in
    # kubectl's first block; the block inflates with the dictionary and nothing else.
    frame = Framer().encode(SynReply(1, {"streamtype": ["error"]}))
    block = frame[12:]
    assert block[:6] == KUBECTL_EXEC[18:24] == bytes.fromhex("78f9e3c6a7c2")
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2 and len(spdy.DICTIONARY) == 1423
    raw = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(block)
    assert raw == b"\0\0\0\1" + b"\0\0\0\x0astreamtype" + b"\0\0\0\x05error"


def test_every_frame_round_trips_and_header_context_spans_frames():
    sent = [SynStream(1, {"streamtype": ["data"], "port": ["80"]}, spdy.FLAG_FIN, 0, 3),
            SynReply(1, {}), SynReply(3, {"x": ["a", "b"]}, spdy.FLAG_FIN),
            HeadersFrame(5, {"streamtype": ["data"]}, spdy.FLAG_FIN), RstStream(7, spdy.CANCEL),
            Settings({spdy.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20, 4: 100}), Ping(31337), GoAway(9, 2),
            WindowUpdate(3, 65536), Data(1, b"hello"), Data(1, b"", spdy.FLAG_FIN),
            SynStream(9, {"streamtype": ["data"], "port": ["80"]})]
    writer, reader = Framer(), Framer()
    wire = b"".join(writer.encode(f) for f in sent)
    assert reader.feed(wire[:5]) == []
    assert reader.feed(wire[5:]) == sent
    # the last SYN_STREAM repeats the first one's headers: the shared context makes it smaller
    assert len(writer.encode(SynStream(11, {"streamtype": ["data"], "port": ["80"]}))) < \
        len(Framer().encode(SynStream(11, {"streamtype": ["data"], "port": ["80"]})))


def test_garbage_and_other_versions_are_protocol_errors():
    with pytest.raises(spdy.ProtocolError):
        Framer().feed(b"\x80\x02\x00\x01\x00\x00\x00\x0a" + bytes(10))
    with pytest.raises(spdy.ProtocolError):
        Framer().feed(bytes(8))
    with pytest.raises(spdy.ProtocolError):
        Framer().feed(Framer()._control(spdy.SYN_REPLY, 0, b"\0\0\0\1" + b"not zlib at all"))
    assert Framer().feed(Framer()._control(5, 0, b"noop")) == []   # SPDY/2's NOOP: skipped


class Wire:
    """A carrier that keeps what the session writes, decoded as the client would read it."""

    def __init__(self) -> None:
        self.decoder = Framer()     # the client's side of the header contexts
        self.frames: list = []
        self.reading = True
        self.closed = False

    def write(self, data: bytes) -> None:
        self.frames += self.decoder.feed(data)

    async def drain(self) -> None:
        return None

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def wire():
    return Wire()


def session_with(wire: Wire, accept: bool = True) -> tuple[Session, list[spdy.Stream], Framer]:
    opened: list[spdy.Stream] = []

    def on_stream(stream: spdy.Stream) -> None:
        opened.append(stream)
        if accept:
            stream.reply()
    return Session(wire, on_stream, high_water=256 * 1024), opened, Framer()


async def test_session_streams_replies_data_and_fin(wire):
    session, opened, _ = session_with(wire)
    session.feed(KUBECTL_EXEC)
    assert [s.header("streamType") for s in opened] == ["error", "stdin", "stdout", "stderr"]
    assert wire.frames == [SynReply(1, {}), SynReply(3, {}), SynReply(5, {}), SynReply(7, {})]
    stdin, stdout = opened[1], opened[2]
    assert await stdin.read() == b"hi\n" and await stdin.read() == b"" and stdin.remote_closed
    await stdout.write(b"out")
    stdout.close()
    stdout.close()
    assert wire.frames[4:] == [Data(5, b"out"), Data(5, b"", spdy.FLAG_FIN)]


async def test_session_pings_resets_and_bad_streams(wire):
    session, opened, client = session_with(wire)
    session.feed(client.encode(SynStream(1, {"streamtype": ["data"]})) + client.encode(Ping(1)) +
                 client.encode(Ping(2)) + client.encode(SynStream(1, {})) + client.encode(SynStream(4, {})))
    assert wire.frames == [SynReply(1, {}), Ping(1), RstStream(1, spdy.STREAM_IN_USE),
                           RstStream(4, spdy.PROTOCOL_ERROR)]
    reader = asyncio.ensure_future(opened[0].read())
    await asyncio.sleep(0)
    session.feed(client.encode(RstStream(1, spdy.CANCEL)))
    assert await reader == b"" and opened[0].reset and 1 not in session.streams
    await opened[0].write(b"dropped")
    assert wire.frames[-1] == RstStream(4, spdy.PROTOCOL_ERROR)
    session.feed(b"\x80\x02\x00\x01" + bytes(4))
    assert wire.frames[-1] == GoAway(1, spdy.GOAWAY_PROTOCOL_ERROR) and wire.closed and session.closed.is_set()


async def test_flow_control_window_updates_and_read_pausing(wire):
    session, opened, client = session_with(wire)
    session.feed(client.encode(SynStream(1, {"streamtype": ["data"]})))
    stream = opened[0]
    chunk = bytes(16 * 1024)
    session.feed(b"".join(client.encode(Data(1, chunk)) for _ in range(20)))   # 320 KiB > 256 KiB
    assert not wire.reading and session.buffered == 20 * len(chunk)
    for _ in range(2):
        await stream.read()
    assert WindowUpdate(1, 32 * 1024) in wire.frames and not wire.reading
    for _ in range(10):
        await stream.read()
    assert wire.reading and session.buffered == 8 * len(chunk)
    assert wire.frames.count(WindowUpdate(1, 32 * 1024)) == 6
    session.connection_lost()
    assert await stream.read() == chunk   # what arrived stays readable, then EOF

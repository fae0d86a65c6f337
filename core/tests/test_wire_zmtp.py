"""ZMTP framing read by circusd itself (circus.wire.zmtp): pure, no sockets.

The bytes are written out by hand from the ZMTP 3.0 spec, so the reader is checked against the
wire format, not against our own encoder; the encoder is checked by feeding its output back and
by the real-socket tests (libzmq clients and the original circusctl talk to it).
"""

from __future__ import annotations

import pytest

from circus.wire.zmtp import (
    Command,
    FrameReader,
    Greeting,
    Message,
    ProtocolError,
    command,
    frame,
    message,
    parse_metadata,
    ready,
)

GREETING = b"\xff" + b"\x00" * 8 + b"\x7f\x03\x01" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
READY = b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00"


def reader(keep_bytes: int = 1000, hard_bytes: int = 10_000, hard_frames: int = 256) -> FrameReader:
    return FrameReader(keep_frames=2, keep_bytes=keep_bytes, hard_bytes=hard_bytes,
                       hard_frames=hard_frames)


def feed_all(r: FrameReader, data: bytes) -> list[object]:
    events, used = r.feed(data)
    assert used == len(data)
    return list(events)


def test_a_handshake_and_a_request_in_one_piece() -> None:
    wire = GREETING + READY + b"\x00\x07payload"
    events = feed_all(reader(), wire)
    assert events[0] == Greeting(3, 1, "NULL")
    assert isinstance(events[1], Command)
    assert events[1].name == "READY"
    assert parse_metadata(events[1].data) == {"socket-type": b"DEALER", "identity": b""}
    assert events[2] == Message([b"payload"], 1, 7)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 65])
def test_any_split_of_the_bytes_gives_the_same_events(step: int) -> None:
    body = b"y" * 300  # a LONG frame (size > 255)
    wire = (GREETING + READY + b"\x01\x00" + b"\x02" + (300).to_bytes(8, "big") + body
            + b"\x00\x02ab")
    r = reader()
    events: list[object] = []
    for start in range(0, len(wire), step):
        events += feed_all(r, wire[start : start + step])
    assert events[2:] == [Message([b"", body], 2, 300), Message([b"ab"], 1, 2)]


def test_frames_past_the_kept_size_are_counted_not_kept() -> None:
    r = reader(keep_bytes=10)
    events = feed_all(r, GREETING + b"\x01\x04abcd" + b"\x00\x0b" + b"z" * 11)
    assert events[1] == Message([b"abcd", None], 2, 15)
    assert r.held == 0


def test_extra_frames_are_counted_not_kept() -> None:
    r = reader()
    events = feed_all(r, GREETING + b"\x01\x01a\x01\x01b\x01\x01c\x00\x01d")
    assert events[1] == Message([b"a", b"b"], 4, 4)


def test_an_unfinished_message_holds_at_most_the_kept_bytes() -> None:
    r = reader(keep_bytes=100, hard_bytes=1 << 40)
    feed_all(r, GREETING)
    big = b"\x03" + (1 << 20).to_bytes(8, "big")
    feed_all(r, big + b"u" * (1 << 20))
    for _ in range(50):  # 50 MiB more of the same message
        feed_all(r, big)
        for _ in range(16):
            feed_all(r, b"u" * (1 << 16))
    assert r.held == 0  # every frame was over the kept size: nothing held at all
    small = reader(keep_bytes=100, hard_bytes=1 << 40)
    feed_all(small, GREETING + b"\x01\x50" + b"k" * 0x50 + b"\x03" + (1 << 20).to_bytes(8, "big"))
    assert small.held == 0x50


def test_the_hard_limits_end_the_connection() -> None:
    r = reader(hard_bytes=1000)
    with pytest.raises(ProtocolError, match="more than 1000 bytes"):
        r.feed(GREETING + b"\x03" + (1001).to_bytes(8, "big"))
    r = reader(hard_frames=5)
    with pytest.raises(ProtocolError, match="more than 5 frames"):
        r.feed(GREETING + b"\x01\x00" * 6)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"GET / HTTP/1.1\r\n" + b"x" * 48, "not a ZMTP 3 greeting"),
        (GREETING[:10] + b"\x02" + GREETING[11:], "ZMTP 2.x"),
        (GREETING + b"\x08\x00", "reserved frame flags"),
        (GREETING + b"\x05\x00", "command frame with the MORE flag"),
        (GREETING + b"\x06" + (5000).to_bytes(8, "big"), "command of 5000 bytes"),
        (GREETING + b"\x04\x03\x09ab", "malformed command"),
    ],
)
def test_protocol_errors_name_the_fault(wire: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        reader().feed(wire)


def test_malformed_metadata_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="metadata"):
        parse_metadata(b"\x0bSocket-Type\x00\x00\x00\x09DEALER")


def test_feed_stops_after_max_messages_and_reports_what_it_used() -> None:
    r = reader()
    feed_all(r, GREETING)
    wire = b"\x00\x01a\x00\x01b\x00\x01c"
    events, used = r.feed(wire, 2)
    assert events == [Message([b"a"], 1, 1), Message([b"b"], 1, 1)]
    assert used == 6
    events, used = r.feed(wire[used:], 2)
    assert events == [Message([b"c"], 1, 1)]
    assert used == 3


def test_what_we_write_reads_back() -> None:
    r = reader(keep_bytes=10_000)
    feed_all(r, GREETING)
    body = b"r" * 400
    events = feed_all(r, ready("ROUTER") + message([b"", body]) + command("PONG", b"ctx"))
    assert isinstance(events[0], Command)
    assert events[0].name == "READY"
    assert parse_metadata(events[0].data) == {"socket-type": b"ROUTER"}
    assert events[1] == Message([b"", body], 2, 400)
    assert events[2] == Command("PONG", b"ctx")
    assert frame(b"ab") == b"\x00\x02ab"
    assert frame(b"x" * 256)[:9] == b"\x02" + (256).to_bytes(8, "big")

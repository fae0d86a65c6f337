"""ZMTP 3.0 framing, read incrementally with bounded memory (no sockets here).

ZMTP is the wire protocol under ZeroMQ (RFC 23/ZMTP, NULL mechanism of RFC 24). A connection
starts with a 64-byte greeting from each side, then each side sends a READY command carrying
its socket type (and the client its identity); after that come frames: a flags byte
(``MORE``, ``LONG``, ``COMMAND``), a size (one byte, or eight when ``LONG``), the body.

Why circusd reads this itself instead of leaving it to libzmq: libzmq buffers every frame of a
multipart message until the last one arrives, with no limit, so a peer that never sends the
last frame can grow circusd without bound (issue 9). :class:`FrameReader` keeps only what a
request may hold (the first few frames, up to the size limit), counts the rest and forgets it
as it goes, and stops a message past the hard cap; a message therefore costs at most
``keep_bytes`` plus one header, however long it is or however slowly it arrives.

The same framing serves the other direction: a plugin's event subscriber and its blocking
command client speak it too (:mod:`circus.wire.subscriber`, :mod:`circus.wire.dealer`), which
saves each event and each reply a hop through libzmq's I/O thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Length of the greeting each side sends first.
GREETING_SIZE = 64
MORE = 0x01
LONG = 0x02
COMMAND = 0x04
#: Largest command body accepted (READY carries a socket type and an identity of <= 255 bytes).
MAX_COMMAND_SIZE = 4096
#: The greeting circusd sends: ZMTP 3.0, NULL mechanism, not a CURVE/PLAIN server.
SERVER_GREETING = (
    b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
)


class ProtocolError(Exception):
    """The peer broke ZMTP or a hard limit: the connection must be closed (the message says
    why, for a log line)."""


@dataclass(frozen=True)
class Greeting:
    """The peer's greeting: its protocol version and security mechanism."""

    major: int
    minor: int
    mechanism: str


@dataclass(frozen=True)
class Command:
    """A command frame (READY, PING, ERROR, ...): its name and the data after the name."""

    name: str
    data: bytes


@dataclass
class Message:
    """One complete message as far as it was kept.

    ``frames`` holds the first ``keep_frames`` frames; one whose bytes would have taken the
    kept total over ``keep_bytes`` is ``None`` (its bytes were skipped). ``count`` and ``size``
    are the totals over every frame, kept or not.
    """

    frames: list[bytes | None] = field(default_factory=list)
    count: int = 0
    size: int = 0


Event = Greeting | Command | Message


class FrameReader:
    """Turns the bytes a peer sends into greetings, commands and messages.

    Feed it whatever arrived (:meth:`feed`); it returns the events completed by those bytes and
    keeps the unfinished remainder. Memory held between calls: at most ``keep_bytes`` of the
    current message, a command body (<= :data:`MAX_COMMAND_SIZE`) and a 9-byte header.
    """

    def __init__(
        self, *, keep_frames: int, keep_bytes: int, hard_bytes: int, hard_frames: int = 256
    ) -> None:
        self.keep_frames = keep_frames
        self.keep_bytes = keep_bytes
        self.hard_bytes = hard_bytes
        #: frames a message may have at all: each costs parsing time on circusd's loop, so a
        #: peer streaming empty frames is cut off after this many instead of parsed forever
        self.hard_frames = hard_frames
        self._pending = bytearray()  # greeting or frame header being assembled
        self._greeted = False
        self._flags = 0
        self._left = -1  # body bytes still to come for the current frame; -1: need a header
        self._keep = False
        self._chunks: list[bytes] = []
        self._message = Message()

    @property
    def greeting_bytes(self) -> int:
        """How much of the peer's greeting arrived (:data:`GREETING_SIZE` once complete)."""
        return GREETING_SIZE if self._greeted else len(self._pending)

    @property
    def between_messages(self) -> bool:
        """The greeting is read and no frame is partly read: the next bytes start a frame.
        A reader with a faster path for its common messages (the plugin's subscriber) may
        parse those bytes itself while this holds, and hand back the rest."""
        return self._greeted and self._left < 0 and not self._pending and not self._message.count

    @property
    def held(self) -> int:
        """Bytes of the unfinished message kept so far (what an idle peer costs)."""
        kept = sum(len(frame) for frame in self._message.frames if frame is not None)
        return kept + sum(len(chunk) for chunk in self._chunks)

    def feed(self, data: bytes, max_messages: int | None = None) -> tuple[list[Event], int]:
        """Consume ``data``, stopping early once ``max_messages`` messages are complete (so a
        caller whose queue is full can keep the rest for later); returns the events and how
        many bytes were consumed. Raises :class:`ProtocolError` when the peer broke the
        protocol or a hard limit."""
        events: list[Event] = []
        view = memoryview(data)
        pos, end = 0, len(data)
        budget = -1 if max_messages is None else max_messages
        while pos < end and budget != 0:
            if not self._greeted:
                pos = self._take_header_bytes(view, pos, GREETING_SIZE)
                if len(self._pending) == GREETING_SIZE:
                    events.append(self._greeting())
                continue
            if self._left < 0:
                need = 9 if self._pending and self._pending[0] & LONG else 2
                pos = self._take_header_bytes(view, pos, need)
                if len(self._pending) == need and not (need == 2 and self._pending[0] & LONG):
                    self._header()
                    if self._left == 0:
                        budget -= self._finish(events)
                continue
            step = min(self._left, end - pos)
            if self._keep:
                self._chunks.append(bytes(view[pos : pos + step]))
            pos += step
            self._left -= step
            if self._left == 0:
                budget -= self._finish(events)
        return events, pos

    def _take_header_bytes(self, view: memoryview, pos: int, need: int) -> int:
        take = min(need - len(self._pending), len(view) - pos)
        self._pending += view[pos : pos + take]
        return pos + take

    def _greeting(self) -> Greeting:
        raw = bytes(self._pending)
        self._pending.clear()
        self._greeted = True
        if raw[0] != 0xFF or not raw[9] & 0x01:
            raise ProtocolError("not a ZMTP 3 greeting (ZMTP 1.0 peer or not ZeroMQ at all)")
        if raw[10] < 3:
            raise ProtocolError(f"ZMTP {raw[10]}.x peer (libzmq 3 or older): ZMTP 3 required")
        mechanism = raw[12:32].rstrip(b"\x00").decode("ascii", "replace")
        return Greeting(raw[10], raw[11], mechanism)

    def _header(self) -> None:
        flags = self._pending[0]
        if flags & ~(MORE | LONG | COMMAND):
            raise ProtocolError(f"reserved frame flags set (0x{flags:02x})")
        size = int.from_bytes(self._pending[1:], "big")
        self._pending.clear()
        self._flags = flags
        self._left = size
        if flags & COMMAND:
            if flags & MORE:
                raise ProtocolError("a command frame with the MORE flag")
            if size > MAX_COMMAND_SIZE:
                raise ProtocolError(f"command of {size} bytes (the limit is {MAX_COMMAND_SIZE})")
            self._keep = True
            return
        message = self._message
        if message.size + size > self.hard_bytes:
            raise ProtocolError(
                f"message of more than {self.hard_bytes} bytes (the hard limit; "
                f"{message.count + 1} frames so far)"
            )
        if message.count >= self.hard_frames:
            raise ProtocolError(f"message of more than {self.hard_frames} frames")
        message.count += 1
        message.size += size
        self._keep = message.count <= self.keep_frames and message.size <= self.keep_bytes
        if message.count <= self.keep_frames and not self._keep:
            message.frames.append(None)

    def _finish(self, events: list[Event]) -> int:
        """Complete the current frame; 1 when that completed a message, else 0."""
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._left = -1
        if self._flags & COMMAND:
            events.append(parse_command(body))
            return 0
        if self._keep:
            self._message.frames.append(body)
        if self._flags & MORE:
            return 0
        events.append(self._message)
        self._message = Message()
        return 1


def parse_command(body: bytes) -> Command:
    """A command frame's body: a length-prefixed name, then the command's data."""
    if not body or len(body) < 1 + body[0]:
        raise ProtocolError("malformed command frame")
    name = body[1 : 1 + body[0]].decode("ascii", "replace")
    return Command(name, body[1 + body[0] :])


def parse_metadata(data: bytes) -> dict[str, bytes]:
    """READY's properties: (1-byte name length, name, 4-byte value length, value) repeated.
    Names are case-insensitive, so they are returned lower-cased."""
    props: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        size = data[pos]
        name = data[pos + 1 : pos + 1 + size]
        pos += 1 + size
        if len(name) != size or pos + 4 > len(data):
            raise ProtocolError("malformed READY metadata")
        length = int.from_bytes(data[pos : pos + 4], "big")
        value = data[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise ProtocolError("malformed READY metadata")
        pos += 4 + length
        props[name.decode("ascii", "replace").lower()] = value
    return props


def accept_greeting(greeting: Greeting, socket_type: str) -> bytes:
    """Our READY (announcing ``socket_type``) for a peer whose greeting we accept: the NULL
    mechanism only, since circusd's own servers run only when CURVE is off."""
    if greeting.mechanism != "NULL":
        raise ProtocolError(
            f"the peer wants {greeting.mechanism} security, which this endpoint does not offer "
            "(circusd has no curve_server_key)"
        )
    return ready(socket_type)


def accept_ready(data: bytes, peer_types: frozenset[str], socket_type: str) -> dict[str, bytes]:
    """The peer's READY properties, once its socket type may talk to ours."""
    props = parse_metadata(data)
    kind = props.get("socket-type", b"").decode("ascii", "replace")
    if kind not in peer_types:
        raise ProtocolError(f"a {kind or 'nameless'} socket cannot talk to a {socket_type}")
    return props


def answer_command(event: Command) -> bytes | None:
    """What a server sends back for a command after the handshake: PONG for a PING (ZMTP 3.1
    heartbeat: a 2-byte TTL, then up to 16 bytes of context); an ERROR ends the connection;
    other commands need no answer."""
    if event.name == "PING":
        return command("PONG", event.data[2:18])
    if event.name == "ERROR":
        raise ProtocolError("the peer reported an error")
    return None


def frame(body: bytes, *, more: bool = False, command: bool = False) -> bytes:
    """One frame on the wire: flags, short or long size, body."""
    flags = (MORE if more else 0) | (COMMAND if command else 0)
    if len(body) > 255:
        return bytes([flags | LONG]) + len(body).to_bytes(8, "big") + body
    return bytes([flags, len(body)]) + body


def message(frames: list[bytes]) -> bytes:
    """A multipart message: every frame but the last has MORE."""
    last = len(frames) - 1
    return b"".join(frame(body, more=index < last) for index, body in enumerate(frames))


def command(name: str, data: bytes = b"") -> bytes:
    """A command frame (``name`` is ASCII, at most 255 bytes)."""
    raw = name.encode("ascii")
    return frame(bytes([len(raw)]) + raw + data, command=True)


def ready(socket_type: str, identity: bytes = b"") -> bytes:
    """The READY command announcing ``socket_type`` (and, for a client that has one, the
    ``identity`` a ROUTER routes its replies by and circusd names it by)."""
    value = socket_type.encode("ascii")
    body = b"\x0bSocket-Type" + len(value).to_bytes(4, "big") + value
    if identity:
        body += b"\x08Identity" + len(identity).to_bytes(4, "big") + identity
    return command("READY", body)


__all__ = [
    "COMMAND",
    "GREETING_SIZE",
    "LONG",
    "MAX_COMMAND_SIZE",
    "MORE",
    "SERVER_GREETING",
    "Command",
    "Event",
    "FrameReader",
    "Greeting",
    "Message",
    "ProtocolError",
    "accept_greeting",
    "accept_ready",
    "answer_command",
    "command",
    "frame",
    "message",
    "parse_command",
    "parse_metadata",
    "ready",
]

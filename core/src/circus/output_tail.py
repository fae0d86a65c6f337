"""The last lines each process wrote, kept by circusd, and their publication for ``tail -f``.

Circus 0.19 only sees a child's output when a stream is configured; otherwise the child writes
straight to circusd's stdout and nothing can show it later. Here every child's stdout/stderr is
piped (unless ``output_lines = 0`` or ``close_child_*``) and each line lands in a ring of its
process *slot* (worker id): a respawned process writes into the ring of the one it replaced, so
``circusctl tail web`` after a crash still shows what the crashed process printed last.

Memory is bounded per slot by ``output_bytes`` characters (plus one unfinished line of at most
:data:`MAX_LINE_BYTES`: longer ones are cut), and ``tail`` shows at most ``output_lines`` lines;
slots are at most twice ``numprocesses``. When no stream is configured the bytes are also passed
on to circusd's own stdout/stderr, so what users saw with 0.19 (children inheriting circusd's
output) still shows.

New lines are published on the event channel under ``output.<watcher>.<wid>`` (one message per
chunk read from a pipe, its lines as one ``text``, see :func:`output_topic`) while someone
follows the watcher: followers hold a lease they renew with the ``tail`` command, so output
nobody follows costs neither JSON encoding nor socket traffic. Subscribers of 0.19 ask for
``watcher.`` and never receive these messages.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from circus.protocol import res_name

log = structlog.get_logger("circus.output")

OUTPUT_PREFIX = "output."
DEFAULT_LINES = 1000
DEFAULT_BYTES = 1 << 20
MAX_LINE_BYTES = 16 * 1024
#: longest follow lease (s) a ``tail`` request may ask for
MAX_LEASE = 60.0
LINES_KEY, BYTES_KEY = "output_lines", "output_bytes"

Sink = Callable[[bytes, dict[str, Any]], None]


def output_topic(watcher_name: str, wid: int | None = None) -> str:
    """``output.<res_name>.<wid>``; without ``wid`` the prefix matching every slot."""
    base = f"{OUTPUT_PREFIX}{res_name(watcher_name)}."
    return base if wid is None else f"{base}{wid}"


@dataclass(frozen=True)
class Limits:
    """How much output is kept per slot; ``lines == 0`` turns capture off (0.19's inherit)."""

    lines: int = DEFAULT_LINES
    bytes: int = DEFAULT_BYTES

    @property
    def capture(self) -> bool:
        return self.lines > 0


def _int_option(options: Mapping[str, str], key: str, default: int) -> int:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if value < 0:
        log.warning("ignoring invalid option, using the default", option=key, value=raw,
                    default=default)
        return default
    return value


def limits_from(options: Mapping[str, str]) -> Limits:
    """Limits from free-form options (``output_lines``, ``output_bytes``); bad values warn."""
    return Limits(_int_option(options, LINES_KEY, DEFAULT_LINES),
                  _int_option(options, BYTES_KEY, DEFAULT_BYTES))


def capture_enabled(options: Mapping[str, str]) -> bool:
    """Whether children are piped for the rings (quiet: :func:`limits_from` warns once)."""
    raw = str(options.get(LINES_KEY, DEFAULT_LINES)).strip()
    return not (raw.isdigit() and int(raw) == 0)


def with_defaults(options: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
    """A watcher's free-form options completed with ``[circus]``-wide output settings."""
    merged = dict(options)
    for key in (LINES_KEY, BYTES_KEY):
        if key not in merged and key in defaults:
            merged[key] = defaults[key]
    return merged


@dataclass(frozen=True)
class OutputLine:
    seq: int
    time: float
    pid: int
    wid: int
    stream: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "pid": self.pid, "wid": self.wid,
                "stream": self.stream, "line": self.text}


@dataclass
class Batch:
    """Consecutive lines of one process and stream, read in one chunk: the ring's unit.

    A batch keeps its lines as one string (``"\\n"``-separated, no final newline) and their
    count: no object per line is made while output flows, only for a ``tail`` reply. That is
    what lets a process print hundreds of MB/s through circusd (decode and count run in C,
    once per pipe read of up to 64 KiB).
    """

    seq: int  # number of the first line
    time: float
    pid: int
    wid: int
    stream: str
    text: str
    count: int

    def keep_last(self, count: int, size: int) -> None:
        """Keep the newest lines: at most ``count`` of them, ``size`` characters in all."""
        lines = self.text.split("\n")[-count:] if count > 0 else []
        kept = 0
        total = -1  # n lines take their lengths plus n - 1 separators
        for line in reversed(lines):
            if total + 1 + len(line) > size:
                break
            total += 1 + len(line)
            kept += 1
        lines = lines[len(lines) - kept:]
        self.seq += self.count - kept
        self.count = kept
        self.text = "\n".join(lines)

    def as_lines(self) -> list[OutputLine]:
        return [OutputLine(self.seq + i, self.time, self.pid, self.wid, self.stream, text)
                for i, text in enumerate(self.text.split("\n"))] if self.count else []


class OutputRing:
    """The newest lines of one slot: at most ``limits.bytes`` characters, and at least the
    newest ``limits.lines`` lines that fit (an older batch goes once the newer ones hold that
    many; :meth:`WatcherOutput.recent` never returns more than ``limits.lines``)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.batches: collections.deque[Batch] = collections.deque()
        self.count = 0
        self.size = 0

    def append(self, batch: Batch) -> None:
        self.batches.append(batch)
        self.count += batch.count
        self.size += len(batch.text)
        while len(self.batches) > 1:
            first = self.batches[0]
            if self.count - first.count < self.limits.lines and self.size <= self.limits.bytes:
                break
            self.batches.popleft()
            self.count -= first.count
            self.size -= len(first.text)
        only = self.batches[0]
        if len(self.batches) == 1 and (self.count > self.limits.lines
                                       or self.size > self.limits.bytes):
            only.keep_last(self.limits.lines, self.limits.bytes)
            self.count, self.size = only.count, len(only.text)

    @property
    def lines(self) -> list[OutputLine]:
        return [line for batch in self.batches for line in batch.as_lines()]


def _split(data: bytes) -> tuple[str, int, bytes]:
    """The complete lines of ``data`` (decoded, ``"\\n"``-joined, without the final newline),
    how many, and the unfinished rest. A rest of :data:`MAX_LINE_BYTES` or more is cut into
    lines too, so that a process never ending its line cannot grow circusd's memory."""
    cut = data.rfind(b"\n")
    complete, rest = (b"", data) if cut < 0 else (data[:cut], data[cut + 1:])
    pieces: list[str] = []
    if cut >= 0:
        text = complete.decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").removesuffix("\r")
        pieces.append(text)
    while len(rest) >= MAX_LINE_BYTES:
        pieces.append(rest[:MAX_LINE_BYTES].decode("utf-8", "replace"))
        rest = rest[MAX_LINE_BYTES:]
    if not pieces:
        return "", 0, rest
    text = "\n".join(pieces)
    return text, text.count("\n") + 1, rest


class WatcherOutput:
    """One watcher's rings, unfinished lines and line sequence; publishes through ``sink``."""

    def __init__(self, watcher_name: str, limits: Limits | None = None) -> None:
        self.watcher_name = watcher_name
        self.limits = limits or Limits()
        self.rings: dict[int, OutputRing] = {}
        self._partial: dict[tuple[int, str], bytes] = {}
        #: +1 per line of this watcher, from 1: lets a follower skip lines it already printed
        self.seq = 0
        #: set by the arbiter once the event publisher exists
        self.sink: Sink | None = None
        #: lines are published until then (monotonic): a follower's lease, see :meth:`follow`
        self.followed_until = 0.0
        #: names this numbering of lines: a follower seeing another one (circusd restarted, or
        #: the watcher was removed and added again) knows ``seq`` started again from 1
        self.origin = uuid.uuid4().hex[:12]

    def follow(self, seconds: float) -> None:
        """Publish new lines for the next ``seconds`` (at most :data:`MAX_LEASE`): followers
        renew this lease, so output nobody follows costs no encoding at all."""
        until = time.monotonic() + min(max(seconds, 0.0), MAX_LEASE)
        self.followed_until = max(self.followed_until, until)

    def feed(self, pid: int, wid: int, stream: str, data: bytes) -> None:
        """Keep and publish the complete lines of one chunk read from a pipe."""
        if not self.limits.capture:
            return
        key = (pid, stream)
        partial = self._partial.pop(key, None)
        text, count, rest = _split(partial + data if partial else data)
        if rest:
            self._partial[key] = rest
        if count:
            self._add(pid, wid, stream, text, count)

    def finish(self, pid: int, wid: int) -> None:
        """The process exited: its unfinished last lines become lines."""
        for stream in ("stdout", "stderr"):
            rest = self._partial.pop((pid, stream), None)
            if rest:
                self._add(pid, wid, stream, rest.decode("utf-8", "replace"), 1)

    def _add(self, pid: int, wid: int, stream: str, text: str, count: int) -> None:
        ring = self.rings.get(wid)
        if ring is None:
            ring = self.rings[wid] = OutputRing(self.limits)
        now = time.time()
        first = self.seq + 1
        self.seq += count
        ring.append(Batch(first, now, pid, wid, stream, text, count))
        if self.sink is not None and time.monotonic() < self.followed_until:
            body = {"watcher": self.watcher_name, "pid": pid, "wid": wid, "stream": stream,
                    "time": now, "seq": first, "origin": self.origin, "text": text}
            self.sink(output_topic(self.watcher_name, wid).encode(), body)

    def recent(self, count: int, wids: Iterable[int] | None = None,
               stream: str | None = None) -> list[OutputLine]:
        """The last ``count`` lines of the given slots (all by default) and stream (both by
        default), oldest first."""
        count = min(count, self.limits.lines)
        if count <= 0:
            return []
        chosen = self.rings.keys() if wids is None else set(wids) & self.rings.keys()
        batches: list[Batch] = []
        for wid in chosen:  # newest batches first, only as many as ``count`` lines need
            needed = count
            for batch in reversed(self.rings[wid].batches):
                if stream is not None and batch.stream != stream:
                    continue
                batches.append(batch)
                needed -= batch.count
                if needed <= 0:
                    break
        batches.sort(key=lambda batch: batch.seq)
        lines = [line for batch in batches for line in batch.as_lines()]
        return lines[-count:]

    def memory(self) -> int:
        """Bytes of text held (what the limits bound)."""
        return sum(ring.size for ring in self.rings.values())


def passthrough(stream: str, data: bytes) -> None:
    """Copy a chunk to circusd's own stdout/stderr, as an inheriting child would have written.

    circusd's output is a terminal, a file or /dev/null in practice; a closed one (or a
    non-blocking one that is full) drops the chunk rather than failing the watcher.
    """
    fd = 1 if stream == "stdout" else 2
    view = memoryview(data)
    with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
        while view:
            written = os.write(fd, view)
            view = view[written:]

"""Where a child's stdout/stderr go (contract 8.4).

A stream is a callable taking one chunk ``{"data": bytes, "pid": int, "name": "stdout"|"stderr"}``
(the shape 0.19 passes to stream classes, so a user's dotted-path class keeps working) with an
optional ``close()``. Writes are small and synchronous: the daemon reads pipes on the event loop
and hands each chunk over at once, so output is never buffered in memory.
"""

from __future__ import annotations

import collections
import importlib
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from logging.handlers import TimedRotatingFileHandler
from typing import Any, Protocol

import structlog

log = structlog.get_logger("circus.streams")

Chunk = dict[str, Any]


class Stream(Protocol):
    def __call__(self, chunk: Chunk) -> None: ...


def _prefix(time_format: str | None) -> bytes:
    return (datetime.now().strftime(time_format) + " ").encode() if time_format else b""


def _with_prefix(data: bytes, time_format: str | None) -> bytes:
    """Prefix every line with the time, as 0.19 does when ``time_format`` is set."""
    if not time_format:
        return data
    prefix = _prefix(time_format)
    lines = data.splitlines(keepends=True)
    return b"".join(prefix + line for line in lines)


class NullStream:
    """Discards everything (``class = null``)."""

    def __call__(self, chunk: Chunk) -> None:
        return None

    def close(self) -> None:
        return None


class StdoutStream:
    """Writes to circusd's own stdout."""

    def __init__(self, time_format: str | None = None, **_: Any) -> None:
        self.time_format = time_format

    def __call__(self, chunk: Chunk) -> None:
        out = sys.stdout.buffer
        out.write(_with_prefix(chunk["data"], self.time_format))
        out.flush()

    def close(self) -> None:
        return None


class FancyStdoutStream(StdoutStream):
    """Stdout with a ``time [pid] | `` prefix per line (the colour of 0.19 is not reproduced)."""

    def __call__(self, chunk: Chunk) -> None:
        stamp = datetime.now().strftime(self.time_format or "%Y-%m-%d %H:%M:%S")
        prefix = f"{stamp} [{chunk['pid']}] | ".encode()
        data = b"".join(prefix + line for line in chunk["data"].splitlines(keepends=True))
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


class LogStream:
    """Sends output to circusd's own log: one record per line, tagged with ``tag``.

    What a ``[plugin:NAME]`` section without streams uses (issue 8 item 7), so a plugin's
    traceback is never lost. Partial lines wait for their end, per process and stream, but never
    beyond ``max_line`` bytes (then they are logged as they are): a process writing without
    newlines cannot make circusd buffer without bound.
    """

    def __init__(self, tag: str = "", max_line: int | str = 65536, **_: Any) -> None:
        self.tag = tag
        self.max_line = int(max_line)
        self._partial: dict[tuple[int, str], bytes] = {}

    def __call__(self, chunk: Chunk) -> None:
        key = (int(chunk["pid"]), str(chunk["name"]))
        data = self._partial.pop(key, b"") + chunk["data"]
        *lines, rest = data.split(b"\n")
        if len(rest) >= self.max_line:
            lines.append(rest)
            rest = b""
        for line in lines:
            self._emit(key, line)
        if rest:
            self._partial[key] = rest

    def _emit(self, key: tuple[int, str], line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        log.info(text, source=self.tag, pid=key[0], stream=key[1])

    def close(self) -> None:
        for key, rest in list(self._partial.items()):
            self._emit(key, rest)
        self._partial.clear()


class QueueStream:
    """Keeps chunks in memory (bounded), for tests and embedding."""

    def __init__(self, maxlen: int = 10000, **_: Any) -> None:
        self.queue: collections.deque[Chunk] = collections.deque(maxlen=int(maxlen))

    def __call__(self, chunk: Chunk) -> None:
        self.queue.append(chunk)

    def close(self) -> None:
        return None


class FileStream:
    """Appends to a file, rotating by size when ``max_bytes`` > 0 (``backup_count`` old files
    ``name.1`` .. ``name.N`` are kept, like logging's RotatingFileHandler)."""

    def __init__(
        self,
        filename: str,
        max_bytes: int | str = 0,
        backup_count: int | str = 0,
        time_format: str | None = None,
        **_: Any,
    ) -> None:
        self.filename = filename
        self.max_bytes = int(max_bytes)
        self.backup_count = int(backup_count)
        self.time_format = time_format
        self._file = open(filename, "ab")  # noqa: SIM115 - kept open for the stream's life

    def __call__(self, chunk: Chunk) -> None:
        data = _with_prefix(chunk["data"], self.time_format)
        if self.max_bytes > 0 and self._file.tell() + len(data) > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        if self.backup_count > 0:
            for index in range(self.backup_count - 1, 0, -1):
                src = f"{self.filename}.{index}"
                if os.path.exists(src):
                    os.replace(src, f"{self.filename}.{index + 1}")
            os.replace(self.filename, f"{self.filename}.1")
            self._file = open(self.filename, "ab")  # noqa: SIM115
        else:
            self._file = open(self.filename, "wb")  # noqa: SIM115

    def close(self) -> None:
        self._file.close()


class WatchedFileStream(FileStream):
    """A FileStream that reopens its file when it was moved or deleted (external logrotate)."""

    def __init__(self, filename: str, time_format: str | None = None, **_: Any) -> None:
        super().__init__(filename, time_format=time_format)
        self._ino = os.fstat(self._file.fileno()).st_ino

    def __call__(self, chunk: Chunk) -> None:
        try:
            current = os.stat(self.filename).st_ino
        except FileNotFoundError:
            current = -1
        if current != self._ino:
            self._file.close()
            self._file = open(self.filename, "ab")  # noqa: SIM115
            self._ino = os.fstat(self._file.fileno()).st_ino
        super().__call__(chunk)


class TimedRotatingFileStream:
    """Rotates by time (``rotate_when`` S/M/H/D/W0-W6/midnight, ``rotate_interval``), using the
    rollover rules of logging's TimedRotatingFileHandler."""

    def __init__(
        self,
        filename: str,
        *,
        rotate_when: str = "H",
        rotate_interval: int | str = 1,
        backup_count: int | str = 0,
        utc: bool | str = False,
        time_format: str | None = None,
        **_: Any,
    ) -> None:
        use_utc = (
            utc if isinstance(utc, bool) else utc.strip().lower() in ("1", "true", "yes", "on")
        )
        self._handler = TimedRotatingFileHandler(
            filename,
            when=rotate_when,
            interval=int(rotate_interval),
            backupCount=int(backup_count),
            utc=use_utc,
            delay=True,
        )
        self.time_format = time_format
        self._file = open(filename, "ab")  # noqa: SIM115

    def __call__(self, chunk: Chunk) -> None:
        handler = self._handler
        if time.time() >= handler.rolloverAt:
            self._file.close()
            handler.doRollover()
            if handler.stream is not None:
                handler.stream.close()
                handler.stream = None
            self._file = open(handler.baseFilename, "ab")  # noqa: SIM115
        self._file.write(_with_prefix(chunk["data"], self.time_format))
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        self._handler.close()


_SHORT_NAMES: dict[str, Callable[..., Any]] = {
    "filestream": FileStream,
    "watchedfilestream": WatchedFileStream,
    "timedrotatingfilestream": TimedRotatingFileStream,
    "queuestream": QueueStream,
    "logstream": LogStream,
    "stdoutstream": StdoutStream,
    "fancystdoutstream": FancyStdoutStream,
    "null": NullStream,
    "nullstream": NullStream,
}


def _resolve(class_name: str) -> Callable[..., Any]:
    short = class_name.rsplit(".", 1)[-1].lower() if class_name.startswith("circus.") else ""
    found = _SHORT_NAMES.get(class_name.lower()) or _SHORT_NAMES.get(short)
    if found is not None:
        return found
    module_name, _, attr = class_name.rpartition(".")
    if not module_name:
        raise ValueError(f"unknown stream class {class_name!r}")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import stream class {class_name!r}: {exc}") from exc
    if not callable(found):
        raise ValueError(f"stream class {class_name!r} is not callable")
    factory: Callable[..., Any] = found
    return factory


def make_stream(conf: dict[str, str]) -> Stream | None:
    """Build the stream a ``*_stream.*`` configuration describes; None when there is none.

    Without ``class`` but with ``filename`` a FileStream is used (as 0.19 does).
    """
    if not conf:
        return None
    options = {k: v for k, v in conf.items() if k != "class"}
    class_name = conf.get("class") or ("FileStream" if "filename" in conf else "")
    if not class_name:
        return None
    factory = _resolve(class_name)
    stream: Stream = factory(**options)
    return stream


class OutputStreams:
    """A watcher's stdout and stderr streams: where its children's pipes are written."""

    def __init__(self, stdout: dict[str, str], stderr: dict[str, str]) -> None:
        self.stdout: Stream | None = make_stream(stdout)
        try:
            self.stderr: Stream | None = make_stream(stderr)
        except BaseException:
            close_stream(self.stdout)
            raise

    def write(self, name: str, pid: int, data: bytes) -> None:
        """Hand one chunk to its stream; a failing stream is logged, never fatal."""
        stream = self.stdout if name == "stdout" else self.stderr
        if stream is None:
            return
        try:
            stream({"data": data, "pid": pid, "name": name})
        except Exception:
            log.exception("output stream failed", stream=name, pid=pid)

    def close(self) -> None:
        close_stream(self.stdout)
        close_stream(self.stderr)
        self.stdout = self.stderr = None


def close_stream(stream: Stream | None) -> None:
    close = getattr(stream, "close", None)
    if callable(close):
        close()

"""circus.streams: where children's output goes (files with rotation, watched files, null)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from circus.streams import (
    FileStream,
    NullStream,
    QueueStream,
    TimedRotatingFileStream,
    WatchedFileStream,
    make_stream,
)


def chunk(data: bytes) -> dict[str, object]:
    return {"data": data, "pid": 42, "name": "stdout"}


def test_file_stream_rotates_by_size(tmp_path: Path) -> None:
    target = tmp_path / "out.log"
    stream = FileStream(str(target), max_bytes=10, backup_count=2)
    for text in (b"aaaaaaaa\n", b"bbbbbbbb\n", b"cccccccc\n", b"dddddddd\n"):
        stream(chunk(text))
    stream.close()
    assert target.read_bytes() == b"dddddddd\n"
    assert (tmp_path / "out.log.1").read_bytes() == b"cccccccc\n"
    assert (tmp_path / "out.log.2").read_bytes() == b"bbbbbbbb\n"
    assert not (tmp_path / "out.log.3").exists()


def test_time_format_prefixes_every_line(tmp_path: Path) -> None:
    target = tmp_path / "out.log"
    stream = FileStream(str(target), time_format="%Y")
    stream(chunk(b"one\ntwo\n"))
    stream.close()
    assert re.fullmatch(rb"\d{4} one\n\d{4} two\n", target.read_bytes())


def test_watched_file_stream_reopens_after_move(tmp_path: Path) -> None:
    target = tmp_path / "out.log"
    stream = WatchedFileStream(str(target))
    stream(chunk(b"first\n"))
    os.rename(target, tmp_path / "old.log")
    stream(chunk(b"second\n"))
    stream.close()
    assert (tmp_path / "old.log").read_bytes() == b"first\n"
    assert target.read_bytes() == b"second\n"


def test_timed_rotating_stream_rolls_over(tmp_path: Path) -> None:
    target = tmp_path / "out.log"
    stream = TimedRotatingFileStream(str(target), rotate_when="S", backup_count=3)
    stream(chunk(b"before\n"))
    stream._handler.rolloverAt = 0  # the rollover time has come
    stream(chunk(b"after\n"))
    stream.close()
    rotated = [p for p in tmp_path.iterdir() if p.name.startswith("out.log.")]
    assert len(rotated) == 1
    assert rotated[0].read_bytes() == b"before\n"
    assert target.read_bytes() == b"after\n"


def test_make_stream_resolves_short_names_and_dotted_paths(tmp_path: Path) -> None:
    assert make_stream({}) is None
    file_stream = make_stream({"filename": str(tmp_path / "x.log")})
    assert isinstance(file_stream, FileStream)
    file_stream.close()
    assert isinstance(make_stream({"class": "null"}), NullStream)
    queue = make_stream({"class": "circus.streams.QueueStream"})
    assert isinstance(queue, QueueStream)
    queue(chunk(b"x"))
    assert list(queue.queue) == [chunk(b"x")]
    with pytest.raises(ValueError, match="cannot import"):
        make_stream({"class": "nowhere.Stream"})

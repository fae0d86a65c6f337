"""The output rings and the restart journal, as data structures (the daemon side is tested end
to end in tests/test_output_tail.py)."""

from __future__ import annotations

from typing import Any

from circus.journal import ProcessJournal
from circus.output_tail import (
    MAX_LINE_BYTES,
    Limits,
    WatcherOutput,
    capture_enabled,
    limits_from,
    output_topic,
    with_defaults,
)


def _collect() -> tuple[WatcherOutput, list[tuple[bytes, dict[str, Any]]]]:
    published: list[tuple[bytes, dict[str, Any]]] = []
    out = WatcherOutput("Web App", Limits(lines=5, bytes=1000))
    out.sink = lambda topic, body: published.append((topic, body))
    out.follow(60)  # a follower's lease: new lines are published
    return out, published


def test_lines_split_across_chunks_and_numbered() -> None:
    out, published = _collect()
    out.feed(10, 1, "stdout", b"one\ntw")
    out.feed(10, 1, "stdout", b"o\r\n\nthree")
    assert [line.text for line in out.recent(10)] == ["one", "two", ""]
    assert [line.seq for line in out.recent(10)] == [1, 2, 3]
    out.finish(10, 1)  # the unfinished last line becomes a line when the process exits
    assert out.recent(1)[0].text == "three"
    topics = {topic for topic, _ in published}
    assert topics == {b"output.web_app.1"}
    assert published[1][1]["seq"] == 2
    assert published[1][1]["text"] == "two\n"  # two lines: "two" and ""


def test_nothing_is_published_while_nobody_follows() -> None:
    published: list[bytes] = []
    out = WatcherOutput("w")
    out.sink = lambda topic, body: published.append(topic)
    out.feed(1, 1, "stdout", b"unseen\n")
    out.follow(60)
    out.feed(1, 1, "stdout", b"seen\n")
    out.follow(0)  # a lease never shortens
    out.feed(1, 1, "stdout", b"seen too\n")
    assert published == [b"output.w.1", b"output.w.1"]
    assert [line.text for line in out.recent(10)] == ["unseen", "seen", "seen too"]


def test_ring_bounded_by_lines_and_bytes() -> None:
    out, _ = _collect()
    for i in range(100):
        out.feed(10, 1, "stdout", f"{i}\n".encode())
    assert [line.text for line in out.recent(100)] == ["95", "96", "97", "98", "99"]
    out.feed(10, 2, "stderr", b"x" * 600 + b"\n" + b"y" * 600 + b"\n")
    assert out.rings[2].size <= 1000
    assert [line.text[0] for line in out.recent(10, [2])] == ["y"]


def test_one_big_chunk_is_trimmed_to_the_limits() -> None:
    out, published = _collect()
    out.feed(10, 1, "stdout", b"".join(f"{i:03d}\n".encode() for i in range(100)))
    assert [line.text for line in out.recent(100)] == ["095", "096", "097", "098", "099"]
    assert [line.seq for line in out.recent(2)] == [99, 100]
    assert published[0][1]["text"].count("\n") == 99  # followers get every line
    out.feed(10, 1, "stdout", b"z" * 999 + b"\n")  # the byte budget alone: one line fits
    assert [len(line.text) for line in out.recent(10)] == [999]
    assert out.rings[1].count == 1
    assert out.rings[1].size == 999


def test_long_lines_are_cut_and_unfinished_output_is_bounded() -> None:
    out = WatcherOutput("w", Limits(lines=100, bytes=10 * MAX_LINE_BYTES))
    out.feed(1, 1, "stdout", b"a" * (MAX_LINE_BYTES * 2 + 10))  # no newline at all
    assert [len(line.text) for line in out.recent(10)] == [MAX_LINE_BYTES, MAX_LINE_BYTES]
    out.feed(1, 1, "stdout", b"\n")
    assert len(out.recent(1)[0].text) == 10


def test_rings_are_per_slot_and_recent_interleaves_by_seq() -> None:
    out, _ = _collect()
    out.feed(10, 1, "stdout", b"a1\n")
    out.feed(11, 2, "stdout", b"b1\n")
    out.feed(12, 1, "stderr", b"a2\n")  # a respawned process in slot 1
    assert [(line.wid, line.text) for line in out.recent(10)] == [
        (1, "a1"), (2, "b1"), (1, "a2")]
    assert [line.pid for line in out.recent(10, [1])] == [10, 12]
    assert out.recent(0) == []


def test_capture_off_keeps_nothing() -> None:
    out = WatcherOutput("w", limits_from({"output_lines": "0"}))
    out.feed(1, 1, "stdout", b"hello\n")
    assert out.recent(10) == []
    assert not capture_enabled({"output_lines": "0"})
    assert capture_enabled({})
    assert capture_enabled({"output_lines": "5"})


def test_bad_limits_fall_back_to_defaults() -> None:
    assert limits_from({"output_lines": "many", "output_bytes": "-3"}) == Limits()
    assert with_defaults({"output_lines": "7"}, {"output_lines": "9", "output_bytes": "10"}) == {
        "output_lines": "7", "output_bytes": "10"}
    assert output_topic("Web App") == "output.web_app."


def test_journal_counts_restarts_per_slot() -> None:
    journal = ProcessJournal()
    journal.observe("spawn", {"process_pid": 100}, 1)
    journal.observe("spawn", {"process_pid": 101}, 2)
    assert journal.restarts == 0
    # the reap comes after the watcher dropped the process: the journal knows its slot
    assert journal.observe("reap", {"process_pid": 100, "exit_code": 3, "time": 5.0}, None) == 1
    journal.observe("spawn", {"process_pid": 102}, 1)
    journal.observe("reap", {"process_pid": 102, "exit_code": -15, "expected": True}, None)
    journal.observe("spawn", {"process_pid": 103}, 1)
    assert journal.slot(1).restarts == 2
    assert journal.slot(2).restarts == 0
    assert journal.slot(1).crashes == 1
    assert journal.slot(1).last_exit_code == -15
    assert journal.restarts == 2
    assert journal.wid_of(103) == 1
    assert journal.wid_of(100) is None

"""The logger's line formats and its file handling (rotation, reopen, bad paths), no daemon.

test_logger_daemon.py runs the plugin under a real circusd; these pin the pieces exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from circus.errors import ConfigError
from circus_plugin_logger import Logger
from circus_plugin_logger.lines import json_line, text_line
from circus_plugin_logger.logfile import LogFile

SPAWN = '{"process_pid": 12, "time": 1700000000.5, "seq": 3}'


def test_text_line_is_the_seed_format_plus_newline() -> None:
    assert text_line("watcher.web.spawn", SPAWN) == f"watcher.web.spawn::{SPAWN}\n"


def test_json_line_fields() -> None:
    line = json_line("watcher.plugin:flapping.spawn", SPAWN)
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line) == {
        "time": 1700000000.5,
        "topic": "watcher.plugin:flapping.spawn",
        "watcher": "plugin:flapping",
        "action": "spawn",
        "payload": {"process_pid": 12, "time": 1700000000.5, "seq": 3},
    }


def test_json_line_keeps_undecodable_payloads() -> None:
    record = json.loads(json_line("odd", "not json"))
    assert record["payload"] == "not json"
    assert record["watcher"] is None
    assert isinstance(record["time"], float)


def test_every_line_reaches_the_file_immediately(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "events.log")
    log.write_line("one\n")
    assert (tmp_path / "events.log").read_text() == "one\n"  # flushed, file still open
    log.write_line("two\n")
    assert (tmp_path / "events.log").read_text() == "one\ntwo\n"
    log.close()


def test_follows_rename_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = LogFile(path)
    log.write_line("before\n")
    path.rename(tmp_path / "events.log.1")
    assert log.rotated()
    log.write_line("after\n")
    assert (tmp_path / "events.log.1").read_text() == "before\n"
    assert path.read_text() == "after\n"
    log.close()


def test_follows_delete_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = LogFile(path)
    log.write_line("a\n")
    path.unlink()
    log.write_line("b\n")
    assert path.read_text() == "b\n"
    path.unlink()
    path.write_text("someone else's file\n")
    log.write_line("c\n")
    assert path.read_text() == "someone else's file\nc\n"
    log.close()


def test_explicit_reopen(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = LogFile(path)
    log.write_line("a\n")
    os.rename(path, tmp_path / "old.log")
    log.reopen()  # what SIGHUP does
    assert path.exists()
    assert path.read_text() == ""
    log.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs a 'filename' option"),
        ({"filename": "  "}, "needs a 'filename' option"),
        ({"filename": "/nonexistent-dir/x.log"}, "directory /nonexistent-dir does not exist"),
        ({"filename": "/"}, "is a directory"),
        ({"filename": "x.log", "format": "xml"}, "format must be one of text, json"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Logger.check_config(options)


def test_unwritable_file_fails_in_the_constructor(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = "/proc/version"  # root may write anywhere on disk, but not there
    else:
        target = str(tmp_path / "ro.log")
        Path(target).write_text("")
        os.chmod(target, 0o400)
    with pytest.raises(ConfigError, match="cannot"):
        Logger(filename=target)


def test_constructor_opens_the_file(tmp_path: Path) -> None:
    plugin = Logger(filename=str(tmp_path / "x.log"), format="json")
    plugin.handle_recv(("watcher.web.spawn", SPAWN))
    plugin.handle_stop()
    plugin.stop()  # never started: just releases its loop
    assert json.loads((tmp_path / "x.log").read_text())["action"] == "spawn"

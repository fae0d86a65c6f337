"""The watchdog's rule and options, without processes: deadlines, parsing, throttling."""

from __future__ import annotations

import re

import pytest

from circus.errors import ConfigError
from circus_plugin_watchdog.heartbeats import HeartbeatTable, Throttle, heartbeat_pid
from circus_plugin_watchdog.settings import DEFAULT_MSG_REGEX, WatchdogSettings


def test_every_overdue_process_is_returned_once() -> None:
    table = HeartbeatTable(limit=3.0)
    for pid in (30, 10, 20):
        table.track(pid, "web", now=100.0)
    table.track(40, "api", now=101.0)
    assert table.next_deadline() == 103.0
    assert table.overdue(102.9) == []
    late = table.overdue(103.0)
    # all three at once (the original killed one per check and then raised: B5)
    assert [pid for pid, _ in late] == [10, 20, 30]
    assert {entry.watcher for _, entry in late} == {"web"}
    assert table.overdue(103.5) == []
    assert table.next_deadline() == 104.0
    assert [pid for pid, _ in table.overdue(104.0)] == [40]
    assert table.next_deadline() is None


def test_heartbeat_moves_the_deadline() -> None:
    table = HeartbeatTable(limit=2.0)
    table.track(7, "web", now=0.0)
    assert table.beat(7, now=1.5)
    assert table.overdue(2.0) == []
    assert table.next_deadline() == 3.5
    assert not table.beat(8, now=1.5)  # unknown pid
    assert 8 not in table


def test_reap_and_stop_end_monitoring() -> None:
    table = HeartbeatTable(limit=1.0)
    table.track(1, "web", 0.0)
    table.track(2, "web", 0.0)
    table.track(3, "api", 0.0)
    assert table.forget(1) is not None
    assert table.forget(1) is None
    assert table.forget_watcher("web") == [2]
    assert [pid for pid, _ in table.overdue(10.0)] == [3]


@pytest.mark.parametrize(
    ("data", "pid"),
    [(b"4021;1732800000.5", 4021), (b" 17 ;x", 17), (b"5;", 5)],
)
def test_heartbeat_format_of_the_original(data: bytes, pid: int) -> None:
    assert heartbeat_pid(re.compile(DEFAULT_MSG_REGEX), data) == pid


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"no separator", "does not match"), (b"abc;1", "not a number"), (b"\xff;1", "UTF-8")],
)
def test_unusable_heartbeats_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        heartbeat_pid(re.compile(DEFAULT_MSG_REGEX), data)


def test_custom_message_format() -> None:
    pattern = re.compile(r"^alive pid=(?P<pid>\d+)$")
    assert heartbeat_pid(pattern, b"alive pid=12") == 12


def test_throttle_logs_powers_of_two() -> None:
    throttle = Throttle()
    logged = [n for n in range(1, 20) if throttle.hit("bad") is not None]
    assert logged == [1, 2, 4, 8, 16]
    assert throttle.hit("unknown") == 1


def test_settings_defaults_are_the_originals() -> None:
    settings = WatchdogSettings.from_config({})
    assert (settings.loop_rate, settings.max_count, settings.limit) == (60.0, 3, 180.0)
    assert (settings.ip, settings.port) == ("127.0.0.1", 1664)
    assert settings.stop_signal is None
    assert settings.graceful_timeout is None
    full = WatchdogSettings.from_config({
        "loop_rate": "0.5", "max_count": "4", "watchers_stop_signal": "KILL",
        "watchers_graceful_timeout": "2", "watchers_regex": "web", "ip": "::1", "port": "0",
    })
    assert (full.limit, full.stop_signal, full.graceful_timeout, full.port) == (2.0, 9, 2.0, 0)


@pytest.mark.parametrize(
    ("key", "value"),
    [("loop_rate", "0"), ("loop_rate", "soon"), ("max_count", "0"), ("port", "70000"),
     ("ip", "localhost:1"), ("msg_regex", "(?P<ts>.*)"), ("watchers_regex", "(["),
     ("watchers_stop_signal", "SIGNOPE"), ("watchers_graceful_timeout", "-1")],
)
def test_bad_options_name_their_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        WatchdogSettings.from_config({key: value})
    assert info.value.key == key

"""``WatcherStream``: one watcher's samples from the stats stream, trusted only while the
stream is the plugin's daemon's and flows (the real stream is exercised by the
resource_watcher and autoscale daemon tests)."""

from __future__ import annotations

from circus.plugins.stats import WatcherStream, daemon_pid

DAEMON = {"name": "circusd", "cpu": 1.0}


def test_samples_count_only_from_the_daemon_the_plugin_talks_to() -> None:
    stream = WatcherStream("Web App")
    assert stream.name == "web_app"
    stream.daemon_pid = daemon_pid({"status": "ok", "info": {"pid": 100}})
    assert stream.daemon_pid == 100
    # another circusd's stream (pid 999) on the same endpoint: never live
    stream.take("circus", 999, DAEMON, 0.0)
    assert not stream.take("web_app", 7, {"cpu": 50.0}, 0.1)
    assert not stream.live(0.1)
    stream.take("circus", 100, DAEMON, 1.0)
    assert stream.live(1.0)
    assert stream.take("web_app", 7, {"cpu": 50.0}, 1.1)
    assert not stream.take("other", 8, {"cpu": 50.0}, 1.1)  # another watcher
    assert not stream.live(4.0)  # three missed rounds: silent


def test_new_samples_and_the_aggregate_pids() -> None:
    stream = WatcherStream("web")
    stream.daemon_pid = 100
    stream.take("circus", 100, DAEMON, 0.0)
    stream.take("web", 7, {"cpu": 10.0}, 0.1)
    stream.take("web", 8, {"cpu": 30.0}, 0.1)
    assert stream.processes(0.1) == {}  # no aggregate yet: which pids are current is unknown
    assert not stream.carries(0.1)
    stream.take("web", None, {"pid": [7, 8], "cpu": 20.0}, 0.1)
    assert stream.carries(0.1)
    assert stream.take_new(0.2) == ({7: {"cpu": 10.0}, 8: {"cpu": 30.0}}, {7, 8})
    assert stream.take_new(0.3) == ({}, None)  # each sample once
    assert set(stream.processes(0.3)) == {7, 8}
    stream.take("web", None, {"pid": [8], "cpu": 30.0}, 1.0)  # 7 exited
    assert stream.processes(1.0) == {8: {"cpu": 30.0}}
    assert stream.take_new(1.0) == ({}, {8})
    # circusd publishes nothing for a watcher without processes: a stale aggregate is "none"
    stream.take("circus", 100, DAEMON, 4.5)
    assert stream.live(4.5)
    assert not stream.carries(4.5)  # a stopped watcher: stats says so
    assert stream.processes(4.5) == {}
    assert stream.take_new(4.5) == ({}, set())
    assert stream.take_new(4.6) == ({}, None)


def test_daemon_pid_of_odd_replies() -> None:
    assert daemon_pid({"status": "error"}) is None
    assert daemon_pid({"info": {"pid": "12"}}) is None

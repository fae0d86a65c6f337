"""The flapping rule, fed with synthetic event streams (the pure part of the plugin).

The end-to-end tests with a real circusd live in test_flapping_daemon.py; these pin the rule's
edges exactly (window boundaries, counting, the original circusd's missing ``expected`` field).
"""

from __future__ import annotations

from typing import Any

import pytest

from circus.errors import ConfigError
from circus_plugin_flapping import Flapping
from circus_plugin_flapping.settings import FlappingSettings
from circus_plugin_flapping.tracker import (
    CancelStart,
    FlappingTracker,
    Note,
    Phase,
    RefreshSettings,
    ScheduleStart,
    StartWatcher,
    StopWatcher,
)


def make(**overrides: Any) -> tuple[FlappingTracker, dict[str, FlappingSettings]]:
    table: dict[str, FlappingSettings] = {}
    base = FlappingSettings(attempts=3, window=2.0, retry_in=5.0, max_retry=2).with_values(
        overrides
    )
    tracker = FlappingTracker(lambda name: table.get(name, base))
    return tracker, table


def crash(tr: FlappingTracker, t: float, name: str = "web", pid: int = 1) -> list[Any]:
    return tr.on_event(name, "reap", {"process_pid": pid, "time": t, "exit_code": 1,
                                      "expected": False}, now=0.0)


def test_sliding_window_counts_attempts_within_window() -> None:
    tr, _ = make()
    assert crash(tr, 0.0) == []
    assert crash(tr, 1.0) == []
    assert crash(tr, 2.5) == []  # the exit at 0.0 fell out of the 2 s window
    actions = crash(tr, 3.0)  # 1.0, 2.5, 3.0: three within 2 s
    assert len(actions) == 1
    assert isinstance(actions[0], StopWatcher)
    assert actions[0].watcher == "web"
    assert "3 unexpected exits within 2s" in actions[0].reason
    assert "retry 1/2 in 5s" in actions[0].reason
    assert tr.state("web").phase is Phase.STOPPING


def test_window_boundary_is_inclusive() -> None:
    tr, _ = make(attempts="2")
    crash(tr, 10.0)
    assert isinstance(crash(tr, 12.0)[0], StopWatcher)


def test_expected_exits_never_count() -> None:
    tr, _ = make(attempts="2")
    for i in range(5):
        assert tr.on_event("web", "reap", {"process_pid": i, "time": float(i) / 10,
                                           "expected": True}, now=0.0) == []
    assert len(tr.state("web").exits) == 0


def test_original_daemon_without_expected_uses_kill_events() -> None:
    tr, _ = make(attempts="2")
    tr.on_event("web", "kill", {"process_pid": 7, "time": 1.0}, now=0.0)
    tr.on_event("web", "kill", {"process_pid": 8, "time": 1.0}, now=0.0)
    assert tr.on_event("web", "reap", {"process_pid": 7, "time": 1.1, "exit_code": -15},
                       now=0.0) == []
    assert tr.on_event("web", "reap", {"process_pid": 8, "time": 1.1, "exit_code": -15},
                       now=0.0) == []
    # Unannounced exits (crashes) do count.
    assert tr.on_event("web", "reap", {"process_pid": 9, "time": 1.2, "exit_code": 1},
                       now=0.0) == []
    actions = tr.on_event("web", "reap", {"process_pid": 10, "time": 1.3, "exit_code": 1},
                          now=0.0)
    assert isinstance(actions[0], StopWatcher)


def test_full_cycle_retry_then_give_up() -> None:
    tr, _ = make(attempts="2", max_retry="1")
    crash(tr, 0.0)
    assert isinstance(crash(tr, 0.1)[0], StopWatcher)
    # Our own stop: kill/reap (expected) then stop -> schedule the start.
    tr.on_event("web", "kill", {"process_pid": 2, "time": 0.2}, now=0.0)
    assert tr.on_event("web", "stop", {"time": 0.3, "expected": True}, now=0.0) == [
        ScheduleStart("web", 5.0)
    ]
    assert tr.state("web").phase is Phase.RETRY_WAIT
    assert tr.retry_due("web", 5.3) == [StartWatcher("web")]
    assert tr.state("web").phase is Phase.WATCHING
    # Crashes before our start event is seen still count.
    crash(tr, 5.35)
    assert tr.on_event("web", "start", {"time": 5.3}, now=0.0) == []
    assert tr.state("web").phase is Phase.WATCHING
    # Flaps again right away: max_retry (1) is used up -> stop for good.
    actions = crash(tr, 5.5)
    assert isinstance(actions[0], StopWatcher)
    assert "after 1 retries (max_retry = 1): stopping it for good" in actions[0].reason
    final = tr.on_event("web", "stop", {"time": 5.6}, now=0.0)
    assert len(final) == 1
    assert isinstance(final[0], Note)
    assert "left stopped after 1 retries" in final[0].message
    assert tr.state("web").phase is Phase.GAVE_UP
    assert tr.retry_due("web", 0.0) == []
    # Exits while given up (none should happen, but) never count.
    assert crash(tr, 6.0) == []
    assert crash(tr, 6.1) == []


def test_unlimited_retries() -> None:
    tr, _ = make(attempts="2", max_retry="-1")
    t = 0.0
    for n in range(1, 12):
        crash(tr, t)
        actions = crash(tr, t + 0.1)
        assert isinstance(actions[0], StopWatcher)
        assert f"retry {n}/unlimited" in actions[0].reason
        tr.on_event("web", "stop", {"time": t + 0.2}, now=0.0)
        tr.retry_due("web", 0.0)
        tr.on_event("web", "start", {"time": t + 5.2}, now=0.0)
        t += 5.3


def test_recovered_watcher_gets_a_fresh_budget() -> None:
    tr, _ = make(attempts="2", max_retry="1")
    crash(tr, 0.0)
    crash(tr, 0.1)
    tr.on_event("web", "stop", {"time": 0.2}, now=0.0)
    tr.retry_due("web", 0.0)
    tr.on_event("web", "start", {"time": 5.2}, now=0.0)
    # Runs for an hour (longer than max(window, retry_in)), then flaps: retry 1 again.
    crash(tr, 3605.0)
    actions = crash(tr, 3605.1)
    assert isinstance(actions[0], StopWatcher)
    assert "retry 1/1" in actions[0].reason


def test_manual_stop_is_never_undone() -> None:
    tr, _ = make(attempts="2")
    # A 2-process watcher stopped by hand: both exits are expected, the stop is not ours.
    for pid in (1, 2):
        tr.on_event("web", "kill", {"process_pid": pid, "time": 1.0}, now=0.0)
    for pid in (1, 2):
        assert tr.on_event("web", "reap", {"process_pid": pid, "time": 1.0, "exit_code": -15,
                                           "expected": True}, now=0.0) == []
    assert tr.on_event("web", "stop", {"time": 1.0, "expected": True}, now=0.0) == [
        CancelStart("web")
    ]
    assert tr.state("web").phase is Phase.HELD
    assert tr.retry_due("web", 0.0) == []


def test_manual_stop_during_retry_wait_cancels_the_retry() -> None:
    tr, _ = make(attempts="2")
    crash(tr, 0.0)
    crash(tr, 0.1)
    tr.on_event("web", "stop", {"time": 0.2}, now=0.0)
    assert tr.state("web").phase is Phase.RETRY_WAIT
    # Someone starts and stops it by hand meanwhile.
    actions = tr.on_event("web", "start", {"time": 1.0}, now=0.0)
    assert actions[:2] == [CancelStart("web"), RefreshSettings("web")]
    assert isinstance(actions[2], Note)
    assert tr.on_event("web", "stop", {"time": 2.0}, now=0.0) == [CancelStart("web")]
    assert tr.retry_due("web", 0.0) == []


def test_manual_start_after_give_up_resets() -> None:
    tr, _ = make(attempts="2", max_retry="0")
    crash(tr, 0.0)
    assert "stopping it for good" in crash(tr, 0.1)[0].reason
    tr.on_event("web", "stop", {"time": 0.2}, now=0.0)
    tr.on_event("web", "start", {"time": 100.0}, now=0.0)
    assert tr.state("web").phase is Phase.WATCHING
    assert tr.state("web").tries == 0


def test_inactive_watcher_does_not_accumulate() -> None:
    tr, table = make(attempts="2")
    table["web"] = FlappingSettings(attempts=2, active=False)
    for i in range(10):
        assert crash(tr, i / 100) == []
    assert len(tr.state("web").exits) == 0


def test_per_watcher_settings_are_used() -> None:
    tr, table = make()
    table["fast"] = FlappingSettings(attempts=1, window=1.0, retry_in=0.5, max_retry=1)
    assert isinstance(crash(tr, 0.0, name="fast")[0], StopWatcher)
    assert tr.on_event("fast", "stop", {"time": 0.1}, now=0.0) == [ScheduleStart("fast", 0.5)]
    assert crash(tr, 0.0, name="web") == []


def test_plugin_watchers_are_ignored() -> None:
    tr, _ = make(attempts="1")
    assert crash(tr, 0.0, name="plugin:logger") == []
    assert not tr.known("plugin:logger")


def test_updated_add_remove() -> None:
    tr, _ = make()
    assert tr.on_event("web", "updated", {"time": 1.0}, now=0.0) == [RefreshSettings("web")]
    assert tr.on_event("web", "add", {"time": 1.0}, now=0.0) == [
        CancelStart("web"), RefreshSettings("web")
    ]
    crash(tr, 2.0)
    assert tr.on_event("web", "remove", {"time": 3.0}, now=0.0) == [CancelStart("web")]
    assert not tr.known("web")


def test_failed_requests() -> None:
    tr, _ = make(attempts="2")
    crash(tr, 0.0)
    crash(tr, 0.1)
    assert tr.stop_failed("web")
    tr.on_event("web", "stop", {"time": 0.5}, now=0.0)
    assert not tr.stop_failed("web")
    tr.retry_due("web", 5.5)
    assert tr.start_failed("web") == [ScheduleStart("web", 5.0)]
    assert tr.state("web").phase is Phase.RETRY_WAIT
    assert tr.retry_due("web", 10.5) == [StartWatcher("web")]
    assert tr.state("web").phase is Phase.WATCHING
    assert tr.state("web").restarted_at == 10.5
    assert tr.on_event("web", "start", {"time": 10.6}, now=0.0) == []
    assert tr.start_failed("web") == []  # its start event came: nothing to retry
    assert tr.retry_due("web", 11.0) == []


def test_missing_time_uses_now() -> None:
    tr, _ = make(attempts="2")
    tr.on_event("web", "reap", {"process_pid": 1}, now=50.0)
    assert tr.state("web").exits[0] == 50.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"attempts": "0"}, "attempts: must be at least 1"),
        ({"window": "soon"}, "window: invalid number"),
        ({"max_retry": "-2"}, "max_retry: must be at least -1"),
        ({"active": "maybe"}, "active: invalid boolean"),
    ],
)
def test_settings_reject_bad_values(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FlappingSettings().with_values(values)


def test_overrides_keep_the_good_ones() -> None:
    settings, problems = FlappingSettings().with_overrides(
        {"flapping.max_retry": "7", "flapping.window": "x", "numprocesses": 3}
    )
    assert settings.max_retry == 7
    assert settings.window == 1.0
    assert problems == ["flapping.window: invalid number 'x'"]


def test_plugin_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="must be at least 1"):
        Flapping.check_config({"attempts": "0", "name": "plugin:flapping"})
    plugin = Flapping("ipc://control", "ipc://events", 5.0,  # the original positional form
                      attempts="4", retry_in="2.5")
    try:
        assert plugin.defaults == FlappingSettings(attempts=4, retry_in=2.5)
    finally:
        plugin.stop()

"""The incident rule with synthetic event streams: one alert per incident, whatever the volume."""

from __future__ import annotations

from typing import Any

import pytest

from circus_plugin_notify.incidents import (
    Action,
    ArmRecovery,
    Disarm,
    IncidentRule,
    IncidentTracker,
    Send,
)

RULE = IncidentRule(crashes=3, crash_window=10.0, recovery_time=5.0)


def crash(pid: int, t: float, code: int = 1) -> dict[str, Any]:
    return {"process_pid": pid, "time": t, "exit_code": code, "expected": False}


def alerts(actions: list[Action]) -> list[str]:
    return [a.alert.kind for a in actions if isinstance(a, Send)]


def test_a_crash_loop_is_one_alert_and_one_recovery() -> None:
    tracker = IncidentTracker(RULE)
    sent: list[str] = []
    for i in range(5000):
        sent += alerts(tracker.on_event("web", "reap", crash(i, i * 0.01), 0))
    assert sent == ["crashing"]
    assert tracker.incident("web") == "crashing"
    # a recovery timer firing too early (the last crash was 1 s ago) closes nothing
    assert tracker.recovery_due("web", 50.99) == []
    recovered = tracker.recovery_due("web", 49.99 + 5.0)
    assert alerts(recovered) == ["recovered"]
    assert tracker.incident("web") is None
    assert tracker.recovery_due("web", 100) == []  # only once


def test_crashes_must_fall_within_the_window() -> None:
    tracker = IncidentTracker(RULE)
    sent = []
    for t in (0, 6, 12, 18):  # never 3 within 10 s
        sent += alerts(tracker.on_event("web", "reap", crash(1, t), 0))
    assert sent == []
    assert alerts(tracker.on_event("web", "reap", crash(1, 20), 0)) == ["crashing"]


def test_expected_exits_never_count() -> None:
    tracker = IncidentTracker(RULE)
    for i in range(10):
        payload = {"process_pid": i, "time": i * 0.1, "exit_code": -15, "expected": True}
        assert tracker.on_event("web", "reap", payload, 0) == []


def test_0_19_daemon_kill_before_reap_is_expected() -> None:
    tracker = IncidentTracker(RULE)
    sent = []
    for i in range(5):
        tracker.on_event("web", "kill", {"process_pid": i, "time": i}, 0)
        sent += alerts(tracker.on_event("web", "reap", {"process_pid": i, "time": i}, 0))
    assert sent == []
    for i in range(10, 13):  # no kill first: crashes
        sent += alerts(tracker.on_event("web", "reap", {"process_pid": i, "time": i}, 0))
    assert sent == ["crashing"]


def test_stop_by_the_flapping_plugin_is_flapping_once_across_retries() -> None:
    tracker = IncidentTracker(RULE)
    sent = []
    for retry in range(4):
        base = retry * 20.0
        sent += alerts(tracker.on_event("web", "start", {"time": base}, 0))
        sent += alerts(tracker.on_event("web", "reap", crash(1, base + 1), 0))
        sent += alerts(tracker.on_event("web", "reap", crash(2, base + 2), 0))
        stop = {"time": base + 2.1, "expected": True, "by": "plugin:flapping"}
        actions = tracker.on_event("web", "stop", stop, 0)
        assert Disarm("web") in actions
        sent += alerts(actions)
    assert sent == ["flapping"]


def test_stop_after_crashes_without_by_is_flapping() -> None:
    tracker = IncidentTracker(RULE)
    tracker.on_event("web", "reap", crash(1, 1.0), 0)
    actions = tracker.on_event("web", "stop", {"time": 1.5, "expected": True}, 0)
    (send,) = [a for a in actions if isinstance(a, Send)]
    assert send.alert.kind == "flapping"
    assert "by the flapping plugin, most likely" in send.alert.summary


def test_escalation_from_crashing_to_stopped_is_one_more_alert() -> None:
    tracker = IncidentTracker(RULE)
    sent = []
    for i in range(5):
        sent += alerts(tracker.on_event("web", "reap", crash(i, i * 0.1), 0))
    actions = tracker.on_event("web", "stop", {"time": 1.0, "expected": False}, 0)
    sent += alerts(actions)
    assert sent == ["crashing", "stopped"]
    (send,) = [a for a in actions if isinstance(a, Send)]
    assert send.alert.details["escalated_from"] == "crashing"
    # stopped: no recovery while it stays stopped
    assert tracker.recovery_due("web", 100) == []
    # started again (by the operator) and quiet: recovered
    assert tracker.on_event("web", "start", {"time": 101}, 0) == [ArmRecovery("web", 5.0)]
    assert alerts(tracker.recovery_due("web", 106)) == ["recovered"]


def test_manual_stop_is_silent_and_closes_the_incident() -> None:
    tracker = IncidentTracker(RULE)
    for i in range(3):
        tracker.on_event("web", "reap", crash(i, i), 0)
    assert tracker.incident("web") == "crashing"
    actions = tracker.on_event("web", "stop", {"time": 50, "expected": True, "by": "circusctl"},
                               0)
    assert alerts(actions) == []
    assert tracker.incident("web") is None
    # a healthy watcher stopped by hand (no crash before): nothing either
    assert alerts(tracker.on_event("db", "stop", {"time": 1, "expected": True}, 0)) == []


def test_a_crash_rearms_the_recovery_timer() -> None:
    tracker = IncidentTracker(RULE)
    for i in range(3):
        tracker.on_event("web", "reap", crash(i, float(i)), 0)
    actions = tracker.on_event("web", "reap", crash(9, 4.0), 0)
    assert actions == [ArmRecovery("web", 5.0)]
    assert tracker.recovery_due("web", 7.0) == []  # 3 s after the last crash
    assert alerts(tracker.recovery_due("web", 9.0)) == ["recovered"]


def test_crashes_before_a_recovery_do_not_make_a_later_stop_flapping() -> None:
    tracker = IncidentTracker(RULE)
    for i in range(3):
        tracker.on_event("web", "reap", crash(i, float(i)), 0)
    assert alerts(tracker.recovery_due("web", 7.5)) == ["recovered"]
    assert alerts(tracker.on_event("web", "stop", {"time": 8.0, "expected": True}, 0)) == []


def test_fatal_is_a_stopped_alert_once_and_a_start_can_recover() -> None:
    tracker = IncidentTracker(RULE)
    for i in range(5):
        tracker.on_event("web", "reap", crash(i, i * 0.1), 0)
    actions = tracker.on_event(
        "web", "fatal", {"time": 1.0, "failures": 5, "reason": "exited with status 3"}, 0)
    (send,) = [a for a in actions if isinstance(a, Send)]
    assert send.alert.kind == "stopped"
    assert send.alert.summary == (
        "web: circusd gave up on it (state fatal) after 5 quick failures in a row: "
        "exited with status 3")
    assert send.alert.details["escalated_from"] == "crashing"
    assert tracker.recovery_due("web", 100) == []
    assert tracker.on_event("web", "start", {"time": 200}, 0) == [ArmRecovery("web", 5.0)]
    assert alerts(tracker.recovery_due("web", 205)) == ["recovered"]


def backoff(t: float, delay: float, failures: int) -> dict[str, Any]:
    return {"time": t, "delay": delay, "retry_at": t + delay, "failures": failures,
            "reason": "exited with status 3"}


def test_a_slow_crash_loop_in_backoff_is_one_incident_without_false_recoveries() -> None:
    """circusd's backoff spaces the exits 30 s apart: wider than crash_window, longer than
    recovery_time. The failures in a row still open one incident, and the waits are no
    recovery."""
    tracker = IncidentTracker(RULE)  # crashes 3 within 10 s, recovery_time 5 s
    sent: list[str] = []
    t = 0.0
    for failures in range(1, 8):
        sent += alerts(tracker.on_event("web", "reap", crash(failures, t), 0))
        actions = tracker.on_event("web", "backoff", backoff(t, 30.0, failures), 0)
        sent += alerts(actions)
        if failures >= 3:  # the recovery timer waits for the retry, then recovery_time
            assert ArmRecovery("web", 35.0) in actions
        # a timer armed by an earlier crash fires during the wait: still no recovery
        assert tracker.recovery_due("web", t + 6.0) == []
        assert tracker.recovery_due("web", t + 30.0 + 4.0) == []
        t += 30.5
    assert sent == ["crashing"]
    # the last retry ran recovery_time without a crash
    assert alerts(tracker.recovery_due("web", t - 0.5 + 5.0)) == ["recovered"]


def test_backoff_alert_text_and_a_start_retries_at_once() -> None:
    tracker = IncidentTracker(RULE)
    (send, arm) = tracker.on_event("web", "backoff", backoff(100.0, 0.8, 3), 0)
    assert isinstance(send, Send)
    assert send.alert.summary == ("web: crashing: 3 quick failures in a row; circusd retries "
                                  "in 0.8s (backoff)")
    assert send.alert.details["reason"] == "exited with status 3"
    assert isinstance(arm, ArmRecovery)
    assert arm.delay == pytest.approx(RULE.recovery_time + 0.8)
    # fewer failures than `crashes` alone open nothing
    assert tracker.on_event("api", "backoff", backoff(100.0, 0.1, 2), 0) == []
    # start while backing off retries at once: recovery counts from the start
    tracker.on_event("web", "start", {"time": 100.1}, 0)
    assert alerts(tracker.recovery_due("web", 100.1 + 5.0)) == ["recovered"]

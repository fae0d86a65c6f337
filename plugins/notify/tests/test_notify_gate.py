"""Per-watcher spacing and the global rate limit of alerts."""

from __future__ import annotations

from circus_plugin_notify.alert import Alert
from circus_plugin_notify.gate import AlertGate, GateRule


def alert(kind: str, watcher: str = "web", **details: object) -> Alert:
    return Alert(kind, watcher, 0.0, f"{watcher}: {kind}", dict(details))


def test_recovery_only_for_an_announced_incident() -> None:
    gate = AlertGate(GateRule(min_interval=0, rate_limit=10))
    assert gate.admit(alert("recovered"), 0) is None
    assert gate.admit(alert("crashing"), 0) is not None
    assert gate.admit(alert("recovered"), 1) is not None
    assert gate.admit(alert("recovered"), 2) is None  # once


def test_min_interval_holds_new_incidents_of_one_watcher_and_reports_them() -> None:
    gate = AlertGate(GateRule(min_interval=300, rate_limit=100))
    assert gate.admit(alert("crashing"), 0) is not None
    assert gate.admit(alert("recovered"), 10) is not None
    assert gate.admit(alert("crashing"), 20) is None  # too soon after the last one
    assert gate.admit(alert("recovered"), 30) is None  # its incident was not announced
    assert gate.admit(alert("crashing", watcher="db"), 40) is not None  # other watchers pass
    later = gate.admit(alert("crashing"), 301)
    assert later is not None
    assert later.suppressed == 1
    assert "1 earlier alert(s) suppressed" in later.document(host="h")["text"]


def test_escalations_pass_min_interval() -> None:
    gate = AlertGate(GateRule(min_interval=300, rate_limit=100))
    assert gate.admit(alert("crashing"), 0) is not None
    assert gate.admit(alert("stopped", escalated_from="crashing"), 1) is not None


def test_rate_limit_is_a_token_bucket_over_the_hour() -> None:
    gate = AlertGate(GateRule(min_interval=0, rate_limit=3))
    sent = [gate.admit(alert("crashing", watcher=f"w{i}"), 0) for i in range(10)]
    assert sum(a is not None for a in sent) == 3
    assert gate.held == 7
    # one token back after 1/3 hour
    assert gate.admit(alert("crashing", watcher="x"), 1199) is None
    back = gate.admit(alert("crashing", watcher="y"), 1200 + 1199)
    assert back is not None
    assert back.suppressed == 8
    assert gate.held == 0

"""The exporter's collector and options, rendered by prometheus_client's own exposition code."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from circus.errors import ConfigError
from circus_plugin_prometheus.metrics import (
    STATES,
    CircusMetrics,
    Snapshot,
    figures_from,
    is_crash,
)
from circus_plugin_prometheus.settings import DEFAULT_PORT, PrometheusSettings


def scrape(metrics: CircusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def w(name: str) -> tuple[tuple[str, str], ...]:
    return (("watcher", name),)


def test_events_become_counters_with_restarts_and_crashes() -> None:
    metrics = CircusMetrics()
    for action, payload in [
        ("spawn", {}), ("spawn", {}),
        ("reap", {"exit_code": -9, "expected": False}),  # killed from outside: a crash
        ("spawn", {}),  # ... replaced: a restart
        ("reap", {"exit_code": -15, "expected": True}),  # asked to stop
        ("reap", {"exit_code": 1}),  # a 0.19 daemon (no "expected"): non-zero exit
        ("stop", {}),  # nothing will replace it
        ("spawn", {}),  # a later start is not a restart
    ]:  # fmt: skip
        metrics.event("web", action, payload)
    values = scrape(metrics)
    assert values[("circus_process_spawns_total", w("web"))] == 4
    assert values[("circus_process_reaps_total", w("web"))] == 3
    assert values[("circus_process_crashes_total", w("web"))] == 2
    assert values[("circus_watcher_restarts_total", w("web"))] == 1


def test_refresh_gauges_and_forgotten_watchers() -> None:
    metrics = CircusMetrics()
    metrics.event("gone", "spawn", {})
    infos = {
        "11": {"cpu": 12.5, "mem": 1.0, "mem_info1": "1.00M"},
        "12": {"cpu": "N/A", "mem": 0.5, "mem_info1": "512B"},
        "13": "No such process (stopped?)",
    }
    metrics.update(Snapshot({"web": figures_from("active", infos)},
                            {"circus_daemon_cpu_percent": 3.0}, ok=True))  # fmt: skip
    values = scrape(metrics)
    assert values[("circus_up", ())] == 1
    assert values[("circus_watcher_processes", w("web"))] == 2
    assert values[("circus_watcher_cpu_percent", w("web"))] == 12.5
    assert values[("circus_watcher_memory_percent", w("web"))] == 1.5
    assert values[("circus_watcher_memory_rss_bytes", w("web"))] == 1024 * 1024 + 512
    assert values[("circus_watcher_state", (("state", "active"), ("watcher", "web")))] == 1
    assert values[("circus_watcher_state", (("state", "stopped"), ("watcher", "web")))] == 0
    assert values[("circus_process_spawns_total", w("web"))] == 0  # known, never spawned yet
    assert ("circus_process_spawns_total", w("gone")) not in values  # removed watcher
    assert values[("circus_daemon_cpu_percent", ())] == 3.0
    # a failed refresh keeps the last figures but says so
    metrics.update(Snapshot())
    values = scrape(metrics)
    assert values[("circus_up", ())] == 0
    assert values[("circus_refresh_errors_total", ())] == 1
    assert values[("circus_watcher_processes", w("web"))] == 2


def test_every_state_of_circusd_is_exported_and_unknown_ones_too() -> None:
    metrics = CircusMetrics()
    metrics.update(Snapshot({"web": figures_from("backoff", {}),
                             "api": figures_from("paused", {})}, ok=True))
    values = scrape(metrics)

    def state(watcher: str, name: str) -> float | None:
        return values.get(("circus_watcher_state", (("state", name), ("watcher", watcher))))

    # a dashboard can alert on backoff/fatal before any watcher was ever in them
    assert {name: state("web", name) for name in STATES} == {
        "active": 0, "starting": 0, "stopping": 0, "stopped": 0, "backoff": 1, "fatal": 0}
    assert state("api", "fatal") == 0
    assert state("api", "paused") == 1  # another daemon's state still shows


def test_is_crash() -> None:
    assert is_crash({"exit_code": 0, "expected": False})
    assert not is_crash({"exit_code": 3, "expected": True})
    assert is_crash({"exit_code": 3})
    assert not is_crash({"exit_code": -15})
    assert not is_crash({"exit_code": 0})
    assert not is_crash({"exit_code": None})


def test_settings() -> None:
    assert PrometheusSettings.from_config({}) == PrometheusSettings("127.0.0.1", DEFAULT_PORT, 5.0)
    options = {"host": "::1", "port": "9100", "refresh_interval": "1"}
    parsed = PrometheusSettings.from_config(options)
    assert parsed == PrometheusSettings("::1", 9100, 1.0)
    for bad, key in [({"port": "0"}, "port"), ({"port": "70000"}, "port"),
                     ({"host": "localhost"}, "host"), ({"refresh_interval": "0"}, "refresh"),
                     ({"port": "web"}, "port")]:  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            PrometheusSettings.from_config(bad)
        assert caught.value.key is not None
        assert caught.value.key.startswith(key)


def test_stream_figures_replace_the_polled_ones_of_the_same_daemon_only() -> None:
    metrics = CircusMetrics()
    metrics.update(Snapshot({"web": figures_from("active", {"1": {"cpu": 1.0, "mem": 0.5,
                                                                  "mem_info1": "1.00M"}})},
                            ok=True, daemon_pid=100))  # fmt: skip
    stream = metrics.stream
    stream.take("web", 1, {"cpu": 40.0, "mem": 2.0, "mem_info1": "2.00M"})
    stream.take("web", 2, {"cpu": 10.0, "mem": 1.0, "mem_info1": "1.00M"})
    stream.take("web", None, {"pid": [1, 2], "cpu": 25.0, "mem": 3.0})  # aggregate: ignored
    stream.take("circus", 999, {"name": "circusd", "cpu": 1.0})  # another daemon's stream
    assert scrape(metrics)[("circus_watcher_cpu_percent", w("web"))] == 1.0  # polled
    stream.take("circus", 100, {"name": "circusd", "cpu": 1.0})  # ours
    values = scrape(metrics)
    assert values[("circus_watcher_cpu_percent", w("web"))] == 50.0
    assert values[("circus_watcher_memory_percent", w("web"))] == 3.0
    assert values[("circus_watcher_memory_rss_bytes", w("web"))] == 3 * 1024 * 1024
    assert values[("circus_watcher_processes", w("web"))] == 1  # counts stay polled

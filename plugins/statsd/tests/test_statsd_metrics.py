"""What the statsd plugin puts on the wire, checked line by line and against the etsy daemon.

These drive the plugin's metric layer (the pystatsd client with our bucket names) without a
circusd; test_statsd_daemon.py runs the whole plugin under a real circusd.
"""

from __future__ import annotations

import socket
import time

import pytest
from statsd_servers import EtsyStatsd, UdpReceiver

from circus.errors import ConfigError
from circus_plugin_statsd import StatsdEmitter
from circus_plugin_statsd.buckets import bucket_safe, check_prefix
from circus_plugin_statsd.emitter import EventMetrics
from circus_plugin_statsd.fullstats import full_stats_gauges
from circus_plugin_statsd.settings import StatsdSettings


def metrics(port: int, **options: str) -> EventMetrics:
    config = {"host": "127.0.0.1", "port": str(port), **options}
    return EventMetrics(StatsdSettings.from_config(config))


def test_every_line_exactly(udp_receiver: UdpReceiver) -> None:
    m = metrics(udp_receiver.port)
    for topic in (
        "watcher.web.spawn",
        "watcher.web_app.reap",
        "watcher.plugin:flapping.reap",
        "watcher.circusd-stats.kill",
        "watcher.a.b.stop",  # a dotted watcher name keeps its dots, as in the original
        "not-an-event",  # ignored
    ):
        m.event(topic)
    m.process_counts({"web": 3, "plugin:logger": 1})
    assert udp_receiver.lines(7) == [
        "circus.app.watcher.web.spawn:1|c",
        "circus.app.watcher.web_app.reap:1|c",
        "circus.app.watcher.plugin_flapping.reap:1|c",
        "circus.app.watcher.circusd-stats.kill:1|c",
        "circus.app.watcher.a.b.stop:1|c",
        "circus.app.watcher.plugin_logger.numprocesses:1|g",
        "circus.app.watcher.web.numprocesses:3|g",
    ]
    assert udp_receiver.nothing_more() == []
    m.close()


def test_application_name_and_prefix(udp_receiver: UdpReceiver) -> None:
    m = metrics(udp_receiver.port, application_name="shop")
    m.event("watcher.web.start")
    m2 = metrics(udp_receiver.port, prefix="ops.circus")
    m2.event("watcher.web.stop")
    assert udp_receiver.lines(2) == ["circus.shop.watcher.web.start:1|c", "ops.circus.web.stop:1|c"]
    m.close()
    m2.close()


def test_sample_rate_samples_for_real(udp_receiver: UdpReceiver) -> None:
    m = metrics(udp_receiver.port, sample_rate="0.5")
    for _ in range(400):
        m.event("watcher.web.reap")
    m.process_counts({"web": 2})  # gauges are never sampled
    got = udp_receiver.nothing_more(wait=1.0)
    counters = [line for line in got if line.endswith("|c|@0.5")]
    assert set(got) - set(counters) == {"circus.app.watcher.web.numprocesses:2|g"}
    assert set(counters) == {"circus.app.watcher.web.reap:1|c|@0.5"}
    # Binomial(400, 0.5): outside [140, 260] has a probability below 1e-9.
    assert 140 <= len(counters) <= 260
    m.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": "0"}, "port: must be at least 1"),
        ({"port": "70000"}, "port: must be at most 65535"),
        ({"port": "http"}, "port: invalid integer"),
        ({"sample_rate": "0"}, r"sample_rate: must be in \(0, 1\]"),
        ({"sample_rate": "2"}, r"sample_rate: must be in \(0, 1\]"),
        ({"prefix": "a:b"}, "prefix: invalid prefix"),
        ({"gauge_interval": "-1"}, "gauge_interval: must be at least 0"),
        ({"host": " "}, "host: must not be empty"),
    ],
)
def test_bad_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StatsdSettings.from_config(options)


def test_bucket_names() -> None:
    assert bucket_safe("plugin:flapping") == "plugin_flapping"
    assert bucket_safe("web|app@x y/z") == "web_app_x_y_z"
    assert bucket_safe("élan") == "_lan"
    assert check_prefix("ops.circus.") == "ops.circus"


def test_etsy_daemon_understands_every_metric(etsy_statsd: EtsyStatsd) -> None:
    m = metrics(etsy_statsd.port)
    for _ in range(3):
        m.event("watcher.web.spawn")
    m.event("watcher.plugin:flapping.reap")
    m.event("watcher.circusd-stats.kill")
    m.process_counts({"web": 3, "plugin:flapping": 1})
    want = {
        "circus.app.watcher.web.spawn": 3.0,
        "circus.app.watcher.plugin_flapping.reap": 1.0,
        "circus.app.watcher.circusd-stats.kill": 1.0,
    }
    counters = etsy_statsd.wait_for(
        "counters", lambda c: all(c.get(k) == v for k, v in want.items())
    )
    assert counters["statsd.bad_lines_seen"] == 0
    gauges = etsy_statsd.wait_for("gauges", lambda g: len(g) >= 2)
    assert gauges == {
        "circus.app.watcher.web.numprocesses": 3.0,
        "circus.app.watcher.plugin_flapping.numprocesses": 1.0,
    }
    # The dumped lines come through a pipe read by another thread: they can trail the
    # management port's answer, so wait (bounded) until all seven have been read.
    deadline = time.monotonic() + 20
    while len(etsy_statsd.received_lines()) < 7 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert etsy_statsd.received_lines() == [
        "circus.app.watcher.web.spawn:1|c",
        "circus.app.watcher.web.spawn:1|c",
        "circus.app.watcher.web.spawn:1|c",
        "circus.app.watcher.plugin_flapping.reap:1|c",
        "circus.app.watcher.circusd-stats.kill:1|c",
        "circus.app.watcher.plugin_flapping.numprocesses:1|g",
        "circus.app.watcher.web.numprocesses:3|g",
    ]
    m.close()


def test_etsy_daemon_scales_sampled_counters(etsy_statsd: EtsyStatsd) -> None:
    m = metrics(etsy_statsd.port, sample_rate="0.25")
    for _ in range(200):
        m.event("watcher.web.reap")
    lines = etsy_statsd.received_lines

    def settled(c: dict[str, float]) -> bool:
        sent = len([x for x in lines() if x.startswith("circus.app.watcher.web.reap")])
        return sent > 0 and c.get("circus.app.watcher.web.reap") == sent * 4

    counters = etsy_statsd.wait_for("counters", settled)
    # The daemon scales each sampled line by 1/rate, so the estimate is near the true 200.
    assert 80 <= counters["circus.app.watcher.web.reap"] <= 400
    m.close()


def test_etsy_daemon_mangles_the_original_bucket(etsy_statsd: EtsyStatsd) -> None:
    """Why names are made bucket-safe: the original's line for a plugin watcher goes wrong."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"circus.app.watcher.plugin:flapping.reap:1|c", ("127.0.0.1", etsy_statsd.port))
    counters = etsy_statsd.wait_for("counters", lambda c: c.get("statsd.bad_lines_seen") == 1)
    assert counters["circus.app.watcher.plugin"] == 1
    assert not any("flapping" in key for key in counters)


def test_plugin_construction_forms_and_config_errors(udp_receiver: UdpReceiver) -> None:
    plugin = StatsdEmitter("ipc://control", "ipc://events", 1.0, None,  # original positional form
                           host="127.0.0.1", port=str(udp_receiver.port), name="plugin:statsd")
    assert plugin.settings.port == udp_receiver.port
    assert plugin.check_delay == 1.0
    plugin.handle_recv(("watcher.plugin:statsd.spawn", "{}"))
    assert udp_receiver.lines(1) == ["circus.app.watcher.plugin_statsd.spawn:1|c"]
    plugin.stop()
    with pytest.raises(ConfigError, match="must be at most 65535"):
        StatsdEmitter.check_config({"port": "99999"})
    with pytest.raises(ConfigError, match="cannot resolve"):
        StatsdEmitter(host="no-such-host.invalid")


def test_full_stats_gauges_as_0_19_computed_them() -> None:
    infos = {
        "web": {
            "1": {"cpu": 10.0, "mem": 1.5, "mem_info1": "1.00M"},
            "2": {"cpu": 30.0, "mem": "N/A", "mem_info1": "512B"},  # N/A skipped (0.19: crash)
            "3": "No such process (stopped?)",
        },
        "idle": {},
        "plugin:statsd": {"4": {"cpu": 1.0, "mem": 1.0, "mem_info1": "1K"}},
        "Odd Name": {"5": {"cpu": 0.0, "mem": 0.1, "mem_info1": "N/A"}},
    }
    assert full_stats_gauges(infos) == {
        "_stats.web.watchers_num": 2,
        "_stats.web.cpu_max": 30.0,
        "_stats.web.cpu_sum": 40.0,
        "_stats.web.mem_pct_max": 1.5,
        "_stats.web.mem_pct_sum": 1.5,
        "_stats.web.mem_max": 1024.0 * 1024,
        "_stats.web.mem_sum": 1024.0 * 1024 + 512,
        "_stats.idle.watchers_num": 0,
        "_stats.Odd_Name.watchers_num": 1,
        "_stats.Odd_Name.cpu_max": 0.0,
        "_stats.Odd_Name.cpu_sum": 0.0,
        "_stats.Odd_Name.mem_pct_max": 0.1,
        "_stats.Odd_Name.mem_pct_sum": 0.1,
    }


def test_full_stats_options() -> None:
    assert StatsdSettings.from_config({}).full_stats is True
    assert StatsdSettings.from_config({"full_stats": "off"}).full_stats is False
    assert StatsdSettings.from_config({"loop_rate": "60"}).gauge_interval == 60.0  # FullStats
    both = StatsdSettings.from_config({"loop_rate": "60", "gauge_interval": "5"})
    assert both.gauge_interval == 5.0
    with pytest.raises(ValueError, match="full_stats"):
        StatsdSettings.from_config({"full_stats": "maybe"})

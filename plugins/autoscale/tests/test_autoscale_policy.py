"""The autoscale rule with plain numbers: thresholds, sustain, cooldown, prediction, bounds."""

from __future__ import annotations

import asyncio

import pytest

from circus.errors import ConfigError
from circus_plugin_autoscale.metrics import CommandMetric, MetricError, average_cpu
from circus_plugin_autoscale.policy import AutoscalePolicy
from circus_plugin_autoscale.settings import AutoscaleSettings


def policy(**options: str) -> AutoscalePolicy:
    base = {"watcher": "web", "min": "1", "max": "4", "scale_up": "70", "scale_down": "20",
            "up_after": "2", "down_after": "2", "cooldown": "5"}
    return AutoscalePolicy(AutoscaleSettings.from_config({**base, **options}))


def test_scale_up_only_after_a_sustained_high_value() -> None:
    p = policy()
    assert p.observe(90.0, 1, 0.0) is None
    assert p.observe(90.0, 1, 1.0) is None
    decision = p.observe(90.0, 1, 2.0)
    assert decision is not None
    assert (decision.current, decision.target, decision.delta) == (1, 2, 1)
    assert decision.reason == "cpu 90.0 above 70 for 2.0s"


def test_a_spike_or_a_value_in_the_band_resets_the_streak() -> None:
    p = policy()
    p.observe(90.0, 1, 0.0)
    p.observe(50.0, 1, 1.0)  # inside the band
    assert p.observe(90.0, 1, 2.0) is None
    assert p.observe(90.0, 1, 3.9) is None
    assert p.observe(90.0, 1, 4.0) is not None
    p = policy()
    p.observe(5.0, 3, 0.0)
    assert p.observe(None, 3, 1.0) is None  # unknown value: streak lost
    assert p.observe(5.0, 3, 2.0) is None


def test_cooldown_after_a_change() -> None:
    p = policy()
    p.changed(10.0)
    for t in (10.0, 12.0, 14.9):
        assert p.observe(95.0, 2, t) is None
    # the streak starts after the cooldown, not during it
    assert p.observe(95.0, 2, 15.0) is None
    assert p.observe(95.0, 2, 17.0) is not None


def test_bounds() -> None:
    p = policy(min="2", max="3")
    assert p.observe(95.0, 3, 0.0) is None
    assert p.observe(95.0, 3, 10.0) is None  # at max: no decision
    assert p.observe(0.0, 2, 20.0) is None
    assert p.observe(0.0, 2, 30.0) is None  # at min
    low = p.observe(None, 1, 40.0)
    high = p.observe(None, 6, 40.0)
    assert low is not None
    assert (low.target, low.reason) == (2, "1 processes, below min 2")
    assert high is not None
    assert high.target == 3


def test_step_is_clamped_to_the_bounds() -> None:
    p = policy(step="3", max="5")
    p.observe(95.0, 4, 0.0)
    decision = p.observe(95.0, 4, 2.0)
    assert decision is not None
    assert decision.target == 5


def test_prediction_prevents_a_removal_that_would_bounce_back() -> None:
    p = policy(scale_up="30", scale_down="20")
    p.observe(19.0, 2, 0.0)
    # 2 -> 1 would put 38 % on the remaining process, above scale_up: it would come back
    assert p.observe(19.0, 2, 2.0) is None
    assert p.held == "not removing: the 1 remaining processes would average 38.0 (scale_up 30)"
    p.observe(10.0, 2, 3.0)
    decision = p.observe(10.0, 2, 5.0)
    assert decision is not None
    assert decision.target == 1
    # an external metric is not shared by the processes: no prediction
    q = policy(metric="command", metric_command="echo 1", scale_up="30", scale_down="20")
    q.observe(19.0, 2, 0.0)
    assert q.observe(19.0, 2, 2.0) is not None


def test_never_oscillates_on_a_steady_load() -> None:
    """A constant total load of 150 % cpu, shared by the processes, sampled every second."""
    p = policy(scale_up="70", scale_down="40", cooldown="3")
    current, history = 1, []
    for second in range(120):
        decision = p.observe(150.0 / current, current, float(second))
        if decision is not None:
            current = decision.target
            p.changed(float(second))
            history.append(current)
    assert history == [2, 3]  # 150 % on 3 processes = 50 %: inside the band, stays there


def test_metric_helpers() -> None:
    info = {"1": {"cpu": 10.0}, "2": {"cpu": "N/A"}, "3": {"cpu": 30.0}, "4": "No such process"}
    assert average_cpu(info) == 20.0
    with pytest.raises(MetricError, match="no process"):
        average_cpu({})
    assert asyncio.run(CommandMetric("echo 42.5", 5.0).read()) == 42.5
    with pytest.raises(MetricError, match="not a number"):
        asyncio.run(CommandMetric("echo lots", 5.0).read())
    with pytest.raises(MetricError, match="exited with 3"):
        asyncio.run(CommandMetric("exit 3", 5.0).read())
    with pytest.raises(MetricError, match=r"more than 0\.2s"):
        asyncio.run(CommandMetric("sleep 5", 0.2).read())


@pytest.mark.parametrize(
    ("options", "key"),
    [({"watcher": ""}, "watcher"), ({"max": ""}, "max"), ({"min": "5", "max": "2"}, "max"),
     ({"scale_up": "20", "scale_down": "20"}, "scale_down"), ({"metric": "ram"}, "metric"),
     ({"metric": "command"}, "metric_command"), ({"metric": "http"}, "metric_url"),
     ({"metric": "http", "metric_url": "ftp://x"}, "metric_url"), ({"step": "0"}, "step"),
     ({"cooldown": "-1"}, "cooldown")],
)
def test_bad_options_name_their_key(options: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        AutoscaleSettings.from_config({"watcher": "web", "max": "3", **options})
    assert info.value.key == key

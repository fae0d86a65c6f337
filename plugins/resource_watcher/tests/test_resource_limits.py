"""The resource_watcher's rule and options, with plain numbers."""

from __future__ import annotations

import pytest

from circus.errors import ConfigError
from circus_plugin_resource_watcher.limits import ResourceTracker, Sample, exceeded
from circus_plugin_resource_watcher.settings import MemLimit, ResourceSettings, human_to_bytes

MIB = 1024 ** 2


def settings(**options: str) -> ResourceSettings:
    return ResourceSettings.from_config({"watcher": "web", **options})


def test_defaults_are_the_originals() -> None:
    s = settings()
    assert (s.loop_rate, s.max_cpu, s.max_mem, s.health_threshold, s.max_count) == (
        60.0, 90.0, MemLimit(90.0, True), 75.0, 3)
    assert (s.min_cpu, s.min_mem, s.process_children, s.child_signal) == (None, None, False, 15)
    assert (s.action, s.window, s.sample_rate) == ("restart", 180.0, 0.5)
    assert ResourceSettings.from_config({"service": "old"}).watcher == "old"  # deprecated alias


def test_memory_limits_with_units_are_bytes_for_min_too() -> None:
    s = settings(max_mem="200M", min_mem="10M")  # 0.19 compared min_mem as a percentage (B4)
    assert s.max_mem == MemLimit(200 * MIB, False)
    assert s.min_mem == MemLimit(10 * MIB, False)
    assert exceeded(s, Sample(cpu=1.0, mem=50.0, rss=5 * MIB)) == ["under_memory"]
    assert exceeded(s, Sample(cpu=1.0, mem=1.0, rss=300 * MIB)) == ["over_memory"]
    assert exceeded(s, Sample(cpu=1.0, mem=99.0, rss=50 * MIB)) == []
    assert human_to_bytes("1.45M") == int(1.45 * MIB)
    assert human_to_bytes("512B") == 512


def test_each_kind_of_limit() -> None:
    s = settings(max_cpu="50", min_cpu="0", max_mem="20", min_mem="1", health_threshold="30")
    assert exceeded(s, Sample(cpu=60.0, mem=10.0, rss=None)) == ["over_cpu", "over_health"]
    assert exceeded(s, Sample(cpu=0.0, mem=25.0, rss=None)) == ["under_cpu", "over_memory"]
    assert exceeded(s, Sample(cpu=5.0, mem=0.5, rss=None)) == ["under_memory"]
    # unknown values exceed nothing (0.19 counted "N/A" as 100 %)
    assert exceeded(s, Sample(cpu=None, mem=None, rss=None)) == []


def test_acts_after_the_window_then_starts_over() -> None:
    tracker = ResourceTracker(settings(max_mem="100M", loop_rate="1", max_count="2"))
    hog, fine = Sample(1.0, 1.0, 200 * MIB), Sample(1.0, 1.0, 10 * MIB)
    assert tracker.observe((1, None), hog, 10.0) == (["over_memory"], None)
    assert tracker.observe((1, None), hog, 11.0)[1] is None
    _, decision = tracker.observe((1, None), hog, 12.0)  # 2 s = loop_rate * max_count
    assert decision is not None
    assert (decision.entity, decision.kinds) == ((1, None), ("over_memory",))
    assert tracker.observe((1, None), hog, 12.5)[1] is None  # history started over
    # one good sample resets the count (consecutive, as in 0.19)
    tracker.observe((2, None), hog, 20.0)
    tracker.observe((2, None), fine, 21.0)
    assert tracker.observe((2, None), hog, 22.0)[1] is None
    assert tracker.observe((2, None), hog, 23.9)[1] is None
    assert tracker.observe((2, None), hog, 24.0)[1] is not None


def test_processes_are_judged_separately() -> None:
    tracker = ResourceTracker(settings(max_mem="100M", loop_rate="1", max_count="1"))
    hog, fine = Sample(1.0, 1.0, 200 * MIB), Sample(1.0, 1.0, 10 * MIB)
    # 0.19 took the max over processes: two processes taking turns looked like one hog
    tracker.observe((1, None), hog, 0.0)
    tracker.observe((2, None), fine, 0.0)
    tracker.observe((1, None), fine, 1.0)
    assert tracker.observe((2, None), hog, 1.0)[1] is None
    decision = tracker.observe((2, None), hog, 2.0)[1]
    assert decision is not None
    assert decision.entity == (2, None)


def test_max_count_zero_acts_on_the_first_sample_and_gone_entities_are_forgotten() -> None:
    tracker = ResourceTracker(settings(max_mem="100M", max_count="0"))
    hog = Sample(1.0, 1.0, 200 * MIB)
    assert tracker.observe((1, 7), hog, 0.0)[1] is not None
    tracker.observe((3, None), hog, 0.0)
    tracker.keep_only({(1, 7)})
    tracker.reset()
    assert tracker.observe((1, 7), hog, 0.0)[1] is not None


@pytest.mark.parametrize(
    ("options", "key"),
    [({"watcher": ""}, "watcher"), ({"max_mem": "lots"}, "max_mem"), ({"min_mem": "3Q"}, "min_mem"),
     ({"max_cpu": "-1"}, "max_cpu"), ({"max_count": "x"}, "max_count"),
     ({"action": "reboot"}, "action"), ({"child_signal": "SIGNOPE"}, "child_signal"),
     ({"loop_rate": "0"}, "loop_rate"), ({"process_children": "maybe"}, "process_children")],
)
def test_bad_options_name_their_key(options: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        ResourceSettings.from_config({"watcher": "web", **options})
    assert info.value.key == key

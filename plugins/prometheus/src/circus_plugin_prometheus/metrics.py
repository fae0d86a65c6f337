"""What ``/metrics`` shows: counters fed by circusd's events, gauges from the latest refresh.

:class:`CircusMetrics` is a ``prometheus_client`` collector: at each scrape it builds the metric
families from its state, so a watcher that was removed simply disappears (registered label
sets of ``Gauge``/``Counter`` objects would keep reporting it forever). Events arrive on the
plugin's handler thread and scrapes on the HTTP server's thread, so the state is guarded by a
lock and the refresh replaces the gauge snapshot in one assignment.

CPU and memory come from the periodic ``stats`` call and, when circusd runs its stats stream
(``statsd = true``), from the stream through ``handle_stats``, one second fresh.

Watchers are labelled with their ``res_name`` (lower case, spaces as ``_``), the name that
event topics and the stats stream carry, so every metric of a watcher has the same label.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from circus.procinfo import parse_human_bytes
from circus.protocol import res_name

#: circusd's watcher states (docs/daemon.md), always exported (0 or 1) so a dashboard can graph
#: and alert on each (``backoff``: a crash loop held back; ``fatal``: circusd gave up); a state
#: of another daemon's still appears while a watcher is in it
STATES = ("active", "starting", "stopping", "stopped", "backoff", "fatal")
_STOP_SIGNALS = {-signal.SIGTERM, -signal.SIGKILL}
#: seconds after which a process's stream figures count as gone (three missed rounds)
STALE_AFTER = 3.0


@dataclass
class WatcherFigures:
    """One watcher's gauges, from ``status`` and ``stats`` (or the stats stream)."""

    state: str = "unknown"
    processes: int = 0
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    rss_bytes: int = 0


@dataclass
class Snapshot:
    """The gauges of one refresh; replaced whole, never changed in place."""

    watchers: dict[str, WatcherFigures] = field(default_factory=dict)
    daemon: dict[str, float] = field(default_factory=dict)
    ok: bool = False
    #: circusd's pid (from ``dstats``): the stats stream must be this daemon's to be used
    daemon_pid: int | None = None


@dataclass
class _Counters:
    spawns: int = 0
    reaps: int = 0
    crashes: int = 0
    restarts: int = 0
    #: unexpected exits whose replacement has not been spawned yet
    pending_respawns: int = 0


def figures_from(state: str, infos: Mapping[str, Any]) -> WatcherFigures:
    """A watcher's gauges from its ``status`` and its ``stats`` info (``{"<pid>": info}``);
    processes that vanished (the string ``"No such process..."``) or figures that are
    ``"N/A"`` count as nothing."""
    figures = WatcherFigures(state=state)
    for info in infos.values():
        if not isinstance(info, dict):
            continue
        figures.processes += 1
        figures.cpu_percent += _number(info.get("cpu"))
        figures.memory_percent += _number(info.get("mem"))
        figures.rss_bytes += parse_human_bytes(info.get("mem_info1", "")) or 0
    return figures


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def is_crash(payload: Mapping[str, Any]) -> bool:
    """A ``reap`` the daemon did not cause. Our circusd says so (``expected``); for a 0.19
    daemon, a non-zero exit other than the usual stop signals is taken as a crash."""
    expected = payload.get("expected")
    if isinstance(expected, bool):
        return not expected
    code = payload.get("exit_code")
    return isinstance(code, int) and code != 0 and code not in _STOP_SIGNALS


class CircusMetrics(Collector):
    """See the module docstring."""

    def __init__(self) -> None:
        #: fresher cpu/mem figures from the stats stream, when circusd runs it
        self.stream = StreamFigures()
        self._lock = threading.Lock()
        self._counters: dict[str, _Counters] = {}
        self._snapshot = Snapshot()
        self.refresh_errors = 0

    # -- fed by the plugin -----------------------------------------------------------------

    def event(self, watcher: str, action: str, payload: Mapping[str, Any]) -> None:
        """Count one circusd event of ``watcher`` (its ``res_name``, from the topic)."""
        with self._lock:
            counters = self._counters.setdefault(watcher, _Counters())
            if action == "spawn":
                counters.spawns += 1
                if counters.pending_respawns:
                    counters.pending_respawns -= 1
                    counters.restarts += 1
            elif action == "reap":
                counters.reaps += 1
                if is_crash(payload):
                    counters.crashes += 1
                    counters.pending_respawns += 1
            elif action in ("stop", "remove"):
                counters.pending_respawns = 0  # nothing will be respawned

    def update(self, snapshot: Snapshot) -> None:
        """Install a refresh; counters of watchers that no longer exist are forgotten."""
        with self._lock:
            if snapshot.ok:
                for name in list(self._counters):
                    if name not in snapshot.watchers:
                        del self._counters[name]
                for name in snapshot.watchers:
                    self._counters.setdefault(name, _Counters())
            else:
                self.refresh_errors += 1
            self._snapshot = snapshot if snapshot.ok else Snapshot(
                self._snapshot.watchers, self._snapshot.daemon, False, self._snapshot.daemon_pid
            )

    # -- read by the HTTP server -------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snap = self._snapshot
            counters = {name: _Counters(**vars(c)) for name, c in self._counters.items()}
            errors = self.refresh_errors
        snap = _with_fresh_figures(snap, self.stream.watchers(snap.daemon_pid))
        yield GaugeMetricFamily(
            "circus_up", "1 when the last refresh from circusd succeeded", value=int(snap.ok)
        )
        yield CounterMetricFamily(
            "circus_refresh_errors", "refreshes that circusd did not answer", value=errors
        )
        yield from _watcher_gauges(snap)
        yield from _watcher_counters(counters)
        for key, help_text in _DAEMON_HELP.items():
            if key in snap.daemon:
                yield GaugeMetricFamily(key, help_text, value=snap.daemon[key])


@dataclass(frozen=True)
class _Figures:
    received: float
    cpu: float
    mem: float
    rss: int


class StreamFigures:
    """Per-process cpu/mem from circusd's stats stream (``handle_stats``), one second fresh.

    Figures older than :data:`STALE_AFTER` are dropped, which is also how a process that
    exited disappears (0.19's circus-top used the same rule). They are used only when the
    stream's ``stat.circus.<pid>`` is the daemon the plugin talks to (its ``dstats`` pid), so
    a stream of another circusd can never be mixed in. Fed on the handler thread, read on the
    HTTP server's thread: guarded by a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._figures: dict[str, dict[int, _Figures]] = {}
        self.daemon_pid: int | None = None

    def take(self, watcher: str, pid: int | None, stats: Mapping[str, Any]) -> None:
        """One ``handle_stats`` sample; aggregates (``pid`` None) are recomputed here."""
        if pid is None:
            return
        if watcher == "circus":
            if stats.get("name") == "circusd":
                self.daemon_pid = pid
            return
        figures = _Figures(
            time.monotonic(),
            _number(stats.get("cpu")),
            _number(stats.get("mem")),
            parse_human_bytes(stats.get("mem_info1", "")) or 0,
        )
        with self._lock:
            self._figures.setdefault(watcher, {})[pid] = figures

    def watchers(self, daemon_pid: int | None) -> dict[str, tuple[float, float, int]]:
        """``{watcher: (cpu sum, mem % sum, rss sum)}`` over its processes seen recently;
        empty when the stream is not ``daemon_pid``'s."""
        if daemon_pid is None or self.daemon_pid != daemon_pid:
            return {}
        horizon = time.monotonic() - STALE_AFTER
        out: dict[str, tuple[float, float, int]] = {}
        with self._lock:
            for watcher, processes in list(self._figures.items()):
                fresh = {pid: f for pid, f in processes.items() if f.received >= horizon}
                if not fresh:
                    del self._figures[watcher]
                    continue
                self._figures[watcher] = fresh
                out[watcher] = (
                    sum(f.cpu for f in fresh.values()),
                    sum(f.mem for f in fresh.values()),
                    sum(f.rss for f in fresh.values()),
                )
        return out


def _with_fresh_figures(snap: Snapshot, fresh: Mapping[str, tuple[float, float, int]]) -> Snapshot:
    """The snapshot with cpu/mem of the watchers the stream has figures for replaced."""
    if not fresh:
        return snap
    watchers = dict(snap.watchers)
    for name, (cpu, mem, rss) in fresh.items():
        if name in watchers:
            watchers[name] = dataclasses.replace(
                watchers[name], cpu_percent=cpu, memory_percent=mem, rss_bytes=rss
            )
    return dataclasses.replace(snap, watchers=watchers)


_DAEMON_HELP = {
    "circus_daemon_cpu_percent": "circusd's own CPU use, percent of one CPU",
    "circus_daemon_memory_rss_bytes": "circusd's own resident memory",
}


def daemon_figures(info: Mapping[str, Any]) -> dict[str, float]:
    """circusd's gauges from a ``dstats`` info."""
    out: dict[str, float] = {}
    if isinstance(info.get("cpu"), int | float):
        out["circus_daemon_cpu_percent"] = float(info["cpu"])
    rss = parse_human_bytes(info.get("mem_info1", ""))
    if rss is not None:
        out["circus_daemon_memory_rss_bytes"] = float(rss)
    return out


def _watcher_gauges(snap: Snapshot) -> Iterator[Metric]:
    label = ["watcher"]
    processes = GaugeMetricFamily(
        "circus_watcher_processes", "processes running for the watcher", labels=label
    )
    cpu = GaugeMetricFamily(
        "circus_watcher_cpu_percent",
        "CPU use of the watcher's processes (sum, percent of one CPU)",
        labels=label,
    )
    mem = GaugeMetricFamily(
        "circus_watcher_memory_percent", "memory of the watcher's processes (sum, percent of RAM)",
        labels=label,
    )  # fmt: skip
    rss = GaugeMetricFamily(
        "circus_watcher_memory_rss_bytes", "resident memory of the watcher's processes (sum)",
        labels=label,
    )  # fmt: skip
    state = GaugeMetricFamily(
        "circus_watcher_state", "1 for the watcher's current state, 0 for the others",
        labels=["watcher", "state"],
    )  # fmt: skip
    for name, fig in sorted(snap.watchers.items()):
        processes.add_metric([name], fig.processes)
        cpu.add_metric([name], fig.cpu_percent)
        mem.add_metric([name], fig.memory_percent)
        rss.add_metric([name], fig.rss_bytes)
        for one in (*STATES, *([fig.state] if fig.state not in STATES else [])):
            state.add_metric([name, one], int(one == fig.state))
    yield from (processes, state, cpu, mem, rss)


def _watcher_counters(counters: Mapping[str, _Counters]) -> Iterator[Metric]:
    families = {
        "spawns": CounterMetricFamily(
            "circus_process_spawns", "processes spawned", labels=["watcher"]
        ),
        "reaps": CounterMetricFamily(
            "circus_process_reaps", "processes that exited and were reaped", labels=["watcher"]
        ),
        "crashes": CounterMetricFamily(
            "circus_process_crashes",
            "processes that exited without circusd asking them to",
            labels=["watcher"],
        ),
        "restarts": CounterMetricFamily(
            "circus_watcher_restarts",
            "processes spawned to replace one that crashed",
            labels=["watcher"],
        ),
    }
    for name, values in sorted(counters.items()):
        for key, family in families.items():
            family.add_metric([name], getattr(values, key))
    yield from families.values()


def watcher_label(name: str) -> str:
    """The label of a watcher named as ``status``/``stats`` return it."""
    return res_name(name)

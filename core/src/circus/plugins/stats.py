"""The plugin side of circusd's stats stream: ``handle_stats(watcher, pid, stats)``.

circusd publishes process statistics on its stats endpoint (``statsd = true``; contract
section 5): ``stat.<watcher>.<pid>`` per process, ``stat.<watcher>`` per watcher (pids list,
average CPU, summed memory), ``stat.circus.<pid>`` for the daemon itself. A plugin that
overrides ``handle_stats`` and is given the endpoint (the runner's ``--stats-endpoint``, which
circusd passes when its stream runs) receives them.

Stats are *state*, not events: a newer sample of a topic replaces an older one still waiting.
So the loop keeps only the latest payload per topic and schedules one delivery at a time where
the handlers run; a blocked plugin holds at most one sample per topic, never a backlog.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from typing import Any

from circus.protocol import res_name
from circus.wire.subscriber import open_subscriber

STAT_PREFIX = "stat."

Deliver = Callable[[str, int | None, dict[str, Any]], None]


def parse_stat_topic(topic: str) -> tuple[str, int | None]:
    """``stat.web.42`` -> ``("web", 42)``; ``stat.web`` -> ``("web", None)``."""
    rest = topic[len(STAT_PREFIX):] if topic.startswith(STAT_PREFIX) else topic
    name, _, tail = rest.rpartition(".")
    if name and tail.isdigit():
        return name, int(tail)
    return rest, None


class StatsFeed:
    """Latest sample per topic, handed to the plugin's handlers in batches.

    ``dispatch(job)`` runs ``job`` where the plugin's handlers run; ``deliver(watcher, pid,
    stats)`` is called there for each sample.
    """

    def __init__(self, endpoint: str, dispatch: Callable[[Callable[[], None]], None],
                 deliver: Deliver) -> None:
        self.endpoint = endpoint
        self._dispatch = dispatch
        self._deliver = deliver
        self._latest: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self._pending = False
        self.received = 0

    async def run(self) -> None:
        """Read the stats socket (on the plugin's loop, which owns it) until cancelled."""
        subscriber = open_subscriber(self.endpoint, (STAT_PREFIX,), hwm=1000)
        subscriber.connect()
        try:
            while True:
                batch = await subscriber.recv_batch()
                with self._lock:
                    self.received += len(batch)
                    self._latest.update(batch)
                    schedule = not self._pending
                    self._pending = True
                if schedule:
                    self._dispatch(self._flush)
        finally:
            subscriber.close()

    def _flush(self) -> None:
        with self._lock:
            latest, self._latest = self._latest, {}
            self._pending = False
        for topic, payload in latest.items():
            name, pid = parse_stat_topic(topic.decode("utf-8", "replace"))
            stats = json.loads(payload)
            self._deliver(name, pid, stats if isinstance(stats, dict) else {"value": stats})


#: seconds without a ``stat.circus.<pid>`` sample after which a stream counts as silent (three
#: missed rounds of circusd's one-second stream)
STALE_AFTER = 3.0


class WatcherStream:
    """One watcher's latest samples from ``handle_stats``, for plugins that read the stream
    when it exists and ``stats`` otherwise (resource_watcher, autoscale).

    The stream is trusted only while it is the daemon the plugin talks to (its
    ``stat.circus.<pid>`` carries the pid that ``dstats`` gave, set in :attr:`daemon_pid`: a
    stream endpoint shared with another circusd is never mixed in) and while it flows
    (:meth:`live`). Fed and read on the thread where handlers run; no lock.
    """

    def __init__(self, watcher: str, stale_after: float = STALE_AFTER) -> None:
        #: the name the stream's topics carry (``res_name``)
        self.name = res_name(watcher)
        self.stale_after = stale_after
        #: circusd's pid from ``dstats`` (``None``: unknown, the stream is never used)
        self.daemon_pid: int | None = None
        self._heard = -math.inf
        self._pids: list[int] | None = None
        self._pids_at = -math.inf
        self._latest: dict[int, dict[str, Any]] = {}
        self._new: dict[int, dict[str, Any]] = {}
        self._new_pids = False

    def take(self, watcher: str, pid: int | None, stats: dict[str, Any], now: float) -> bool:
        """One ``handle_stats`` sample; True when it is one of this watcher's, from the daemon
        the plugin talks to."""
        if watcher == "circus":
            if pid is not None and pid == self.daemon_pid and stats.get("name") == "circusd":
                self._heard = now
            return False
        if watcher != self.name or not self.live(now):
            return False
        if pid is None:
            pids = stats.get("pid")
            if isinstance(pids, list):
                self._pids = [p for p in pids if isinstance(p, int)]
                self._pids_at = now
                self._new_pids = True
                self._latest = {p: s for p, s in self._latest.items() if p in self._pids}
        else:
            self._latest[pid] = self._new[pid] = stats
        return True

    def live(self, now: float) -> bool:
        """The daemon's own stream sample came within ``stale_after`` seconds."""
        return self.daemon_pid is not None and now - self._heard < self.stale_after

    def carries(self, now: float) -> bool:
        """:meth:`live`, and the watcher's aggregate came within ``stale_after`` seconds (a
        watcher without processes, or one that does not exist, has none: ask ``stats``, which
        says which)."""
        return self.live(now) and now - self._pids_at < self.stale_after

    def processes(self, now: float) -> dict[int, dict[str, Any]]:
        """The latest sample of each process the watcher's last aggregate listed (none when
        that aggregate is older than ``stale_after``: circusd publishes nothing for a watcher
        without processes)."""
        if self._pids is None or now - self._pids_at >= self.stale_after:
            return {}
        return {pid: self._latest[pid] for pid in self._pids if pid in self._latest}

    def take_new(self, now: float) -> tuple[dict[int, dict[str, Any]], set[int] | None]:
        """Samples received since the last call, and the watcher's pids when a new aggregate
        came meanwhile (``None`` otherwise; empty once the last one is stale: no processes)."""
        new, self._new = self._new, {}
        pids = set(self._pids) if self._new_pids and self._pids is not None else None
        self._new_pids = False
        if pids is None and self._pids and now - self._pids_at >= self.stale_after:
            self._pids, self._latest, pids = [], {}, set()
        return new, pids


def daemon_pid(dstats_reply: dict[str, Any]) -> int | None:
    """circusd's pid from a ``dstats`` reply (``None`` when it does not say)."""
    info = dstats_reply.get("info")
    pid = info.get("pid") if isinstance(info, dict) else None
    return pid if isinstance(pid, int) else None

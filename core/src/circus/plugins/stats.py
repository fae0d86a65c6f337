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
import threading
from collections.abc import Callable
from typing import Any

from circus.transports import EventSubscriber

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
        subscriber = EventSubscriber(self.endpoint, topics=(STAT_PREFIX,), hwm=1000)
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

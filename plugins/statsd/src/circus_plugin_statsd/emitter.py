"""Turning circus events and process counts into statsd metrics, through the ``statsd`` library.

``StatsClient`` (pystatsd 4.x) already speaks the line protocol, applies the prefix and samples
for real when ``rate < 1`` (it drops a share of the metrics and tags the rest ``|@rate``, so
the server scales the counts back up). The original plugin only tagged: with ``sample_rate = 0.5``
it sent every event as ``|@0.5`` and statsd reported twice the real counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, cast

from statsd import StatsClient  # type: ignore[import-untyped]

from circus.protocol import split_topic
from circus_plugin_statsd.buckets import event_bucket, processes_bucket
from circus_plugin_statsd.settings import StatsdSettings


class StatsClientLike(Protocol):
    """The part of pystatsd's client used here (the library ships no type information)."""

    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None: ...

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None: ...

    def close(self) -> None: ...


class EventMetrics:
    """One counter per event, one gauge per watcher's process count."""

    def __init__(self, settings: StatsdSettings) -> None:
        self.settings = settings
        # Resolves the host now: an unknown host name fails at start, not silently later.
        client = StatsClient(host=settings.host, port=settings.port, prefix=settings.prefix)
        self.client = cast(StatsClientLike, client)

    def event(self, topic: str) -> None:
        """Count one event: ``<prefix>.<watcher>.<action>``, sampled at ``sample_rate``."""
        try:
            res_name, action = split_topic(topic)
        except ValueError:
            return  # not a watcher event (nothing else is published on this channel today)
        self.client.incr(event_bucket(res_name, action), 1, self.settings.sample_rate)

    def process_counts(self, counts: Mapping[str, int]) -> None:
        """Gauge ``<prefix>.<watcher>.numprocesses`` for each watcher (never sampled)."""
        for watcher, count in sorted(counts.items()):
            self.client.gauge(processes_bucket(watcher), count)

    def gauges(self, values: Mapping[str, float]) -> None:
        """Gauges by bucket relative to the prefix (never sampled)."""
        for bucket, value in sorted(values.items()):
            self.client.gauge(bucket, value)

    def count(self, bucket: str) -> None:
        """One unsampled counter increment (errors must never be sampled away)."""
        self.client.incr(bucket, 1)

    def close(self) -> None:
        self.client.close()

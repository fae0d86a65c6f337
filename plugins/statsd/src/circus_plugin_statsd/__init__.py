"""The statsd plugin for circus: a counter per circusd event, gauges of processes per watcher.

Metric names are the original plugin's (``circus.<application_name>.watcher.<watcher>.<action>``)
so existing dashboards keep working, with watcher names made safe for statsd buckets
(``plugin:flapping`` -> ``plugin_flapping``). The statsd protocol itself is spoken by the
``statsd`` library (pystatsd). See the README for options and differences from the original.
"""

from circus_plugin_statsd.plugin import StatsdEmitter

__all__ = ["StatsdEmitter"]

"""The redis_observer plugin for circus: Redis PING/INFO health checks that restart (or signal)
a watcher; INFO fields as statsd gauges.

``info`` picks the gauges (pure, unit-tested), ``plugin`` the probe; the failure counting,
cooldown and action come from :mod:`circus.plugins.observer`.
"""

from circus_plugin_redis_observer.plugin import RedisObserver

__all__ = ["RedisObserver"]

"""``RedisObserver``: PING and INFO a Redis server every ``loop_rate`` s; restart or signal a
watcher when it keeps failing.

Built on :class:`circus.plugins.observer.HealthObserver` and the official client's asyncio API
(``redis.asyncio``), one connection pool for the plugin's life, opened and closed in the loop
thread. 0.19 passed ``timeout`` positionally to the URL factory, where it meant something else
(B7), so its checks had no timeout at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from statsd import StatsClient  # type: ignore[import-untyped]

from circus.errors import ConfigError
from circus.plugins.failures import Verdict
from circus.plugins.observer import OBSERVER_OPTIONS, CheckResult, HealthObserver
from circus.plugins.options import PluginOptions
from circus_plugin_redis_observer.info import gauges

DEFAULT_URL = "redis://localhost:6379/0"
#: its own options, beside the ones every observer reads (``OBSERVER_OPTIONS``)
OPTIONS = PluginOptions("redis_url")


def _url(config: Mapping[str, Any]) -> str:
    config = OPTIONS.view(config)
    url = str(config.get("redis_url") or DEFAULT_URL).strip()
    try:
        aioredis.ConnectionPool.from_url(url)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {url!r}: {exc}", key="redis_url") from None
    return url


def _hide_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


class RedisObserver(HealthObserver):
    """Options of 0.19 (``redis_url``, ``timeout``, ``loop_rate``, ``restart_on_timeout``,
    statsd ``host``/``port``/``application_name``) plus ``max_failures``, ``cooldown``,
    ``max_cooldown``, ``signal`` (README)."""

    name = "redis_observer"
    target_option: ClassVar[str] = "restart_on_timeout"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = (
        OBSERVER_OPTIONS.extend(target_option, *OPTIONS).names
    )
    default_timeout: ClassVar[float] = 5.0
    default_application_name: ClassVar[str] = "redis_observer"

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.url = _url(self.config)
        self.metrics = StatsClient(**self.settings.statsd_kwargs)
        self._client: aioredis.Redis | None = None

    @classmethod
    def check_options(cls, config: dict[str, Any]) -> None:
        _url(config)

    def describe_target(self) -> str:
        return _hide_password(self.url)

    async def open(self) -> None:
        timeout = self.settings.timeout
        self._client = aioredis.Redis.from_url(
            self.url, socket_timeout=timeout, socket_connect_timeout=timeout,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def check(self) -> CheckResult:
        if self._client is None:
            raise RuntimeError("the Redis client is not open yet")
        where = self.describe_target()
        try:
            await self._client.ping()
            info = await self._client.info()
        except (RedisError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            return CheckResult(False, f"{where}: {reason}")
        values = gauges(info)
        version = info.get("redis_version", "?")
        return CheckResult(True, f"{where}: PONG (Redis {version})", values=values)

    def report(self, result: CheckResult, verdict: Verdict) -> None:
        """The 0.19 metrics: ``redis_stats.<field>`` gauges, ``redis_stats.error``,
        ``redis_stats.restart_on_error``."""
        if result.ok:
            with self.metrics.pipeline() as batch:
                for key, value in result.values.items():
                    batch.gauge(f"redis_stats.{key}", value)
            return
        self.metrics.incr("redis_stats.error")
        if verdict is Verdict.ACT and self.settings.watcher:
            self.metrics.incr("redis_stats.restart_on_error")

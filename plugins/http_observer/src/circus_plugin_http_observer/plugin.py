"""``HttpObserver``: fetch a URL every ``loop_rate`` s; restart or signal a watcher when it fails.

Built on :class:`circus.plugins.observer.HealthObserver` (timeout, consecutive failures,
cooldown with back-off, action) and httpx's asyncio client, one connection pool for the
plugin's life, opened and closed in the loop thread. The 0.19 plugin could not even be
constructed with tornado >= 5 (contract B6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from statsd import StatsClient  # type: ignore[import-untyped]

from circus.config.convert import to_bool
from circus.errors import ConfigError
from circus.plugins.failures import Verdict
from circus.plugins.observer import OBSERVER_OPTIONS, CheckResult, HealthObserver
from circus.plugins.options import PluginOptions
from circus_plugin_http_observer.expect import Expectation, parse_statuses

#: its own options, beside the ones every observer reads (``OBSERVER_OPTIONS``)
OPTIONS = PluginOptions("check_url", "expected_status", "expected_body", "follow_redirects",
                        "verify_tls")

#: 0.19 counted answers that never came (connection refused, timeout) as HTTP 599.
NO_ANSWER = 599


def _expectation(config: Mapping[str, Any]) -> Expectation:
    config = OPTIONS.view(config)
    statuses: tuple[str, ...] = ("2xx",)
    if config.get("expected_status"):
        try:
            statuses = parse_statuses(str(config["expected_status"]))
        except ValueError as exc:
            raise ConfigError(str(exc), key="expected_status") from None
    body = config.get("expected_body")
    return Expectation(statuses, str(body) if body else None)


def _url(config: Mapping[str, Any]) -> str:
    config = OPTIONS.view(config)
    url = str(config.get("check_url") or "http://localhost/").strip()
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"invalid URL {url!r}: {exc}", key="check_url") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"expected an http:// or https:// URL, got {url!r}", key="check_url")
    return url


def _flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    config = OPTIONS.view(config)
    if key not in config:
        return default
    try:
        return to_bool(config[key])
    except ValueError as exc:
        raise ConfigError(str(exc), key=key) from None


class HttpObserver(HealthObserver):
    """Options of 0.19 (``check_url``, ``timeout``, ``loop_rate``, ``restart_on_error``, statsd
    ``host``/``port``/``application_name``) plus ``expected_status``, ``expected_body``,
    ``max_failures``, ``cooldown``, ``max_cooldown``, ``signal``, ``follow_redirects``,
    ``verify_tls`` (README)."""

    name = "http_observer"
    target_option: ClassVar[str] = "restart_on_error"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = (
        OBSERVER_OPTIONS.extend(target_option, *OPTIONS).names
    )
    default_timeout: ClassVar[float] = 10.0
    default_application_name: ClassVar[str] = "http_observer"

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.url = _url(self.config)
        self.expectation = _expectation(self.config)
        self.follow_redirects = _flag(self.config, "follow_redirects", True)
        self.verify_tls = _flag(self.config, "verify_tls", True)
        self.metrics = StatsClient(**self.settings.statsd_kwargs)
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def check_options(cls, config: dict[str, Any]) -> None:
        _url(config)
        _expectation(config)
        _flag(config, "follow_redirects", True)
        _flag(config, "verify_tls", True)

    def describe_target(self) -> str:
        return self.url

    async def open(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout,
            follow_redirects=self.follow_redirects,
            verify=self.verify_tls,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def check(self) -> CheckResult:
        if self._client is None:
            raise RuntimeError("the HTTP client is not open yet")
        try:
            response = await self._client.get(self.url)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return CheckResult(False, f"GET {self.url}: {reason}", code=NO_ANSWER)
        ok, detail = self.expectation.judge(response.status_code, response.text)
        return CheckResult(ok, f"GET {self.url}: {detail}", code=response.status_code)

    def report(self, result: CheckResult, verdict: Verdict) -> None:
        """The 0.19 metrics: ``http_stats.error[.CODE]``, ``.restart_on_error``,
        ``.request_time`` (ms)."""
        if result.ok:
            self.metrics.timing("http_stats.request_time", result.duration * 1000)
            return
        self.metrics.incr("http_stats.error")
        self.metrics.incr(f"http_stats.error.{result.code or NO_ANSWER}")
        if verdict is Verdict.ACT and self.settings.watcher:
            self.metrics.incr("http_stats.restart_on_error")

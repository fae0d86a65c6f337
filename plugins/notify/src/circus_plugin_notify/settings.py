"""The notify plugin's options, checked once when circusd loads its configuration.

Values arrive as strings (plugin section, ``--config``). At least one channel (``email_to`` or
``webhook_url``) is required: a notifier that can notify nobody is a configuration mistake.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from circus.config.convert import to_float, to_int, to_port, to_positive_float
from circus.errors import ConfigError
from circus.plugins.options import PluginOptions
from circus_plugin_notify.alert import KINDS
from circus_plugin_notify.gate import GateRule
from circus_plugin_notify.incidents import IncidentRule

TLS_MODES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class EmailSettings:
    to: tuple[str, ...]
    sender: str
    host: str
    port: int
    user: str | None
    password: str | None
    tls: str
    timeout: float
    subject_prefix: str


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    timeout: float


#: the options it reads, declared to circusd (the plugin's ``config_options``); parsed
#: through ``OPTIONS.view``, which refuses to read any other name
OPTIONS = PluginOptions("crashes", "crash_window", "recovery_time", "min_interval", "rate_limit",
                        "on", "watchers", "email_to", "email_from", "smtp_host", "smtp_port",
                        "smtp_user", "smtp_password", "smtp_tls", "smtp_timeout", "subject_prefix",
                        "webhook_url", "webhook_timeout", "retries")


@dataclass(frozen=True)
class NotifySettings:
    incidents: IncidentRule
    gate: GateRule
    on: frozenset[str]
    watchers: tuple[str, ...]
    email: EmailSettings | None
    webhook: WebhookSettings | None
    retries: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NotifySettings:
        """Parse the options; :class:`ConfigError` names the bad one."""
        config = OPTIONS.view(config)
        opt = _Reader(config)
        incidents = IncidentRule(
            crashes=opt.get("crashes", lambda v: to_int(v, minimum=1), 3),
            crash_window=opt.get("crash_window", to_positive_float, 60.0),
            recovery_time=opt.get("recovery_time", to_positive_float, 30.0),
        )
        gate = GateRule(
            min_interval=opt.get("min_interval", lambda v: to_float(v, minimum=0.0), 300.0),
            rate_limit=opt.get("rate_limit", lambda v: to_int(v, minimum=1), 30),
        )
        on = frozenset(opt.get("on", _kinds, KINDS))
        watchers = tuple(opt.get("watchers", _words, ("*",)))
        email = _email(opt) if opt.has("email_to") else None
        webhook = None
        if opt.has("webhook_url"):
            webhook = WebhookSettings(
                url=opt.get("webhook_url", _http_url, ""),
                timeout=opt.get("webhook_timeout", to_positive_float, 10.0),
            )
        if email is None and webhook is None:
            raise ConfigError("nothing to notify: give email_to, webhook_url or both",
                              key="email_to")
        retries = opt.get("retries", lambda v: to_int(v, minimum=0), 3)
        return cls(incidents, gate, on, watchers, email, webhook, retries)


class _Reader:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def has(self, key: str) -> bool:
        value = self.config.get(key)
        return value is not None and str(value).strip() != ""

    def get(self, key: str, convert: Callable[[Any], Any], default: Any) -> Any:
        if not self.has(key):
            return default
        try:
            return convert(self.config[key])
        except ValueError as exc:
            raise ConfigError(str(exc), key=key) from None

    def text(self, key: str, default: str | None) -> str | None:
        return str(self.config[key]).strip() if self.has(key) else default


def _email(opt: _Reader) -> EmailSettings:
    to = tuple(opt.get("email_to", _addresses, ()))
    port_default = 465 if opt.text("smtp_tls", "none") == "ssl" else 25
    return EmailSettings(
        to=to,
        sender=opt.get("email_from", _address, f"circus@{socket.gethostname()}"),
        host=opt.text("smtp_host", "localhost") or "localhost",
        port=opt.get("smtp_port", to_port, port_default),
        user=opt.text("smtp_user", None),
        password=opt.text("smtp_password", None),
        tls=opt.get("smtp_tls", _tls, "none"),
        timeout=opt.get("smtp_timeout", to_positive_float, 10.0),
        subject_prefix=opt.text("subject_prefix", "[circus]") or "",
    )


def _words(value: Any) -> list[str]:
    words = str(value).replace(",", " ").split()
    if not words:
        raise ValueError("expected at least one value")
    return words


def _kinds(value: Any) -> list[str]:
    kinds = [w.lower() for w in _words(value)]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown alert kind(s) {', '.join(unknown)}; "
                         f"known: {', '.join(KINDS)}")
    return kinds


def _address(value: Any) -> str:
    text = str(value).strip()
    if "@" not in text or any(c.isspace() for c in text):
        raise ValueError(f"not an e-mail address: {text!r}")
    return text


def _addresses(value: Any) -> list[str]:
    return [_address(word) for word in _words(value)]


def _tls(value: Any) -> str:
    mode = str(value).strip().lower()
    if mode not in TLS_MODES:
        raise ValueError(f"expected one of {', '.join(TLS_MODES)}, got {value!r}")
    return mode


def _http_url(value: Any) -> str:
    url = str(value).strip()
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
    return url

"""The ``[circus]`` section -> :class:`CircusSettings` (contract 8.2).

Improvement over 0.19: ``warmup_delay`` accepts fractional seconds (E6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from circus import curve
from circus.config import convert
from circus.config.model import CircusSettings
from circus.errors import ConfigError

CIRCUS_SECTION = "circus"
# Consumed by the loader itself (contract 8.9), never stored.
INCLUDE_KEYS = frozenset({"include", "include_dir"})
LOG_LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "critical"})


def check_endpoint(value: Any) -> str:
    """A ZeroMQ endpoint's shape (``scheme://address``); ``ValueError`` saying what is expected."""
    text = convert.to_str(value).strip()
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or not rest:
        raise ValueError(
            f"invalid endpoint {text!r}: expected e.g. tcp://127.0.0.1:5555 or ipc://path"
        )
    return text


def _owner(value: Any) -> str | None:
    text = convert.to_optional_str(value)
    if text is not None:
        convert.to_uid(text)
    return text


def _curve_server_key(value: Any) -> str | None:
    """Checked at load (readable, holds a secret key), so a typo stops circusd at start."""
    text = convert.to_optional_str(value)
    if text:
        curve.load_secret_pair(text)
    return text or None


def _curve_authorized(value: Any) -> str | None:
    text = convert.to_optional_str(value)
    if text:
        curve.load_authorized(text)
    return text or None


def _loglevel(value: Any) -> str | None:
    text = convert.to_optional_str(value)
    if text is not None and text.strip().lower() not in LOG_LEVELS:
        raise ValueError(
            f"invalid log level {text!r}; expected one of debug, info, warning, error, critical"
        )
    return text.strip() if text else None


def _port(value: Any) -> int:
    port = convert.to_int(value, minimum=0)
    if port > 65535:
        raise ValueError(f"invalid port {port}: must be at most 65535")
    return port


SETTINGS: dict[str, Callable[[Any], Any]] = {
    "endpoint": check_endpoint,
    "pubsub_endpoint": check_endpoint,
    "stats_endpoint": check_endpoint,
    # checked when circusd starts answering: unusable = discovery off with a warning, as in 0.19
    "multicast_endpoint": lambda v: convert.to_str(v).strip(),
    "check_delay": convert.to_float,
    "endpoint_owner": _owner,
    "curve_server_key": _curve_server_key,
    "curve_authorized_keys": _curve_authorized,
    "statsd": convert.to_bool,
    "umask": lambda v: None if not convert.to_str(v).strip() else convert.to_umask(v),
    "warmup_delay": lambda v: convert.to_float(v, minimum=0.0),
    "debug": convert.to_bool,
    "debug_gc": convert.to_bool,
    "pidfile": convert.to_optional_str,
    "loglevel": _loglevel,
    "logoutput": convert.to_optional_str,
    "loggerconfig": convert.to_optional_str,
    "fqdn_prefix": convert.to_optional_str,
    "httpd": convert.to_bool,
    "httpd_host": convert.to_str,
    "httpd_port": _port,
    "strict": convert.to_bool,
}
#: documented for 0.19's ``[circus]`` but never read from a file by it (Python API only)
NOT_READ_BY_019 = frozenset({"statsd_close_outputs", "httpd_close_outputs", "stream_backend"})


def settings_from_options(
    options: Mapping[str, str], origin: Callable[[str], str | None] | None = None
) -> CircusSettings:
    """Convert the ``[circus]`` options; unknown keys are kept in ``extra``.

    ``origin(key)`` names the file a key came from, for the error message. Setting
    ``stats_endpoint`` explicitly turns ``statsd`` on, as in 0.19; setting a non-empty
    ``multicast_endpoint`` turns discovery on (:mod:`circus.discovery`).
    """
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, raw in options.items():
        if key in INCLUDE_KEYS:
            continue
        if key not in SETTINGS:
            extra[key] = raw
            continue
        try:
            values[key] = SETTINGS[key](raw)
        except ValueError as exc:
            raise ConfigError(
                str(exc), path=origin(key) if origin else None, section=CIRCUS_SECTION, key=key
            ) from None
    if "stats_endpoint" in values:
        values["statsd"] = True
    # only a configured endpoint is answered on (0.19 listens by default); empty = off
    values["discovery"] = bool(values.get("multicast_endpoint"))
    return CircusSettings(extra=extra, **values)

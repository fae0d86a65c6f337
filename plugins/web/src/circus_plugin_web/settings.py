"""The web dashboard's options, checked once when circusd loads its configuration.

Safe by default: it listens on 127.0.0.1; listening anywhere else needs an access token, so a
dashboard reachable from the network never sends commands for whoever finds it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circus.config.convert import plugin_option, to_float, to_ip_address, to_port
from circus.errors import ConfigError
from circus.plugins.options import PluginOptions

#: circushttpd's defaults in 0.19 (``httpd_host``/``httpd_port``)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


#: the options it reads, declared to circusd (the plugin's ``config_options``); parsed
#: through ``OPTIONS.view``, which refuses to read any other name
OPTIONS = PluginOptions("host", "port", "token", "token_file", "history", "refresh_interval")


@dataclass(frozen=True)
class WebSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: required in the ``X-Circus-Token`` header of every command when set
    token: str | None = None
    #: seconds of cpu/memory history the charts show
    history: float = 300.0
    #: at most this often the dashboard asks circusd for details after events (seconds)
    refresh_interval: float = 0.5

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WebSettings:
        """Parse the options; a bad value raises ``ConfigError`` naming the option."""
        config = OPTIONS.view(config)
        host = plugin_option(config, "host", _host, cls.host)
        token = plugin_option(config, "token", _token, None)
        token_file = plugin_option(config, "token_file", str, None)
        if token_file is not None:
            if token is not None:
                raise ConfigError("give either token or token_file, not both", key="token_file")
            token = _read_token(token_file)
        settings = cls(
            host=host,
            port=plugin_option(config, "port", to_port, cls.port),
            token=token,
            history=plugin_option(config, "history", _history, cls.history),
            refresh_interval=plugin_option(config, "refresh_interval", _interval,
                                           cls.refresh_interval),
        )
        if not settings.loopback and settings.token is None:
            raise ConfigError(
                f"the dashboard would listen on {host}, beyond this machine, with no access "
                "token: set token (or token_file), or listen on 127.0.0.1", key="host")
        return settings


def _host(value: Any) -> str:
    """An IP address (whether it is loopback decides whether a token is required, so a name
    is not guessed at); ``localhost``, 0.19's ``httpd_host`` default, means 127.0.0.1."""
    return DEFAULT_HOST if str(value).strip() == "localhost" else to_ip_address(value)


def _token(value: Any) -> str:
    text = str(value).strip()
    if len(text) < 8:
        raise ValueError("must be at least 8 characters long")
    return text


def _read_token(path: str) -> str:
    try:
        text = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", key="token_file") from None
    try:
        return _token(text)
    except ValueError as exc:
        raise ConfigError(f"the token in {path} {exc}", key="token_file") from None


def _history(value: Any) -> float:
    seconds = to_float(value, minimum=10.0)
    if seconds > 3600:
        raise ValueError(f"must be at most 3600 (seconds), got {seconds:g}")
    return seconds


def _interval(value: Any) -> float:
    seconds = to_float(value, minimum=0.0)
    if seconds < 0.05:
        raise ValueError(f"must be at least 0.05 (seconds), got {seconds:g}")
    return seconds

"""``[socket:NAME]`` sections -> :class:`SocketConfig` (contract 8.6).

Every option of 0.19 is accepted with its default. Values are checked when the config loads, so
``family = AF_INTE`` or ``port = http`` stops circusd with the file, section and key instead of a
traceback at bind time. ``umask`` keeps 0.19's decimal reading (E10: ``022`` means 22, i.e.
``0o026``) so a migrated config binds with the same permissions; a value that reads differently
in octal is warned about, and ``0o022`` is accepted as an explicit octal value.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import structlog

from circus.config import convert
from circus.errors import ConfigError

SOCKET_PREFIX = "socket:"

log = structlog.get_logger(__name__)

_FAMILIES = ("AF_INET", "AF_INET6", "AF_UNIX")
_TYPES = ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET")


@dataclass(frozen=True)
class SocketConfig:
    """One listening socket circusd binds and its watchers inherit.

    ``family``/``type``/``proto`` are the numeric constants of :mod:`socket`; ``path`` set means
    a Unix socket (``family`` is then ``AF_UNIX`` whatever was written, as in 0.19).
    """

    name: str
    host: str = "localhost"
    port: int = 8080
    path: str | None = None
    family: int = socket.AF_INET
    type: int = socket.SOCK_STREAM
    proto: int = 0
    backlog: int = 2048
    interface: str | None = None
    umask: int = 8
    replace: bool = False
    so_reuseport: bool = False
    blocking: bool = False
    #: keys of the section circus does not know (warned about at load), kept as written
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_unix(self) -> bool:
        return self.family == socket.AF_UNIX


def _constant(prefix: str, names: tuple[str, ...]) -> Callable[[Any], int]:
    """``AF_INET``, ``af_inet`` or ``INET`` -> the constant; anything else names the choices."""

    def convert_name(value: Any) -> int:
        text = convert.to_str(value).strip().upper()
        if not text.startswith(prefix):
            text = prefix + text
        found = getattr(socket, text, None) if text in names else None
        if not isinstance(found, int):
            raise ValueError(f"unknown value {value!r}: expected one of {', '.join(names)}")
        return found

    return convert_name


def _proto(value: Any) -> int:
    """A protocol name (``tcp``, as 0.19) or number; empty = 0 (the family's default)."""
    text = convert.to_str(value).strip()
    if not text:
        return 0
    if text.isdigit():
        return int(text)
    try:
        return socket.getprotobyname(text)
    except OSError:
        raise ValueError(f"unknown protocol {text!r} (see /etc/protocols)") from None


def _port(value: Any) -> int:
    port = convert.to_int(value, minimum=0)
    if port > 65535:
        raise ValueError(f"must be at most 65535, got {port}")
    return port


def _umask(value: Any) -> int:
    """0.19 reads this umask as a *decimal* number (E10); kept, with a warning when it matters."""
    text = convert.to_str(value).strip()
    if text.lower().startswith("0o"):
        try:
            return int(text, 8)
        except ValueError:
            raise ValueError(f"invalid octal umask {text!r}") from None
    num = convert.to_int(text, minimum=0)
    if num > 0o777:
        raise ValueError(f"must be at most 511 (0o777), got {num}")
    if len(text) > 1 and text.startswith("0") and text.isdigit():
        octal = int(text, 8) if set(text) <= set("01234567") else None
        if octal != num:
            log.warning(
                "socket umask is read as a decimal number, as in Circus 0.19",
                written=text,
                used=oct(num),
                hint=f"write 0o{text.lstrip('0') or '0'} for an octal umask",
            )
    return num


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "host": convert.to_str,
    "port": _port,
    "path": convert.to_optional_str,
    "family": _constant("AF_", _FAMILIES),
    "type": _constant("SOCK_", _TYPES),
    "proto": _proto,
    "backlog": lambda v: convert.to_int(v, minimum=0),
    "interface": convert.to_optional_str,
    "umask": _umask,
    "replace": convert.to_bool,
    "so_reuseport": convert.to_bool,
    "blocking": convert.to_bool,
}
SOCKET_KEYS = tuple(f.name for f in fields(SocketConfig) if f.name not in ("name", "extra"))


def socket_from_options(name: str, options: Mapping[str, Any]) -> SocketConfig:
    """Build a socket from option values; :class:`ConfigError` naming the key on a bad one.

    ``name`` is lower-cased (0.19 does, and ``$(circus.sockets.NAME)`` is looked up that way).
    Unknown keys are kept in ``extra`` (the loader warns about them, "did you mean" included).
    """
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, raw in options.items():
        converter = _CONVERTERS.get(key)
        if converter is None:
            extra[key] = str(raw)  # the loader warns (circus.config.checks), 0.19 ignores it
            continue
        try:
            values[key] = converter(raw)
        except ValueError as exc:
            raise ConfigError(str(exc), key=key) from None
    if values.get("path"):
        values["family"] = socket.AF_UNIX
    elif values.get("family") == socket.AF_UNIX:
        raise ConfigError("family = AF_UNIX needs a path", key="family")
    return SocketConfig(name=name.lower(), extra=extra, **values)

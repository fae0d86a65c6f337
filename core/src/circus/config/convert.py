"""Value converters shared by the INI loader and the control commands (``set``, ``add``).

Each converter accepts either an already-typed Python value (from the Python API or a JSON
command) or the raw string written in an INI file, and raises :class:`ValueError` with a message
that names the expected form. Callers add the location: the loader wraps the error in a
:class:`~circus.errors.ConfigError` naming file, section and key; the commands turn it into an
errno-3 reply. Keeping one set of rules means a value accepted in a file is accepted by ``set``.
"""

from __future__ import annotations

import grp
import ipaddress
import math
import pwd
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from circus.errors import ConfigError
from circus.signals import to_signum

T = TypeVar("T")

_TRUE = frozenset({"1", "yes", "true", "on"})
_FALSE = frozenset({"0", "no", "false", "off"})


def to_bool(value: Any) -> bool:
    """Strict boolean: ``yes/true/on/1`` and ``no/false/off/0`` (any case), bools, ints 0/1.

    Anything else is an error rather than "truthy": ``respawn = flase`` must not mean true.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"invalid boolean {value!r}: expected one of true/false, yes/no, on/off, 1/0")


def to_int(value: Any, *, minimum: int | None = None) -> int:
    """Integer from an int or a decimal string; ``minimum`` is inclusive."""
    if isinstance(value, bool):
        raise ValueError(f"invalid integer {value!r}")
    if isinstance(value, int):
        num = value
    elif isinstance(value, float) and value.is_integer():
        num = int(value)
    elif isinstance(value, str):
        try:
            num = int(value.strip(), 10)
        except ValueError:
            raise ValueError(f"invalid integer {value!r}") from None
    else:
        raise ValueError(f"invalid integer {value!r}")
    if minimum is not None and num < minimum:
        raise ValueError(f"must be at least {minimum}, got {num}")
    return num


#: Longest duration, in seconds, any option or command accepts (``graceful_timeout``,
#: ``warmup_delay``, ``backoff_max``...): about eleven days, far beyond any real use and far below
#: what makes timers misbehave (``1e300`` would make a kill wait forever).
MAX_SECONDS = 1e6


def to_float(
    value: Any, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """Finite float from an int, a float or a decimal string; both bounds are inclusive."""
    if isinstance(value, bool):
        raise ValueError(f"invalid number {value!r}")
    if isinstance(value, int | float):
        num = float(value)
    elif isinstance(value, str):
        try:
            num = float(value.strip())
        except ValueError:
            raise ValueError(f"invalid number {value!r}") from None
    else:
        raise ValueError(f"invalid number {value!r}")
    if not math.isfinite(num):
        raise ValueError(f"invalid number {value!r}: must be finite")
    if minimum is not None and num < minimum:
        raise ValueError(f"must be at least {minimum:g}, got {num:g}")
    if maximum is not None and num > maximum:
        raise ValueError(f"must be at most {maximum:g}, got {num:g}")
    return num


def to_positive_float(value: Any) -> float:
    """A finite float greater than 0 (periods, timeouts: 0 would mean "spin" or "never")."""
    num = to_float(value)
    if num <= 0:
        raise ValueError(f"must be greater than 0, got {num:g}")
    return num


def to_port(value: Any) -> int:
    """A TCP/UDP port number, 1-65535."""
    port = to_int(value, minimum=1)
    if port > 65535:
        raise ValueError(f"must be at most 65535, got {port}")
    return port


def to_ip_address(value: Any) -> str:
    """An IP address to listen on, as written. Host names are refused: ``localhost`` may
    resolve to ``::1`` alone, and a server should listen exactly where it was told."""
    text = str(value).strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"must be an IP address such as 127.0.0.1, got {text!r}") from None
    return text


def to_str(value: Any) -> str:
    """String option: strings as they are, numbers and bools through ``str()``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise ValueError(f"invalid string {value!r}")


def to_optional_str(value: Any) -> str | None:
    """Like :func:`to_str`, but ``None`` and the empty string mean "not set"."""
    if value is None:
        return None
    text = to_str(value)
    return text or None


def to_signal(value: Any) -> int:
    """Signal number from a name or number (see :func:`circus.signals.to_signum`)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid signal {value!r}")
    return to_signum(value)


def to_umask(value: Any) -> int:
    """Octal umask (``"002"``, ``"0o22"``) or an int; 0..0o777."""
    if isinstance(value, bool):
        raise ValueError(f"invalid umask {value!r}")
    if isinstance(value, int):
        num = value
    elif isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        try:
            num = int(text, 8)
        except ValueError:
            raise ValueError(
                f"invalid umask {value!r}: expected an octal number such as 022"
            ) from None
    else:
        raise ValueError(f"invalid umask {value!r}")
    if not 0 <= num <= 0o777:
        raise ValueError(f"invalid umask {value!r}: must be between 000 and 777 (octal)")
    return num


def to_uid(value: Any) -> int:
    """User id from a number or a user name that exists on this system."""
    if isinstance(value, str) and not value.strip().isdigit():
        try:
            return pwd.getpwnam(value.strip()).pw_uid
        except KeyError:
            raise ValueError(f"unknown user {value!r}") from None
    return to_int(value, minimum=0)


def to_gid(value: Any) -> int:
    """Group id from a number or a group name that exists on this system."""
    if isinstance(value, str) and not value.strip().isdigit():
        try:
            return grp.getgrnam(value.strip()).gr_gid
        except KeyError:
            raise ValueError(f"unknown group {value!r}") from None
    return to_int(value, minimum=0)


def to_rlimit(value: Any) -> int | None:
    """Resource limit: a non-negative int, or ``None``/empty/``-1``/``unlimited`` for no limit."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in ("", "unlimited", "infinity"):
        return None
    num = to_int(value, minimum=-1)
    return None if num == -1 else num


def plugin_option(
    config: Mapping[str, Any], key: str, convert: Callable[[Any], T], default: T
) -> T:
    """A plugin's option ``key`` converted (``default`` when absent), or a
    :class:`~circus.errors.ConfigError` naming the key, which circusd reports when it loads
    the configuration and the runner prints as one line."""
    if key not in config:
        return default
    try:
        return convert(config[key])
    except ValueError as exc:
        raise ConfigError(str(exc), key=key) from None

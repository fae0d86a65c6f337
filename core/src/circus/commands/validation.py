"""One validation layer for every decoded request, run before any command sees it.

Why a separate pass instead of checks inside each command: the defects of issue 9 all came from
values that a command never expected and that failed *after* something had changed (a watcher
registered under a name holding a lone surrogate could not be published, stopped or removed; a
request id nested 980 deep broke the encoder of the reply; ``graceful_timeout = inf`` made a kill
wait forever). Checking the whole request up front means a refused request changes no state and
consumes no event sequence number.

The rules:

* every string (keys included) is valid Unicode text: no lone surrogates, which JSON's
  ``\\ud800`` escapes can produce but UTF-8 cannot encode;
* nesting is at most :data:`MAX_DEPTH` containers deep, the request id at most
  :data:`MAX_ID_DEPTH`;
* numbers are finite and integers fit in 64 bits (``1e400`` parses as infinity);
* a watcher name (``name``) holds no control characters;
* command-specific ranges are applied by the property readers of :mod:`circus.commands.base`
  (e.g. :data:`MAX_SECONDS` for timeouts).
"""

from __future__ import annotations

import math
import re
from typing import Any

from circus.config.convert import MAX_SECONDS
from circus.errors import MessageError

#: Deepest nesting of lists/objects accepted anywhere in a request (the request object is 1).
MAX_DEPTH = 16
#: Deepest nesting of the request ``id`` (it is echoed in the reply, so it must re-encode).
MAX_ID_DEPTH = 4
#: Largest magnitude of an integer anywhere in a request.
MAX_INT = (1 << 63) - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def reject_constant(token: str) -> Any:
    """``parse_constant`` for :func:`json.loads`: ``NaN``/``Infinity`` are not JSON numbers."""
    raise ValueError(f"{token} is not a valid JSON number")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MessageError(f"{where} isn't valid text (lone surrogate)") from None


def check_value(value: Any, where: str, max_depth: int = MAX_DEPTH) -> None:
    """Walk ``value`` iteratively (no recursion to exhaust) and apply the generic rules."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INT:
                raise MessageError(f"{where} holds an integer out of range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise MessageError(f"{where} holds a number that isn't finite")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise MessageError(f"{where} is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, sub in item.items():
                    _check_text(key, where)
                    stack.append((sub, depth + 1))
            else:
                stack.extend((sub, depth + 1) for sub in item)


def check_id(msg_id: Any) -> None:
    """The request id must survive being echoed in the reply."""
    check_value(msg_id, "message invalid 'id'", MAX_ID_DEPTH)


def check_name(value: Any, key: str = "name") -> None:
    """A watcher name (or name pattern): text without control characters."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise MessageError(f"{key!r} must not contain control characters")


def check_request(message: dict[str, Any]) -> None:
    """Apply the generic rules to a decoded request; errno 3 :class:`MessageError` if broken."""
    check_value(message, "message invalid: the request")
    props = message.get("properties")
    if isinstance(props, dict):
        check_name(props.get("name"))


def check_range(key: str, value: float, minimum: float | None, maximum: float | None) -> None:
    """errno 3 naming ``key`` when ``value`` is outside ``[minimum, maximum]``."""
    if minimum is not None and value < minimum:
        raise MessageError(f"{key!r} must be at least {minimum:g}")
    if maximum is not None and value > maximum:
        raise MessageError(f"{key!r} must be at most {maximum:g}")


__all__ = [
    "MAX_DEPTH",
    "MAX_ID_DEPTH",
    "MAX_INT",
    "MAX_SECONDS",
    "check_id",
    "check_name",
    "check_range",
    "check_request",
    "check_value",
    "reject_constant",
]

"""The option table of ``set`` and ``add`` (contract section 3.3, ``set``).

Validation is all-or-nothing: every key is checked before anything is applied, and the error
texts (errno 3) are those of Circus 0.19 so clients that match on them keep working. A few
checks 0.19 lacks (``cmd``, ``working_dir``, ``args``, hook values) are added with texts in the
same style. Values keep their JSON types; the watcher converts them when it applies them.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Mapping
from typing import Any

from circus.config.convert import to_gid, to_uid
from circus.errors import MessageError

HOOK_NAMES = (
    "before_start",
    "after_start",
    "before_stop",
    "after_stop",
    "before_spawn",
    "after_spawn",
    "before_signal",
    "after_signal",
    "before_reap",
    "after_reap",
    "extended_stats",
)

INTEGER_KEYS = frozenset(
    {"numprocesses", "max_retry", "max_age", "max_age_variance", "stop_signal"}
)
NUMBER_KEYS = frozenset({"warmup_delay", "retry_in", "graceful_timeout"})
ID_KEYS = frozenset({"uid", "gid"})
BOOLEAN_KEYS = frozenset(
    {
        "send_hup",
        "shell",
        "copy_env",
        "respawn",
        "stop_children",
        "close_child_stdin",
        "close_child_stdout",
        "close_child_stderr",
        "singleton",
    }
)
STRING_KEYS = frozenset({"working_dir", "cmd"})
STREAM_KEYS = frozenset({"stdout_stream", "stderr_stream"})
OTHER_KEYS = frozenset({"env", "args", "hooks"})
VALID_KEYS = (
    INTEGER_KEYS | NUMBER_KEYS | ID_KEYS | BOOLEAN_KEYS | STRING_KEYS | STREAM_KEYS | OTHER_KEYS
)
VALID_PREFIXES = ("stdout_stream.", "stderr_stream.", "hooks.", "rlimit_")


def _is_int(value: Any) -> bool:
    # JSON ``true`` passes, as in 0.19 (a Python bool is an int).
    return isinstance(value, int)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _check_hook(name: str, value: Any) -> None:
    if name not in HOOK_NAMES:
        raise MessageError(f"Unknown hook {name!r}")
    if not isinstance(value, str):
        raise MessageError(f"hook {name!r} isn't a string")


def validate_option(key: str, value: Any) -> Any:
    """Check one ``set``/``add`` option and return the value to apply (errno 3 if invalid)."""
    if key not in VALID_KEYS and not key.startswith(VALID_PREFIXES):
        raise MessageError(f"unknown key {key!r}")
    if key in INTEGER_KEYS:
        if not _is_int(value):
            raise MessageError(f"{key!r} isn't an integer")
        if key == "numprocesses":
            return max(0, int(value))
    elif key in NUMBER_KEYS:
        if not _is_number(value):
            raise MessageError(f"{key!r} isn't a number")
        return float(value)  # `options` reports these as floats, as 0.19 stores them
    elif key in ID_KEYS:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise MessageError(f"{key!r} isn't an integer or string")
        try:
            return to_uid(value) if key == "uid" else to_gid(value)
        except ValueError as exc:
            raise MessageError(f"{key!r}: {exc}") from None
    elif key in BOOLEAN_KEYS:
        if not isinstance(value, bool):
            raise MessageError(f"{key!r} isn't a valid boolean")
    elif key in STRING_KEYS:
        if not isinstance(value, str):
            raise MessageError(f"{key!r} isn't a string")
    elif key == "args":
        if not isinstance(value, str) and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise MessageError(f"{key!r} isn't a string or a list of strings")
    elif key == "env":
        if not isinstance(value, dict):
            raise MessageError(f"{key!r} isn't a valid object")
        for name, item in value.items():
            if not isinstance(item, str):
                raise MessageError(f"{name!r} isn't a string")
    elif key == "hooks":
        if not isinstance(value, dict):
            raise MessageError(f"{value!r} isn't a valid hook dict")
        for name, item in value.items():
            _check_hook(name, item)
    elif key.startswith("hooks."):
        _check_hook(key[len("hooks.") :], value)
    elif key in STREAM_KEYS:
        if not isinstance(value, dict):
            raise MessageError(f"{key!r} isn't a valid object")
        if "class" not in value:
            raise MessageError(f"{key!r} must have a 'class' key")
    elif key.startswith("rlimit_"):
        if getattr(resource, "RLIMIT_" + key[len("rlimit_") :].upper(), None) is None:
            raise MessageError(f"{key!r} isn't a valid rlimit setting")
        # null means unlimited (RLIM_INFINITY)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise MessageError(f"{value!r} rlimit value isn't a valid int")
    return value


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every key first, so nothing is applied when one of them is wrong."""
    return {key: validate_option(key, value) for key, value in options.items()}

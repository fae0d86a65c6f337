"""Typing the ``KEY VALUE`` words of ``circusctl set`` for the daemon's ``set`` table.

Everything typed on a command line is a string, but the daemon validates JSON types strictly
(``"3"`` for ``numprocesses`` is rejected, contract 3.3 ``set``), so circusctl converts each value
to the type that key requires before sending. Keys the table does not know are sent as the
string typed: the daemon, not the client, decides which keys exist, and its error reply names
the key.
"""

from __future__ import annotations

import json
from typing import Any

from circus.config.convert import to_bool, to_float, to_int
from circus.signals import to_signum

INT_KEYS = frozenset({"numprocesses", "max_retry", "max_age", "max_age_variance"})
FLOAT_KEYS = frozenset({"warmup_delay", "retry_in", "graceful_timeout"})
BOOL_KEYS = frozenset({
    "send_hup", "stop_children", "shell", "copy_env", "respawn", "singleton",
    "close_child_stdin", "close_child_stdout", "close_child_stderr",
})
ID_KEYS = frozenset({"uid", "gid"})
STREAM_INT_OPTIONS = frozenset({"max_bytes", "backup_count"})


class SetValueError(ValueError):
    """A ``set`` value that cannot be converted; the message names the key."""


def parse_env(text: str) -> dict[str, str]:
    """``K=V,K2=V2`` (the form ``options`` prints env in) or a JSON object -> dict of strings."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            loaded = json.loads(stripped)
        except ValueError as exc:
            raise ValueError(f"invalid JSON object: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError("expected a JSON object")
        return {str(k): str(v) for k, v in loaded.items()}
    env: dict[str, str] = {}
    for item in stripped.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE pairs separated by commas, got {item!r}")
        env[key.strip()] = value.strip()
    return env


def parse_hooks(text: str) -> dict[str, str]:
    """``hook:dotted.callable,hook2:other.callable`` -> ``{hook: callable}``."""
    hooks: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, target = item.partition(":")
        if not sep or not name.strip() or not target.strip():
            raise ValueError(f"expected HOOK:dotted.callable pairs, got {item!r}")
        hooks[name.strip()] = target.strip()
    return hooks


def _convert(key: str, text: str) -> Any:
    if key in INT_KEYS:
        return to_int(text)
    if key in FLOAT_KEYS:
        return to_float(text)
    if key in BOOL_KEYS:
        return to_bool(text)
    if key in ID_KEYS:
        return int(text) if text.strip().isdigit() else text
    if key == "stop_signal":
        return to_signum(text)
    if key == "env":
        return parse_env(text)
    if key == "hooks":
        return parse_hooks(text)
    if key.startswith("rlimit_"):
        if text.strip().lower() in ("unlimited", "infinity"):
            return -1
        return to_int(text, minimum=-1)
    stream, dot, option = key.partition(".")
    if dot and stream in ("stdout_stream", "stderr_stream") and option in STREAM_INT_OPTIONS:
        return to_int(text, minimum=0)
    return text


def convert_set_options(pairs: list[str]) -> dict[str, Any]:
    """``["numprocesses", "3", "stop_signal", "HUP"]`` -> ``{"numprocesses": 3, "stop_signal": 1}``.

    Keys are lower-cased (as the original client did). Raises :class:`SetValueError` for an odd
    number of words or a value that does not fit its key.
    """
    if not pairs or len(pairs) % 2:
        raise SetValueError("expected KEY VALUE pairs (an even number of words after the name)")
    options: dict[str, Any] = {}
    for key_text, value in zip(pairs[::2], pairs[1::2], strict=True):
        key = key_text.lower()
        try:
            options[key] = _convert(key, value)
        except ValueError as exc:
            raise SetValueError(f"bad value for {key!r}: {exc}") from None
    return options

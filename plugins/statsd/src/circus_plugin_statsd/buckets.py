"""Statsd bucket names for circus events, compatible with the original plugin's dashboards.

The original builds ``circus.<application_name>.watcher.<res_name>.<action>`` from the raw topic,
so plugin watchers (``plugin:flapping``) put a ``:`` into the bucket, which the statsd line
protocol (``bucket:value|type``) reads as the end of the name. Here every character that is not a
letter, digit, ``_``, ``-`` or ``.`` becomes ``_``: ordinary watcher names give exactly the
original buckets, and ``plugin:flapping`` becomes ``plugin_flapping``.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_FORBIDDEN_IN_PREFIX = re.compile(r"[:|@\s]")


def bucket_safe(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``."""
    return _UNSAFE.sub("_", name)


def default_prefix(application_name: str) -> str:
    """The original's metric prefix: ``circus.<application_name>.watcher``."""
    return f"circus.{bucket_safe(application_name)}.watcher"


def check_prefix(prefix: str) -> str:
    """Reject a prefix the line protocol cannot carry (``:``, ``|``, ``@``, whitespace)."""
    if not prefix or _FORBIDDEN_IN_PREFIX.search(prefix) or not prefix.isascii():
        raise ValueError(
            f"invalid prefix {prefix!r}: use ASCII without ':', '|', '@' or whitespace"
        )
    return prefix.strip(".")


def event_bucket(res_name: str, action: str) -> str:
    """The counter bucket of one event, relative to the prefix: ``<watcher>.<action>``."""
    return f"{bucket_safe(res_name)}.{bucket_safe(action)}"


def processes_bucket(watcher: str) -> str:
    """The gauge bucket of a watcher's process count, relative to the prefix."""
    return f"{bucket_safe(watcher)}.numprocesses"

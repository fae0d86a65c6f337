"""``endpoint_owner``: what a request may change when the control socket belongs to a user.

With ``endpoint_owner`` set on an ``ipc://`` endpoint, the socket file is that user's, so any
request may come from them (circusd cannot tell). Such a request must not make circusd create
files or run processes as anybody else (issue 9, item 3). 0.19 only checked ``add``'s ``uid``;
these were open:

* ``add`` as the owner but with ``stdout_stream``/``stderr_stream`` paths: circusd (root)
  creates the files, e.g. inside a root-only directory;
* ``hooks``: circusd imports and runs the named Python callables itself, as root;
* ``set cmd`` (or ``args``, ``env``, ``working_dir``...) on a watcher running as root: the next
  process runs the owner's command as root; ``set uid``/``gid`` to another user;
* ``copy_env``: circusd's own environment (its secrets) handed to the owner's process.

So, when the policy applies: options that make circusd itself write or execute (streams, hooks),
``copy_env = true``, and ``uid``/``gid`` other than the owner's are refused in ``add`` and
``set``; and on a watcher that does not run as the owner, ``set`` may only change how many
processes run and how they are stopped or restarted (:data:`OPERATIONAL_KEYS`).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from typing import Any

from circus.commands.api import ArbiterAPI, WatcherAPI
from circus.config.convert import to_gid, to_uid
from circus.errors import MessageError

#: ``set`` keys allowed on a watcher that runs as another user than the owner.
OPERATIONAL_KEYS = frozenset(
    {
        "numprocesses",
        "graceful_timeout",
        "warmup_delay",
        "max_retry",
        "retry_in",
        "max_age",
        "max_age_variance",
        "stop_signal",
        "stop_children",
        "send_hup",
        "respawn",
    }
)
#: Option families circusd itself acts on (files it opens, callables it runs).
_DAEMON_ACTS = ("stdout_stream", "stderr_stream", "hooks")


def owner_uid(arbiter: ArbiterAPI) -> int | None:
    """The owner's uid when the policy applies (``endpoint_owner`` on an ipc endpoint)."""
    owner = getattr(arbiter, "endpoint_owner", None)
    if owner is None or not arbiter.endpoint.startswith("ipc://"):
        return None
    try:
        return to_uid(owner)
    except ValueError:
        return -1  # an owner that no longer resolves matches nobody


def _owner_groups(uid: int) -> set[int]:
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return set()
    return set(os.getgrouplist(entry.pw_name, entry.pw_gid))


def _check_options(uid: int, options: Mapping[str, Any]) -> None:
    for key, value in options.items():
        if key.split(".", 1)[0] in _DAEMON_ACTS:
            raise MessageError(f"{key!r} cannot be set through a socket owned by endpoint_owner")
        if key == "copy_env" and value:
            raise MessageError("'copy_env' cannot be enabled through a socket owned by "
                               "endpoint_owner (it would hand circusd's environment over)")
        if key == "uid" and _resolve(to_uid, value) != uid:
            raise MessageError("uid does not match endpoint_owner")
        if key == "gid" and _resolve(to_gid, value) not in _owner_groups(uid):
            raise MessageError("gid is not a group of endpoint_owner")


def _resolve(convert: Any, value: Any) -> int | None:
    try:
        return int(convert(value))
    except (TypeError, ValueError):
        return None


def check_add(arbiter: ArbiterAPI, options: Mapping[str, Any]) -> None:
    """``add``: the new watcher runs as the owner and circusd does nothing on its behalf."""
    uid = owner_uid(arbiter)
    if uid is None:
        return
    if "uid" not in options:
        raise MessageError("uid does not match endpoint_owner")
    _check_options(uid, options)


def check_set(arbiter: ArbiterAPI, watcher: WatcherAPI, options: Mapping[str, Any]) -> None:
    """``set``: as for ``add``, and only operational keys on another user's watcher."""
    uid = owner_uid(arbiter)
    if uid is None:
        return
    _check_options(uid, options)
    current = watcher.get_option("uid")
    runs_as = os.geteuid() if current is None else _resolve(to_uid, current)
    if runs_as == uid:
        return
    for key in options:
        if key not in OPERATIONAL_KEYS:
            raise MessageError(
                f"{key!r} cannot be changed on {watcher.name!r}: it does not run as "
                "endpoint_owner"
            )


__all__ = ["OPERATIONAL_KEYS", "check_add", "check_set", "owner_uid"]

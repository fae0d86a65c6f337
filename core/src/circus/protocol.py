"""Message shapes of the control and event channels (the wire contract of Circus 0.19).

Pure functions, no sockets: the daemon, circusctl, the plugin base class and the tests all build
and read messages through this module, so the contract lives in one place.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from circus.errors import Errno

JsonDict = dict[str, Any]

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_PUBSUB = "tcp://127.0.0.1:5556"
DEFAULT_STATS_ENDPOINT = "tcp://127.0.0.1:5557"
DEFAULT_MULTICAST = "udp://237.219.251.97:12027"
EVENT_PREFIX = "watcher."
#: topics of the stats stream: ``stat.<watcher>``, ``stat.<watcher>.<pid>`` (contract 5)
STAT_PREFIX = "stat."


def new_id() -> str:
    """A request id or client identity as the original clients make them (uuid4 hex)."""
    return uuid.uuid4().hex


def make_message(command: str, **properties: Any) -> JsonDict:
    """A call: the daemon answers it with exactly one reply carrying the same ``id``."""
    return {"id": new_id(), "command": command, "properties": properties}


def cast_message(command: str, **properties: Any) -> JsonDict:
    """A cast: executed like a call, but the daemon sends nothing back."""
    return {"id": new_id(), "command": command, "msg_type": "cast", "properties": properties}


def ok_reply(fields: Mapping[str, Any] | None = None, *, msg_id: Any = None) -> JsonDict:
    """Success reply: ``status``/``time``, then the command's fields at top level, then ``id``.

    A ``status`` field of the command overrides ``"ok"`` (``status NAME`` relies on it).
    """
    reply: JsonDict = {"status": "ok", "time": time.time()}
    if fields:
        reply.update(fields)
    reply["id"] = msg_id
    return reply


def error_reply(
    reason: str, errno: Errno, *, msg_id: Any = None, tb: str | None = None
) -> JsonDict:
    return {
        "status": "error",
        "reason": reason,
        "tb": tb,
        "time": time.time(),
        "errno": int(errno),
        "id": msg_id,
    }


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message).encode("utf-8")


def decode(payload: bytes | str) -> Any:
    return json.loads(payload)


def res_name(watcher_name: str) -> str:
    """The watcher name as it appears in event topics: lower case, spaces as ``_``."""
    return watcher_name.lower().replace(" ", "_")


def event_topic(watcher_name: str, action: str) -> bytes:
    return f"{EVENT_PREFIX}{res_name(watcher_name)}.{action}".encode()


def split_topic(topic: bytes | str) -> tuple[str, str]:
    """``watcher.<res_name>.<action>`` -> ``(res_name, action)``.

    The action is the last dot-separated part, so a watcher name containing dots still
    round-trips (the original splits on every dot and mangles such names).
    """
    text = topic.decode("utf-8") if isinstance(topic, bytes) else topic
    if not text.startswith(EVENT_PREFIX):
        raise ValueError(f"not an event topic: {text!r}")
    name, sep, action = text[len(EVENT_PREFIX):].rpartition(".")
    if not sep or not name or not action:
        raise ValueError(f"not an event topic: {text!r}")
    return name, action

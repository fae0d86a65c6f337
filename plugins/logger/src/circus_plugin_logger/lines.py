"""One event -> one line of text, in the two formats the logger writes.

``text`` is the seed example's ``topic::message``, plus the newline the seed forgot (without it
every event of a file ran together on one line). ``json`` is for machines: one object per line
with the event's time, topic, watcher, action and decoded payload.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from circus.protocol import split_topic

Formatter = Callable[[str, str], str]


def text_line(topic: str, message: str) -> str:
    """``watcher.web.spawn::{"process_pid": 12, ...}`` and a newline."""
    return f"{topic}::{message}\n"


def json_line(topic: str, message: str) -> str:
    """A JSON object per event; ``time`` is the daemon's timestamp when the event has one."""
    try:
        payload: object = json.loads(message)
    except ValueError:
        payload = message  # keep what arrived rather than drop the event
    try:
        watcher: str | None
        action: str | None
        watcher, action = split_topic(topic)
    except ValueError:
        watcher = action = None
    when = payload.get("time") if isinstance(payload, dict) else None
    if not isinstance(when, int | float) or isinstance(when, bool):
        when = time.time()
    record = {"time": when, "topic": topic, "watcher": watcher, "action": action,
              "payload": payload}
    return json.dumps(record, separators=(",", ":")) + "\n"


FORMATS: dict[str, Formatter] = {"text": text_line, "json": json_line}

"""A watcher's state, and the events that announce each change of it.

The state only changes in :meth:`circus.watcher.policy.Policy.go`, which returns a
:class:`Transition`; the runtime publishes every transition through :func:`announcements`, so a
state change cannot go unannounced by construction.

``starting`` and ``stopping`` are the transient states of a ``start``/``stop`` operation: as in
Circus 0.19 they have no event of their own, the operation's end is announced (``start``, ``stop``).
``backoff`` and ``fatal`` are ours (crash-loop protection, docs/daemon.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class State(enum.Enum):
    """What ``status`` answers for a watcher."""

    STOPPED = "stopped"
    STARTING = "starting"
    ACTIVE = "active"
    #: a respawn is held back after quick failures; an event says when the next try comes
    BACKOFF = "backoff"
    STOPPING = "stopping"
    #: gave up after ``give_up_after`` quick failures in a row; ``start`` tries again
    FATAL = "fatal"


#: states in which exits are replaced (the watcher is meant to run)
RUNNING = frozenset({State.STARTING, State.ACTIVE, State.BACKOFF})


@dataclass(frozen=True)
class Transition:
    """The state went from ``old`` to ``new``; ``payload`` is the event's (``time`` first)."""

    old: State
    new: State
    payload: dict[str, Any] = field(default_factory=dict)


def announcements(transition: Transition) -> list[str]:
    """The event actions that announce ``transition``, in order.

    * ``starting``/``stopping``: none (announced when the operation ends, as in 0.19).
    * ``active``: ``start`` when a start ends; none after a backoff (the retry's ``spawn``
      events show it, and a second ``start`` would read as a new start to the flapping plugin).
    * ``backoff``: ``backoff`` (preceded by ``start`` when a start ends held back).
    * ``stopped``: ``stop``; ``fatal``: ``fatal``.
    """
    old, new = transition.old, transition.new
    if new is State.ACTIVE:
        return ["start"] if old is State.STARTING else []
    if new is State.BACKOFF:
        return ["start", "backoff"] if old is State.STARTING else ["backoff"]
    if new is State.STOPPED:
        return ["stop"]
    if new is State.FATAL:
        return ["fatal"]
    return []

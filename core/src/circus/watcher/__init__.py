"""A watcher: a named group of identical processes kept running.

Read top-down:

* :mod:`~circus.watcher.state` -- the states (``stopped``, ``starting``, ``active``, ``backoff``,
  ``stopping``, ``fatal``) and the events announcing each change;
* :mod:`~circus.watcher.policy` -- every decision (respawn now or later, back off, give up,
  ``max_age``, the process count) as a pure state machine: events in, actions out;
* :mod:`~circus.watcher.runtime` -- :class:`Watcher`: the operations the commands call (start,
  stop, reload, incr...), the operation lock, events, hooks and output; it feeds the policy;
* :mod:`~circus.watcher.engine` -- carries out the policy's actions: spawns (one path), retires,
  the backoff timer, the respawn right after an exit;
* :mod:`~circus.watcher.processes` -- spawning one process, killing one, their stats;
* :mod:`~circus.watcher.options` -- ``options``/``get``/``set`` through the option schema;
* :mod:`~circus.watcher.hooks` -- the user hooks of contract 8.5.
"""

from circus.watcher.runtime import SpawnFailed, Watcher
from circus.watcher.state import State

__all__ = ["SpawnFailed", "State", "Watcher"]

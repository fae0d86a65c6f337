"""This repository's own test plumbing: not shipped, not for plugin authors.

``circus.testing`` (in circus-core) is the kit plugin authors get; what is here only serves this
repository's tests and benchmarks, which check things a plugin's tests never need to: that a
process was reaped and not left a zombie (``/proc`` states), that a whole process tree is gone,
how the control channel copes with a peer that breaks the wire protocol.

The root ``conftest.py`` puts ``tests/`` on ``sys.path`` (pytest runs with
``--import-mode=importlib``, and ``tests/`` is no package), so every test tree
(``core/tests``, ``plugins/*/tests``, ``tests``) imports it the same way, as do the benchmarks
(``bench/harness.py`` does the same)::

    from support import kill_tree, wait_gone
    from support.zmtp import zmtp_unfinished
"""

from support.procs import kill_tree, pid_state, wait_dead, wait_gone
from support.zmtp import zmtp_unfinished

__all__ = ["kill_tree", "pid_state", "wait_dead", "wait_gone", "zmtp_unfinished"]

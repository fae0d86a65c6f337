"""Root conftest: the suite holds whatever else is installed in the venv.

The fixtures for plugin authors (``circusd``, ``circus_plugin``, ``circus_events``,
``plugin_harness``) come from circus-core's ``pytest11`` entry point, like in any plugin's own
suite. Third-party hook distributions (``circus.hooks`` entry points) are not loaded, here or in
the circusd and plugin processes the tests start (they inherit the variable): a hook that drops
or rewrites events must not change what our tests see. Tests of hook loading set
``CIRCUS_LOAD_HOOKS`` themselves.
"""

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

os.environ["CIRCUS_LOAD_HOOKS"] = ""

# This repository's own test plumbing (``tests/support``: /proc states, teardown by pid, a
# hand-written ZMTP peer) is no part of circus-core. pytest runs with --import-mode=importlib
# and tests/ is no package, so every test tree imports it as ``support`` from here.
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))


def _ignore_without_passing_it_on() -> None:
    """Turn every signal this test process inherited as ignored (``nohup``, a shell's
    background job) into a do-nothing handler, and unblock the signal mask.

    An ignored disposition survives ``exec``, a handler does not: the in-process watchers that
    tests run spawn children, which would otherwise start with SIGHUP or SIGINT ignored and
    never react to ``send_hup`` or ``kill --signum INT``. circusd itself undoes the same at start
    (``circus.circusd.clean_signal_state``); this process keeps ignoring the signals, so a
    hangup still does not end the run.
    """
    kept = {signal.SIGPIPE, signal.SIGXFSZ, signal.SIGKILL, signal.SIGSTOP}
    for signum in signal.valid_signals() - kept:
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(signum) == signal.SIG_IGN:
                signal.signal(signum, lambda *_: None)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


_ignore_without_passing_it_on()

pytest_plugins = ["pytester"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Count the skips on a line of their own: a skip is a test that proved nothing."""
    skipped = len(terminalreporter.stats.get("skipped", []))
    required = os.environ.get("CIRCUS_REQUIRE_PARTS", "") not in ("", "0")
    terminalreporter.write_line(
        f"circus: {skipped} test(s) skipped; missing real parts "
        f"{'fail (CIRCUS_REQUIRE_PARTS is set, as in CI)' if required else 'are skipped'}")

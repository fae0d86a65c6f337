"""Fixtures shared by the cross-distribution tests: the ORIGINAL Circus 0.19 for interoperability.

``original_circus`` (session) installs circus 0.19 into ``.cache/circus-0.19`` once and returns its
paths; ``original_circusd`` is a factory that starts the original daemon from config text on
``ipc://`` endpoints in the test's tmp dir and ends it (and its children) by pid at teardown.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

# the modules beside this file (original_circus, tmux_session, support) are importable through
# the root conftest.py, which puts tests/ on sys.path (the benchmarks do the same)
from original_circus import (
    OriginalCircus,
    OriginalCircusUnavailable,
    OriginalDaemon,
    ensure_original_circus,
    start_original_circusd,
)
from tmux_session import NO_TMUX, TmuxSession, have_tmux

from circus.testing import missing_part

StartOriginal = Callable[..., OriginalDaemon]


@pytest.fixture(scope="session")
def original_circus() -> OriginalCircus:
    """The original Circus 0.19 (``.python``, ``.circusd``, ``.circusctl``), installed once."""
    try:
        return ensure_original_circus()
    except (OriginalCircusUnavailable, TimeoutError) as exc:
        pytest.fail(f"cannot install the original circus 0.19 for interop tests: {exc}")


@pytest.fixture
def original_circusd(
    original_circus: OriginalCircus, tmp_path: Path
) -> Iterator[StartOriginal]:
    """Factory: ``original_circusd(config_text, circus_options=..., env=...) -> OriginalDaemon``.

    Each call starts one original circusd in its own folder under ``tmp_path`` and returns once it
    answers ``status``; every daemon started is stopped at teardown (SIGTERM, then SIGKILL of the
    daemon and its recorded children by pid).
    """
    started: list[OriginalDaemon] = []

    def start(
        config_text: str = "",
        *,
        circus_options: Mapping[str, object] | None = None,
        startup_timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> OriginalDaemon:
        directory = tmp_path / f"original-{len(started)}"
        daemon = start_original_circusd(
            original_circus, directory, config_text,
            circus_options=circus_options, startup_timeout=startup_timeout, env=env,
        )
        started.append(daemon)
        return daemon

    yield start
    for daemon in reversed(started):
        daemon.stop()


@pytest.fixture
def stats_endpoint() -> Iterator[str]:
    """An ``ipc://`` stats endpoint in a short temporary folder (``stats_endpoint`` of a
    ``[circus]`` section), removed at teardown."""
    folder = tempfile.mkdtemp(prefix="circus-stats-")
    try:
        yield f"ipc://{folder}/stats.sock"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tmux() -> type[TmuxSession]:
    """:class:`TmuxSession` (a program in a private tmux server), once tmux is known to be
    installed: a missing tmux skips the test locally and fails it in CI (``missing_part``), like
    every real part; checked before the test starts anything."""
    if not have_tmux():
        missing_part(NO_TMUX)
    return TmuxSession

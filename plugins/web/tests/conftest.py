"""web plugin tests: make ``web_browser.py`` beside this file importable (pytest runs with
--import-mode=importlib), and the fixtures: a real circusd running the dashboard, a real
headless Chromium."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_browser import Browser, Dashboard


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Callable[..., Dashboard]]:
    """``dashboard(watchers_ini, **plugin_options)``: circusd with ``[plugin:web]``, once the
    page answers; stopped (and every child ended) at teardown."""
    started: list[Dashboard] = []

    def start(watchers: str, **options: str) -> Dashboard:
        board = Dashboard(watchers, tmp_path / f"d{len(started)}", **options)
        started.append(board)
        return board.start()

    yield start
    for board in started:
        board.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Debian's headless Chromium through chromedriver; ended by pid at teardown."""
    with Browser(tmp_path / "chromium-profile") as driven:
        yield driven

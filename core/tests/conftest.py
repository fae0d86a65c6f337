"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["pidfd", "sigchld"])
def exit_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with pidfds and again with the SIGCHLD fallback (``circus.child_exits``),
    so both ways of noticing exits are exercised on Linux."""
    if request.param == "sigchld":
        monkeypatch.setenv("CIRCUS_NO_PIDFD", "1")
    else:
        monkeypatch.delenv("CIRCUS_NO_PIDFD", raising=False)
    return str(request.param)

"""Fixtures shared by the core tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq


@pytest.fixture
def context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    """A ZeroMQ context for a test's raw client sockets, destroyed (sockets and all) after."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture(params=["pidfd", "sigchld"])
def exit_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with pidfds and again with the SIGCHLD fallback (``circus.child_exits``),
    so both ways of noticing exits are exercised on Linux."""
    if request.param == "sigchld":
        monkeypatch.setenv("CIRCUS_NO_PIDFD", "1")
    else:
        monkeypatch.delenv("CIRCUS_NO_PIDFD", raising=False)
    return str(request.param)

"""Fixtures of the statsd plugin's tests (the servers themselves are in statsd_servers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib: make the helper module beside this file importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from statsd_servers import EtsyStatsd, EtsyUnavailable, UdpReceiver, run_etsy_statsd

from circus.testing import missing_part


@pytest.fixture
def udp_receiver() -> Iterator[UdpReceiver]:
    receiver = UdpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def etsy_statsd(tmp_path: Path) -> Iterator[EtsyStatsd]:
    try:
        with run_etsy_statsd(tmp_path) as daemon:
            yield daemon
    except EtsyUnavailable as exc:
        missing_part(str(exc))

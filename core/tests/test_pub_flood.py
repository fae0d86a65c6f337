"""circusd's PUB sockets (events, stats stream) against a peer that never finishes a message.

A PUB reads from its peers too (their subscriptions), and libzmq buffers a message there until
its last frame has arrived, counting only complete messages against the high-water mark. Measured
with libzmq's PUB: a raw ZMTP peer that greets as a SUB and streams 1 MiB frames with the MORE
flag grew circusd by ~500 MB/s (+2.9 GB in 6 s; with 4 KiB frames +2.4 GB, kept after it left).
circusd now serves these endpoints itself when CURVE is off (circus.listeners.publisher), reading
at most one subscription's worth; with CURVE the peer never gets past libzmq's handshake.
docs/control-channel.md.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import psutil
import pytest
from support import zmtp_unfinished
from support.curve import curve_as_admin

from circus.testing import CircusdProcess, log_count

#: 768 x 1 MiB frames over one connection: well past the bound when buffered, cheap when not
FRAMES = 768
#: what the flood may cost circusd at its peak (it reads at most one 4 KiB subscription)
PEAK_LIMIT_MIB = 16


def _config(tmp_path: Path, curve: str = "") -> str:
    return (f"[circus]\n{curve}statsd = true\nstats_endpoint = ipc://{tmp_path}/stats.sock\n\n"
            "[watcher:sleeper]\ncmd = sleep 600\n")


def _flood(daemon: CircusdProcess, channel: str) -> tuple[int, int]:
    """Flood ``channel`` as a SUB; returns (bytes the peer got out, circusd's peak RSS growth)."""
    path = (daemon.pubsub_endpoint if channel == "events"
            else f"ipc://{daemon.tmp_path}/stats.sock")[len("ipc://"):]
    sent = [0]

    def run() -> None:
        # OSError: circusd closed the connection, what a guarded daemon does
        with contextlib.suppress(OSError):
            sent[0] = zmtp_unfinished(path, frames=FRAMES, socket_type="SUB")

    proc = psutil.Process(daemon.pid)
    before = peak = proc.memory_info().rss
    flood = threading.Thread(target=run, daemon=True)
    flood.start()
    while flood.is_alive():
        peak = max(peak, proc.memory_info().rss)
        flood.join(0.02)
    assert daemon.call("status")["status"] == "ok"
    return sent[0], (peak - before) >> 20


@pytest.mark.parametrize("channel", ["events", "stats"])
def test_unfinished_multipart_flood_on_a_pub_socket(tmp_path: Path, channel: str) -> None:
    with CircusdProcess(_config(tmp_path), tmp_path) as daemon:
        sent, growth = _flood(daemon, channel)
        refused = log_count(daemon, "closed a subscriber")
    assert sent == 0  # cut off at its first frame: a subscription is one frame of <= 4 KiB
    assert refused >= 1
    assert growth < PEAK_LIMIT_MIB, f"peak growth {growth} MiB"


@pytest.mark.parametrize("channel", ["events", "stats"])
def test_with_curve_the_flooding_peer_never_gets_in(
    tmp_path: Path, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    curve = curve_as_admin(tmp_path / "keys", monkeypatch)
    with CircusdProcess(_config(tmp_path, curve), tmp_path) as daemon:
        sent, growth = _flood(daemon, channel)
    assert sent == 0  # circusd closed the connection (the NULL greeting is refused)
    assert growth < 64, f"peak growth {growth} MiB"

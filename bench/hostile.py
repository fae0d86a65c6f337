"""Hostile control-channel peers that only a hand-written ZMTP client can play, for bench_fuzz.

circusd reads the control channel's wire itself when CURVE is off (``circus/listeners/native.py``)
and bounds every buffer a peer could make it fill. Each function here plays one peer that tries
to make circusd hold memory, measures what circusd's RSS did meanwhile (:class:`RssPeak`) and
whether it still answered an ordinary client (the probe) while the peers held their ground:

* :func:`never_reading`: clients that send requests and never read the replies;
* :func:`hoarding`: many connections, each holding an almost complete 1 MiB request;
* :func:`empty_frames`: empty frames with the MORE flag, streamed without end.

Every socket operation and every wait is bounded; every socket is closed before a function
returns.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import psutil
from support.zmtp import handshake

MiB = 1 << 20


@dataclass(frozen=True)
class Target:
    """The circusd under attack: its control socket's path, its pid (for its RSS) and a
    probe, an ordinary client's request that returns whether circusd answered it."""

    path: str
    pid: int
    probe: Callable[[], bool]


@dataclass
class RssPeak:
    """circusd's RSS before, at its highest while the block runs (sampled every 10 ms on a
    thread of its own) and at the end, in bytes."""

    pid: int
    before: int = 0
    peak: int = 0
    after: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    @contextlib.contextmanager
    def watching(self) -> Iterator[RssPeak]:
        self.before = self.peak = self._rss()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5)
            self.after = self._rss()
            self.peak = max(self.peak, self.after)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self._rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.before) / MiB


def _frame(body: bytes, *, more: bool = False) -> bytes:
    """One ZMTP 3.0 message frame (short or long form)."""
    flags = 0x01 if more else 0x00
    if len(body) > 255:
        return bytes([flags | 0x02]) + len(body).to_bytes(8, "big") + body
    return bytes([flags, len(body)]) + body


def _closed_by_circusd(sock: socket.socket) -> bool:
    """Whether circusd has closed this connection: read what is waiting (without blocking)
    until the end of the stream, a reset, or nothing more for now (still open)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def never_reading(target: Target, peers: int, *, cap: int = 256 * MiB, stall: float = 2.0,
                  limit: float = 60.0) -> dict[str, float]:
    """``peers`` clients each send ``status`` requests (a 200-byte id, so each reply is some
    300 bytes) and never read a reply, all at once on one selector, until no connection has
    taken a byte for ``stall`` seconds, ``cap`` bytes were sent in all or ``limit`` seconds
    passed. circusd should stop reading each once 1 MiB of its replies waits
    (``WRITE_PAUSE``), and close the worst once 32 MiB wait in all (``WRITE_BUDGET``). Then
    the probe runs while they are still connected. Returns the requests and MiB sent, how
    many connections circusd closed, the answer of the probe and the RSS growth."""
    request = _frame(json.dumps({"id": "x" * 200, "command": "status"}).encode())
    batch = request * 64
    connected: list[socket.socket] = []
    sent = closed = 0
    answered = False
    watch = RssPeak(target.pid)
    with watch.watching(), selectors.DefaultSelector() as selector:
        try:
            for _ in range(peers):
                connected.append(handshake(target.path))
                connected[-1].setblocking(False)
                selector.register(connected[-1], selectors.EVENT_WRITE)
            began = idle_since = time.monotonic()
            while (sent < cap and time.monotonic() - idle_since < stall
                   and time.monotonic() - began < limit):
                for key, _ in selector.select(timeout=0.1):
                    sock = cast(socket.socket, key.fileobj)
                    try:
                        sent += sock.send(batch)
                        idle_since = time.monotonic()
                    except BlockingIOError:
                        pass
                    except OSError:  # closed by circusd: past the budget of all unread
                        selector.unregister(sock)
                        closed += 1
            answered = target.probe()
            registered = {key.fd for key in selector.get_map().values()}
            closed += sum(_closed_by_circusd(sock) for sock in connected
                          if sock.fileno() in registered)
        finally:
            for sock in connected:
                sock.close()
    return {"requests": sent / len(request), "sent_mib": sent / MiB, "closed": float(closed),
            "answered": float(answered), "growth_mib": watch.growth_mib}


def hoarding(target: Target, peers: int, *, keep: int, expect_closed: int,
             timeout: float = 20.0) -> dict[str, float]:
    """``peers`` connections each send all but 10 bytes of a request of ``keep`` + 10 bytes
    (``keep`` just under the 1 MiB a request may keep) and wait. circusd should close those
    holding the most once their total passes ``PARTIAL_BUDGET``: at least ``expect_closed``
    of them, which is waited for (bounded by ``timeout``). The probe runs while the rest hold
    their share. Returns how many were closed, the answer of the probe and the RSS growth."""
    header = b"\x02" + (keep + 10).to_bytes(8, "big")  # the last frame, long form
    body = b"p" * keep
    socks: list[socket.socket] = []
    gone: set[int] = set()
    answered = False
    watch = RssPeak(target.pid)
    with watch.watching():
        try:
            for _ in range(peers):
                sock = handshake(target.path, timeout=timeout)
                socks.append(sock)
                with contextlib.suppress(OSError):  # closed while sending: evicted already
                    sock.sendall(header + body)
            answered = target.probe()
            deadline = time.monotonic() + timeout
            while len(gone) < expect_closed and time.monotonic() < deadline:
                gone |= {index for index, sock in enumerate(socks)
                         if index not in gone and _closed_by_circusd(sock)}
                time.sleep(0.05)
            answered = answered and target.probe()
        finally:
            for sock in socks:
                sock.close()
    return {"closed": float(len(gone)), "answered": float(answered),
            "growth_mib": watch.growth_mib}


def empty_frames(target: Target, seconds: float, *, cap: int = 16 * MiB) -> dict[str, float]:
    """For ``seconds``, one client streams empty frames with the MORE flag (2 bytes each,
    never the last), reconnecting whenever circusd closes the connection, which it should do
    past 256 frames. Meanwhile the target's probe runs again and again. A connection
    that takes ``cap`` bytes without being closed counts as not closed. Returns the
    connections made and closed by circusd, the most bytes one of them took, the probes
    answered and made, and the RSS growth."""
    chunk = b"\x01\x00" * 4096
    stop = threading.Event()
    counts = {"connections": 0, "closed": 0, "most": 0, "bytes": 0}

    def stream() -> None:
        while not stop.is_set():
            taken = 0
            try:
                with handshake(target.path) as sock:
                    counts["connections"] += 1
                    while taken < cap and not stop.is_set():
                        sock.sendall(chunk)
                        taken += len(chunk)
            except OSError:
                counts["closed"] += 1
            counts["most"] = max(counts["most"], taken)
            counts["bytes"] += taken

    watch = RssPeak(target.pid)
    made = answered = 0
    with watch.watching():
        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                made += 1
                answered += target.probe()
        finally:
            stop.set()
            thread.join(10)
    return {"connections": float(counts["connections"]), "closed": float(counts["closed"]),
            "most_kib": counts["most"] / 1024, "sent_mib": counts["bytes"] / MiB,
            "probes": float(made), "answered": float(answered),
            "growth_mib": watch.growth_mib}

"""Fuzz the control channel of a real circusd with hostile requests, then check it is unharmed.

Usage: ``.venv/bin/python bench/bench_fuzz.py [--quick] [--write] [--seed N]``.

Sends at least 100,000 requests (``--quick``: 5,000 and no 16 MiB ones, a CI smoke run) from
several DEALER sockets and a REQ socket: random bytes, truncated and non-object JSON, wrong
types, huge ids, deep nesting, non-UTF-8 bytes, lone surrogates, control characters, NaN, extra
and empty frames, 1/4/16 MiB requests, and unfinished multipart messages sent over raw ZMTP (a
libzmq client cannot send one: it holds a message until its last frame). Every state-changing
command carries an invalid property, so nothing may change. Then checks: circusd alive,
``numwatchers`` p50 within 1.5x of before, RSS growth <= 32 MB, every well-framed request
answered. Then the peers of ``hostile.py`` (clients that never read their replies, connections
each holding an almost complete 1 MiB request, empty frames with MORE without end), each
against the bound circusd documents for it and with circusd answering meanwhile. Last, the
watchers' pids unchanged, no traceback, the framing warnings within the log throttle's rate.

The p50 ratio is the one timed check: a full run fails on it, a ``--quick`` run (CI, on a
shared, loaded machine where a 1.68x was seen at load 6.5) reports it without failing; every
other check holds in both. ``--write`` puts the table into docs/control-channel.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import zmq
from harness import ROOT, machine_line, median, rss_mb, table, write_section
from hostile import MiB, Target, empty_frames, hoarding, never_reading
from support import zmtp_unfinished

from circus.client import CircusClient
from circus.commands.dispatch import MAX_MESSAGE_SIZE
from circus.errors import CallTimeout
from circus.listeners.native import PARTIAL_BUDGET, QUEUE_BUDGET, WRITE_BUDGET
from circus.testing import CircusdProcess

DOC = ROOT / "docs" / "control-channel.md"
CONFIG = "[watcher:web]\ncmd = sleep 3600\nnumprocesses = 2\n\n[watcher:worker]\ncmd = sleep 3600\n"
BATCH = 400  # replies outstanding per socket, below ZeroMQ's 1000-message high-water marks
Frames = list[bytes]

# Commands that change state are only ever sent with an invalid property (see ``_bad_name``);
# quit/reload/reloadconfig are never sent: they take no property that could make them invalid.
MUTATING = ["start", "stop", "restart", "incr", "decr", "kill", "signal", "set", "add", "rm"]
READING = ["list", "status", "numprocesses", "options", "get", "stats", "globaloptions",
           "numwatchers", "dstats", "listsockets"]


def _bad_name(rng: random.Random) -> bytes:
    """A JSON value for ``name`` that every command must refuse."""
    return rng.choice([
        b"5", b"[1, 2]", b'{"a": 1}', b"true", b'"web\\ud800"', b'"\\udfffx"', b'"we\\u0001b"',
        b'"web\\n"', b"1e400", b'"' + b"[" * 40 + b'"', b"[" * 40 + b"]" * 40,
    ])


def _hostile(rng: random.Random) -> tuple[Frames, bool]:
    """One request: (frames a DEALER sends, whether it is well framed so a reply is due)."""
    kind = rng.randrange(14)
    command = rng.choice(MUTATING + READING).encode()
    if kind == 0:  # random bytes
        return [rng.randbytes(rng.randrange(1, 200))], True
    if kind == 1:  # truncated JSON
        text = b'{"id": "t", "command": "' + command + b'", "properties": {"name": "web"}}'
        return [text[: rng.randrange(1, len(text) - 1)]], True
    if kind == 2:  # JSON that is not an object
        return [rng.choice([b"[]", b"42", b'"status"', b"null", b"[{}]"])], True
    if kind == 3:  # wrong types
        return [b'{"id": 3, "command": ' + rng.choice([b"5", b"[]", b"null", b'{"x": 1}'])
                + b', "properties": ' + rng.choice([b"[1]", b"3", b'"x"', b"null"]) + b"}"], True
    if kind == 4:  # huge ids
        huge = rng.choice([b'"' + b"i" * 200_000 + b'"', b"9" * 5000, b"[" * 300 + b"]" * 300])
        return [b'{"id": ' + huge + b', "command": "numwatchers"}'], True
    if kind == 5:  # deep nesting in properties
        depth = rng.choice([20, 100, 1000, 5000])
        return [b'{"command": "' + command + b'", "properties": {"name": '
                + b"[" * depth + b"]" * depth + b"}}"], True
    if kind == 6:  # non-UTF-8 inside the JSON
        return [b'{"command": "list", "properties": {"name": "\xff\xfe\xc0"}}'], True
    if kind == 7:  # invalid names for every command (lone surrogates, control chars, types)
        return [b'{"id": 7, "command": "' + command + b'", "properties": {"name": '
                + _bad_name(rng) + b', "cmd": "sleep 1", "options": {"cmd": "id"}}}'], True
    if kind == 8:  # numbers that never end
        value = rng.choice([b"NaN", b"Infinity", b'"inf"', b"1e300", b"-1", b"1e400"])
        return [b'{"command": "kill", "properties": {"name": "web", "waiting": true,'
                b' "graceful_timeout": ' + value + b', "signum": "NOPE"}}'], True
    if kind == 9:  # extra frames
        return [b"x"] * rng.randrange(2, 6) + [b'{"command": "list"}'], False
    if kind == 10:  # empty frames
        return rng.choice([[b""], [b"", b""], [b"", b"", b""]]), False  # _expects_reply decides
    if kind == 11:  # REQ-style envelope around garbage
        return [b"", rng.randbytes(rng.randrange(1, 64))], True
    if kind == 12:  # unknown commands and bad properties objects
        return [b'{"command": "' + rng.randbytes(8).hex().encode() + b'"}'], True
    return [b'{"command": "' + command + b'", "properties": null}'], True


def _expects_reply(frames: Frames, flagged: bool) -> bool:
    # [b""] is a one-frame empty payload (answered: "empty payload"); [b"", b""] is a REQ
    # envelope with an empty payload (answered); three empty frames are bad framing (dropped)
    if frames and all(f == b"" for f in frames):
        return len(frames) <= 2
    return flagged


def _dealer(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def _drain(sock: zmq.Socket[bytes], due: int, timeout: float = 30.0) -> int:
    """Receive ``due`` replies (bounded); returns how many were missing."""
    deadline = time.monotonic() + timeout
    while due and time.monotonic() < deadline:
        if sock.poll(100):
            sock.recv_multipart()
            due -= 1
    return due


def _round_trips(client: CircusClient, count: int) -> list[float]:
    for _ in range(50):
        client.call("numwatchers")
    samples = []
    for _ in range(count):
        begin = time.perf_counter()
        client.call("numwatchers")
        samples.append(time.perf_counter() - begin)
    return samples


def _settle(pid: int, timeout: float = 10.0) -> float:
    """Wait (bounded) until circusd has finished working off the fuzz: its CPU time stops
    growing (under 5 ms per 200 ms). Returns the seconds waited."""
    proc = psutil.Process(pid)
    began = time.monotonic()
    last = sum(proc.cpu_times()[:2])
    while time.monotonic() - began < timeout:
        time.sleep(0.2)
        now = sum(proc.cpu_times()[:2])
        if now - last < 0.005:
            break
        last = now
    return time.monotonic() - began


def _pids(client: CircusClient) -> dict[str, list[int]]:
    return {name: client.call("list", name=name)["pids"] for name in ("web", "worker")}


def _batches(rng: random.Random, total: int) -> Iterator[list[tuple[Frames, bool]]]:
    sent = 0
    while sent < total:
        size = min(BATCH, total - sent)
        yield [_hostile(rng) for _ in range(size)]
        sent += size


def fuzz(daemon: CircusdProcess, total: int, big_sizes: list[int], seed: int,
         log: Callable[[str], None]) -> dict[str, float]:
    rng = random.Random(seed)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    counts = {"sent": 0, "due": 0, "missing": 0, "big": 0, "req": 0, "unfinished": 0}
    try:
        dealers = [_dealer(ctx, daemon.endpoint) for _ in range(4)]
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(daemon.endpoint)
        began = time.monotonic()
        for number, batch in enumerate(_batches(rng, total)):
            sock = dealers[number % len(dealers)]
            due = 0
            for frames, flagged in batch:
                sock.send_multipart(frames)
                due += _expects_reply(frames, flagged)
            counts["sent"] += len(batch)
            counts["due"] += due
            counts["missing"] += _drain(sock, due)
            if number % 10 == 0:  # the REQ socket: one hostile request, one reply, in turn
                req.send(_hostile(rng)[0][-1])
                counts["req"] += 1
                counts["due"] += 1
                counts["missing"] += _drain(req, 1)
            if number % 50 == 0:
                log(f"  {counts['sent']} sent, {time.monotonic() - began:.1f} s")
        for size in big_sizes:  # 1/4/16 MiB: over the 1 MiB limit, answered with errno 3
            sock = dealers[0]
            sock.send(b'{"id": "big", "command": "list", "pad": "' + b"p" * size + b'"}')
            counts["sent"] += 1
            counts["due"] += 1
            counts["big"] += 1
            counts["missing"] += _drain(sock, 1)
        path = daemon.endpoint[len("ipc://"):]
        for _ in range(8):  # unfinished multipart, then the connection goes away
            zmtp_unfinished(path, frames=4)
            counts["unfinished"] += 1
            counts["sent"] += 1
        counts["seconds"] = time.monotonic() - began
    finally:
        ctx.destroy(linger=0)
    return {key: float(value) for key, value in counts.items()}


#: (name, value, passed, timed): a timed check compares durations, which the load of a shared
#: machine moves; a ``--quick`` run (CI) reports it but does not fail on it
Check = tuple[str, str, bool, bool]


def _answers(client: CircusClient) -> bool:
    """The probe of the hostile cases: an ordinary client's ``numwatchers`` is answered."""
    try:
        return client.call("numwatchers").get("numwatchers") == 2
    except CallTimeout:
        return False


@contextlib.contextmanager
def _target(directory: Path) -> Iterator[Target]:
    """A circusd of its own for one hostile case, so that what one case left in circusd's
    heap does not hide what the next one costs."""
    with CircusdProcess(CONFIG, directory) as daemon, \
            CircusClient(daemon.endpoint, 20) as client:
        yield Target(daemon.endpoint[len("ipc://"):], daemon.pid, lambda: _answers(client))


#: what a peer can make the native listener hold, all its budgets together (MiB): unread
#: replies, unfinished input, requests waiting for the controller
BUDGETS = (WRITE_BUDGET + PARTIAL_BUDGET + QUEUE_BUDGET) // MiB


def _never_reading(workdir: Path, readers: int) -> Check:
    with _target(workdir / f"readers-{readers}") as target:
        got = never_reading(target, readers)
    taken_limit, growth_limit = 4 * readers, min(2 * readers, BUDGETS) + 16
    must_close = max(0, readers - WRITE_BUDGET // MiB + 1)
    return (f"{readers} client(s) never reading their replies: requests taken / closed by "
            "circusd / answered meanwhile / RSS peak",
            f"{got['sent_mib']:.1f} MiB ({got['requests']:,.0f}; limit {taken_limit}) / "
            f"{got['closed']:.0f} (at least {must_close}) / {_YES[bool(got['answered'])]} / "
            f"+{got['growth_mib']:.1f} MiB (limit {growth_limit})",
            got["sent_mib"] <= taken_limit and got["closed"] >= must_close
            and bool(got["answered"]) and got["growth_mib"] <= growth_limit, False)


def _hoarding(workdir: Path, hoarders: int) -> Check:
    keep = MAX_MESSAGE_SIZE - 1000
    must_close = hoarders - PARTIAL_BUDGET // keep - 1
    with _target(workdir / f"hoarders-{hoarders}") as target:
        got = hoarding(target, hoarders, keep=keep, expect_closed=must_close)
    growth_limit = 2 * PARTIAL_BUDGET // MiB
    return (f"{hoarders} connections each holding an almost complete 1 MiB request: closed"
            " by circusd / answered meanwhile / RSS peak",
            f"{got['closed']:.0f} (at least {must_close}) / {_YES[bool(got['answered'])]} / "
            f"+{got['growth_mib']:.1f} MiB (limit {growth_limit})",
            got["closed"] >= must_close and bool(got["answered"])
            and got["growth_mib"] <= growth_limit, False)


def _empty_frames(workdir: Path, seconds: float) -> Check:
    with _target(workdir / "empty-frames") as target:
        got = empty_frames(target, seconds)
    return (f"empty frames with MORE streamed for {seconds:g} s: connections closed by "
            "circusd / most one took / calls answered meanwhile / RSS peak",
            f"{got['closed']:.0f} of {got['connections']:.0f} / {got['most_kib']:,.0f} KiB "
            f"({got['sent_mib']:,.0f} MiB in all) / {got['answered']:.0f} of "
            f"{got['probes']:.0f} / +{got['growth_mib']:.1f} MiB (limit 8)",
            got["connections"] - got["closed"] <= 1 and got["most_kib"] < 16 * 1024
            and got["answered"] == got["probes"] > 0 and got["growth_mib"] <= 8, False)


_YES = {True: "yes", False: "NO"}


def hostile_checks(workdir: Path, quick: bool) -> list[Check]:
    """The peers that try to make the native listener hold memory (``hostile.py``), each
    against a circusd of its own, checked against the bounds circusd documents
    (docs/control-channel.md) and with circusd answering an ordinary client meanwhile. A full
    run adds 250 non-readers, most of which circusd must close (its budget churns)."""
    readers = [1] if quick else [40, 250]
    return [*(_never_reading(workdir, count) for count in readers),
            _hoarding(workdir, 2 * PARTIAL_BUDGET // MiB + 4 if quick else 100),
            _empty_frames(workdir, 1.0 if quick else 5.0)]


def _verdict(ok: bool, timed: bool, quick: bool) -> str:
    if ok:
        return "yes"
    return "no (timing: not enforced by --quick)" if timed and quick else "**NO**"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: 5,000 requests; timing ratios reported, not enforced")
    parser.add_argument("--write", action="store_true", help="update docs/control-channel.md")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    if args.quick and args.write:
        parser.error("--quick figures are not for the docs: drop --write")
    total = 5_000 if args.quick else 100_000
    big = [MiB + 1, 4 * MiB] if args.quick else [MiB + 1] * 5 + [4 * MiB] * 3 + [16 * MiB] * 2
    header = machine_line()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="circus-fuzz-") as tmp:
        daemon = CircusdProcess(CONFIG, Path(tmp)).start()
        try:
            with CircusClient(daemon.endpoint, 20) as client:
                pids_before = _pids(client)
                before = median(_round_trips(client, 300))
                rss_before = rss_mb(daemon.pid)
                result = fuzz(daemon, total, big, args.seed, lambda line: print(line, flush=True))
                alive = daemon.popen is not None and daemon.popen.poll() is None
                settled = _settle(daemon.pid)
                after = median(_round_trips(client, 300))
                rss_after = rss_mb(daemon.pid)
                pids_after = _pids(client)
        finally:
            daemon.stop()
        log_text = daemon.log_text()
        lifetime = time.monotonic() - began
        print("hostile peers, each against a circusd of its own", flush=True)
        hostile = hostile_checks(Path(tmp), args.quick)
    warnings = sum("unexpected framing" in line for line in log_text.splitlines())
    # the throttle lets 5 lines through per 10 s (plus one with the count still pending)
    warning_limit = 5 * (int(lifetime // 10) + 1) + 1
    checks: list[Check] = [
        ("circusd alive", "yes" if alive else "NO", alive, False),
        ("requests sent", f"{result['sent']:.0f} in {result['seconds']:.1f} s",
         result["sent"] >= total, False),
        ("well-framed requests answered",
         f"{result['due'] - result['missing']:.0f} / {result['due']:.0f}",
         result["missing"] == 0, False),
        (f"`numwatchers` p50 before / after (idle after {settled:.1f} s)",
         f"{before * 1000:.3f} / {after * 1000:.3f} ms ({after / before:.2f}x, limit 1.5x)",
         after <= 1.5 * before, True),
        ("RSS before / after", f"{rss_before:.1f} / {rss_after:.1f} MB "
         f"(+{rss_after - rss_before:.1f}, limit 32)", rss_after - rss_before <= 32, False),
        ("watchers' pids", "unchanged" if pids_after == pids_before else "CHANGED",
         pids_after == pids_before, False),
        ("tracebacks in circusd's log", str(log_text.count("Traceback")),
         "Traceback" not in log_text, False),
        ("framing warnings logged (rate-limited)",
         f"{warnings} in {lifetime:.0f} s (limit {warning_limit})", warnings <= warning_limit,
         False),
        *hostile,
    ]
    text = (f"Measured {header}, load {os.getloadavg()[0]:.1f} at the end "
            f"(`bench/bench_fuzz.py`, seed {args.seed}; "
            f"{result['req']:.0f} via REQ, {result['big']:.0f} of 1-16 MiB, "
            f"{result['unfinished']:.0f} unfinished multipart over raw ZMTP).\n\n"
            + table(["check", "result", "pass"],
                    [[name, value, _verdict(ok, timed, args.quick)]
                     for name, value, ok, timed in checks]))
    print()
    print(text)
    if args.write:
        write_section("fuzz", text, DOC)
    return 0 if all(ok or (timed and args.quick) for _, _, ok, timed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

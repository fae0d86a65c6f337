"""What CURVE costs on the ``numwatchers`` round trip (goal: at most 1.3x without CURVE).

Usage: ``.venv/bin/python bench/bench_curve.py [--quick] [--write]``.

Two circusd run the same one-watcher config, one with ``curve_server_key`` set; one client each
(the same ``CircusClient``, with or without keys). Without CURVE circusd reads the control
channel's wire itself (``circus/listeners/native.py``); with CURVE it is libzmq's ROUTER
(``listeners/router.py``), so the ratio is also what the two listeners cost against each
other. Rounds alternate between the two daemons so that load from elsewhere on the machine
falls on both alike; the table gives the median of each side over all rounds and the ratio.
``--write`` puts it into docs/control-channel.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, fmt_ms, machine_line, median, percentile, table, write_section

from circus.client import CircusClient
from circus.curve import ClientKeys, load_public, load_secret_pair, write_pair
from circus.testing import CircusdProcess

DOC = ROOT / "docs" / "control-channel.md"
CONFIG = "[watcher:one]\ncmd = sleep 3600\n"


def _samples(client: CircusClient, count: int) -> list[float]:
    found = []
    for _ in range(count):
        begin = time.perf_counter()
        client.call("numwatchers")
        found.append(time.perf_counter() - begin)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 2 short rounds")
    parser.add_argument("--write", action="store_true", help="update docs/control-channel.md")
    args = parser.parse_args()
    if args.quick and args.write:
        parser.error("--quick figures are not for the docs: drop --write")
    rounds, per_round = (2, 200) if args.quick else (10, 1000)
    header = machine_line()
    with tempfile.TemporaryDirectory(prefix="circus-curve-") as tmp:
        keys = Path(tmp) / "keys"
        write_pair(keys, "server")
        write_pair(keys, "client")
        (keys / "clients").mkdir()
        (keys / "clients" / "client.key").write_text((keys / "client.key").read_text())
        secured = (f"[circus]\ncurve_server_key = {keys / 'server.key_secret'}\n"
                   f"curve_authorized_keys = {keys / 'clients'}\n\n{CONFIG}")
        public, secret = load_secret_pair(keys / "client.key_secret")
        client_keys = ClientKeys(load_public(str(keys / "server.key")), public, secret)
        plain = CircusdProcess(CONFIG, Path(tmp) / "plain").start()
        try:
            curved = _start_curved(secured, Path(tmp) / "curve", client_keys)
            try:
                results = _measure(plain.endpoint, curved.endpoint, client_keys, rounds,
                                   per_round)
            finally:
                curved.stop()
        finally:
            plain.stop()
    off, on = results
    ratio = median(on) / median(off)
    text = (f"Measured {header}, load {os.getloadavg()[0]:.1f} at the end "
            f"(`bench/bench_curve.py`, ipc://, {rounds} alternating rounds "
            f"of {per_round} calls per side).\n\n"
            + table(["`numwatchers` round trip", "p50", "p95", "vs. CURVE off"], [
                ["CURVE off (circusd's own listener)", fmt_ms(median(off)),
                 fmt_ms(percentile(off, 95)), "1.00x"],
                ["CURVE on (libzmq ROUTER)", fmt_ms(median(on)), fmt_ms(percentile(on, 95)),
                 f"{ratio:.2f}x"],
            ]))
    print(text)
    if args.write:
        write_section("curve", text, DOC)
    return 0


def _start_curved(config: str, directory: Path, keys: ClientKeys) -> CircusdProcess:
    """``CircusdProcess`` checks readiness with a client that reads keys from the
    environment (kept by its client for ``stop``): give it ours for the start only."""
    saved = dict(os.environ)
    os.environ.update(keys.environ())
    try:
        return CircusdProcess(config, directory, env=saved, start_timeout=60).start()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _measure(plain: str, curved: str, keys: ClientKeys, rounds: int,
             per_round: int) -> tuple[list[float], list[float]]:
    off: list[float] = []
    on: list[float] = []
    with CircusClient(plain, 20) as c_off, CircusClient(curved, 20, curve=keys) as c_on:
        _samples(c_off, 100)
        _samples(c_on, 100)
        for number in range(rounds):  # alternate which side goes first
            first, second = (c_off, c_on) if number % 2 == 0 else (c_on, c_off)
            first_samples = _samples(first, per_round)
            second_samples = _samples(second, per_round)
            off += first_samples if first is c_off else second_samples
            on += second_samples if first is c_off else first_samples
    return off, on


if __name__ == "__main__":
    sys.exit(main())

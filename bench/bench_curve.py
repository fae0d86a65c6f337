"""What CURVE costs on the ``numwatchers`` round trip (goal: at most 1.3x without CURVE).

Usage: ``.venv/bin/python bench/bench_curve.py [--quick] [--write]``.

Three circusd run the same one-watcher config, one client each (the same ``CircusClient``,
with or without keys): without CURVE circusd reads the control channel's wire itself
(``circus/listeners/native.py``); the second, also without CURVE, listens on an abstract
``ipc://@`` endpoint, which only libzmq parses, so it is served by libzmq's ROUTER
(``listeners/router.py``), as every endpoint is with CURVE; the third has ``curve_server_key``
set. So the table gives both what CURVE costs and what the two listeners cost against each
other. Rounds rotate the order of the daemons so that load from elsewhere on the machine falls
on all alike; the table gives the median of each over all rounds and the ratio.
``--write`` puts it into docs/control-channel.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
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
    with tempfile.TemporaryDirectory(prefix="circus-curve-") as tmp, \
            contextlib.ExitStack() as daemons:
        keys = Path(tmp) / "keys"
        write_pair(keys, "server")
        write_pair(keys, "client")
        (keys / "clients").mkdir()
        (keys / "clients" / "client.key").write_text((keys / "client.key").read_text())
        secured = (f"[circus]\ncurve_server_key = {keys / 'server.key_secret'}\n"
                   f"curve_authorized_keys = {keys / 'clients'}\n\n{CONFIG}")
        public, secret = load_secret_pair(keys / "client.key_secret")
        client_keys = ClientKeys(load_public(str(keys / "server.key")), public, secret)
        plain = daemons.enter_context(CircusdProcess(CONFIG, Path(tmp) / "plain"))
        router = daemons.enter_context(_on_libzmq(CircusdProcess(CONFIG, Path(tmp) / "zmq")))
        curved = _start_curved(secured, Path(tmp) / "curve", client_keys)
        daemons.callback(curved.stop)
        clients = [daemons.enter_context(CircusClient(plain.endpoint, 20)),
                   daemons.enter_context(CircusClient(router.endpoint, 20)),
                   daemons.enter_context(CircusClient(curved.endpoint, 20, curve=client_keys))]
        off, zmq_off, on = _measure(clients, rounds, per_round)
    base = median(off)
    rows = [[label, fmt_ms(median(found)), fmt_ms(percentile(found, 95)),
             f"{median(found) / base:.2f}x"]
            for label, found in (("CURVE off, circusd's own listener", off),
                                 ("CURVE off, libzmq ROUTER (abstract ipc endpoint)", zmq_off),
                                 ("CURVE on, libzmq ROUTER", on))]
    text = (f"Measured {header}, load {os.getloadavg()[0]:.1f} at the end "
            f"(`bench/bench_curve.py`, ipc://, {rounds} rounds of {per_round} calls per "
            "daemon, the order rotating).\n\n"
            + table(["`numwatchers` round trip", "p50", "p95", "vs. circusd's own listener"],
                    rows))
    print(text)
    if args.write:
        write_section("curve", text, DOC)
    return 0


def _on_libzmq(daemon: CircusdProcess) -> CircusdProcess:
    """The same daemon on an abstract ``ipc://@`` endpoint, which only libzmq parses, so that
    circusd serves it with the libzmq ROUTER although CURVE is off: the listener is the one
    difference from the plain daemon."""
    abstract = f"ipc://@circus-bench-{uuid.uuid4().hex}"
    daemon.config_text = daemon.config_text.replace(daemon.endpoint, abstract)
    daemon.endpoint = abstract
    return daemon


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


def _measure(clients: list[CircusClient], rounds: int, per_round: int) -> list[list[float]]:
    """Samples per client, in rounds whose order rotates, so that no daemon always runs on a
    machine warmed (or loaded) by the one before."""
    found: list[list[float]] = [[] for _ in clients]
    for client in clients:
        _samples(client, 100)
    for number in range(rounds):
        for offset in range(len(clients)):
            index = (number + offset) % len(clients)
            found[index] += _samples(clients[index], per_round)
    return found


if __name__ == "__main__":
    sys.exit(main())

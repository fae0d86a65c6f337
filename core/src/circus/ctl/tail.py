"""``circusctl tail`` and ``circusctl logs``: recent output lines, then (``-f``) new ones.

The backlog comes from the daemon's ``tail`` command (the rings of :mod:`circus.output_tail`);
following reads ``output.<watcher>.`` on the event channel (its endpoint from
``globaloptions``) while a lease asked with ``tail`` and renewed every few seconds has circusd
publish them. To lose nothing between the two, the follower subscribes *before* asking for the
backlog and uses the per-watcher line numbers (``seq``): lines already printed are skipped, and
a jump (lines published before the subscription took effect, or dropped by a flooded
publisher) is filled from the rings with one more ``tail`` call, or reported on stderr when the
rings no longer hold them. The subscription is by watcher name, so a restarted process's lines
keep coming.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit

import zmq

from circus.client import CircusClient
from circus.curve import ClientKeys, configure_client
from circus.errors import CallError
from circus.output_tail import OUTPUT_PREFIX, output_topic

_POLL_MS = 200
#: the follow lease asked from circusd, and how often it is renewed (well before it ends)
LEASE = 15.0
RENEW_EVERY = 5.0


class TailError(RuntimeError):
    """The daemon refused (unknown watcher, old daemon): the message is for the user."""


def format_line(line: Mapping[str, Any], prefixed: bool) -> str:
    """``web[2] | text`` for ``logs`` (like ``pm2 logs``), the bare text for ``tail``."""
    if not prefixed:
        return str(line["line"])
    return f"{line['watcher']}[{line['wid']}] | {line['line']}"


def _call(client: CircusClient, command: str, **props: Any) -> dict[str, Any]:
    reply = client.call(command, **props)
    if reply.get("status") == "error":
        reason = str(reply.get("reason"))
        if command == "tail" and "unknown command" in reason.lower():
            reason += " (this circusd keeps no output: it predates circusctl tail)"
        raise TailError(reason)
    return reply


def reachable(endpoint: str) -> str:
    """An endpoint circusd *binds* as one to connect to: a wildcard address means this host."""
    if not endpoint.startswith("tcp://"):
        return endpoint
    host = urlsplit(endpoint).hostname or ""
    if host in ("0.0.0.0", "*", "::", ""):
        return endpoint.replace(f"//{host}:" if host != "::" else "//[::]:", "//127.0.0.1:", 1)
    return endpoint


def pubsub_endpoint(client: CircusClient) -> str:
    """The event channel, as ``globaloptions`` gives it, reachable from here."""
    return reachable(str(_call(client, "globaloptions").get("options", {}).get("pubsub_endpoint")))


class Follower:
    """Prints a backlog then live lines of some watchers (all when ``names`` is empty)."""

    def __init__(self, client: CircusClient, names: list[str], *, prefixed: bool,
                 stream: str | None = None, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr) -> None:
        self.client = client
        self.names = names
        self.prefixed = prefixed
        #: only this stream's lines (``tail NAME stderr``); the other's still advance ``last``
        self.stream = stream
        self.out = out
        self.err = err
        #: last line number printed, per watcher name, and which numbering it belongs to
        self.last: dict[str, int] = {}
        self.origin: dict[str, str] = {}
        self._unreachable = False

    def _tail(self, count: int, names: list[str] | None = None,
              follow: float = 0.0) -> dict[str, Any]:
        props: dict[str, Any] = {"lines": count}
        if follow:
            props["follow"] = follow
        if self.stream is not None:
            props["stream"] = self.stream
        chosen = self.names if names is None else names
        if chosen:
            props["names"] = chosen
        return _call(self.client, "tail", **props)

    def backlog(self, count: int, follow: float = 0.0) -> None:
        reply = self._tail(count, follow=follow)
        for name, capture in (reply.get("capture") or {}).items():
            if not capture:
                print(f"circusctl: {name} keeps no output (output_lines = 0)", file=self.err)
        for line in reply.get("lines") or []:
            self._print(line)
        self.origin.update(reply.get("origin") or {})
        for name, seq in (reply.get("seq") or {}).items():
            self.last[name] = max(self.last.get(name, 0), int(seq))
        self.out.flush()

    def _same_origin(self, name: str, origin: Any) -> bool:
        """False (and numbering reset) when ``name``'s lines are numbered anew."""
        if origin is None or self.origin.get(name) == origin:
            return True
        known = name in self.origin
        self.origin[name] = str(origin)
        if known:
            self.last[name] = 0
        return not known

    def _print(self, line: Mapping[str, Any]) -> None:
        name = str(line["watcher"])
        seq = int(line["seq"])
        if seq <= self.last.get(name, 0):
            return
        self.last[name] = seq
        self.out.write(format_line(line, self.prefixed) + "\n")

    def _fill_gap(self, name: str, first: int) -> None:
        """Lines ``last+1 .. first-1`` of ``name`` were not received: fetch them."""
        missing = first - 1 - self.last.get(name, 0)
        if missing <= 0:
            return
        with contextlib.suppress(TailError, CallError):
            for line in self._tail(missing, [name]).get("lines") or []:
                if int(line["seq"]) < first:
                    self._print(line)
        lost = first - 1 - self.last.get(name, 0)
        if lost > 0:
            if self.stream is None:  # filtered, the gap may hold the other stream's lines
                print(f"circusctl: {lost} lines of {name} were lost (printed faster than "
                      "read)", file=self.err)
            self.last[name] = first - 1

    def handle(self, body: Mapping[str, Any]) -> None:
        """One published chunk: ``{"watcher", "pid", "wid", "stream", "time", "seq", "origin",
        "text"}`` (``text``: the chunk's lines joined by newlines)."""
        name = str(body["watcher"])
        first = int(body["seq"])
        self._same_origin(name, body.get("origin"))
        if name not in self.last:
            self.last[name] = 0
        if first > self.last[name] + 1:
            self._fill_gap(name, first)
        if self.stream is not None and body.get("stream") != self.stream:
            text = str(body.get("text", ""))
            self.last[name] = max(self.last[name], first + text.count("\n"))
            return
        for offset, text in enumerate(str(body.get("text", "")).split("\n")):
            self._print({**body, "seq": first + offset, "line": text})
        self.out.flush()

    def renew(self) -> None:
        """Renew the follow lease (new watchers of ``logs`` are followed from here on).

        circusd being down or restarting does not end the follower: it says so once and
        keeps trying. A restarted circusd numbers lines from 1 again, which the reply shows.
        """
        try:
            reply = self._tail(0, follow=LEASE)
        except (CallError, TailError) as exc:
            if not self._unreachable:
                print(f"circusctl: {exc}; still following", file=self.err)
            self._unreachable = True
            return
        if self._unreachable:
            print("circusctl: circusd answers again", file=self.err)
        self._unreachable = False
        origins = reply.get("origin") or {}
        for name, seq in (reply.get("seq") or {}).items():
            if not self._same_origin(name, origins.get(name)):
                self._fill_gap(name, int(seq) + 1)  # what the new daemon printed so far
        self.out.flush()

    def follow(self, sub: zmq.Socket[bytes]) -> None:
        """Print published lines until interrupted, renewing the follow lease."""
        renew_at = time.monotonic() + RENEW_EVERY
        while True:
            if time.monotonic() >= renew_at:
                self.renew()
                renew_at = time.monotonic() + RENEW_EVERY
            if not sub.poll(_POLL_MS, zmq.POLLIN):
                continue
            for body in _drain(sub):
                self.handle(body)


def _drain(sub: zmq.Socket[bytes]) -> Iterator[dict[str, Any]]:
    while True:
        try:
            _topic, payload = sub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        with contextlib.suppress(ValueError):
            body = json.loads(payload)
            if isinstance(body, dict):
                yield body


def _topics(names: list[str]) -> list[str]:
    return [output_topic(name) for name in names] if names else [OUTPUT_PREFIX]


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(client: CircusClient, names: list[str], count: int, *, follow: bool,
        prefixed: bool, stream: str | None = None, curve: ClientKeys | None = None) -> None:
    """What ``tail``/``logs`` do; :class:`TailError` or ``CallError`` for the caller to print.
    ``curve``: the keys the event channel wants when circusd requires CURVE (as ``listen``)."""
    follower = Follower(client, names, prefixed=prefixed, stream=stream)
    if not follow:
        follower.backlog(count)
        return
    endpoint = pubsub_endpoint(client)
    sub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 0)
    configure_client(sub, curve)
    try:
        for topic in _topics(names):
            sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sub.connect(endpoint)
        follower.backlog(count, follow=LEASE)
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            follower.follow(sub)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        sub.close()

"""The plugin the plugin benchmark runs, unchanged, under OUR runner and the ORIGINAL 0.19 one.

It only uses the API both share (``CircusPlugin``, ``handle_init``/``handle_recv``/``handle_stop``,
``call``) and accepts the original's positional constructor. What it observes goes to the file
named by its ``out`` option, one line per observation, flushed per line, because the original
runner never calls ``handle_stop`` when circusd stops the plugin (contract 6.3).

Modes (``mode`` option):

``latency``  on a ``reap`` of watcher ``victim``: ``recv <pid> <time>``, then ``call status`` and
             ``call <pid> <time>`` when answered; ``ready`` on the first ``updated`` event.
``log``      every event: ``<topic> <seq or -> <pid or ->``.
``count``    counts events between the first ``watcher.bench.go`` and ``watcher.bench.done``;
             writes ``count <n> <first time> <last time>`` on ``done``.
``block``    ``ready`` on the first ``updated``; on the first ``watcher.churn.spawn`` blocks in
             ``handle_recv`` for ``block`` (option) seconds, then writes ``unblocked``; every gap
             report (ours only) as ``gap <kind> <missed> <dropped>``.
``calls``    ``ready`` on the first ``updated`` of watcher ``bench``; on each later one, times
             ``calls`` (option, 200) ``call numprocesses`` from ``handle_recv`` and writes
             ``calls <p50 s> <p95 s>``.
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from circus.plugins import CircusPlugin


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class Probe(CircusPlugin):
    name = "probe"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.out_path = str(self.config["out"])
        self.mode = str(self.config.get("mode", "latency"))
        self.out: TextIO | None = None
        self.ready = False
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def handle_init(self) -> None:
        self.out = open(self.out_path, "a", buffering=1)  # noqa: SIM115 - closed in handle_stop

    def handle_stop(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def _write(self, line: str) -> None:
        if self.out is None:
            self.out = open(self.out_path, "a", buffering=1)  # noqa: SIM115
        self.out.write(line + "\n")

    def handle_recv(self, data: Any) -> None:
        now = time.time()
        topic_raw, message = data[0], data[1]
        if self.mode == "count":
            self._count(_text(topic_raw), now)
            return
        topic = _text(topic_raw)
        if self.mode == "block":
            self._block(topic)
            return
        if self.mode == "calls":
            self._calls(topic)
            return
        if self.mode == "log":
            payload = json.loads(message)
            self._write(f"{topic} {payload.get('seq', '-')} {payload.get('process_pid', '-')}")
            return
        if topic.endswith(".updated") and not self.ready:
            self.ready = True
            self._write("ready")
        if topic == "watcher.victim.reap":
            pid = json.loads(message)["process_pid"]
            self.call("status")
            answered = time.time()
            # written after the call, so that the probe's own file write is not timed
            self._write(f"recv {pid} {now:.6f}")
            self._write(f"call {pid} {answered:.6f}")

    def _block(self, topic: str) -> None:
        if topic.endswith(".updated") and not self.ready:
            self.ready = True
            self._write("ready")
        elif topic == "watcher.churn.spawn" and not self.count:
            self.count = 1
            self._write("blocked")
            time.sleep(float(self.config.get("block", 60)))
            self._write("unblocked")

    def handle_gap(self, gap: Any) -> None:
        """Ours only (0.19 has no such callback): one line per report."""
        self._write(f"gap {gap.kind} {gap.missed} {gap.dropped}")

    def _calls(self, topic: str) -> None:
        if topic != "watcher.bench.updated":
            return
        if not self.ready:
            self.ready = True
            self._write("ready")
            return
        samples = []
        for _ in range(int(self.config.get("calls", 200))):
            started = time.perf_counter()
            self.call("numprocesses", name="bench")
            samples.append(time.perf_counter() - started)
        samples.sort()
        self._write(f"calls {samples[len(samples) // 2]:.9f} "
                    f"{samples[min(len(samples) - 1, int(len(samples) * 0.95))]:.9f}")

    def _count(self, topic: str, now: float) -> None:
        if topic == "watcher.bench.ping":
            if not self.ready:
                self.ready = True
                self._write("ready")
            return
        if topic == "watcher.bench.done":
            if self.count:
                self._write(f"count {self.count} {self.first:.6f} {self.last:.6f}")
                self.count = 0
            return
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now


"""The watcher runtime: carries out the policy's decisions on real processes.

:class:`Watcher` is what the arbiter and the commands hold (docs/architecture.md, Watcher API).
It owns the processes (:class:`~circus.watcher.processes.ProcessSet`), the output streams, the
hooks and the operation lock; it asks its :class:`~circus.watcher.policy.Policy` what to do
whenever something happens, and its :class:`~circus.watcher.engine.Engine` carries that out:

* a child exits (the pidfd callback): ``reap`` is published at once, the policy decides about the
  replacement, which is spawned right after the event left (``call_soon``), or after a backoff;
* an operation runs (start, stop, reload, incr...): it holds the watcher's lock, so operations on
  one watcher queue while different watchers run side by side (Circus #776, #1154); whatever the
  policy wants spawned meanwhile is done when the lock is released;
* the ``check_delay`` tick: ``max_age`` and the process count as a safety net.

Spawns yield to the event loop between processes, so ``status`` keeps answering while a watcher
starts a thousand of them. A failed spawn never touches the processes already running: the
policy backs off and the operation's reply names the cause (:class:`SpawnFailed`).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from circus.config.model import WatcherConfig
from circus.errors import CommandError, ConfigError, MessageError
from circus.events import REQUESTER, requested_by
from circus.journal import ProcessJournal
from circus.output_tail import WatcherOutput, limits_from, passthrough
from circus.process import Process, children_of, descendants_of, signal_processes
from circus.protocol import res_name
from circus.sockets import SocketSet
from circus.stats.sampler import Sample
from circus.streams import OutputStreams
from circus.watcher.engine import Engine
from circus.watcher.hooks import HookRunner
from circus.watcher.options import Applied, shown_options, store
from circus.watcher.policy import Policy
from circus.watcher.processes import ProcessSet
from circus.watcher.state import State, Transition, announcements

T = TypeVar("T")
log = structlog.get_logger("circus.watcher")

Publish = Callable[[str, str, dict[str, Any]], int]


class SpawnFailed(CommandError):
    """An operation could not start every process it should have; the reply says why."""


class Watcher:
    """A named group of identical processes; see the module docstring."""

    def __init__(
        self,
        config: WatcherConfig,
        publish: Publish,
        *,
        umask: int | None = None,
        sockets: SocketSet | None = None,
    ) -> None:
        self.config = config
        self._publish = publish
        self.policy = Policy(config)
        self.lock = asyncio.Lock()
        #: set by the arbiter; passed to hooks as ``arbiter``
        self.arbiter: Any = None
        self.hook_runner = HookRunner(self.notify)
        self.streams = OutputStreams({}, {})
        self._open_streams()
        #: recent output lines per slot (``circusctl tail``) and restart counts (``status -l``)
        self.output = WatcherOutput(config.name, limits_from(config.extra))
        self.journal = ProcessJournal()
        self.processes = ProcessSet(
            config,
            notify=self.notify,
            call_hook=self.call_hook,
            on_exit=self._on_exit,
            on_output=self._on_output,
            umask=umask,
            sockets=sockets,
        )
        self.engine = Engine(
            config.name,
            self.policy,
            self.processes,
            self.lock,
            announce=self._announce,
            stop_vetoed=lambda: self._stop_locked(expected=False),
        )

    # -- identity and simple views ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def res_name(self) -> str:
        return res_name(self.config.name)

    @property
    def state(self) -> str:
        return self.policy.state.value

    @property
    def priority(self) -> int:
        return self.config.priority

    @property
    def singleton(self) -> bool:
        return self.config.singleton

    @property
    def autostart(self) -> bool:
        return self.config.autostart

    @property
    def numprocesses(self) -> int:
        return self.config.numprocesses

    @property
    def is_plugin(self) -> bool:
        return self.config.is_plugin

    def pids(self) -> list[int]:
        """Live processes, spawn order."""
        return self.processes.pids()

    # -- events and hooks ---------------------------------------------------------------------

    def notify(self, action: str, payload: dict[str, Any] | None = None) -> int:
        """Publish an event of this watcher; ``time`` comes first as in 0.19 payloads."""
        if payload is None or "time" not in payload:
            payload = {"time": time.time(), **(payload or {})}
        if action in ("spawn", "reap"):
            self._observe_process(action, payload)
        return self._publish(self.name, action, payload)

    def _observe_process(self, action: str, payload: dict[str, Any]) -> None:
        pid = payload.get("process_pid")
        if not isinstance(pid, int):
            return
        wid = self.journal.observe(action, payload, self._wid_of(pid))
        if action == "reap" and wid is not None:
            self.output.finish(pid, wid)

    def _wid_of(self, pid: int) -> int | None:
        proc = self.processes.get(pid)
        if proc is None:
            proc = next((p for p in self.processes.dying if p.pid == pid), None)
        return proc.wid if proc is not None else self.journal.wid_of(pid)

    def call_hook(self, hook_name: str, **extras: Any) -> bool:
        """Run a configured hook (contract 8.5); True when it allows what it guards."""
        if not self.config.hooks:
            return True
        return self.hook_runner.call(
            self.config.hooks, hook_name, watcher=self, arbiter=self.arbiter, **extras
        )

    def _announce(self, transition: Transition) -> None:
        """Publish the events of a state change (the only caller of ``notify`` for states)."""
        for action in announcements(transition):
            payload = transition.payload if action != "start" else {}
            self.notify(action, {"time": transition.payload["time"], **payload})
        new = transition.new
        if new is State.BACKOFF:
            log.warning(
                "respawn held back",
                watcher=self.name,
                delay=transition.payload.get("delay"),
                failures=transition.payload.get("failures"),
                reason=transition.payload.get("reason"),
            )
        elif new is State.FATAL:
            log.error(
                "giving up: quick failures in a row",
                watcher=self.name,
                failures=transition.payload.get("failures"),
                reason=transition.payload.get("reason"),
            )
        elif new is State.STOPPED and transition.payload.get("expected") is False:
            log.error("watcher stopped", watcher=self.name, reason=self.policy.last_failure)

    def _failed(self, what: str, started: int, wanted: int, cause: str) -> SpawnFailed:
        text = f"{self.name}: {what} {started} of {wanted} process(es): {cause}"
        if self.policy.retry_at is not None:
            text += f"; next try in {max(self.policy.retry_at - time.time(), 0):.1f}s"
        elif self.policy.state is State.STOPPED:
            text += "; watcher stopped"
        return SpawnFailed(text)

    # -- exits --------------------------------------------------------------------------------

    def _on_exit(self, proc: Process) -> None:
        """A child died: ``reap`` now (hooks around it), then the policy decides what follows.

        On behalf of whoever asked the process to go, if anyone did: the loop calls this in the
        context of the command that *spawned* the process (events.requested_by says why)."""
        code = proc.returncode
        expected = proc.expected_exit or (code is not None and -code in proc.signalled_with)
        with requested_by(proc.exit_requested_by if expected else None):
            self._reap(proc, code, expected)

    def _reap(self, proc: Process, code: int | None, expected: bool) -> None:
        counted = self.processes.forget(proc)
        now = time.time()
        if self.config.hooks:
            self.call_hook("before_reap", process_pid=proc.pid, time=now)
        self.notify(
            "reap",
            {"process_pid": proc.pid, "time": now, "exit_code": code, "expected": expected},
        )
        if self.config.hooks:
            status = 0 if code is None else (-code if code < 0 else code << 8)
            self.call_hook(
                "after_reap", process_pid=proc.pid, time=now, exit_code=code, process_status=status
            )
        if counted:
            self.engine.execute(self.policy.exited(proc.pid, now, now - proc.started, expected))

    # -- operations ---------------------------------------------------------------------------

    async def _locked(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            async with self.lock:
                return await operation()
        finally:
            self.engine.after_operation()

    async def start(self) -> dict[str, list[int]]:
        """Start (stopped, fatal, or backoff: try now, failure count cleared) or complete
        (active) the watcher.

        Raises :class:`SpawnFailed` naming the cause when some process could not be started;
        those that did keep running and the rest is retried after a backoff.
        """
        return await self._locked(self._start)

    async def _start(self) -> dict[str, list[int]]:
        # cleared once the lock is ours: a stop queued ahead has run by now (cleared before
        # the lock, a start queued behind a stop cancelled the stop's request)
        self.engine.stop_requested = False
        kept = self.pids()
        if self.policy.state is State.ACTIVE:
            wanted = self.policy.missing
            started, cause = await self.engine.spawn_batch(wanted)
            if cause is not None:
                raise self._failed("started", len(started), wanted, cause)
            return {"started": started, "kept": kept}
        if not self.call_hook("before_start"):
            log.warning("start aborted by the before_start hook", watcher=self.name)
            return {"started": [], "kept": kept}
        self.engine.execute(self.policy.starting(time.time()))
        wanted = self.policy.missing
        started, cause = await self.engine.spawn_batch(wanted, warmup=True)
        if self._stop_wanted():  # a stop is queued behind us: it takes over
            return {"started": [], "kept": kept}
        if self.engine.vetoed:
            self.engine.vetoed = False
            await self._stop(expected=False)
            return {"started": [], "kept": kept}
        self.engine.execute(self.policy.started(time.time()))
        if self._up():
            if not self.call_hook("after_start"):
                log.warning("the after_start hook failed: watcher stopped", watcher=self.name)
                await self._stop(expected=False)
                return {"started": [], "kept": kept}
            log.info("watcher started", watcher=self.name, pids=started)
        if cause is not None:
            raise self._failed("started", len(started), wanted, cause)
        return {"started": started, "kept": kept}

    def _up(self) -> bool:
        """Started: active, or backing off (a method: the state changes under our feet)."""
        return self.policy.state in (State.ACTIVE, State.BACKOFF)

    def _stop_wanted(self) -> bool:
        """A stop arrived while an operation ran (it waits for the lock)."""
        return self.engine.stop_requested

    async def stop(self) -> None:
        """Graceful stop of every process (``kill``, ``reap``... then ``stop``)."""
        self.engine.stop_requested = True
        await self._locked(self._stop)

    async def _stop_locked(self, *, expected: bool) -> None:
        self.engine.stop_requested = True
        await self._locked(lambda: self._stop(expected=expected))

    async def _stop(self, *, expected: bool = True) -> None:
        if self.policy.state is State.STOPPED and not self.processes.all():
            return
        self.engine.execute(self.policy.stopping(time.time()))
        self.call_hook("before_stop")
        await self.processes.kill_all(self.processes.all())
        self.engine.execute(self.policy.stopped(time.time(), expected))
        self.call_hook("after_stop")
        log.info("watcher stopped", watcher=self.name)

    def abandon(self) -> None:
        """``rm --nostop``: stop supervising; the processes keep running, unsupervised (never
        respawned, still reaped so no zombie is left, their output still reaches the streams)."""
        self.engine.stop_requested = True
        self.engine.execute([*self.policy.stopping(time.time()), *self.policy.stopped(time.time())])

    async def restart(self) -> dict[str, list[int]]:
        self.engine.stop_requested = True

        async def run() -> dict[str, list[int]]:
            stopped = self.pids()
            await self._stop()
            result = await self._start()
            return {"stopped": stopped, "started": result["started"], "kept": result["kept"]}

        return await self._locked(run)

    async def reload(self, graceful: bool = True, sequential: bool = False) -> dict[str, list[int]]:
        """The variants of the contract's ``reload`` (3.3): restart, start, SIGHUP, sequential
        replacement, or new processes first and the old ones retired.

        When a new process cannot be spawned the old ones are kept (the rest of a sequential
        reload is abandoned) and :class:`SpawnFailed` says why.
        """
        if not graceful:
            return await self.restart()
        return await self._locked(lambda: self._reload(sequential))

    async def _reload(self, sequential: bool) -> dict[str, list[int]]:
        old = self.pids()
        if self.policy.state in (State.STOPPED, State.FATAL):
            result = await self._start()
            self.notify("reload")
            return {"stopped": [], "started": result["started"], "kept": result["kept"]}
        if self.config.send_hup:
            for proc in self.processes.select(None):
                proc.send_signal(signal.SIGHUP)
            self.notify("reload")
            return {"stopped": [], "started": [], "kept": old}
        if sequential:
            started: list[int] = []
            for pid in old:
                await self.engine.retire(self.policy.release((pid,), "reload"))
                new, cause = await self.engine.spawn_batch(1)
                if cause is not None:
                    raise self._failed("reload: started", len(started), len(old), cause)
                started += new
                if self.config.warmup_delay > 0:
                    await asyncio.sleep(self.config.warmup_delay)
        else:
            started, cause = await self.engine.spawn_batch(self.config.numprocesses)
            if cause is not None:  # the new command does not start: keep the old processes
                await self.engine.retire(self.policy.release(tuple(started), "reload failed"))
                raise self._failed("reload: started", len(started), self.numprocesses, cause)
            await self.engine.retire(self.policy.release(tuple(old), "reload"))
        self.notify("reload")
        return {"stopped": old, "started": started, "kept": []}

    @property
    def retry_in(self) -> float | None:
        """Seconds until the backoff's retry, ``None`` when none is pending."""
        if self.policy.retry_at is None:
            return None
        return round(max(self.policy.retry_at - time.time(), 0.0), 3)

    async def incr(self, nb: int = 1) -> int:
        if self.singleton:
            return self.config.numprocesses
        return await self._locked(lambda: self._set_count(self.config.numprocesses + nb))

    async def decr(self, nb: int = 1) -> int:
        if self.singleton:
            return self.config.numprocesses
        return await self._locked(lambda: self._set_count(self.config.numprocesses - nb))

    async def apply_count(self, count: int) -> int:
        """Set the target count (reloadconfig with only ``numprocesses`` changed)."""
        return await self._locked(lambda: self._set_count(count))

    async def _set_count(self, count: int) -> int:
        """New target; when spawns fail the target falls back to what runs and the reply says
        why (0.19 answered ok with a count that did not exist, then killed the watcher)."""
        before = len(self.policy.running)
        wanted = max(count, 0)
        # slots that exited before this request (and would be refilled without it) are
        # refilled on the daemon's account: only what the request adds carries its "by"
        replacing = max(min(self.config.numprocesses, wanted) - before, 0)
        if not self.config.respawn:
            replacing = 0  # nothing would have refilled them: the request does
        if wanted > self.config.numprocesses and self.policy.state is State.BACKOFF:
            # incr, set or reloadconfig raising numprocesses: said, the new slots wait
            log.warning("more processes wanted while backing off: they start at the retry",
                        watcher=self.name, numprocesses=wanted, retry_in=self.retry_in)
        self.config.numprocesses = wanted
        cause = await self.engine.carry_out(
            self.policy.count_changed(time.time()), replacing=replacing
        )
        if cause is None:
            return self.config.numprocesses
        self.config.numprocesses = len(self.policy.running)
        self.engine.execute(self.policy.count_changed(time.time()))
        started = len(self.policy.running) - before
        raise self._failed(
            f"numprocesses is {self.config.numprocesses}; started", started, wanted - before, cause
        )

    async def tick(self) -> None:
        """The ``check_delay`` pass: a safety net, since exits are handled when they happen."""
        if self.lock.locked() or self.policy.state is not State.ACTIVE:
            return
        await self._locked(lambda: self.engine.carry_out(self.policy.tick(time.time()), wait=False))

    # -- signals ------------------------------------------------------------------------------

    async def kill(
        self,
        pid: int | None = None,
        signum: int | None = None,
        graceful_timeout: float | None = None,
    ) -> None:
        """Kill one or every process gracefully; each is reaped and replaced when it exits.

        Takes no lock (0.19 does not either): a graceful kill can take ``graceful_timeout``
        seconds and must not block, say, ``stop``.
        """
        targets = [p for p in self.processes.select(pid) if p.alive]
        await asyncio.gather(*(self.processes.kill(p, signum, graceful_timeout) for p in targets))

    def send_signal(
        self,
        signum: int,
        pid: int | None = None,
        childpid: int | None = None,
        children: bool = False,
        recursive: bool = False,
    ) -> None:
        """The ``signal`` command. Dying of a signal sent here counts as an expected exit."""
        if childpid is not None and pid is None:
            raise MessageError("cannot specify childpid without pid")
        procs = self.processes.select(pid)
        if childpid is not None or children:
            found = children_of(proc.pid for proc in procs)  # one pass over /proc for all
            for proc in procs:
                kids = found[proc.pid]
                if childpid is not None:
                    kids = [c for c in kids if c.pid == childpid]
                signal_processes(kids, signum)
            return
        trees = descendants_of(proc.pid for proc in procs) if recursive else {}
        for proc in procs:
            if not self.call_hook("before_signal", pid=proc.pid, signum=signum) and (
                signum != signal.SIGKILL
            ):
                continue
            proc.signalled_with.add(signum)
            proc.exit_requested_by = REQUESTER.get()
            if recursive:
                proc.signal_tree(signum, trees[proc.pid])
            else:
                proc.send_signal(signum)
            self.call_hook("after_signal", pid=proc.pid, signum=signum)

    # -- options ------------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The ``options`` command: every shown option (keys sorted) plus free-form extras."""
        return shown_options(self.config)

    def get_option(self, key: str) -> Any:
        options = self.options()
        if key not in options:
            raise KeyError(key)
        return options[key]

    async def apply_options(self, options: dict[str, Any]) -> None:
        """Apply already validated ``set`` values: one ``updated`` event per key, then a
        graceful reload when a key needs one and the watcher runs, else count management."""
        return await self._locked(lambda: self._apply_options(options))

    async def _apply_options(self, options: dict[str, Any]) -> None:
        applied = Applied()
        for key, value in options.items():
            store(self.config, key, value, applied)
            self.notify("updated")
        for spec in (applied.hooks or {}).values():
            self.hook_runner.mark_stale(spec)
        if applied.streams:
            try:
                self._open_streams()
            except ConfigError as exc:
                raise MessageError(exc.message) from None
        if applied.reload and self.policy.state is not State.STOPPED:
            await self._reload(sequential=False)
        else:
            await self.engine.carry_out(self.policy.count_changed(time.time()))

    # -- streams ------------------------------------------------------------------------------

    def _open_streams(self) -> None:
        """(Re)build the output streams; a bad class or unopenable file is a ConfigError."""
        self.streams.close()
        try:
            self.streams = OutputStreams(self.config.stdout_stream, self.config.stderr_stream)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot set up an output stream: {exc}",
                section=f"watcher:{self.name}",
                key="stdout_stream" if self.config.stdout_stream else "stderr_stream",
            ) from None

    def _on_output(self, name: str, pid: int, data: bytes) -> None:
        # looked up at each chunk: `set stdout_stream.*` replaces the streams of live processes
        if (self.streams.stdout if name == "stdout" else self.streams.stderr) is None:
            passthrough(name, data)  # no stream: shown where an inheriting child would write
        else:
            self.streams.write(name, pid, data)
        wid = self._wid_of(pid)
        self.output.feed(pid, 0 if wid is None else wid, name, data)

    def close_streams(self) -> None:
        self.streams.close()

    def close(self) -> None:
        """Daemon shutdown (after stop): cancel pending respawns, close the streams."""
        self.engine.close()
        self.close_streams()

    # -- stats --------------------------------------------------------------------------------

    def stats(
        self, sample: Sample, pid: int | None = None, extended: bool = False
    ) -> dict[str, Any]:
        """``{"<pid>": info}`` for every process, or the info of one (errno 3 if unknown), from
        a ``sample`` of the arbiter's sampler taken off the event loop."""
        if pid is not None:
            proc = self.processes.find(pid)
            return self._stats_of(sample, proc, extended)  # type: ignore[return-value]
        procs = self.processes.select(None)
        return {str(p.pid): self._stats_of(sample, p, extended) for p in procs}

    def _stats_of(self, sample: Sample, proc: Process, extended: bool) -> dict[str, Any] | str:
        info = self.processes.stats(sample, proc)
        if extended and isinstance(info, dict):
            self.call_hook("extended_stats", pid=proc.pid, stats=info)
        return info

    def started_at(self) -> float:
        return self.processes.started_at()

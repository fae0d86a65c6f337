"""A watcher: the operations the control commands call (docs/architecture.md, Watcher API).

Each mutating operation holds the watcher's lock for its whole duration, so operations on one
watcher queue up and operations on different watchers run side by side. ``kill`` is the
exception: it does not hold the lock (0.19 does not lock it either), because a graceful kill can
take ``graceful_timeout`` seconds and must not block, say, ``stop``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from circus.config.model import WATCHER_OPTIONS
from circus.config.schema import Effect
from circus.config.watcher_options import settable
from circus.errors import ConfigError, MessageError
from circus.process import Process, signal_processes
from circus.stats.report import process_stats
from circus.stats.sampler import Sample
from circus.watcher_core import WatcherCore

T = TypeVar("T")
log = structlog.get_logger("circus.watcher")

class Watcher(WatcherCore):
    """A named group of identical processes; see docs/architecture.md for the API."""

    async def _locked(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with self.lock:
            result = await operation()
        self._after_op()
        return result

    # -- start / stop ------------------------------------------------------------------------

    async def start(self) -> dict[str, list[int]]:
        """Start (state stopped) or complete (state active) the watcher."""
        self._stop_requested = False
        return await self._locked(self._start)

    async def _start(self) -> dict[str, list[int]]:
        self._stop_requested = False
        kept = self.pids()
        if self.state == "active":
            more = await self.spawn_missing() or []
            return {"started": more, "kept": kept}
        if not self.call_hook("before_start"):
            log.warning("start aborted by the before_start hook", watcher=self.name)
            return {"started": [], "kept": kept}
        self.state = "starting"
        self._respawn_at = 0.0
        self._plugin_backoff = 0.0
        started = await self.spawn_missing()
        if started is None or self._stop_requested:
            if started is None and self._spawn_vetoed:
                log.warning("spawn vetoed by a hook: watcher stopped", watcher=self.name)
            elif started is None:
                log.error(
                    "giving up spawning: watcher stopped",
                    watcher=self.name,
                    max_retry=self.config.max_retry,
                )
            if self.state == "starting":
                self.state = "stopped"
                self.notify("stop", {"expected": self._stop_requested})
                await self._kill_all(list(self.processes.values()))
            return {"started": [], "kept": kept}
        self.state = "active"
        if not self.call_hook("after_start"):
            log.warning("the after_start hook failed: watcher stopped", watcher=self.name)
            await self._stop(expected=False)
            return {"started": [], "kept": kept}
        self.notify("start")
        log.info("watcher started", watcher=self.name, pids=started)
        return {"started": started, "kept": kept}

    async def stop(self) -> None:
        """Graceful stop of every process (``kill``, ``reap``... then ``stop``)."""
        self._stop_requested = True
        await self._locked(self._stop)

    async def _stop(self, *, expected: bool = True) -> None:
        if self.state == "stopped" and not self.processes and not self.dying:
            return
        self.state = "stopping"
        self.call_hook("before_stop")
        procs = list(self.processes.values()) + list(self.dying)
        await asyncio.gather(*(self.kill_process(p) for p in procs))
        self.state = "stopped"
        self.notify("stop", {"expected": expected})
        self.call_hook("after_stop")
        log.info("watcher stopped", watcher=self.name)

    async def restart(self) -> dict[str, list[int]]:
        self._stop_requested = True

        async def run() -> dict[str, list[int]]:
            stopped = self.pids()
            await self._stop()
            result = await self._start()
            return {"stopped": stopped, "started": result["started"], "kept": result["kept"]}

        return await self._locked(run)

    # -- reload ------------------------------------------------------------------------------

    async def reload(self, graceful: bool = True, sequential: bool = False) -> dict[str, list[int]]:
        """The variants of the contract's ``reload`` (3.3): restart, start, SIGHUP, sequential
        replacement, or new processes first and the old ones retired."""
        if not graceful:
            return await self.restart()
        return await self._locked(lambda: self._reload(sequential))

    async def _reload(self, sequential: bool) -> dict[str, list[int]]:
        old = self.pids()
        if self.state == "stopped":
            result = await self._start()
            self.notify("reload")
            return {"stopped": [], "started": result["started"], "kept": result["kept"]}
        if self.config.send_hup:
            for proc in list(self.processes.values()):
                proc.send_signal(signal.SIGHUP)
            self.notify("reload")
            return {"stopped": [], "started": [], "kept": old}
        started: list[int] = []
        if sequential:
            for proc in list(self.processes.values()):
                await self.retire([proc])
                new = await self.spawn_one()
                if new is not None:
                    started.append(new.pid)
                if self.config.warmup_delay > 0:
                    await asyncio.sleep(self.config.warmup_delay)
        else:
            olds = list(self.processes.values())
            for _ in range(self.config.numprocesses):
                new = await self.spawn_one()
                if new is not None:
                    started.append(new.pid)
            await self.retire(olds)
        self.notify("reload")
        return {"stopped": old, "started": started, "kept": []}

    # -- counts ------------------------------------------------------------------------------

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
        self.config.numprocesses = max(count, 0)
        await self._adjust()
        return self.config.numprocesses

    async def _adjust(self) -> None:
        """Spawn or retire (oldest first) to reach the target count now, if running."""
        if self.state != "active":
            return
        if len(self.processes) < self.config.numprocesses:
            await self.spawn_missing()
        surplus = len(self.processes) - self.config.numprocesses
        if surplus > 0:
            await self.retire(list(self.processes.values())[:surplus])

    # -- signals -----------------------------------------------------------------------------

    async def kill(
        self,
        pid: int | None = None,
        signum: int | None = None,
        graceful_timeout: float | None = None,
    ) -> None:
        """Kill one or every process gracefully; each is reaped and replaced when it exits."""
        if pid is None:
            targets = list(self.processes.values())
        else:
            found = self.processes.get(pid)
            targets = [found] if found is not None else []
        await asyncio.gather(
            *(self.kill_process(p, signum, graceful_timeout) for p in targets if p.alive)
        )

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
        if pid is None:
            targets = list(self.processes.values())
        else:
            found = self.processes.get(pid)
            targets = [found] if found is not None else []
        for proc in targets:
            if childpid is not None:
                signal_processes([c for c in proc.children() if c.pid == childpid], signum)
            elif children:
                signal_processes(proc.children(), signum)
            else:
                if not self.call_hook("before_signal", pid=proc.pid, signum=signum) and (
                    signum != signal.SIGKILL
                ):
                    continue
                proc.signalled_with.add(signum)
                if recursive:
                    proc.signal_tree(signum)
                else:
                    proc.send_signal(signum)
                self.call_hook("after_signal", pid=proc.pid, signum=signum)

    # -- options -----------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The ``options`` command: every shown option (keys sorted) plus free-form extras."""
        cfg = self.config
        values: dict[str, Any] = {
            opt.shown_as: opt.kind.show(getattr(cfg, name))
            for name, opt in WATCHER_OPTIONS.items()
            if opt.shown
        }
        for key, value in cfg.extra.items():
            if key != "__name__":
                values.setdefault(key, value)
        return dict(sorted(values.items()))

    def get_option(self, key: str) -> Any:
        options = self.options()
        if key not in options:
            raise KeyError(key)
        return options[key]

    async def apply_options(self, options: dict[str, Any]) -> None:
        """Apply already validated ``set`` values: one ``updated`` event per key, then a
        graceful reload when a key needs one and the watcher runs, else count management."""
        return await self._locked(lambda: self._apply(options))

    async def _apply(self, options: dict[str, Any]) -> None:
        needs_reload = False
        streams_changed = False
        for key, value in options.items():
            found = settable(key)
            if found is not None and found.option.effect is not Effect.IGNORE:
                opt = found.option
                if opt.name in ("stdout_stream", "stderr_stream"):
                    # a pipe only exists for processes spawned with a stream: reload to get one
                    needs_reload = needs_reload or not getattr(self.config, opt.name)
                    streams_changed = True
                else:
                    needs_reload = needs_reload or opt.effect is Effect.RELOAD
                self._store(opt.name, found.sub, value)
            self.notify("updated")
        if streams_changed:
            try:
                self._open_streams()
            except ConfigError as exc:
                raise MessageError(exc.message) from None
        if needs_reload and self.state != "stopped":
            await self._reload(sequential=False)
        else:
            await self._adjust()

    def _store(self, name: str, sub: str | None, value: Any) -> None:
        """Store one validated ``set`` value, converted by its option's kind."""
        kind = WATCHER_OPTIONS[name].kind
        if name == "hooks":
            hooks = {sub: value} if sub is not None else value
            for hook, spec in hooks.items():
                self._set_hook(str(hook), str(spec))
        elif sub is not None:
            getattr(self.config, name)[sub] = kind.convert_item(sub, value)
        elif name in ("stdout_stream", "stderr_stream", "env"):
            current = getattr(self.config, name)
            current.clear()
            current.update(kind.convert(value))
        else:
            if name == "numprocesses" and self.singleton:
                value = min(max(int(value), 0), 1)
            setattr(self.config, name, kind.convert(value))

    def _set_hook(self, hook: str, spec: str) -> None:
        """Store a hook; its module is re-imported on the next call (0.19 reloads it)."""
        self.config.hooks[hook] = spec
        self.hook_runner.mark_stale(spec)

    # -- stats -------------------------------------------------------------------------------

    def stats(
        self, sample: Sample, pid: int | None = None, extended: bool = False
    ) -> dict[str, Any]:
        """``{"<pid>": info}`` for every process, or the info of one (errno 3 if unknown), from
        a ``sample`` of the arbiter's sampler taken off the event loop."""
        if pid is not None:
            proc = self.get_process(pid)
            return self._stats_of(sample, proc, extended)  # type: ignore[return-value]
        return {
            str(p.pid): self._stats_of(sample, p, extended) for p in list(self.processes.values())
        }

    def _stats_of(self, sample: Sample, proc: Process, extended: bool) -> dict[str, Any] | str:
        info = process_stats(sample, proc.pid, wid=proc.wid, started=proc.started)
        if extended and isinstance(info, dict):
            self.call_hook("extended_stats", pid=proc.pid, stats=info)
        return info

    def started_at(self) -> float:
        return min((p.started for p in self.processes.values()), default=time.time())

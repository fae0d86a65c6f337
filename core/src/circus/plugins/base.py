"""The lifecycle shared by :class:`CircusPlugin` and :class:`AsyncCircusPlugin`.

Threading model (binding for plugin authors):

* ``start()`` is called on the main thread and blocks. It starts the *command thread* (owns
  the DEALER, see :mod:`circus.plugins.commands`) and the *loop thread*, which runs the asyncio
  loop ``self.loop``: it connects the SUB socket, runs ``handle_init()`` (sockets already
  connected, so ``call``/``cast`` work there), then feeds every event through the
  ``circus_plugin_event`` hooks to ``handle_recv((topic, message))`` with both as ``str``.
* ``stop()`` (main thread; the runner calls it on SIGTERM and SIGINT too) first stops event
  delivery, so no event reaches ``handle_recv`` once ``handle_stop()`` has begun; then runs
  ``handle_stop()`` on the main thread (``call``/``cast`` still work), stops and joins the loop
  thread, and closes the command thread.
* An exception in ``handle_recv`` (or a timer, or a hook) is logged and reported through the
  ``circus_plugin_failed`` hook; the plugin keeps running. An exception in ``handle_init`` is
  fatal: ``start()`` raises it and the runner exits with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from circus.errors import CircusError, ConfigError
from circus.hooks import call_each, get_plugin_manager, notify
from circus.hookspecs import PluginEvent
from circus.logs import get_logger
from circus.plugins.commands import CommandThread
from circus.plugins.scheduling import Scheduled
from circus.protocol import DEFAULT_ENDPOINT, DEFAULT_PUBSUB, EVENT_PREFIX, split_topic
from circus.transports import DEFAULT_TIMEOUT, Event, EventSubscriber

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class PluginFailed(CircusError):
    """The plugin could not start (``handle_init`` raised) or its event loop died."""


def parse_active(value: Any) -> bool:
    """Strict boolean for the ``active`` option: a typo must not silently mean "on"."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"invalid boolean {value!r} (use true/false, yes/no, on/off, 1/0)",
                      key="active")


@dataclass
class CallRecord:
    """What :meth:`PluginCore._call_hooks` reports to the after-call hooks: the reply, if any."""

    reply: dict[str, Any] | None = None


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class PluginCore:
    """State, threads and helpers common to the sync and async plugin base classes."""

    #: Short plugin name (logger name; option prefix for some plugins).
    name: ClassVar[str] = ""
    #: ZeroMQ topic prefixes subscribed to (every circusd event by default).
    subscribe_topics: ClassVar[Sequence[str]] = (EVENT_PREFIX,)
    #: Seconds ``stop()`` waits for a running handler and for each thread to end.
    stop_timeout: float = 10.0

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        pubsub_endpoint: str = DEFAULT_PUBSUB,
        check_delay: float | str = 5.0,
        ssh_server: str | None = None,
        **config: Any,
    ) -> None:
        if ssh_server:
            raise ConfigError("SSH tunnels (ssh_server) are not supported; "
                              "run the plugin on the daemon's host", key="ssh_server")
        self.endpoint = endpoint
        self.pubsub_endpoint = pubsub_endpoint
        self.check_delay = float(check_delay)
        self.ssh_server = ssh_server
        self.config: dict[str, Any] = config
        self.active = parse_active(config.get("active", True))
        #: Seconds a ``call`` waits for its reply before raising ``CallTimeout``.
        self.call_timeout = DEFAULT_TIMEOUT
        self.loop = asyncio.new_event_loop()
        self.running = False
        self.log = get_logger(f"circus.plugins.{self.name or type(self).__name__}")
        self._hooks = get_plugin_manager().hook
        self._commands: CommandThread | None = None
        self._commands_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._failure: BaseException | None = None
        self._init_done = False
        self._halted = False
        self._in_handler = False
        self._started = False
        self._stopped = False
        self._stop_lock = threading.Lock()

    # -- hooks for plugin authors ---------------------------------------------------------

    def handle_init(self) -> Any:
        """Called once in the loop thread, sockets connected, before the first event."""

    def handle_stop(self) -> Any:
        """Called once in the main thread when the plugin stops (also on SIGTERM/SIGINT)."""

    def handle_reload(self) -> Any:
        """Called in the loop thread when the runner receives SIGHUP (e.g. reopen files)."""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the plugin; blocks until it is stopped. Raises if ``handle_init`` fails."""
        if not self.active:
            raise ValueError("Will not start an inactive plugin")
        if self._started:
            raise RuntimeError("a plugin can be started only once")
        self._started = True
        notify(self._hooks.circus_plugin_loaded, self)
        self._command_thread()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"circus-plugin-{self.name or 'loop'}", daemon=True
        )
        self._thread.start()
        while not self._ready.wait(1.0):  # short waits keep signal handlers responsive
            pass
        self._raise_failure()
        self.running = True
        notify(self._hooks.circus_plugin_started, self)
        while not self._finished.wait(1.0):
            pass
        if not self._halted:
            self._raise_failure()

    def _raise_failure(self) -> None:
        failure = self._failure
        if failure is None:
            return
        if isinstance(failure, CircusError):
            raise failure
        raise PluginFailed(f"{type(failure).__name__}: {failure}") from failure

    def stop(self) -> None:
        """Stop delivering events, run ``handle_stop``, join the threads. Safe to call twice."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        if self._thread is not None and self._thread.is_alive():
            self._halt_delivery()
        if self._init_done:
            self._run_stage("handle_stop", self.handle_stop, in_loop=False)
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(self.stop_timeout)
            if self._thread.is_alive():
                self.log.warning("event loop thread did not stop in time")
        elif not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()
        if self._commands is not None:
            self._commands.close(self.stop_timeout)
        self.running = False
        if self._started:
            notify(self._hooks.circus_plugin_stopped, self)

    def _halt_delivery(self) -> None:
        try:
            fut = asyncio.run_coroutine_threadsafe(self._halt(), self.loop)
        except RuntimeError:  # loop already closed
            return
        try:
            fut.result(self.stop_timeout + 1)
        except Exception:
            self.log.warning("could not stop event delivery cleanly", exc_info=True)

    async def _halt(self) -> None:
        self._halted = True
        task = self._serve_task
        if task is None or task.done():
            return
        if self._in_handler:  # an async handler is running: let it finish, bounded
            await asyncio.wait({task}, timeout=self.stop_timeout)
        task.cancel()
        await asyncio.wait({task})

    def _thread_main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._serve_task = self.loop.create_task(self._serve())
            self._serve_task.add_done_callback(self._serve_done)
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self._ready.set()
            self._finished.set()

    def _serve_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._halted:
            return
        error = task.exception()
        if self._failure is None:
            self._failure = error or PluginFailed("event delivery ended unexpectedly")
        self.loop.stop()

    async def _serve(self) -> None:
        subscriber = EventSubscriber(self.pubsub_endpoint, topics=self.subscribe_topics)
        subscriber.connect()
        try:
            try:
                result = self.handle_init()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self._report("handle_init", exc)
                raise
            self._init_done = True
            self._ready.set()
            while not self._halted:
                batch = await subscriber.recv_batch()
                delivering = self._deliver_batch(batch)
                if delivering is not None:
                    self._in_handler = True
                    try:
                        await delivering
                    finally:
                        self._in_handler = False
        finally:
            subscriber.close()

    def _deliver_batch(self, batch: list[Event]) -> Awaitable[None] | None:
        raise NotImplementedError

    def _filter(self, topic: bytes, payload: bytes) -> tuple[str, str] | None:
        """Decode an event and run the event hooks; ``None`` when a hook dropped it."""
        event = PluginEvent(topic.decode("utf-8", "replace"), payload.decode("utf-8", "replace"))
        call_each(self._hooks.circus_plugin_event, self._hook_failed, plugin=self, event=event)
        if event.dropped:
            return None
        return event.topic, event.message

    def _hook_failed(self, error: BaseException, implementation: str) -> None:
        self.log.error("event hook failed", implementation=implementation, exc_info=error)
        notify(self._hooks.circus_plugin_failed, self, stage="hook", error=error)

    def _report(self, stage: str, error: BaseException) -> None:
        """Log a failure (one line for configuration errors, else with traceback) and notify."""
        if isinstance(error, CircusError):
            self.log.error(f"{stage} failed: {error}", stage=stage)
        else:
            self.log.error(f"{stage} failed", stage=stage, exc_info=error)
        notify(self._hooks.circus_plugin_failed, self, stage=stage, error=error)

    def _run_stage(self, stage: str, func: Callable[[], Any], *, in_loop: bool) -> None:
        """Run a handler, awaiting it on the loop if it is a coroutine; report failures."""
        try:
            result = func()
            if inspect.isawaitable(result):
                if in_loop:
                    task = asyncio.ensure_future(result)
                    task.add_done_callback(
                        lambda t: None if t.cancelled() or t.exception() is None
                        else self._report(stage, t.exception())  # type: ignore[arg-type]
                    )
                else:
                    coro = result if inspect.iscoroutine(result) else _await(result)
                    asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.stop_timeout)
        except Exception as exc:
            self._report(stage, exc)

    def reload(self) -> None:
        """Run ``handle_reload`` in the loop thread (thread-safe; the runner's SIGHUP)."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(
                lambda: self._run_stage("handle_reload", self.handle_reload, in_loop=True)
            )

    # -- commands -------------------------------------------------------------------------

    def _command_thread(self) -> CommandThread:
        with self._commands_lock:
            if self._commands is None:
                self._commands = CommandThread(
                    self.endpoint, timeout=self.call_timeout,
                    name=f"circus-plugin-{self.name or 'commands'}-dealer",
                )
            return self._commands

    @contextlib.contextmanager
    def _call_hooks(self, command: str, props: dict[str, Any], *, cast: bool
                    ) -> Iterator[CallRecord]:
        """Wrap one call or cast in the before/after-call hooks (timing, reply, error).

        Shared by the blocking and the async flavours so that every hook implementation sees
        the same arguments whichever base class the plugin uses.
        """
        notify(self._hooks.circus_plugin_before_call, self,
               command=command, properties=props, cast=cast)
        record = CallRecord()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            yield record
        except BaseException as exc:
            error = exc
            raise
        finally:
            notify(self._hooks.circus_plugin_after_call, self, command=command,
                   properties=props, cast=cast, reply=record.reply, error=error,
                   duration=time.perf_counter() - started)

    # -- helpers for plugin authors ---------------------------------------------------------

    def schedule(self, delay: float, callback: Callable[..., Any], *args: Any) -> Scheduled:
        """Run ``callback(*args)`` once in the loop thread after ``delay`` s (any thread)."""
        return Scheduled(self.loop, delay, callback, args, interval=None,
                         on_error=lambda exc: self._report("callback", exc))

    def every(self, interval: float, callback: Callable[..., Any], *args: Any) -> Scheduled:
        """Run ``callback(*args)`` every ``interval`` s in the loop thread, first after one
        interval. Coroutine functions are run as tasks. Cancel the result to stop it."""
        return Scheduled(self.loop, interval, callback, args, interval=interval,
                         on_error=lambda exc: self._report("callback", exc))

    @staticmethod
    def split_data(data: Sequence[str | bytes]) -> tuple[str, str, str | bytes]:
        """``(topic, message)`` -> ``(watcher res_name, action, message)``."""
        name, action = split_topic(data[0])
        return name, action, data[1]

    @staticmethod
    def load_message(msg: str | bytes) -> Any:
        """The JSON payload of an event."""
        return json.loads(msg)

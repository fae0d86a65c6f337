"""The lifecycle shared by :class:`CircusPlugin` and :class:`AsyncCircusPlugin`.

Threading model (binding for plugin authors):

* ``start()`` is called on the main thread and blocks until the plugin stops. It starts the
  *loop thread*, whose asyncio loop ``self.loop`` owns both sockets: the SUB (events) and the
  DEALER (``await self.call`` of async plugins). The loop connects them, asks the daemon
  ``numwatchers`` until it answers (at most ``connect_timeout`` s: nothing answering is an error,
  never a silent wait), starts reading events into the plugin's bounded queue (so events published
  while ``handle_init`` runs are kept), runs ``handle_init``, then delivers events.
* Each event is checked for missed events first (``handle_gap``, see
  :mod:`circus.plugins.sequence`), then passed through the ``circus_plugin_event`` hooks to
  ``handle_recv((topic, message))`` with both as ``str``.
* Where handlers run depends on the flavour: ``AsyncCircusPlugin`` awaits them on the loop;
  ``CircusPlugin`` runs them (``handle_init``, ``handle_recv``, ``handle_gap``,
  ``handle_reload`` and timer callbacks) in one *handler thread*, so a blocking handler never
  stalls the sockets, and its blocking ``call`` uses a socket of that thread
  (:mod:`circus.plugins.calls`).
* ``stop()`` (main thread; the runner calls it on SIGTERM and SIGINT too) first stops event
  delivery (a running handler may finish, bounded by ``stop_timeout``), so no event reaches
  ``handle_recv`` once ``handle_stop()`` has begun; then runs ``handle_stop()`` on the calling
  thread (``call``/``cast`` still work), then ends the loop and closes the sockets.
* An exception in ``handle_recv`` (or ``handle_gap``, a timer, a hook) is logged and reported
  through the ``circus_plugin_failed`` hook; the plugin keeps running. An exception in
  ``handle_init`` is fatal: ``start()`` raises it and the runner exits with status 1.

The plugin's state is one :class:`Phase`, changed under one condition variable that
``start()`` and :meth:`PluginCore.wait_phase` wait on without polling.

Every private name of the runtime starts with ``_pc_``: plugin classes keep their own ``_client``,
``_calls`` or ``_probe`` without silently replacing a piece of the machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from circus.errors import CallError, CallTimeout, CircusError, ConfigError
from circus.hooks import call_each, get_plugin_manager, notify
from circus.hookspecs import PluginEvent
from circus.logs import get_logger
from circus.plugins.calls import ThreadClients
from circus.plugins.options import PluginOptions
from circus.plugins.scheduling import Dispatch, Scheduled
from circus.plugins.sequence import EventCounters, Gap, SequenceTracker
from circus.plugins.stats import StatsFeed
from circus.protocol import DEFAULT_ENDPOINT, DEFAULT_PUBSUB, EVENT_PREFIX, split_topic
from circus.transports import DEFAULT_TIMEOUT, Event
from circus.wire.async_dealer import AsyncClient, open_async_command_client
from circus.wire.subscriber import EventSource, open_subscriber

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class PluginFailed(CircusError):
    """The plugin could not start (``handle_init`` raised, no daemon answered) or its event
    loop died."""


class Phase(enum.Enum):
    """Where a plugin is in its life; the only state ``start``/``stop`` look at."""

    NEW = "new"
    STARTING = "starting"  # loop thread connecting, then handle_init
    RUNNING = "running"  # events are delivered
    STOPPING = "stopping"  # stop() in progress
    STOPPED = "stopped"
    FAILED = "failed"  # handle_init raised, no daemon answered, or the loop died


_ENDED = (Phase.STOPPED, Phase.FAILED)


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


def parse_queue_size(value: Any) -> int:
    """The ``queue_size`` option: a positive number of events."""
    try:
        size = int(str(value).strip())
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"invalid queue_size {value!r} (a number of events, at least 1)",
                          key="queue_size")
    return size


#: events of this watcher reach a plugin's socket whatever it subscribes to, and are counted but
#: never delivered to a plugin that did not ask for them: the test helpers provoke them to learn
#: that a plugin with a narrow subscription is subscribed (circus.plugins.testing)
PROBE_TOPIC = "watcher.circus-probe."


def _covers(topics: Sequence[str | bytes], topic: str) -> bool:
    wanted = topic.encode()
    return any(wanted.startswith(t.encode() if isinstance(t, str) else t) for t in topics)


def _covers_all(topics: Sequence[str | bytes]) -> bool:
    """Whether the subscription receives every event (only then is a ``seq`` jump a loss)."""
    prefix = EVENT_PREFIX.encode() if isinstance(EVENT_PREFIX, str) else EVENT_PREFIX
    return any(prefix.startswith(t.encode() if isinstance(t, str) else t) for t in topics)


@dataclass
class CallRecord:
    """What :meth:`PluginCore._call_hooks` reports to the after-call hooks: the reply, if any."""

    reply: dict[str, Any] | None = None


class PluginCore:
    """State, loop and helpers common to the sync and async plugin base classes."""

    #: Short plugin name (logger name; option prefix for some plugins).
    name: ClassVar[str] = ""
    #: ZeroMQ topic prefixes subscribed to (every circusd event by default). With a narrower
    #: subscription ``seq`` jumps are expected, so only daemon restarts reach ``handle_gap``.
    subscribe_topics: ClassVar[Sequence[str]] = (EVENT_PREFIX,)
    #: The commands this plugin sends, for circusd's per-plugin allowlist (``None``: not
    #: declared). Declare it so that a daemon restricting plugins lets yours do its job.
    required_commands: ClassVar[frozenset[str] | None] = None
    #: The keys this plugin reads from a ``[watcher:X]`` section, written ``<name>.<key>``
    #: (``flapping.max_retry``) and declared without the prefix. circusd checks every
    #: ``<name>.*`` key of a watcher against them ("did you mean", refused under ``--strict``),
    #: because a misspelt override is otherwise kept and never read. Read them through
    #: ``watcher_options.watcher_view(options, name)`` so code and declaration cannot drift.
    #: ``None``: not declared, such keys are not judged (0.19 plugins read any key).
    watcher_options: ClassVar[PluginOptions | None] = None
    #: Events held for the handlers at most (option ``queue_size`` overrides it); when full the
    #: oldest are dropped and reported through ``handle_gap``.
    queue_size: int = 10_000
    #: Seconds ``stop()`` waits for a running handler and for the loop thread to end.
    stop_timeout: float = 10.0
    #: Seconds ``start()`` waits for the daemon to answer before failing (0: do not ask).
    connect_timeout: float = 10.0

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        pubsub_endpoint: str = DEFAULT_PUBSUB,
        check_delay: float | str = 5.0,
        ssh_server: str | None = None,
        *,
        stats_endpoint: str | None = None,
        **config: Any,
    ) -> None:
        if ssh_server:
            raise ConfigError("SSH tunnels (ssh_server) are not supported; "
                              "run the plugin on the daemon's host", key="ssh_server")
        self.endpoint = endpoint
        self.pubsub_endpoint = pubsub_endpoint
        self.check_delay = float(check_delay)
        self.ssh_server = ssh_server
        #: circusd's stats stream, where ``handle_stats`` samples come from (``None``: off)
        self.stats_endpoint = stats_endpoint
        self.config: dict[str, Any] = config
        self.active = parse_active(config.get("active", True))
        if "queue_size" in config:
            self.queue_size = parse_queue_size(config["queue_size"])
        #: Seconds a ``call`` waits for its reply before raising ``CallTimeout``.
        self.call_timeout = DEFAULT_TIMEOUT
        self.loop = asyncio.new_event_loop()
        self.phase = Phase.NEW
        self.log = get_logger(f"circus.plugins.{self.name or type(self).__name__}")
        self._pc_sequence = SequenceTracker(contiguous=_covers_all(self.subscribe_topics))
        # the probe's events are not the plugin's: received (counted), never delivered
        self._pc_probe_only = not _covers(self.subscribe_topics, PROBE_TOPIC)
        self._pc_hooks = get_plugin_manager().hook
        self._pc_phase_changed = threading.Condition()
        self._pc_failure: BaseException | None = None
        self._pc_halted = False  # set once by stop(): no event reaches a handler afterwards
        self._pc_init_done = False
        self._pc_done = asyncio.Event()  # set (on the loop) when the loop may end
        self._pc_calls = ThreadClients(endpoint, self.call_timeout)
        self._pc_dealer: AsyncClient | None = None
        self._pc_thread: threading.Thread | None = None

    # -- hooks for plugin authors ---------------------------------------------------------

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Validate the options when circusd loads its config, before anything starts.

        Raise :class:`circus.errors.ConfigError` (with ``key=``) for a bad value: circusd then
        refuses the config with a one-line message naming the section and the key.
        """

    def handle_init(self) -> Any:
        """Called once before the first event, sockets connected (``call`` works here).

        A good place to take a :meth:`snapshot` of the daemon's state.
        """

    def handle_stop(self) -> Any:
        """Called once in the thread calling ``stop()`` (the runner's main thread)."""

    def handle_reload(self) -> Any:
        """Called where handlers run when the runner receives SIGHUP (e.g. reopen files)."""

    def handle_stats(self, watcher: str, pid: int | None, stats: dict[str, Any]) -> Any:
        """Override it to receive circusd's process statistics (``statsd = true``).

        Called where handlers run with the latest sample of each topic: ``pid`` set for one
        process (``cpu``, ``mem``, ``age``, ``cmdline``...), ``None`` for a watcher's aggregate
        (``pid`` is then the list of its pids). ``watcher`` is ``circus`` for the daemon itself.
        Only delivered when ``stats_endpoint`` is set (circusd passes it) and this method is
        overridden; see :mod:`circus.plugins.stats`.
        """

    def handle_gap(self, gap: Gap) -> Any:
        """Called before the first event after missed ones (see :class:`Gap`).

        The default logs it. Override it to resynchronise, typically with :meth:`snapshot`;
        the ``circus_plugin_gap`` hook is told as well.
        """
        if gap.kind == "start":
            self.log.info("events published before this plugin subscribed were not received",
                          missed=gap.missed)
        else:
            self.log.warning(f"missed events ({gap.kind})", missed=gap.missed,
                             dropped=gap.dropped, seq=gap.seq)

    # -- state ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while events are delivered (after ``handle_init``, before ``stop()``)."""
        return self.phase is Phase.RUNNING

    @property
    def event_counters(self) -> EventCounters:
        """Events received, missed and dropped so far, gaps and restarts seen."""
        return self._pc_sequence.counters

    def wait_phase(self, *phases: Phase, timeout: float | None = None) -> Phase:
        """Block until the plugin is in one of ``phases`` (or ``timeout`` s passed)."""
        with self._pc_phase_changed:
            self._pc_phase_changed.wait_for(lambda: self.phase in phases, timeout)
            return self.phase

    def _pc_set_phase(self, phase: Phase, *, unless: Sequence[Phase] = ()) -> bool:
        with self._pc_phase_changed:
            if self.phase in unless:
                return False
            self.phase = phase
            self._pc_phase_changed.notify_all()
            return True

    def _pc_fail(self, error: BaseException) -> None:
        if self._pc_failure is None:
            self._pc_failure = error
        self._pc_set_phase(Phase.FAILED, unless=(Phase.STOPPING, *_ENDED))

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the plugin; blocks until it is stopped. Raises if it cannot start."""
        if not self.active:
            raise ValueError("Will not start an inactive plugin")
        if not self._pc_set_phase(Phase.STARTING, unless=tuple(p for p in Phase if p is not
                                                            Phase.NEW)):
            raise RuntimeError("a plugin can be started only once")
        notify(self._pc_hooks.circus_plugin_loaded, self)
        self._pc_thread = threading.Thread(
            target=self._pc_loop_main, name=f"circus-plugin-{self.name or 'loop'}", daemon=True
        )
        self._pc_thread.start()
        if self.wait_phase(Phase.RUNNING, Phase.STOPPING, *_ENDED) is Phase.RUNNING:
            notify(self._pc_hooks.circus_plugin_started, self)
        self.wait_phase(*_ENDED)
        if self.phase is Phase.FAILED:
            self._pc_raise_failure()

    def _pc_raise_failure(self) -> None:
        failure = self._pc_failure
        if failure is None:
            return
        if isinstance(failure, CircusError):
            raise failure
        raise PluginFailed(f"{type(failure).__name__}: {failure}") from failure

    def stop(self) -> None:
        """Stop delivering events, run ``handle_stop``, end the loop. Safe to call twice."""
        with self._pc_phase_changed:
            was = self.phase
            if was in (Phase.STOPPING, Phase.STOPPED):
                return
            self.phase = Phase.STOPPING
            self._pc_phase_changed.notify_all()
        try:
            if was is not Phase.NEW:
                self._pc_halt()
                if self._pc_init_done:
                    self._pc_run_stage("handle_stop", self.handle_stop, in_loop=False)
                self._pc_end_loop()
            elif not self.loop.is_closed():
                self.loop.close()
        finally:
            self._pc_calls.close()
            self._pc_set_phase(Phase.FAILED if self._pc_failure is not None else Phase.STOPPED)
            if was is not Phase.NEW:
                notify(self._pc_hooks.circus_plugin_stopped, self)

    def _pc_halt(self) -> None:
        """Stop delivering events, letting a running handler finish (bounded)."""
        raise NotImplementedError

    def _pc_end_loop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already ended (failure)
            self.loop.call_soon_threadsafe(self._pc_done.set)
        thread = self._pc_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.stop_timeout)
            if thread.is_alive():
                self.log.warning("event loop thread did not stop in time")

    def _pc_loop_main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._pc_main())
        except BaseException as exc:  # reported through start()
            self._pc_fail(exc)
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            if self.phase is not Phase.STOPPING and self.phase not in _ENDED:
                self._pc_fail(PluginFailed("event delivery ended unexpectedly"))

    async def _pc_main(self) -> None:
        # the subscriber bounds what it queues for us too (libzmq's or our own, see
        # circus.wire.subscriber): beyond it circusd drops events for us (a seq gap)
        topics = [*self.subscribe_topics, *([PROBE_TOPIC] if self._pc_probe_only else [])]
        subscriber = open_subscriber(self.pubsub_endpoint, topics, hwm=max(self.queue_size, 1000))
        subscriber.connect()
        client = self._pc_dealer = open_async_command_client(self.endpoint,
                                                             timeout=self.call_timeout)
        reader: asyncio.Task[None] | None = None
        stats: asyncio.Task[None] | None = None
        try:
            await self._pc_await_daemon(client)
            reader = asyncio.create_task(self._pc_read(subscriber), name="circus-plugin-events")
            stats = self._pc_stats_task()
            await self._pc_run_init()
            self._pc_init_done = True
            self._pc_set_phase(Phase.RUNNING, unless=(Phase.STOPPING, *_ENDED))
            await self._pc_done.wait()
        finally:
            tasks = [t for t in (reader, stats) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            subscriber.close()
            await client.close()

    async def _pc_await_daemon(self, client: AsyncClient) -> None:
        if self.connect_timeout <= 0:
            return
        try:
            await client.call("numwatchers", timeout=self.connect_timeout)
        except CallTimeout:
            raise PluginFailed(f"no circusd answered at {self.endpoint} within "
                               f"{self.connect_timeout:g} s") from None

    async def _pc_read(self, subscriber: EventSource) -> None:
        put = self._pc_put_events
        try:
            while True:
                put(await subscriber.recv_batch())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._pc_report("events", exc)
            self._pc_fail(exc)
            self._pc_done.set()

    def _pc_stats_task(self) -> asyncio.Task[None] | None:
        """Read the stats stream when the plugin wants it (``handle_stats`` overridden)."""
        if not self.stats_endpoint or type(self).handle_stats is PluginCore.handle_stats:
            return None

        def deliver(watcher: str, pid: int | None, stats: dict[str, Any]) -> None:
            if not self._pc_halted:
                self._pc_run_stage("handle_stats", lambda: self.handle_stats(watcher, pid, stats),
                                   in_loop=True)

        feed = StatsFeed(self.stats_endpoint, self._pc_dispatch, deliver)
        return asyncio.create_task(feed.run(), name="circus-plugin-stats")

    def _pc_put_events(self, batch: list[Event]) -> None:
        """Hand a batch to the flavour's bounded queue (on the loop)."""
        raise NotImplementedError

    async def _pc_run_init(self) -> None:
        """Run ``handle_init`` where the flavour runs handlers; raise what it raised."""
        raise NotImplementedError

    # -- delivery (both flavours) ---------------------------------------------------------

    def _pc_prepared(self, events: list[Event], dropped: int
                  ) -> Iterator[tuple[Gap | None, tuple[str, str] | None]]:
        """Each event's gap report (if any) and its decoded form (``None``: a hook dropped
        it), until ``stop()`` halts delivery."""
        observe = self._pc_sequence.observe
        probe = PROBE_TOPIC.encode() if self._pc_probe_only else None
        for topic, payload in events:
            if self._pc_halted:
                return
            gap = observe(payload, dropped)
            dropped = 0
            if probe is not None and topic.startswith(probe):
                yield gap, None
            else:
                yield gap, self._pc_filter(topic, payload)

    def _pc_filter(self, topic: bytes, payload: bytes) -> tuple[str, str] | None:
        """Decode an event and run the event hooks; ``None`` when a hook dropped it."""
        event = PluginEvent(topic.decode("utf-8", "replace"), payload.decode("utf-8", "replace"))
        call_each(self._pc_hooks.circus_plugin_event, self._pc_hook_failed,
                  plugin=self, event=event)
        if event.dropped:
            return None
        return event.topic, event.message

    def _pc_gap_stage(self, gap: Gap) -> Any:
        notify(self._pc_hooks.circus_plugin_gap, self, gap=gap)
        return self.handle_gap(gap)

    def _pc_hook_failed(self, error: BaseException, implementation: str) -> None:
        self.log.error("event hook failed", implementation=implementation, exc_info=error)
        notify(self._pc_hooks.circus_plugin_failed, self, stage="hook", error=error)

    def _pc_report(self, stage: str, error: BaseException) -> None:
        """Log a failure (one line for configuration errors, else with traceback) and notify."""
        if isinstance(error, CircusError):
            self.log.error(f"{stage} failed: {error}", stage=stage)
        else:
            self.log.error(f"{stage} failed", stage=stage, exc_info=error)
        notify(self._pc_hooks.circus_plugin_failed, self, stage=stage, error=error)

    def _pc_run_stage(self, stage: str, func: Callable[[], Any], *, in_loop: bool) -> None:
        """Run a handler, awaiting it on the loop if it is a coroutine; report failures."""
        try:
            result = func()
            if inspect.isawaitable(result):
                if in_loop:
                    task = asyncio.ensure_future(result)
                    task.add_done_callback(
                        lambda t: None if t.cancelled() or t.exception() is None
                        else self._pc_report(stage, t.exception())  # type: ignore[arg-type]
                    )
                else:
                    asyncio.run_coroutine_threadsafe(_awaited(result), self.loop).result(
                        self.stop_timeout)
        except Exception as exc:
            self._pc_report(stage, exc)

    def _pc_dispatch(self, job: Callable[[], None]) -> None:
        """Run ``job`` where this flavour runs handlers (any thread may call it)."""
        raise NotImplementedError

    def reload(self) -> None:
        """Run ``handle_reload`` where handlers run (thread-safe; the runner's SIGHUP)."""
        with contextlib.suppress(RuntimeError):
            self._pc_dispatch(
                lambda: self._pc_run_stage("handle_reload", self.handle_reload, in_loop=True)
            )

    # -- commands -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _pc_call_hooks(self, command: str, props: dict[str, Any], *, cast: bool
                    ) -> Iterator[CallRecord]:
        """Wrap one call or cast in the before/after-call hooks (timing, reply, error).

        Shared by the blocking and the async flavours so that every hook implementation sees
        the same arguments whichever base class the plugin uses.
        """
        notify(self._pc_hooks.circus_plugin_before_call, self,
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
            notify(self._pc_hooks.circus_plugin_after_call, self, command=command,
                   properties=props, cast=cast, reply=record.reply, error=error,
                   duration=time.perf_counter() - started)

    def _pc_blocking_call(self, command: str, timeout: float | None, props: dict[str, Any]
                       ) -> dict[str, Any]:
        """A call on the calling thread's own socket: no thread handoff."""
        wait = self.call_timeout if timeout is None else timeout
        with self._pc_call_hooks(command, props, cast=False) as record:
            record.reply = self._pc_calls.call(command, wait, props)
            return record.reply

    def _pc_blocking_cast(self, command: str, props: dict[str, Any]) -> None:
        with self._pc_call_hooks(command, props, cast=True):
            self._pc_calls.cast(command, props)

    def _pc_loop_client(self) -> AsyncClient:
        client = self._pc_dealer
        if client is None:
            raise CallError("the plugin is not running: no control connection")
        return client

    # -- helpers for plugin authors ---------------------------------------------------------

    def schedule(self, delay: float, callback: Callable[..., Any], *args: Any) -> Scheduled:
        """Run ``callback(*args)`` once where handlers run, after ``delay`` s (any thread)."""
        return Scheduled(self.loop, delay, callback, args, interval=None,
                         on_error=lambda exc: self._pc_report("callback", exc),
                         dispatch=self._pc_timer_dispatch())

    def every(self, interval: float, callback: Callable[..., Any], *args: Any) -> Scheduled:
        """Run ``callback(*args)`` every ``interval`` s where handlers run, first after one
        interval. Coroutine functions are run as tasks. Cancel the result to stop it."""
        return Scheduled(self.loop, interval, callback, args, interval=interval,
                         on_error=lambda exc: self._pc_report("callback", exc),
                         dispatch=self._pc_timer_dispatch())

    def _pc_timer_dispatch(self) -> Dispatch | None:
        return None

    @staticmethod
    def split_data(data: Sequence[str | bytes]) -> tuple[str, str, str | bytes]:
        """``(topic, message)`` -> ``(watcher res_name, action, message)``."""
        name, action = split_topic(data[0])
        return name, action, data[1]

    @staticmethod
    def load_message(msg: str | bytes) -> Any:
        """The JSON payload of an event (a ``dict`` for every circusd event)."""
        return json.loads(msg)

    @staticmethod
    def parse_event(data: Sequence[str | bytes]) -> tuple[str, str, dict[str, Any]] | None:
        """``(watcher res_name, action, payload)``, or None when ``data`` is not a well-formed
        circusd event (another publisher on the channel must not break a plugin's handler)."""
        try:
            watcher, action = split_topic(data[0])
            payload = json.loads(data[1])
        except (ValueError, IndexError):
            return None
        return (watcher, action, payload) if isinstance(payload, dict) else None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable

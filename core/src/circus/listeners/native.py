"""The control channel read by circusd itself: ZMTP 3.0 (NULL mechanism) on TCP or ``ipc://``.

To its clients this is a ROUTER socket like any other: ``circusctl``, plugins and the original
Circus tools connect with their usual DEALER or REQ sockets and notice nothing. What changes is
who reads the wire. libzmq would buffer an unfinished multipart message without limit; here
each connection's bytes go through a :class:`~circus.wire.zmtp.FrameReader`, which keeps
at most one request's worth and discards the rest as it arrives, and every other buffer is
bounded as well:

* requests waiting for the controller: at most :data:`PEER_QUEUE` per connection and
  :data:`QUEUE_BUDGET` bytes in all; past either, circusd stops reading that connection (the
  kernel's socket buffer then makes the sender wait) until the controller catches up;
* unfinished requests: :data:`PARTIAL_BUDGET` bytes in all, past which the connections holding
  the most are closed (a real client's request is a few hundred bytes and completes at once);
* replies clients do not read: reading from a client stops once :data:`WRITE_PAUSE` bytes of
  its replies wait, and past :data:`WRITE_BUDGET` bytes in all the client with the most unread
  is disconnected;
* connections: at most :data:`MAX_PEERS` at once.

So an attacker on the port costs circusd a bounded amount of memory, whatever it sends, and
every refusal is logged through the controller's rate-limited warning.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable
from typing import cast

from circus.binding import BindPolicy
from circus.listeners import MAX_FRAMES, Address, Incoming, Wakeup
from circus.listeners.server import StreamServer
from circus.logthrottle import Throttle
from circus.memguard import trim
from circus.wire.zmtp import (
    GREETING_SIZE,
    SERVER_GREETING,
    Command,
    FrameReader,
    Greeting,
    Message,
    ProtocolError,
    accept_greeting,
    accept_ready,
    answer_command,
    message,
)

#: Requests of one connection waiting for the controller before circusd stops reading it.
PEER_QUEUE = 64
#: Bytes of requests waiting for the controller, all connections together.
QUEUE_BUDGET = 16 << 20
#: Bytes of unfinished requests kept, all connections together.
PARTIAL_BUDGET = 16 << 20
#: Unread reply bytes after which circusd stops reading a connection.
WRITE_PAUSE = 1 << 20
#: Unread reply bytes, all connections together, past which the worst reader is dropped.
WRITE_BUDGET = 32 << 20
#: Connections served at once; more are closed on arrival.
MAX_PEERS = 512
#: Seconds after a burst of evictions before freed memory is handed back to the system.
TRIM_DELAY = 0.1
#: Socket types that may talk to a ROUTER (ZMTP's compatibility table).
PEER_TYPES = frozenset({"DEALER", "REQ", "ROUTER"})


class NativeListener:
    """Listens on one TCP address or Unix socket; used only from circusd's event loop."""

    def __init__(
        self,
        endpoint: str,
        address: Address,
        policy: BindPolicy,
        *,
        keep_bytes: int,
        hard_bytes: int,
        wakeup: Wakeup,
        warn: Throttle,
    ) -> None:
        self.endpoint = endpoint
        self.address = address
        self.policy = policy
        self.keep_bytes = keep_bytes
        self.hard_bytes = hard_bytes
        self.wakeup = wakeup
        self.warn = warn
        self.queued_bytes = 0
        self.partial_bytes = 0
        self.unread_bytes = 0
        self._routes: dict[bytes, Peer] = {}
        self._waiting: dict[bytes, deque[Peer]] = {}
        self._queue: deque[tuple[Peer, Incoming, int]] = deque()
        self._next_id = int.from_bytes(os.urandom(4), "big")
        self._server: StreamServer[Peer] = StreamServer(
            endpoint, address, policy, limit=MAX_PEERS, warn=warn,
            refusal="refused a control connection: too many open",
        )
        #: the connections being served
        self.peers = self._server.connections
        self._over_budget = False
        self._trim: asyncio.TimerHandle | None = None

    # -- binding ---------------------------------------------------------------------------

    async def open(self) -> None:
        await self._server.open(lambda: Peer(self))
        self.endpoint = self._server.endpoint

    # -- the controller's side ---------------------------------------------------------------

    def receive(self) -> Incoming | None:
        if not self._queue:
            return None
        peer, incoming, size = self._queue.popleft()
        self.queued_bytes -= size
        peer.queued -= 1
        if self._over_budget and self.queued_bytes < QUEUE_BUDGET:
            self._over_budget = False
            for other in list(self.peers):
                other.update_reading()
        else:
            peer.update_reading()
        return incoming

    def send(self, frames: list[bytes]) -> None:
        peer = self._routes.get(frames[0])
        if peer is not None:  # like a ROUTER, drop replies to peers that are gone
            peer.send(frames[1:])

    async def service(self) -> None:
        return None

    async def close(self, linger: float) -> None:
        if self._trim is not None:
            self._trim.cancel()
            self._trim = None
        await self._server.close(linger)

    # -- the peers' side ---------------------------------------------------------------------

    def admit(self, peer: Peer) -> bool:
        return self._server.admit(peer)

    def register(self, peer: Peer, identity: bytes) -> bytes | None:
        """The routing id of a peer that finished its handshake: its own identity when it set
        one, else a fresh one (five bytes starting with a zero byte, as libzmq makes them).
        ``None`` when another connection uses that identity: as libzmq does, the newcomer
        waits (unread) until the identity is free, then gets it (:meth:`Peer.admit`), so an
        identity never names two connections and the newcomer's requests are not lost."""
        if identity and identity[0] != 0:
            if identity in self._routes:
                self._waiting.setdefault(identity, deque()).append(peer)
                return None
            routing_id = identity
        else:
            routing_id = b"\x00" + self._next_id.to_bytes(4, "big")
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        self._routes[routing_id] = peer
        return routing_id

    def enqueue(self, peer: Peer, incoming: Incoming) -> None:
        size = sum(len(frame) for frame in incoming.frames if frame is not None)
        self._queue.append((peer, incoming, size))
        self.queued_bytes += size
        peer.queued += 1
        if self.queued_bytes >= QUEUE_BUDGET:
            self._over_budget = True
        self.wakeup()

    def account(self, peer: Peer, held: int) -> None:
        """A peer now holds ``held`` bytes of unfinished input; evict when over budget."""
        self.partial_bytes += held - peer.held
        peer.held = held
        self._evict(lambda: self.partial_bytes > PARTIAL_BUDGET, lambda p: p.held,
                    "holding the most unfinished input")

    def unread(self, peer: Peer, unread: int) -> None:
        """A peer now has ``unread`` reply bytes buffered. The figures of other peers may be
        stale (a buffer drains without telling), so they are refreshed before anyone is
        dropped for the budget."""
        self._set_unread(peer, unread)
        if self.unread_bytes <= WRITE_BUDGET:
            return
        for other in self.peers:
            self._set_unread(other, other.buffered())
        self._evict(lambda: self.unread_bytes > WRITE_BUDGET, lambda p: p.unread,
                    "that does not read its replies")

    def _evict(self, over: Callable[[], bool], share: Callable[[Peer], int], why: str) -> None:
        """Close the connections with the largest ``share`` while ``over`` the budget."""
        evicted = False
        while over() and self.peers:
            worst = max(self.peers, key=share)
            self.warn.warning(f"closed a control connection {why}", bytes=share(worst))
            worst.abort()
            evicted = True
        if evicted and self._trim is None:
            # what the evicted held was freed, but glibc keeps large freed blocks for reuse:
            # hand them back once the burst of evictions is over (measured: +94 MiB peak with
            # 250 non-reading clients, within the budgets once trimmed)
            self._trim = asyncio.get_running_loop().call_later(TRIM_DELAY, self._trim_now)

    def _trim_now(self) -> None:
        self._trim = None
        trim()

    def _hand_over(self, identity: bytes) -> None:
        """Give a freed identity to the first connection still waiting for it."""
        waiting = self._waiting.get(identity)
        while waiting:
            candidate = waiting.popleft()
            if candidate in self.peers:
                self._routes[identity] = candidate
                candidate.admit(identity)
                break
        if not waiting:
            self._waiting.pop(identity, None)

    def _set_unread(self, peer: Peer, unread: int) -> None:
        self.unread_bytes += unread - peer.unread
        peer.unread = unread

    def forget(self, peer: Peer) -> None:
        self.peers.discard(peer)
        if peer.routing_id is not None and self._routes.get(peer.routing_id) is peer:
            del self._routes[peer.routing_id]
            self._hand_over(peer.routing_id)
        waiting = self._waiting.get(peer.waits_for or b"")
        if waiting is not None and peer in waiting:  # it left before its turn came
            waiting.remove(peer)
            if not waiting:
                del self._waiting[peer.waits_for or b""]
        self.partial_bytes -= peer.held
        self.unread_bytes -= peer.unread
        peer.held = peer.unread = 0


class Peer(asyncio.Protocol):
    """One client connection: its handshake, its reader and its share of the budgets."""

    def __init__(self, listener: NativeListener) -> None:
        self.listener = listener
        self.reader = FrameReader(
            keep_frames=MAX_FRAMES - 1,
            keep_bytes=listener.keep_bytes,
            hard_bytes=listener.hard_bytes,
        )
        self.transport: asyncio.Transport | None = None
        self.routing_id: bytes | None = None
        self.queued = 0
        self.held = 0
        self.unread = 0
        self._backlog = b""
        #: messages that arrived while waiting for our identity to be free (see register)
        self._stash: list[Incoming] | None = None
        #: the identity this peer waits for, while another connection holds it
        self.waits_for: bytes | None = None
        self._reading = True
        self._write_blocked = False
        self._gone = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if not self.listener.admit(self):
            self._gone = True
            self.transport.abort()
            return
        self.transport.set_write_buffer_limits(high=WRITE_PAUSE)
        self.transport.write(SERVER_GREETING)

    def data_received(self, data: bytes) -> None:
        if self._gone:
            return
        if self._backlog or not self._reading:
            self._backlog += data
            self._held_changed()
            return
        self._consume(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._gone and 0 < self.reader.greeting_bytes < GREETING_SIZE:
            # libzmq closes here, unexplained, when its security mechanism is not ours
            self.listener.warn.warning(
                "a client left during the ZMTP greeting (as a client with a CURVE key does "
                "when circusd has no curve_server_key)",
                received=self.reader.greeting_bytes,
            )
        self._gone = True
        self._backlog = b""
        self.listener.forget(self)

    def pause_writing(self) -> None:
        self._write_blocked = True
        self.update_reading()

    def resume_writing(self) -> None:
        self._write_blocked = False
        self.refresh_unread()
        self.update_reading()

    # reading

    def _pending(self) -> int:
        """Requests of this peer not yet handled: queued for the controller or stashed."""
        return self.queued + len(self._stash or ())

    def _consume(self, data: bytes) -> None:
        room = PEER_QUEUE - self._pending()
        try:
            events, used = self.reader.feed(data, room)
            for event in events:
                self._handle(event)
        except ProtocolError as exc:
            self.fail(str(exc))
            return
        if self._gone:
            return
        self._backlog = data[used:]
        self._held_changed()
        self.update_reading()

    def _held_changed(self) -> None:
        if not self._gone:
            stashed = sum(
                len(frame) for incoming in self._stash or () for frame in incoming.frames
                if frame is not None
            )
            self.listener.account(self, self.reader.held + len(self._backlog) + stashed)

    def _handle(self, event: Greeting | Command | Message) -> None:
        if isinstance(event, Message):
            if self.routing_id is None and self._stash is None:
                raise ProtocolError("a message before the handshake")
            incoming = Incoming(self.routing_id or b"")
            incoming.frames.extend(event.frames)
            incoming.count += event.count
            incoming.size = event.size
            if self._stash is not None:
                self._stash.append(incoming)
            else:
                self.listener.enqueue(self, incoming)
        elif isinstance(event, Greeting):
            self._write(accept_greeting(event, "ROUTER"))
        elif event.name == "READY":
            self._ready(event.data)
        elif (answer := answer_command(event)) is not None:
            self._write(answer)

    def _ready(self, data: bytes) -> None:
        if self.routing_id is not None or self._stash is not None:
            raise ProtocolError("a second READY")
        props = accept_ready(data, PEER_TYPES, "ROUTER")
        identity = props.get("identity", b"")
        routing_id = self.listener.register(self, identity)
        if routing_id is None:
            self._stash = []  # wait, unread, for the identity (listener.register)
            self.waits_for = identity
        self.routing_id = routing_id

    def admit(self, identity: bytes) -> None:
        """The identity this peer waited for is ours now: pass on what arrived meanwhile."""
        stash, self._stash = self._stash or [], None
        self.routing_id = identity
        self.waits_for = None
        for incoming in stash:
            incoming.frames[0] = identity
            self.listener.enqueue(self, incoming)
        self._held_changed()
        self.update_reading()

    def update_reading(self) -> None:
        """Read while this peer's queue, the shared queue budget and its unread replies
        allow; pick up what was read but not parsed when reading resumes."""
        if self._gone or self.transport is None:
            return
        # a peer waiting for its identity is still read (so a client that gives up is noticed
        # and forgotten), its requests held back in the stash, within the same per-peer bound
        want = (
            self._pending() < PEER_QUEUE
            and not self._write_blocked
            and self.listener.queued_bytes < QUEUE_BUDGET
        )
        if want and not self._reading:
            self._reading = True
            self.transport.resume_reading()
            if self._backlog:
                data, self._backlog = self._backlog, b""
                self._consume(data)
        elif not want and self._reading:
            self._reading = False
            self.transport.pause_reading()

    # writing and closing

    def send(self, frames: list[bytes]) -> None:
        self._write(message(frames))
        self.refresh_unread()

    def refresh_unread(self) -> None:
        if not self._gone:
            self.listener.unread(self, self.buffered())

    def buffered(self) -> int:
        """Reply bytes written but not yet taken by the kernel."""
        if self.transport is None or self.transport.is_closing():
            return 0
        return self.transport.get_write_buffer_size()

    def _write(self, data: bytes) -> None:
        if not self._gone and self.transport is not None:
            self.transport.write(data)

    def fail(self, reason: str) -> None:
        self.listener.warn.warning("closed a control connection", reason=reason)
        self.abort()

    def abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        self._mark_gone()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _mark_gone(self) -> None:
        # abort() reports connection_lost on a later loop iteration; stop using the peer now
        # (and release its budget share) so the caller's loop sees it gone
        if not self._gone:
            self._gone = True
            self._backlog = b""
            self.listener.forget(self)


__all__ = [
    "MAX_PEERS",
    "PARTIAL_BUDGET",
    "PEER_QUEUE",
    "QUEUE_BUDGET",
    "WRITE_BUDGET",
    "WRITE_PAUSE",
    "NativeListener",
    "Peer",
]

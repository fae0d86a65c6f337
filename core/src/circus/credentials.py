"""Who is asking: plugin identities on the control channel and what each plugin may send.

Design (issue 9, item 4). circusd gives every plugin it starts a random secret token, passed in
the plugin process's environment (:data:`TOKEN_ENV`, never argv: argv is world-readable in
``/proc``, the environment is not). The plugin's DEALER sockets carry the token in their
routing id (``cp1:<token>:<random>``), which the ROUTER receives with every request before any
byte of the payload is decoded, so the check costs a dictionary lookup and needs no change to
the JSON of requests (0.19 clients and plugins are unaffected). The controller maps the token to
the plugin's :class:`Grant` and refuses commands outside its allowed set.

What each plugin may send: ``[plugin:X] allow = a, b, c`` when given (``allow = *`` for all);
otherwise :data:`READ_ONLY` plus the ``required_commands`` its class declares.

Threat model. The token proves "this request comes from the process circusd started as plugin
X" to a daemon that trusts its own children; it does not make an untrusted plugin safe on its
own: a plugin that can reach the control socket can also open a connection without its token
and be treated as an ordinary client. The allowlist therefore protects against plugins that
misbehave by mistake (a bug casting ``quit``, a plugin sending what its author never meant).
Against a hostile plugin it needs CURVE (:mod:`circus.curve`): circusd then gives each plugin
its own key pair instead of the client keys, so a plugin has no way in except as itself.

Client side: :func:`routing_id` builds the routing id every client socket of this process uses;
in a plugin process (the token in the environment) it is the plugin's identity, in circusctl a
``circusctl:`` label that events report as ``"by": "circusctl"`` (informational, not proof).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from circus.curve import CurveServer

#: Environment variable holding a plugin's token (set by circusd, read by the plugin runtime).
TOKEN_ENV = "CIRCUS_PLUGIN_TOKEN"
#: Routing-id prefix of a plugin's sockets.
PLUGIN_PREFIX = b"cp1:"
#: Routing-id label circusctl uses, so events can say ``"by": "circusctl"``.
CIRCUSCTL_LABEL = "circusctl"

#: Commands every plugin may send unless ``allow`` says otherwise: they only read state.
READ_ONLY = frozenset(
    {
        "list",
        "status",
        "numwatchers",
        "numprocesses",
        "options",
        "get",
        "globaloptions",
        "stats",
        "dstats",
        "listsockets",
    }
)
#: ``allow`` values meaning "every command".
ALLOW_ALL_WORDS = frozenset({"*", "all"})


@dataclass(frozen=True)
class Grant:
    """One plugin's identity and permissions. ``allowed is None`` means every command."""

    name: str
    token: str
    allowed: frozenset[str] | None

    def permits(self, command: str) -> bool:
        return self.allowed is None or command.lower() in self.allowed

    def refusal(self, command: str) -> str:
        allowed = "every command" if self.allowed is None else ", ".join(sorted(self.allowed))
        return f"{self.name} may not send {command!r} (allowed: {allowed or 'nothing'})"


def parse_allow(text: str) -> frozenset[str] | None:
    """``allow = incr, decr`` -> the set; ``*``/``all`` -> ``None`` (everything)."""
    words = {w.strip().lower() for w in text.replace(",", " ").split() if w.strip()}
    if words & ALLOW_ALL_WORDS:
        return None
    return frozenset(words)


def permissions(
    allow: str | None, required: Iterable[str] | None
) -> frozenset[str] | None:
    """What a plugin may send: ``allow`` when configured, else read-only plus ``required``."""
    if allow is not None:
        return parse_allow(allow)
    return READ_ONLY | frozenset(c.lower() for c in (required or ()))


class Registry:
    """The daemon's table of plugin grants, keyed by watcher name (``plugin:NAME``).

    ``declare`` records what the configuration allows (at config load, again at reload);
    ``child_env`` issues the token when the plugin's process is spawned; the controller looks
    requests up with ``grant_for``. A token survives re-declaration, so a running plugin keeps
    working across ``reloadconfig``.
    """

    def __init__(self) -> None:
        #: the daemon's CURVE server when CURVE is on: plugins then get key pairs too
        self.curve: CurveServer | None = None
        self._allowed: dict[str, frozenset[str] | None] = {}
        self._by_name: dict[str, Grant] = {}
        self._by_token: dict[str, Grant] = {}

    def declare(self, watcher_name: str, allowed: frozenset[str] | None) -> None:
        self._allowed[watcher_name] = allowed
        grant = self._by_name.get(watcher_name)
        if grant is not None:
            self._store(Grant(watcher_name, grant.token, allowed))

    def _store(self, grant: Grant) -> None:
        self._by_name[grant.name] = grant
        self._by_token[grant.token] = grant

    def issue(self, watcher_name: str) -> Grant | None:
        """The grant of a declared plugin watcher (created on first use), else ``None``."""
        if watcher_name not in self._allowed:
            return None
        grant = self._by_name.get(watcher_name)
        if grant is None:
            grant = Grant(watcher_name, secrets.token_hex(16), self._allowed[watcher_name])
            self._store(grant)
        return grant

    def child_env(self, watcher_name: str) -> dict[str, str]:
        """Variables to add to the environment of the watcher's processes."""
        grant = self.issue(watcher_name)
        if grant is None:
            return {}
        env = {TOKEN_ENV: grant.token}
        if self.curve is not None:
            env.update(self.curve.plugin_env(watcher_name))
        return env

    def grant_for_key(self, user_id: str | None) -> Grant | None:
        """With CURVE, the plugin whose key authenticated a request (``User-Id``)."""
        name = self.curve.plugin_of(user_id) if self.curve is not None else None
        return None if name is None else self._by_name.get(name)

    def grant_for(self, routing_id: bytes) -> Grant | None:
        """The grant named by a routing id, or ``None`` (not a plugin, or a forged token)."""
        if not routing_id.startswith(PLUGIN_PREFIX):
            return None
        token = routing_id[len(PLUGIN_PREFIX) :].split(b":", 1)[0]
        try:
            return self._by_token.get(token.decode("ascii"))
        except UnicodeDecodeError:
            return None

    def clear(self) -> None:
        self._allowed.clear()
        self._by_name.clear()
        self._by_token.clear()


#: The registry of this process (circusd has one control channel).
REGISTRY = Registry()


def requester(routing_id: bytes, grant: Grant | None) -> str:
    """What events report as ``by``: ``plugin:NAME``, ``circusctl`` or ``client``."""
    if grant is not None:
        return grant.name
    if routing_id.startswith(CIRCUSCTL_LABEL.encode() + b":"):
        return CIRCUSCTL_LABEL
    return "client"


def routing_id(label: str | None = None, environ: Mapping[str, str] | None = None) -> bytes:
    """A fresh routing id for a client socket of this process (see the module docstring)."""
    env = os.environ if environ is None else environ
    suffix = uuid.uuid4().hex
    token = env.get(TOKEN_ENV)
    if token:
        return PLUGIN_PREFIX + token.encode("ascii", "replace") + b":" + suffix.encode()
    if label:
        return f"{label}:{suffix}".encode()
    return suffix.encode()


__all__ = [
    "CIRCUSCTL_LABEL",
    "PLUGIN_PREFIX",
    "READ_ONLY",
    "REGISTRY",
    "TOKEN_ENV",
    "Grant",
    "Registry",
    "parse_allow",
    "permissions",
    "requester",
    "routing_id",
]

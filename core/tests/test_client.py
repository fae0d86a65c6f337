"""CircusClient against a real ROUTER socket that answers like circusd's control channel.

The daemon itself is exercised by the end-to-end circusctl tests; here a minimal ROUTER thread
lets us produce what a daemon rarely does on demand: replies that are late, stale or missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.router import RouterPeer

from circus.client import CircusClient
from circus.errors import CallTimeout
from circus.protocol import ok_reply


class Router(RouterPeer):
    """A libzmq ROUTER that answers like circusd: ``ok`` with the command and properties.

    ``ignore`` drops requests for those commands (a lost reply); ``stale`` first sends a reply
    with a wrong id (a late answer to an earlier call) before the real one.
    """

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint, self._answer)
        self.ignore: set[str] = set()
        self.stale: set[str] = set()
        #: the requests received, in order
        self.received = self.requests

    def _answer(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        command = request["command"]
        if command in self.ignore or request.get("msg_type") == "cast":
            return []
        replies = [ok_reply({"stale": True}, msg_id="old")] if command in self.stale else []
        fields = {"command": command, "properties": request.get("properties")}
        return [*replies, ok_reply(fields, msg_id=request.get("id"))]


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Router]:
    with Router(f"ipc://{tmp_path}/control.sock") as server:
        yield server


def test_call_by_command_name_sends_properties_and_an_id(router: Router) -> None:
    with CircusClient(router.endpoint) as client:
        reply = client.call("incr", name="web", nb=2)
    assert reply["status"] == "ok"
    assert reply["command"] == "incr"
    assert reply["properties"] == {"name": "web", "nb": 2}
    assert isinstance(router.received[0]["id"], str)
    assert reply["id"] == router.received[0]["id"]


def test_call_with_a_prepared_mapping_like_the_original_client(router: Router) -> None:
    with CircusClient(router.endpoint) as client:
        reply = client.call({"command": "list", "properties": {"name": "web"}}, extra=True)
    assert reply["properties"] == {"name": "web", "extra": True}
    with CircusClient(router.endpoint) as client, pytest.raises(ValueError, match="command"):
        client.call({"properties": {}})


def test_stale_replies_are_skipped(router: Router) -> None:
    router.stale.add("status")
    with CircusClient(router.endpoint) as client:
        reply = client.call("status")
    assert "stale" not in reply
    assert reply["command"] == "status"


def test_timeout_raises_instead_of_hanging_and_the_client_recovers(router: Router) -> None:
    router.ignore.add("slow")
    with CircusClient(router.endpoint, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            client.call("slow")
        assert time.monotonic() - started < 5
        assert client.call("status")["command"] == "status"


def test_cast_gets_no_reply(router: Router) -> None:
    with CircusClient(router.endpoint) as client:
        client.cast("stop", name="web")
        assert client.call("status")["status"] == "ok"
    casts = [r for r in router.received if r.get("msg_type") == "cast"]
    assert casts
    assert casts[0]["command"] == "stop"


def test_timeout_must_be_positive(router: Router) -> None:
    with pytest.raises(ValueError, match="positive"):
        CircusClient(router.endpoint, timeout=0)
    client = CircusClient(router.endpoint)
    client.timeout = 1.5
    assert client.timeout == 1.5
    client.close()

"""``endpoint_owner``: the ipc control socket is handed to that user, and ``add`` only creates
watchers running as that user (whoever can write to the socket must not gain root)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from circus.testing import CircusdProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def test_socket_is_chowned_and_add_is_restricted(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    config = "[circus]\nendpoint_owner = nobody\n\n[watcher:w]\ncmd = sleep 600\n"
    with CircusdProcess(config, tmp_path) as daemon:
        socket_path = daemon.endpoint[len("ipc://") :]
        assert os.stat(socket_path).st_uid == nobody.pw_uid
        denied = daemon.call("add", name="as_root", cmd="sleep 600")
        assert (denied["errno"], denied["reason"]) == (3, "uid does not match endpoint_owner")
        denied = daemon.call("add", name="as_root", cmd="sleep 600", options={"uid": 0})
        assert denied["errno"] == 3
        allowed = daemon.call("add", name="as_nobody", cmd="sleep 600", options={"uid": "nobody"})
        assert allowed["status"] == "ok", allowed
        assert daemon.call("get", name="as_nobody", keys=["uid"])["options"] == {
            "uid": nobody.pw_uid
        }

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


def test_owner_cannot_make_root_write_files_or_run_commands(tmp_path: Path) -> None:
    # Measured on main: both bypasses worked (root created the stream file; `set cmd` on a
    # root watcher ran the owner's command as root).
    nobody = pwd.getpwnam("nobody")
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    target = private / "made-by-root.log"
    config = "[circus]\nendpoint_owner = nobody\n\n[watcher:w]\ncmd = sleep 600\n"
    with CircusdProcess(config, tmp_path) as daemon:
        mode = os.stat(daemon.endpoint[len("ipc://") :]).st_mode & 0o777
        assert mode == 0o660
        as_nobody = {"uid": "nobody"}
        refused = [
            {**as_nobody, "stdout_stream": {"class": "FileStream", "filename": str(target)}},
            {**as_nobody, "stderr_stream.filename": str(target)},
            {**as_nobody, "hooks": {"before_start": "os.system"}},
            {**as_nobody, "gid": 0},
            {**as_nobody, "copy_env": True},
        ]
        for options in refused:
            reply = daemon.call("add", name="x", cmd="sleep 600", options=options)
            assert reply["errno"] == 3, (options, reply)
        assert not target.exists()
        assert daemon.call("list")["watchers"] == ["w"]

        for options in ({"cmd": "id"}, {"args": "-c id"}, {"env": {"A": "1"}},
                        {"working_dir": "/"}, {"uid": "nobody"}):
            reply = daemon.call("set", name="w", options=options)
            assert reply["errno"] == 3, (options, reply)
        assert daemon.call("get", name="w", keys=["cmd"])["options"]["cmd"] == "sleep 600"
        assert daemon.call("set", name="w", options={"numprocesses": 2})["status"] == "ok"

        added = daemon.call("add", name="mine", cmd="sleep 600", options=as_nobody)
        assert added["status"] == "ok", added
        assert daemon.call("set", name="mine", options={"cmd": "sleep 500"})["status"] == "ok"
        for options in ({"uid": 0}, {"stdout_stream.filename": str(target)},
                        {"hooks.after_start": "os.system"}):
            reply = daemon.call("set", name="mine", options=options)
            assert reply["errno"] == 3, (options, reply)
        assert daemon.call("get", name="mine", keys=["uid"])["options"] == {"uid": nobody.pw_uid}
        assert not target.exists()

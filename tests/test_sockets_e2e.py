"""End to end: ``[socket:NAME]`` sockets bound by a real circusd and served by its workers.

Every test connects to a real socket and gets its answer from a real worker process, which
says who it is (pid) and on which fd it found its socket. Addresses are 127.0.0.1, ::1 or Unix
paths in the test's folder.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import wait_gone

from circus import get_arbiter
from circus.testing import CircusdProcess, EventCollector, wait_until

TIMEOUT = 20.0

#: accepts forever on an inherited socket: fd from argv[1], else $FD, else stdin (fd 0)
SERVER = """\
import os, socket, sys
fd = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("FD", "0"))
sock = socket.socket(fileno=fd)
sock.setblocking(True)
while True:
    conn, _ = sock.accept()
    conn.sendall(f"{os.getpid()} {fd}\\n".encode())
    conn.close()
"""


@pytest.fixture
def server(tmp_path: Path) -> str:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return f"{sys.executable} {path}"


def web_config(cmd: str, watcher_options: str = "", *, socket_options: str = "",
               head: str = "") -> str:
    """``[socket:web]`` on 127.0.0.1, an ephemeral port, and ``[watcher:web]`` running
    ``cmd $(circus.sockets.web)`` with ``use_sockets``."""
    return (f"{head}[socket:web]\nhost = 127.0.0.1\nport = 0\n{socket_options}\n"
            f"[watcher:web]\ncmd = {cmd} $(circus.sockets.web)\nuse_sockets = true\n"
            f"{watcher_options}")


def ask(address: str | tuple[str, int], family: int = socket.AF_INET) -> tuple[int, int]:
    """Connect, read the worker's ``pid fd`` line (bounded)."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(address)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
    pid, fd = data.split()
    return int(pid), int(fd)


def child_fds(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def sockets_of(daemon: CircusdProcess) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in daemon.call("listsockets")["sockets"]}


def test_tcp_port_0_listsockets_and_exactly_the_used_fds(tmp_path: Path, server: str) -> None:
    config = f"""
[socket:web]
host = 127.0.0.1
port = 0

[socket:other]
host = 127.0.0.1
port = 0
backlog = 16

[watcher:web]
cmd = {server} $(circus.sockets.web)
use_sockets = true
numprocesses = 2

[watcher:plain]
cmd = sleep 300
"""
    with CircusdProcess(config, tmp_path) as daemon:
        listed = daemon.call("listsockets")["sockets"]
        assert [s["fd"] for s in listed] == sorted(s["fd"] for s in listed)
        web, other = sockets_of(daemon)["web"], sockets_of(daemon)["other"]
        assert set(web) == {"fd", "name", "backlog", "host", "port"}
        assert web["host"] == "127.0.0.1"
        assert web["backlog"] == 2048
        assert other["backlog"] == 16
        assert isinstance(web["port"], int)
        assert web["port"] > 0
        pids = set(daemon.call("list", name="web")["pids"])
        served: set[tuple[int, int]] = set()
        deadline = time.monotonic() + TIMEOUT  # until both workers answered (both are up)
        while {pid for pid, _ in served} != pids and time.monotonic() < deadline:
            served.add(ask(("127.0.0.1", int(web["port"]))))
        assert {pid for pid, _ in served} == pids
        assert {fd for _, fd in served} == {web["fd"]}  # $(circus.sockets.web) = the fd number
        ours = child_fds(daemon.pid)
        listening = {ours[int(web["fd"])], ours[int(other["fd"])]}
        for pid in pids:  # its socket at its number; not `other`, nothing else of circusd's
            fds = child_fds(pid)
            assert fds[int(web["fd"])] == ours[int(web["fd"])]
            assert {link for link in fds.values() if link in listening} == {ours[int(web["fd"])]}
            # beyond 0-2 only sockets: the listening one and maybe a connection being closed
            assert all(link.startswith("socket:") for fd, link in fds.items() if fd > 2), fds
            beyond = {link for fd, link in fds.items() if fd > 2}
            assert beyond & set(ours.values()) == {ours[int(web["fd"])]}
        (plain,) = daemon.call("list", name="plain")["pids"]
        assert sorted(child_fds(plain)) == [0, 1, 2]


def test_a_restart_loses_no_connection_the_socket_keeps_listening(
    tmp_path: Path, server: str
) -> None:
    config = web_config(server)
    with CircusdProcess(config, tmp_path) as daemon:
        port = int(sockets_of(daemon)["web"]["port"])
        (old,) = daemon.call("list", name="web")["pids"]
        daemon.call("stop", name="web", waiting=True)
        assert wait_gone(old)
        # no worker at all: the connection waits in circusd's socket, it is not refused
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as pending:
            daemon.call("start", name="web")
            pending.settimeout(TIMEOUT)
            pid = int(pending.recv(100).split()[0])
        assert pid != old


def test_unix_socket_umask_decimal_quirk_replace_and_removal(
    tmp_path: Path, server: str
) -> None:
    path_a, path_b = tmp_path / "a.sock", tmp_path / "b.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path_b))  # a leftover socket file: replace = true removes it
    stale.close()
    config = f"""
[socket:a]
path = {path_a}
umask = 0o077

[socket:b]
path = {path_b}
umask = 022
replace = true

[watcher:w]
cmd = {server} $(circus.sockets.a)
use_sockets = true
"""
    with CircusdProcess(config, tmp_path) as daemon:
        listed = sockets_of(daemon)
        assert listed["a"]["path"] == str(path_a)
        assert "host" not in listed["a"]
        assert stat.S_IMODE(path_a.stat().st_mode) == 0o700
        # 0.19's decimal reading: 022 -> 22 = 0o026 -> rwxr-x--x
        assert stat.S_IMODE(path_b.stat().st_mode) == 0o751
        pid, _ = ask(str(path_a), socket.AF_UNIX)
        assert pid in daemon.call("list", name="w")["pids"]
        assert "decimal" in daemon.log_text()
    assert not path_a.exists()
    assert not path_b.exists()


def test_unix_socket_in_the_way_without_replace_stops_circusd(tmp_path: Path) -> None:
    path = tmp_path / "busy.sock"
    holder = socket.socket(socket.AF_UNIX)
    holder.bind(str(path))
    holder.close()
    config = f"[socket:busy]\npath = {path}\n\n[watcher:w]\ncmd = sleep 300\n"
    daemon = CircusdProcess(config, tmp_path)
    daemon.config_path.parent.mkdir(parents=True, exist_ok=True)
    daemon.config_path.write_text(daemon.config_text)
    done = subprocess.run(
        [sys.executable, "-m", "circus.circusd", str(daemon.config_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    assert "[socket:busy]" in done.stderr
    assert "cannot bind" in done.stderr
    assert "Traceback" not in done.stderr


def test_tcp_port_in_use_stops_circusd_with_the_section(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        config = f"[socket:web]\nhost = 127.0.0.1\nport = {port}\n\n[watcher:w]\ncmd = sleep 300\n"
        daemon = CircusdProcess(config, tmp_path)
        daemon.config_path.write_text(daemon.config_text)
        done = subprocess.run(
            [sys.executable, "-m", "circus.circusd", str(daemon.config_path)],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"[socket:web]: cannot bind 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no ::1 (IPv6 loopback)")
def test_ipv6(tmp_path: Path, server: str) -> None:
    config = f"""
[socket:v6]
host = ::1
port = 0
family = AF_INET6

[watcher:w]
cmd = {server} $(circus.sockets.v6)
use_sockets = true
"""
    with CircusdProcess(config, tmp_path) as daemon:
        entry = sockets_of(daemon)["v6"]
        assert entry["host"] == "::1"
        pid, _ = ask(("::1", int(entry["port"])), socket.AF_INET6)
        assert pid in daemon.call("list", name="w")["pids"]


def test_so_reuseport_gives_every_worker_its_own_socket(tmp_path: Path, server: str) -> None:
    config = web_config(server, "numprocesses = 3\n", socket_options="so_reuseport = true\n")
    with CircusdProcess(config, tmp_path) as daemon:
        entry = sockets_of(daemon)["web"]
        pids = daemon.call("list", name="web")["pids"]
        served: dict[int, int] = {}
        deadline = time.monotonic() + TIMEOUT
        while set(served) != set(pids) and time.monotonic() < deadline:  # the kernel spreads them
            pid, fd = ask(("127.0.0.1", int(entry["port"])))
            served[pid] = fd
        assert set(served) == set(pids)
        listening = {child_fds(pid)[fd] for pid, fd in served.items()}
        assert len(listening) == 3  # one socket per worker, not circusd's shared one
        assert child_fds(daemon.pid)[int(entry["fd"])] not in listening


def test_stdin_socket_is_the_childs_fd_0(tmp_path: Path, server: str) -> None:
    config = f"""
[socket:in]
host = 127.0.0.1
port = 0

[watcher:w]
cmd = {server}
stdin_socket = in
"""
    with CircusdProcess(config, tmp_path) as daemon:
        (pid,) = daemon.call("list", name="w")["pids"]
        entry = sockets_of(daemon)["in"]
        assert ask(("127.0.0.1", int(entry["port"]))) == (pid, 0)
        listening = child_fds(daemon.pid)[int(entry["fd"])]
        fds = child_fds(pid)
        assert fds[0] == listening
        # no use_sockets: the socket as stdin only, not at its own number too
        assert listening not in {link for fd, link in fds.items() if fd > 0}


def test_socket_fd_in_the_environment(tmp_path: Path, server: str) -> None:
    config = f"""
[socket:web]
host = 127.0.0.1
port = 0

[watcher:w]
cmd = {server}
use_sockets = true

[env:w]
FD = $(circus.sockets.web)
"""
    with CircusdProcess(config, tmp_path) as daemon:
        entry = sockets_of(daemon)["web"]
        _, fd = ask(("127.0.0.1", int(entry["port"])))
        assert fd == entry["fd"]


def test_on_demand_first_connection_starts_the_watcher_and_is_served(
    tmp_path: Path, server: str
) -> None:
    """check_delay = 60: the start cannot come from a tick, only from the socket's reader."""
    config = web_config(server, "on_demand = true\n")
    with CircusdProcess(config, tmp_path, check_delay=60) as daemon:
        assert daemon.call("status", name="web")["status"] == "stopped"
        assert daemon.call("list", name="web")["pids"] == []
        port = int(sockets_of(daemon)["web"]["port"])
        pid, _ = ask(("127.0.0.1", port))
        assert daemon.call("list", name="web")["pids"] == [pid]
        daemon.call("stop", name="web")  # stopped again: the next connection starts it again
        wait_until(lambda: daemon.call("status", name="web")["status"] == "stopped", "stop")
        second, _ = ask(("127.0.0.1", port))
        assert second != pid
        assert daemon.call("list", name="web")["pids"] == [second]


def test_reloadconfig_rebinds_a_changed_socket_and_recreates_its_watchers(
    tmp_path: Path, server: str
) -> None:
    template = """
[socket:web]
host = 127.0.0.1
port = 0
backlog = {backlog}

[socket:keep]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = {server} $(circus.sockets.web)
use_sockets = true

[watcher:keeper]
cmd = {server} $(circus.sockets.keep)
use_sockets = true
"""
    with CircusdProcess(template.format(backlog=64, server=server), tmp_path) as daemon:
        before = sockets_of(daemon)
        (web_pid,) = daemon.call("list", name="web")["pids"]
        (keeper_pid,) = daemon.call("list", name="keeper")["pids"]
        daemon.config_path.write_text(
            daemon.config_text.replace("backlog = 64", "backlog = 128")
        )
        daemon.call("reloadconfig", waiting=True)
        after = sockets_of(daemon)
        assert after["web"]["backlog"] == 128
        assert after["keep"] == before["keep"]
        (new_web,) = daemon.call("list", name="web")["pids"]
        assert new_web != web_pid
        assert daemon.call("list", name="keeper")["pids"] == [keeper_pid]
        assert ask(("127.0.0.1", int(after["web"]["port"])))[0] == new_web
        assert ask(("127.0.0.1", int(after["keep"]["port"])))[0] == keeper_pid


def test_reloads_of_the_demo_app_lose_no_request(tmp_path: Path) -> None:
    """demo/web_app.py on a shared socket, HTTP requests back to back (one connection each)
    during three reloads, sequential or not: every request is answered with 200."""
    app = Path(__file__).resolve().parents[1] / "demo" / "web_app.py"
    config = web_config(f"{sys.executable} {app} --fd", "numprocesses = 2\ngraceful_timeout = 10\n")
    results: list[str] = []
    stop = threading.Event()

    def client(port: int) -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    data = b""
                    while chunk := sock.recv(4096):
                        data += chunk
                results.append("ok" if data.startswith(b"HTTP/1.0 200") else repr(data[:40]))
            except OSError as exc:
                results.append(repr(exc))

    with CircusdProcess(config, tmp_path) as daemon:
        port = int(sockets_of(daemon)["web"]["port"])
        wait_until(lambda: len(daemon.call("list", name="web")["pids"]) == 2, "2 workers")
        before = set(daemon.call("list", name="web")["pids"])
        threads = [threading.Thread(target=client, args=(port,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: len(results) > 10, "first answers")
            for sequential in (False, True, False):
                daemon.call("reload", name="web", waiting=True, sequential=sequential)
            wait_until(lambda: len(results) > 50, "answers after the reloads")
        finally:
            stop.set()
            for thread in threads:
                thread.join(TIMEOUT * 2)
        assert not set(daemon.call("list", name="web")["pids"]) & before
    failures = [r for r in results if r != "ok"]
    assert failures == [], failures[:5]


def test_stat_sockets_count_arrivals(tmp_path: Path, server: str, stats_endpoint: str) -> None:
    """``statsd = true``: ``stat.sockets.<fd>`` and ``stat.sockets`` every second (contract 5),
    the reads counting connections circusd saw waiting (no worker runs to accept them here)."""
    head = f"[circus]\nstatsd = true\nstats_endpoint = {stats_endpoint}\n\n"
    config = web_config(server, "autostart = false\n", head=head)
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(
        stats_endpoint, topics=("stat.sockets",)
    ) as stats:
        entry = sockets_of(daemon)["web"]
        fd, address = int(entry["fd"]), f"127.0.0.1:{entry['port']}"
        stats.wait_for(lambda topic, _: topic == "stat.sockets")  # subscribed: rounds arrive
        mark = len(stats.events)
        waiting = [socket.create_connection(("127.0.0.1", int(entry["port"])), timeout=TIMEOUT)
                   for _ in range(5)]
        try:
            rounds: list[dict[str, object]] = []
            while len(rounds) < 3:  # counts of three rounds from the mark on cover the arrivals
                topic, payload = stats.wait_for(lambda topic, _: topic.startswith("stat.sockets."),
                                                start=mark)
                mark = next(i for i in range(mark, len(stats.events))
                            if stats.events[i][1] is payload) + 1
                assert topic == f"stat.sockets.{fd}"
                assert set(payload) == {"fd", "subtopic", "reads", "address"}
                assert (payload["fd"], payload["subtopic"], payload["address"]) == (fd, fd, address)
                rounds.append(payload)
            reads = sum(int(str(p["reads"])) for p in rounds)
            assert 1 <= reads <= 5, rounds
            _, total = stats.wait_for(lambda topic, _: topic == "stat.sockets")
            assert total["addresses"] == [address]
        finally:
            for sock in waiting:
                sock.close()


def test_get_arbiter_with_sockets_from_python(tmp_path: Path, server: str) -> None:
    """0.19's ``get_arbiter(..., sockets=[...])``: bound at start, served, closed at the end."""
    arbiter = get_arbiter(
        [{"name": "web", "cmd": f"{server} $(circus.sockets.web)", "use_sockets": True}],
        sockets=[{"name": "web", "host": "127.0.0.1", "port": 0}],
        endpoint=f"ipc://{tmp_path}/c.sock",
        pubsub_endpoint=f"ipc://{tmp_path}/p.sock",
    )

    async def main() -> tuple[int, list[int], int]:
        await arbiter.start()
        try:
            (entry,) = arbiter.list_sockets()
            answer = await asyncio.to_thread(ask, ("127.0.0.1", int(entry["port"])))
            return answer[0], arbiter.get_watcher("web").pids(), int(entry["port"])
        finally:
            await arbiter.quit()
            await arbiter.close()

    served_by, pids, port = asyncio.run(asyncio.wait_for(main(), 60))
    assert served_by in pids
    assert wait_gone(served_by)
    with pytest.raises(ConnectionRefusedError):  # closed with the arbiter
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def fd_flags(pid: int, fd: int) -> int:
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    raise AssertionError("no flags line")


def test_blocking_backlog_and_interface_options(tmp_path: Path) -> None:
    """``blocking`` sets the listening socket's mode (O_NONBLOCK off/on); ``interface = lo``
    binds to the loopback device (SO_BINDTODEVICE needs CAP_NET_RAW: skipped without it)."""
    interface = "interface = lo\n" if os.geteuid() == 0 else ""
    config = f"""
[socket:blocking]
host = 127.0.0.1
port = 0
blocking = true
{interface}
[socket:nonblocking]
host = 127.0.0.1
port = 0

[watcher:w]
cmd = sleep 300
"""
    with CircusdProcess(config, tmp_path) as daemon:
        listed = sockets_of(daemon)
        assert not fd_flags(daemon.pid, int(listed["blocking"]["fd"])) & os.O_NONBLOCK
        assert fd_flags(daemon.pid, int(listed["nonblocking"]["fd"])) & os.O_NONBLOCK
        if interface:  # still reachable over lo
            with socket.create_connection(
                ("127.0.0.1", int(listed["blocking"]["port"])), timeout=TIMEOUT
            ):
                pass

"""CURVE on the control and event channels, against a real circusd (issue 9, item 2).

Keys are made by ``circusctl keygen``; the daemon admits the keys of its authorised directory and
those it gives to the plugins it starts. The test process's own clients (``CircusdProcess``
included) read their keys from the environment, as a plugin does.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from circus.curve import (
    PUBLIC_KEY_ENV,
    SECRET_KEY_ENV,
    SERVER_KEY_ENV,
    ClientKeys,
    configure_client,
    load_public,
    load_secret_pair,
)
from circus.errors import CallTimeout
from circus.testing import CircusdProcess, log_count, terminate, wait_until
from circus.transports import CommandClient

NO_REPLY_S = 1.5
WAIT = 30.0

LISTER = '''
import json
from circus.plugins import CircusPlugin

class Lister(CircusPlugin):
    def handle_init(self):
        with open(self.config['out'], 'w') as out:
            out.write(json.dumps(self.call('list')))
    def handle_recv(self, data):
        pass
'''


def circusctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "circus.circusctl", *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )


def plain_environ() -> dict[str, str]:
    """This process's environment without the CURVE keys the module's clients use."""
    return {k: v for k, v in os.environ.items()
            if k not in (SERVER_KEY_ENV, PUBLIC_KEY_ENV, SECRET_KEY_ENV)}


def keys_of(secret_file: Path, server_key: Path) -> ClientKeys:
    public, secret = load_secret_pair(secret_file)
    return ClientKeys(load_public(str(server_key)), public, secret)


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("keys")
    for name in ("server", "admin", "stranger"):
        done = circusctl("keygen", str(keys), "--name", name)
        assert done.returncode == 0, done.stderr
    (keys / "clients").mkdir()
    shutil.copy(keys / "admin.key", keys / "clients" / "admin.key")
    return keys


@pytest.fixture(scope="module")
def as_admin(keydir: Path) -> Iterator[ClientKeys]:
    """The test's own clients (``CircusdProcess.call`` included) hold the admin's keys."""
    admin = keys_of(keydir / "admin.key_secret", keydir / "server.key")
    saved = {k: os.environ.get(k) for k in (SERVER_KEY_ENV, PUBLIC_KEY_ENV, SECRET_KEY_ENV)}
    os.environ.update(admin.environ())
    try:
        yield admin
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def daemon(
    keydir: Path, as_admin: ClientKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CircusdProcess]:
    tmp = tmp_path_factory.mktemp("curve")
    (tmp / "lister_mod.py").write_text(LISTER)
    config = textwrap.dedent(f"""\
        [circus]
        curve_server_key = {keydir / 'server.key_secret'}
        curve_authorized_keys = {keydir / 'clients'}
        statsd = true
        stats_endpoint = ipc://{tmp / 'stats.sock'}

        [watcher:w]
        cmd = sleep 600

        [plugin:lister]
        use = lister_mod.Lister
        out = {tmp / 'plugin.json'}
        """)
    daemon_env = dict(plain_environ(), PYTHONPATH=str(tmp))
    with CircusdProcess(config, tmp, env=daemon_env) as running:
        yield running


def test_keygen_writes_owner_only_files(keydir: Path) -> None:
    for name in ("server.key", "server.key_secret"):
        assert stat.S_IMODE(os.stat(keydir / name).st_mode) == 0o600
    assert load_secret_pair(keydir / "server.key_secret")[0] == load_public(
        str(keydir / "server.key")
    )
    again = circusctl("keygen", str(keydir), "--name", "server")
    assert again.returncode == 2
    assert "not overwriting" in again.stderr


def test_authorised_key_gets_replies_and_events(daemon: CircusdProcess, keydir: Path) -> None:
    assert daemon.call("numwatchers")["numwatchers"] == 2
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        configure_client(sub, keys_of(keydir / "admin.key_secret", keydir / "server.key"))
        sub.setsockopt(zmq.SUBSCRIBE, b"watcher.w.")
        sub.connect(daemon.pubsub_endpoint)
        deadline = time.monotonic() + WAIT
        received = False
        while not received and time.monotonic() < deadline:
            daemon.call("set", name="w", options={"graceful_timeout": 5})
            received = bool(sub.poll(300))
        assert received, "no event over CURVE"
        topic, body = sub.recv_multipart()
        assert topic == b"watcher.w.updated"
        assert json.loads(body)["by"] == "client"
    finally:
        ctx.destroy(linger=0)


def test_no_key_and_wrong_key_get_nothing(daemon: CircusdProcess, keydir: Path) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        plain = ctx.socket(zmq.DEALER)
        plain.setsockopt(zmq.LINGER, 0)
        plain.connect(daemon.endpoint)
        plain.send(b'{"id": "x", "command": "numwatchers"}')
        assert not plain.poll(int(NO_REPLY_S * 1000)), "a client without a key got a reply"
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        configure_client(sub, keys_of(keydir / "stranger.key_secret", keydir / "server.key"))
        sub.connect(daemon.pubsub_endpoint)
        daemon.call("set", name="w", options={"graceful_timeout": 6})
        assert not sub.poll(int(NO_REPLY_S * 1000)), "an unknown key received events"
    finally:
        ctx.destroy(linger=0)
    stranger = keys_of(keydir / "stranger.key_secret", keydir / "server.key")
    with CommandClient(daemon.endpoint, timeout=NO_REPLY_S, curve=stranger) as client, \
            pytest.raises(CallTimeout):
        client.call("numwatchers")
    assert daemon.call("status")["status"] == "ok"


def test_plugin_started_by_circusd_works_with_curve(daemon: CircusdProcess) -> None:
    out = daemon.tmp_path / "plugin.json"
    deadline = time.monotonic() + WAIT
    while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    reply = json.loads(out.read_text())
    assert reply["status"] == "ok"
    assert sorted(reply["watchers"]) == ["plugin:lister", "w"]


def test_circusctl_options_and_environment(daemon: CircusdProcess, keydir: Path) -> None:
    plain_env = plain_environ()
    base = ["--endpoint", daemon.endpoint, "--timeout", str(NO_REPLY_S)]
    keyed = ["--curve-server-key", str(keydir / "server.key"),
             "--curve-key", str(keydir / "admin.key_secret")]
    done = circusctl(*base, *keyed, "numwatchers", env=plain_env)
    assert (done.returncode, done.stdout.strip()) == (0, "2"), done.stderr
    env = dict(plain_env, CIRCUSCTL_CURVE_SERVER_KEY=str(keydir / "server.key"),
               CIRCUSCTL_CURVE_KEY=str(keydir / "admin.key_secret"))
    done = circusctl(*base, "numwatchers", env=env)
    assert (done.returncode, done.stdout.strip()) == (0, "2"), done.stderr
    done = circusctl(*base, "numwatchers", env=plain_env)
    assert done.returncode == 1  # no key: no reply
    done = circusctl(*base, "--curve-key", str(keydir / "admin.key"), "numwatchers",
                     env=plain_env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "error:" in done.stderr


def _plugin_pid(daemon: CircusdProcess, name: str) -> int:
    pids: list[int] = daemon.call("list", name=name)["pids"]
    assert len(pids) == 1
    return pids[0]


def test_a_plugin_key_is_that_plugin_whatever_its_routing_id(daemon: CircusdProcess) -> None:
    # Without CURVE a plugin could open a second connection without its token and be an
    # ordinary client. With CURVE its key pair decides: read the keys circusd gave it (root may
    # read /proc/PID/environ) and try, without the token, what the plugin may not do.
    pid = _plugin_pid(daemon, "plugin:lister")
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    keys = ClientKeys(env[SERVER_KEY_ENV].encode(), env[PUBLIC_KEY_ENV].encode(),
                      env[SECRET_KEY_ENV].encode())
    with CommandClient(daemon.endpoint, timeout=WAIT, curve=keys) as sneaky:
        assert sneaky.identity.count(":") == 0  # a plain routing id: no plugin token
        refused = sneaky.call("quit")
        assert refused["errno"] == 3
        assert refused["reason"].startswith("plugin:lister may not send 'quit'")
        assert sneaky.call("numwatchers")["numwatchers"] == 2  # read-only is allowed
    assert daemon.call("status")["status"] == "ok"


def test_circusctl_listen_with_curve(daemon: CircusdProcess, keydir: Path) -> None:
    plain_env = plain_environ()
    listener = subprocess.Popen(
        [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.pubsub_endpoint,
         "--curve-server-key", str(keydir / "server.key"),
         "--curve-key", str(keydir / "admin.key_secret"), "listen", "watcher.w."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=plain_env,
    )
    try:
        assert listener.stdout is not None
        deadline = time.monotonic() + WAIT
        line = b""
        while not line and time.monotonic() < deadline:
            daemon.call("set", name="w", options={"graceful_timeout": 7})
            ready, _, _ = select.select([listener.stdout], [], [], 0.3)
            if ready:
                line = listener.stdout.readline()
        assert line.startswith(b"watcher.w.updated: "), line
    finally:
        terminate(listener)


def test_circusctl_tail_follows_with_curve(daemon: CircusdProcess, keydir: Path) -> None:
    # Before: `tail -f` read the event channel on a socket without the CURVE keys, so after the
    # backlog (which comes over the control channel) it printed nothing, silently.
    script = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done"
    assert daemon.call("add", name="ticker", cmd="sh", args=["-c", script],
                       start=True)["status"] == "ok"
    plain_env = plain_environ()
    follower = subprocess.Popen(
        [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.endpoint,
         "--curve-server-key", str(keydir / "server.key"),
         "--curve-key", str(keydir / "admin.key_secret"), "tail", "-f", "ticker"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=plain_env,
    )
    try:
        assert follower.stdout is not None
        deadline = time.monotonic() + WAIT
        numbers: list[int] = []
        # the backlog ends at some line; lines written well after it prove the following
        while (len(numbers) < 2 or numbers[-1] < numbers[0] + 20) and (
            time.monotonic() < deadline
        ):
            ready, _, _ = select.select([follower.stdout], [], [], 0.3)
            if ready:
                line = follower.stdout.readline().decode()
                assert line, follower.stderr.read() if follower.stderr else ""
                numbers.append(int(line.split()[-1]))
        assert len(numbers) >= 2, "no line printed"
        assert numbers[-1] >= numbers[0] + 20, f"followed only {numbers}"
    finally:
        terminate(follower)
        daemon.call("rm", name="ticker", waiting=True)


# -- the stats stream under CURVE (issue 9 follow-up) ---------------------------------------------


def _stats_endpoint(daemon: CircusdProcess) -> str:
    return f"ipc://{daemon.tmp_path / 'stats.sock'}"


def test_stats_stream_needs_an_admitted_key(daemon: CircusdProcess, keydir: Path) -> None:
    # Before: the stats PUB stayed plain while the other channels were CURVE servers, so anybody
    # read it, and the plugins (CURVE clients) could not.
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        subs = {}
        for who, keys in (
            ("admin", keys_of(keydir / "admin.key_secret", keydir / "server.key")),
            ("stranger", keys_of(keydir / "stranger.key_secret", keydir / "server.key")),
            ("no key", None),
        ):
            sub = subs[who] = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            configure_client(sub, keys)
            sub.setsockopt(zmq.SUBSCRIBE, b"stat.")
            sub.connect(_stats_endpoint(daemon))
        assert subs["admin"].poll(int(WAIT * 1000)), "no sample over CURVE"
        topics = set()
        deadline = time.monotonic() + WAIT
        while f"stat.circus.{daemon.pid}" not in topics and time.monotonic() < deadline:
            if subs["admin"].poll(300):
                topics.add(subs["admin"].recv_multipart()[0].decode())
        assert f"stat.circus.{daemon.pid}" in topics, topics
        # rounds come every second: the others were connected for several of them by now
        for who in ("stranger", "no key"):
            assert not subs[who].poll(int(NO_REPLY_S * 1000)), f"{who} received stats"
    finally:
        ctx.destroy(linger=0)


# -- authorised keys re-read without a restart (issue 9 follow-up) -------------------------------


def _reread_count(daemon: CircusdProcess) -> int:
    return log_count(daemon, "authorised CURVE keys re-read")


def _answers(daemon: CircusdProcess, keys: ClientKeys) -> bool:
    with CommandClient(daemon.endpoint, timeout=NO_REPLY_S, curve=keys) as client:
        try:
            return client.call("numwatchers")["status"] == "ok"
        except CallTimeout:
            return False


def test_keys_are_admitted_and_revoked_on_reloadconfig_and_sighup(
    keydir: Path, as_admin: ClientKeys, tmp_path: Path
) -> None:
    clients = tmp_path / "clients"
    clients.mkdir()
    shutil.copy(keydir / "admin.key", clients / "admin.key")
    config = textwrap.dedent(f"""\
        [circus]
        curve_server_key = {keydir / 'server.key_secret'}
        curve_authorized_keys = {clients}

        [watcher:w]
        cmd = sleep 600
        """)
    late = keys_of(keydir / "stranger.key_secret", keydir / "server.key")
    with CircusdProcess(config, tmp_path, env=plain_environ()) as daemon:
        assert not _answers(daemon, late)
        shutil.copy(keydir / "stranger.key", clients / "late.key")
        assert daemon.call("reloadconfig", waiting=True)["status"] == "ok"
        assert _reread_count(daemon) == 1
        assert "late.key" in daemon.log_text()
        assert _answers(daemon, late)

        with CommandClient(daemon.endpoint, timeout=WAIT, curve=late) as kept:
            assert kept.call("numwatchers")["numwatchers"] == 1  # authenticated from now on
            (clients / "late.key").unlink()
            os.kill(daemon.pid, signal.SIGHUP)
            wait_until(lambda: _reread_count(daemon) == 2, "the keys re-read on SIGHUP",
                       daemon=daemon)
            assert not _answers(daemon, late)  # a new connection with the revoked key
            # ZAP runs at the handshake only: a connection made before the revocation stays
            assert kept.call("numwatchers")["numwatchers"] == 1
        assert _answers(daemon, as_admin)

        (clients / "bogus.key").write_text("not a certificate\n")
        shutil.copy(keydir / "stranger.key", clients / "late.key")
        refused = daemon.call("reloadconfig", waiting=True)
        assert refused["status"] == "error"
        assert "bogus.key" in refused["reason"], refused
        assert not _answers(daemon, late)  # nothing of the refused directory was admitted
        os.kill(daemon.pid, signal.SIGHUP)  # the same directory: logged, the previous keys stay
        wait_until(lambda: log_count(daemon, "authorised CURVE keys not re-read") == 1,
                   "the error logged after SIGHUP", daemon=daemon)
        assert not _answers(daemon, late)
        assert _answers(daemon, as_admin)
        assert "Traceback" not in daemon.log_text()

        # a new directory in the config: applied by reloadconfig, no watcher restarted for it
        elsewhere = tmp_path / "clients2"
        elsewhere.mkdir()
        shutil.copy(keydir / "admin.key", elsewhere / "admin.key")
        shutil.copy(keydir / "stranger.key", elsewhere / "late.key")
        pids = daemon.call("list", name="w")["pids"]
        daemon.config_path.write_text(daemon.config_text.replace(str(clients), str(elsewhere)))
        assert daemon.call("reloadconfig", waiting=True)["status"] == "ok"
        assert _answers(daemon, late)
        assert daemon.call("list", name="w")["pids"] == pids
        assert "global settings changed" not in daemon.log_text()

"""A Circus 0.19 config using every section and option of the contract (8.2-8.9, and each bundled
plugin's dotted path with its 0.19 options) loads with warnings only for what circus does
differently on purpose (docs/migrating.md), and runs under a real circusd."""

from __future__ import annotations

from pathlib import Path

import pytest

from circus.config import CircusConfig, load_config
from circus.plugins import registry
from circus.testing import CircusdProcess, wait_until

#: a hook that accepts the hook keywords and returns something true
HOOK = "builtins.dict"

CIRCUS_SECTION = """\
[circus]
check_delay = 5
endpoint = tcp://127.0.0.1:5555
endpoint_owner =
pubsub_endpoint = tcp://127.0.0.1:5556
multicast_endpoint =
statsd = false
stats_endpoint = tcp://127.0.0.1:5557
umask = 002
warmup_delay = 0
httpd = false
httpd_host = localhost
httpd_port = 8080
debug = false
debug_gc = false
pidfile = {tmp}/circusd.pid
loglevel = info
logoutput = {tmp}/circusd.log
loggerconfig = default
fqdn_prefix = box1
statsd_close_outputs = false
httpd_close_outputs = false
stream_backend = thread
include = extra.ini missing/*.ini
include_dir = conf.d
"""

WATCHER_SECTION = """\
[watcher:web]
cmd = sleep
args = 120 $(circus.sockets.web)
numprocesses = 2
warmup_delay = 0
working_dir = {tmp}
shell = false
shell_args =
uid =
gid =
copy_env = true
copy_path = true
env = IGNORED=1
send_hup = false
stop_signal = QUIT
stop_children = true
graceful_timeout = 5
max_retry = 5
priority = 3
singleton = false
use_sockets = true
autostart = true
respawn = true
on_demand = false
max_age = 0
max_age_variance = 30
executable = /bin/sleep
close_child_stdin = true
close_child_stdout = false
close_child_stderr = false
stdin_socket = unix
virtualenv =
virtualenv_py_ver = 3.11
rlimit_nofile = 1024
rlimit_core =
stdout_stream.class = FileStream
stdout_stream.filename = {tmp}/web.out
stdout_stream.time_format = %Y-%m-%d %H:%M:%S
stdout_stream.max_bytes = 1048576
stdout_stream.backup_count = 3
stderr_stream.class = TimedRotatingFileStream
stderr_stream.filename = {tmp}/web.err
stderr_stream.rotate_when = midnight
stderr_stream.rotate_interval = 1
stderr_stream.utc = true
hooks.before_start = {hook}, true
check_flapping = true
flapping.max_retry = 2

[watcher:worker-1]
cmd = sleep $(circus.env.NAP)
shell = true
stdout_stream.class = StdoutStream
stderr_stream.class = FancyStdoutStream
stderr_stream.color = red

[watcher:idle]
cmd = sleep 120
autostart = false
numprocesses = 0

[watcher:lazy]
cmd = sleep 120
use_sockets = true
on_demand = true

[socket:web]
host = 127.0.0.1
port = 0
family = AF_INET
type = SOCK_STREAM
proto = tcp
backlog = 2048
interface = lo
umask = 8
replace = false
so_reuseport = false
blocking = false

[socket:unix]
path = {tmp}/web.sock
umask = 0
replace = true
"""

PLUGIN_SECTIONS = """\
[plugin:statsd]
use = circus.plugins.statsd.StatsdEmitter
host = 127.0.0.1
port = 8125
application_name = app
sample_rate = 1.0

[plugin:statsd_old]
use = circus.plugins._statsd.StatsdEmitter

[plugin:full_stats]
use = circus.plugins.statsd.FullStats
loop_rate = 60

[plugin:flapping]
use = circus.plugins.flapping.Flapping
attempts = 2
window = 1
retry_in = 7
max_retry = 5
active = true

[plugin:watchdog]
use = circus.plugins.watchdog.WatchDog
loop_rate = 60
watchers_regex = ^web
msg_regex = ^(?P<pid>.*);(?P<timestamp>.*)$
max_count = 3
ip = 127.0.0.1
port = 0
watchers_stop_signal = SIGTERM
watchers_graceful_timeout = 5

[plugin:resources]
use = circus.plugins.resource_watcher.ResourceWatcher
watcher = web
max_cpu = 90
min_cpu = 0
max_mem = 250M
min_mem = 1K
health_threshold = 75
max_count = 3
process_children = false
child_signal = 15
loop_rate = 60

[plugin:http]
use = circus.plugins.http_observer.HttpObserver
loop_rate = 60
check_url = http://127.0.0.1:9/
timeout = 1
restart_on_error = web

[plugin:reloader]
use = circus.plugins.command_reloader.CommandReloader
loop_rate = 60
active = true

[plugin:redis]
use = circus.plugins.redis_observer.RedisObserver
loop_rate = 60
redis_url = redis://127.0.0.1:9/0
timeout = 1
restart_on_timeout = web
"""

ENV_SECTIONS = """\
[env]
NAP = 120
PATH = $PATH
HOME_COPY = $(circus.env.HOME)

[env:web,worker-*]
GREETING = hello $(circus.env.NAP)
"""

#: (section, key) of every warning a 0.19 user of this config sees, each for a deliberate
#: difference listed in docs/migrating.md
EXPECTED_WARNINGS = {
    ("circus", "statsd_close_outputs"),  # not read from a file by 0.19 either: said, not silent
    ("circus", "httpd_close_outputs"),
    ("circus", "stream_backend"),
    ("circus", "include"),  # missing/*.ini matches nothing (0.19 warns too)
    ("watcher:web", "env"),  # ignored in a watcher section, as in 0.19, but said
}


def write_config(folder: Path, extra: str = "") -> Path:
    tmp = str(folder)
    (folder / "conf.d").mkdir(exist_ok=True)
    (folder / "conf.d" / "more.ini").write_text("[watcher:web]\nnumprocesses = 9\n")
    (folder / "extra.ini").write_text("[watcher:from-include]\ncmd = sleep 120\n")
    text = "\n".join([
        CIRCUS_SECTION.format(tmp=tmp),
        WATCHER_SECTION.format(tmp=tmp, hook=HOOK),
        PLUGIN_SECTIONS,
        ENV_SECTIONS,
        extra,
    ])
    path = folder / "circus.ini"
    path.write_text(text)
    return path


def warnings_of(config: CircusConfig) -> set[tuple[str | None, str | None]]:
    return {(w.section, w.key) for w in config.warnings}


def test_every_0_19_section_and_option_loads(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert warnings_of(config) == EXPECTED_WARNINGS, [str(w) for w in config.warnings]
    watchers = {w.name: w for w in config.watchers}
    plugin_names = {f"plugin:{n}" for n in (
        "statsd", "statsd_old", "full_stats", "flapping", "watchdog", "resources", "http",
        "reloader", "redis")}
    assert set(watchers) == {"web", "worker-1", "idle", "lazy", "from-include"} | plugin_names
    web = watchers["web"]
    assert web.numprocesses == 2  # the main file wins over include_dir
    assert web.stop_signal == 3
    assert web.rlimits == {"nofile": 1024, "core": None}
    assert web.extra == {"flapping.max_retry": "2"}
    assert web.env["GREETING"] == "hello 120"  # $(circus.env.X) inside [env:...] too
    assert "IGNORED" not in web.env
    assert watchers["worker-1"].env["GREETING"] == "hello 120"
    assert config.settings.discovery is False  # multicast_endpoint = (empty) turns it off
    assert {p.use for p in config.plugins} == set(registry.ALIASES)


def test_the_0_19_config_runs(tmp_path: Path) -> None:
    """Under a real circusd (its own ipc endpoints): every watcher and every 0.19 plugin path
    starts; the plugins' servers (statsd, redis, http) being absent is theirs to report."""
    path = write_config(tmp_path)
    text = path.read_text()
    for line in ("endpoint = tcp://127.0.0.1:5555\n", "pubsub_endpoint = tcp://127.0.0.1:5556\n",
                 f"pidfile = {tmp_path}/circusd.pid\n", f"logoutput = {tmp_path}/circusd.log\n"):
        text = text.replace(line, "")
    daemon = CircusdProcess(text.replace("[circus]\n", "[circus]\ncheck_delay = 1\n", 1),
                            tmp_path / "run")
    for name in ("conf.d", "extra.ini"):
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / name).symlink_to(tmp_path / name)
    with daemon:

        def all_started() -> bool:
            statuses = daemon.call("status")["statuses"]
            idle, lazy = statuses.pop("idle"), statuses.pop("lazy")
            return (idle, lazy) == ("stopped", "stopped") and set(statuses.values()) == {"active"}

        wait_until(all_started, "every autostart watcher and plugin active", 60, daemon=daemon)
        assert len(daemon.call("status")["statuses"]) == 14
        assert {s["name"] for s in daemon.call("listsockets")["sockets"]} == {"web", "unix"}
        assert len(daemon.call("list", name="web")["pids"]) == 2

        def plugins_alive() -> bool:
            found = daemon.call("list")["watchers"]
            plugins = [n for n in found if n.startswith("plugin:")]
            return len(plugins) == 9 and all(
                daemon.call("list", name=n)["pids"] for n in plugins
            )

        wait_until(plugins_alive, "every plugin process running", 60, daemon=daemon)
        log = daemon.log_text()
        assert "Traceback" not in log
        warned = [line for line in log.splitlines()
                  if "[WARNING]" in line and f"{daemon.config_path}: [" in line]
        assert len(warned) == len(EXPECTED_WARNINGS), warned


@pytest.mark.parametrize("path", sorted(registry.ALIASES))
def test_each_plugin_path_runs_or_names_its_distribution(path: str) -> None:
    short, dist = registry.ALIASES[path]
    found: registry.PluginSpec | registry.PluginNotFound
    try:
        found = registry.resolve(path)
    except registry.PluginNotFound as exc:
        found = exc
    if isinstance(found, registry.PluginNotFound):
        assert f"pip install {dist}" in str(found)
    else:
        assert (found.name, found.dist_name) == (short, dist)

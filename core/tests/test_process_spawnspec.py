"""circus.spawn: the exact argv/env/ids a watcher's configuration gives for one worker."""

from __future__ import annotations

import os
import resource
import sys

from circus.config import WatcherConfig
from circus.spawn import build_argv, build_spec, child_env


def cfg(**options: object) -> WatcherConfig:
    options.setdefault("cmd", "prog")
    return WatcherConfig(name="w", **options)  # type: ignore[arg-type]


def test_wid_env_and_option_variables_in_cmd_and_args() -> None:
    config = cfg(
        cmd="prog --wid $(circus.wid) --n ((circus.NUMPROCESSES))",
        args="--home $(circus.env.HOME_DIR) $(circus.unknown) $WID",
        env={"HOME_DIR": "/srv/a b"},
        numprocesses=3,
    )
    argv = build_argv(config, 2, child_env(config))
    assert argv == [
        "prog",
        "--wid",
        "2",
        "--n",
        "3",
        "--home",
        "/srv/a",
        "b",
        "$(circus.unknown)",
        "2",
    ]


def test_args_list_is_not_split_and_shell_joins() -> None:
    config = cfg(cmd="echo", args=["a b", "$(circus.wid)"])
    assert build_argv(config, 4, {}) == ["echo", "a b", "4"]
    shell = cfg(cmd="echo $HOME && true", args="x", shell=True)
    assert build_argv(shell, 1, {}) == ["/bin/sh", "-c", "echo $HOME && true x"]


def test_argv_is_used_verbatim() -> None:
    config = cfg(cmd="ignored", argv=["python", "-c", "print('a b')", "$(circus.wid)"])
    assert build_argv(config, 1, {}) == ["python", "-c", "print('a b')", "$(circus.wid)"]


def test_env_copy_env_and_copy_path() -> None:
    assert child_env(cfg(env={"A": "1"})) == {"A": "1"}
    copied = child_env(cfg(env={"A": "1"}, copy_env=True, copy_path=True))
    assert copied["A"] == "1"
    assert copied["PATH"] == os.environ["PATH"]
    assert copied["PYTHONPATH"].split(os.pathsep)[: len([p for p in sys.path if p])] == [
        p for p in sys.path if p
    ]


def test_spec_streams_rlimits_and_ids() -> None:
    spec = build_spec(
        cfg(
            rlimits={"nofile": 100, "core": None},
            stdout_stream={"class": "FileStream", "filename": "/tmp/x"},
            close_child_stderr=True,
            close_child_stdin=False,
            working_dir="/tmp",
        ),
        1,
        umask=0o022,
    )
    assert spec.stdout == "pipe"
    assert spec.stderr == "null"
    assert spec.close_stdin is False
    assert spec.rlimits == {resource.RLIMIT_NOFILE: 100, resource.RLIMIT_CORE: None}
    assert spec.cwd == "/tmp"
    assert spec.umask == 0o022
    captured = build_spec(cfg(), 1)  # no stream: piped for the output rings (output_tail)
    assert (captured.stdout, captured.stderr) == ("pipe", "pipe")
    inherit = build_spec(cfg(extra={"output_lines": "0"}), 1)
    assert (inherit.stdout, inherit.stderr) == ("inherit", "inherit")


def test_uid_only_gets_primary_and_supplementary_groups() -> None:
    if os.geteuid() != 0:
        return
    spec = build_spec(cfg(uid=0), 1)
    assert spec.uid == 0
    assert spec.gid == 0
    assert spec.extra_groups is not None
    assert 0 in spec.extra_groups

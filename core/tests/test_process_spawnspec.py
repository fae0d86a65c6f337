"""circus.spawn: the exact argv/env/ids a watcher's configuration gives for one worker."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest

from circus.config import WatcherConfig, load_config
from circus.errors import ConfigError
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
        "/srv/a b",  # one argument: split first, then substituted (0.19 gave two)
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


# -- expansion never re-expands what it inserted (issue 9 item 5) ----------------------------


def test_inserted_values_are_never_expanded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET", "s3cret")
    monkeypatch.setenv(
        "USER_VALUE", "$(circus.env.SECRET) $(circus.wid) ((circus.env.SECRET)) $WID"
    )
    config = cfg(
        cmd="echo $(circus.env.USER_VALUE) $(circus.env.FROM_INI)",
        args=["$(circus.env.USER_VALUE)"],
        env={"FROM_INI": "$(circus.env.SECRET)"},
        copy_env=True,
    )
    env = child_env(config)
    argv = build_argv(config, 3, env)
    literal = "$(circus.env.SECRET) $(circus.wid) ((circus.env.SECRET)) $WID"
    assert argv == ["echo", literal, "$(circus.env.SECRET)", literal]
    assert "s3cret" not in " ".join(argv)
    # environment values are passed as written, never substituted
    assert env["FROM_INI"] == "$(circus.env.SECRET)"
    assert env["USER_VALUE"] == literal


@pytest.mark.parametrize("value", ["it's", 'a "quoted" b', "x; rm -rf /", "two words", ""])
def test_substituted_value_is_exactly_one_argument(value: str) -> None:
    config = cfg(
        cmd="prog --name=$(circus.env.V) $(circus.env.V)",
        args="-- $(circus.env.V)",
        env={"V": value},
    )
    assert build_argv(config, 1, child_env(config)) == [
        "prog",
        f"--name={value}",
        value,
        "--",
        value,
    ]


def test_template_quotes_are_the_users_not_the_values() -> None:
    config = cfg(cmd="prog 'a $(circus.wid) b' \"$(circus.env.V)\"", env={"V": "x y"})
    assert build_argv(config, 7, child_env(config)) == ["prog", "a 7 b", "x y"]


def test_shell_true_substitutes_into_the_line_once() -> None:
    config = cfg(
        cmd="echo $(circus.env.V)", args="$(circus.wid)", shell=True, env={"V": "$(circus.wid)"}
    )
    assert build_argv(config, 2, child_env(config)) == ["/bin/sh", "-c", "echo $(circus.wid) 2"]


def test_unsplittable_template_at_spawn_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot split cmd into arguments"):
        build_argv(cfg(cmd="prog 'unclosed"), 1, {})


def test_unsplittable_template_is_a_config_error_at_load(tmp_path: Path) -> None:
    path = tmp_path / "circus.ini"
    path.write_text("[watcher:w]\ncmd = prog\nargs = --name 'unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.path, info.value.section, info.value.key) == (str(path), "watcher:w", "args")
    assert "No closing quotation" in str(info.value)


def test_env_value_with_a_quote_loads_and_spawns(tmp_path: Path) -> None:
    """0.19 and we before: every spawn failed with "No closing quotation"."""
    path = tmp_path / "circus.ini"
    path.write_text("[env:w]\nGREETING = it's\n[watcher:w]\ncmd = echo $(circus.env.GREETING)\n")
    (config,) = load_config(path).watchers
    assert build_spec(config, 1).argv == ["echo", "it's"]

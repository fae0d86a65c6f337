"""The ``set``/``add`` option table: accepted types, conversions and the 0.19 error texts."""

from __future__ import annotations

import os
import pwd
from typing import Any

import pytest

from circus.commands.options import validate_option, validate_options
from circus.errors import Errno, MessageError


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("numprocesses", 3, 3),
        ("numprocesses", -2, 0),
        ("max_age", 10, 10),
        ("stop_signal", 9, 9),
        ("warmup_delay", 0.5, 0.5),
        ("graceful_timeout", 3, 3.0),
        ("working_dir", "/tmp", "/tmp"),
        ("cmd", "sleep 1", "sleep 1"),
        ("args", ["-c", "x"], ["-c", "x"]),
        ("args", "-c x", "-c x"),
        ("env", {"A": "1"}, {"A": "1"}),
        ("shell", True, True),
        ("respawn", False, False),
        ("uid", os.getuid(), os.getuid()),
        ("uid", pwd.getpwuid(os.getuid()).pw_name, os.getuid()),
        ("rlimit_nofile", 1024, 1024),
        ("rlimit_core", None, None),
        ("stdout_stream", {"class": "FileStream", "filename": "x"}, None),
        ("stdout_stream.filename", "/tmp/x.log", "/tmp/x.log"),
        ("hooks.before_start", "mod.fn", "mod.fn"),
        ("hooks", {"after_stop": "mod.fn,true"}, None),
    ],
)
def test_accepted_values(key: str, value: Any, expected: Any) -> None:
    result = validate_option(key, value)
    assert result == (value if expected is None else expected)
    assert type(result) is type(value if expected is None else expected)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("priority", 1, "unknown key 'priority'"),
        ("autostart", True, "unknown key 'autostart'"),
        ("flapping.max_retry", 3, "unknown key 'flapping.max_retry'"),
        ("numprocesses", "3", "'numprocesses' isn't an integer"),
        ("numprocesses", 1.5, "'numprocesses' isn't an integer"),
        ("stop_signal", "TERM", "'stop_signal' isn't an integer"),
        ("warmup_delay", "1", "'warmup_delay' isn't a number"),
        ("graceful_timeout", None, "'graceful_timeout' isn't a number"),
        # a finite but absurd duration would make a kill wait forever, as `kill` refuses it
        ("graceful_timeout", 1e300, "'graceful_timeout' must be at most 1e+06"),
        ("backoff_max", 1e7, "'backoff_max' must be at most 1e+06"),
        ("uid", [1], "'uid' isn't an integer or string"),
        ("send_hup", 1, "'send_hup' isn't a valid boolean"),
        ("shell", "true", "'shell' isn't a valid boolean"),
        ("env", [], "'env' isn't a valid object"),
        ("env", {"A": 1}, "'A' isn't a string"),
        ("stdout_stream", {"filename": "x"}, "'stdout_stream' must have a 'class' key"),
        ("stderr_stream", "x", "'stderr_stream' isn't a valid object"),
        ("rlimit_bogus", 1, "'rlimit_bogus' isn't a valid rlimit setting"),
        ("rlimit_nofile", "10", "'10' rlimit value isn't a valid int"),
        ("hooks.bogus", "m.f", "Unknown hook 'bogus'"),
        ("hooks", "m.f", "'m.f' isn't a valid hook dict"),
        ("cmd", 3, "'cmd' isn't a string"),
        ("args", [1], "'args' isn't a string or a list of strings"),
    ],
)
def test_rejected_values(key: str, value: Any, reason: str) -> None:
    with pytest.raises(MessageError) as info:
        validate_option(key, value)
    assert info.value.reason == reason
    assert info.value.errno == Errno.MESSAGE_ERROR


def test_unknown_user_is_a_message_error() -> None:
    with pytest.raises(MessageError, match="'uid'"):
        validate_option("uid", "no-such-user-here")


def test_validation_is_all_or_nothing() -> None:
    with pytest.raises(MessageError, match="'numprocesses' isn't an integer"):
        validate_options({"graceful_timeout": 2, "numprocesses": "x"})
    assert validate_options({"graceful_timeout": 2, "numprocesses": 4}) == {
        "graceful_timeout": 2.0,
        "numprocesses": 4,
    }

"""Signal names/numbers and the shared value converters."""

from __future__ import annotations

import os
import pwd
import signal

import pytest

from circus.config import convert
from circus.signals import signal_name, to_signum


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (15, 15),
        ("15", 15),
        (" 3 ", 3),
        ("TERM", signal.SIGTERM),
        ("sigterm", signal.SIGTERM),
        ("SIGQUIT", signal.SIGQUIT),
        ("int", signal.SIGINT),
        ("Hup", signal.SIGHUP),
        ("SIGRTMIN", signal.SIGRTMIN),
        ("SIGRTMIN+1", signal.SIGRTMIN + 1),
        ("rtmin+2", signal.SIGRTMIN + 2),
        ("SIGRTMAX-1", signal.SIGRTMAX - 1),
    ],
)
def test_to_signum_accepts_every_spelling(value: int | str, expected: int) -> None:
    assert to_signum(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("TERMINATE", "unknown signal 'TERMINATE'"),
        ("SIGFOO", "unknown signal 'SIGFOO'"),
        ("", "unknown signal ''"),
        (0, "invalid signal number 0"),
        ("-1", "invalid signal number -1"),
        (signal.NSIG, f"invalid signal number {signal.NSIG}"),
        ("SIGRTMAX+1", "unknown signal"),
        (True, "invalid signal True"),
    ],
)
def test_to_signum_rejects_with_clear_message(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match="signal") as info:
        to_signum(value)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_signal_name_round_trips() -> None:
    assert signal_name(15) == "SIGTERM"
    assert signal_name(int(signal.SIGRTMIN) + 3) == "SIGRTMIN+3"
    for num in (1, 2, 3, 9, 15, int(signal.SIGRTMIN) + 1, int(signal.SIGRTMAX)):
        assert to_signum(signal_name(num)) == num


@pytest.mark.parametrize("text", ["1", "yes", "TRUE", "On", " true "])
def test_to_bool_true(text: str) -> None:
    assert convert.to_bool(text) is True


@pytest.mark.parametrize("text", ["0", "no", "False", "OFF"])
def test_to_bool_false(text: str) -> None:
    assert convert.to_bool(text) is False


@pytest.mark.parametrize("value", ["flase", "", "2", 2, None, 1.0])
def test_to_bool_is_strict(value: object) -> None:
    with pytest.raises(ValueError, match="invalid boolean"):
        convert.to_bool(value)


def test_numbers() -> None:
    assert convert.to_int("42") == 42
    assert convert.to_int(7.0) == 7
    assert convert.to_float("0.25") == 0.25
    assert convert.to_float(3) == 3.0
    with pytest.raises(ValueError, match=r"invalid integer '1\.5'"):
        convert.to_int("1.5")
    with pytest.raises(ValueError, match="at least 0"):
        convert.to_int("-2", minimum=0)
    with pytest.raises(ValueError, match="finite"):
        convert.to_float("nan")
    with pytest.raises(ValueError, match="invalid integer True"):
        convert.to_int(True)


def test_umask_is_octal() -> None:
    assert convert.to_umask("002") == 0o002
    assert convert.to_umask("022") == 0o022
    assert convert.to_umask("0o77") == 0o77
    with pytest.raises(ValueError, match="octal"):
        convert.to_umask("089")
    with pytest.raises(ValueError, match="between"):
        convert.to_umask("1000")


def test_uid_gid_names_and_numbers() -> None:
    me = pwd.getpwuid(os.getuid())
    assert convert.to_uid(me.pw_name) == me.pw_uid
    assert convert.to_uid(str(me.pw_uid)) == me.pw_uid
    with pytest.raises(ValueError, match="unknown user 'no-such-user-xyz'"):
        convert.to_uid("no-such-user-xyz")
    with pytest.raises(ValueError, match="unknown group 'no-such-group-xyz'"):
        convert.to_gid("no-such-group-xyz")


def test_rlimit_values() -> None:
    assert convert.to_rlimit("4096") == 4096
    assert convert.to_rlimit("") is None
    assert convert.to_rlimit("unlimited") is None
    assert convert.to_rlimit(-1) is None
    with pytest.raises(ValueError, match="invalid integer"):
        convert.to_rlimit("lots")

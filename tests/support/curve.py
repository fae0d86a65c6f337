"""A CURVE circusd's keys for tests: the server's pair and one admitted client, the admin.

Tests of the channels under CURVE need the same three steps: write the pairs, admit the admin's
public key, and make the test's own clients (``CircusdProcess.call`` included, which read the
keys from the environment as a plugin does) the admin.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from circus.curve import ClientKeys, load_public, load_secret_pair, write_pair


def curve_as_admin(directory: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write the keys under ``directory``, make this process's clients the admin (undone by
    ``monkeypatch``) and return the ``[circus]`` lines that turn CURVE on with them."""
    write_pair(directory, "server")
    write_pair(directory, "admin")
    (directory / "clients").mkdir()
    shutil.copy(directory / "admin.key", directory / "clients" / "admin.key")
    public, secret = load_secret_pair(directory / "admin.key_secret")
    admin = ClientKeys(load_public(str(directory / "server.key")), public, secret)
    for name, value in admin.environ().items():
        monkeypatch.setenv(name, value)
    return (f"curve_server_key = {directory / 'server.key_secret'}\n"
            f"curve_authorized_keys = {directory / 'clients'}\n")

"""A real redis-server for the tests: found on PATH (Debian package ``redis-server``, which
``python3 dev.py test`` installs when it can), configured in a temp dir on a free 127.0.0.1 port."""

from __future__ import annotations

import shutil
from pathlib import Path

from circus.testing import missing_part


def redis_server_path() -> str:
    """The redis-server executable, or skip: the detection is ``shutil.which("redis-server")``."""
    path = shutil.which("redis-server")
    if path is None:
        missing_part("redis-server is not installed (Debian: apt-get install redis-server)")
    return path


def redis_conf(tmp_path: Path, port: int) -> Path:
    """A config that stays on 127.0.0.1, keeps nothing on disk and stays in the foreground."""
    conf = tmp_path / "redis.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode yes\ndaemonize no\n"
        f'save ""\nappendonly no\ndir {tmp_path}\nlogfile ""\n'
    )
    return conf

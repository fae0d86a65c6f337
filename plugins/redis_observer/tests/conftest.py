"""redis_observer tests: make ``redis_servers.py`` beside this file importable (pytest runs
with --import-mode=importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

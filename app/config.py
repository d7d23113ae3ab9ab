"""Configuration: the only module that reads the environment."""

from __future__ import annotations

import os
from pathlib import Path


def ml100k_dir() -> Path | None:
    """ML100K_DIR: a local copy of ml-100k to use instead of downloading one."""
    value = os.environ.get("ML100K_DIR", "").strip()
    return Path(value) if value else None

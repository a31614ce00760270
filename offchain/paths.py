"""Where the project's files live: sources, build cache, node packages, run data."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "contracts_dir", "build_dir", "node_bin", "default_home"]


def project_root() -> Path:
    """The repository root (``FEDSHARE_ROOT`` overrides the package's location)."""
    env = os.environ.get("FEDSHARE_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def contracts_dir() -> Path:
    """The Solidity sources."""
    return project_root() / "contracts"


def build_dir() -> Path:
    """The compiled-artifact cache."""
    return project_root() / "build"


def node_bin(name: str) -> Path:
    """An executable installed by npm (``node_modules/.bin/NAME``)."""
    return project_root() / "node_modules" / ".bin" / name


def default_home() -> Path:
    """Where runs keep keys, blobs and results (``FEDSHARE_HOME`` overrides)."""
    env = os.environ.get("FEDSHARE_HOME")
    return Path(env).resolve() if env else project_root() / ".fedshare"

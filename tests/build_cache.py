"""Artifacts that tests build once per machine: under ~/.cache/symtool-tests/<kind>/<key>/,
made by one process at a time (a lock: parallel workers, parallel sessions), moved into place
only once complete, and other keys of the same kind dropped after a day unused."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable

from symtool import platform

STALE_SECONDS = 86400


def cache_root(kind: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symtool-tests" / kind


def cached_build(kind: str, key: str, produce: Callable[[Path], None], done_marker: str) -> Path:
    """The folder for ``key``: ``produce(folder)`` fills a fresh one unless ``done_marker`` (a file
    ``produce`` writes last) is already there."""
    root = cache_root(kind)
    root.mkdir(parents=True, exist_ok=True)
    done = root / key
    lock_dir = root / ".lock.d"
    lock_dir.mkdir(exist_ok=True)
    with platform.dir_lock(lock_dir, "lock"):
        if not (done / done_marker).exists():
            work = root / f".build-{os.getpid()}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            produce(work)
            shutil.rmtree(done, ignore_errors=True)
            work.rename(done)
            for stale in root.iterdir():
                if stale.is_dir() and stale not in (done, lock_dir) and time.time() - stale.stat().st_mtime > STALE_SECONDS:
                    shutil.rmtree(stale, ignore_errors=True)
    return done


__all__ = ["cache_root", "cached_build"]

"""Once per test run, whichever pytest-xdist worker asks first.

Under ``pytest -n 2`` each worker is its own session: a session fixture runs once
per worker.  A build (cargo, a corpus) must not run twice, let alone twice at
once in the same directory, so session fixtures that make files go through
:func:`run_once`:

    @pytest.fixture(scope="session")
    def my_build(tmp_path_factory) -> Path:
        return run_once(tmp_path_factory, "my-build", lambda out: cargo_build(out, ...)) / "bin"

The first caller builds into ``<run>/once/<name>`` under an exclusive lock
(symtool.platform.dir_lock on ``<name>.lock``: flock, or a byte-range lock on Windows); the others wait on the lock and get the same
directory.  ``<run>`` is the directory shared by the run's workers (the parent of
each worker's basetemp), or this session's basetemp without xdist, so every run
starts clean, like a fresh clone in CI.  The directory is complete only when
``make`` returned: a failed build is retried by the next caller, never half used.
What is made is shared by every test of every worker: treat it as read-only
(copy it to ``tmp_path`` to change it).  Anything that must stay private to one
worker (a server, a Wine prefix whose registry a test changes) stays a plain
session fixture on ``tmp_path_factory``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from symtool import platform


def run_root(tmp_path_factory) -> Path:
    """The directory every worker of this run shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def run_once(tmp_path_factory, name: str, make: Callable[[Path], object]) -> Path:
    """The directory ``<run>/once/<name>``, filled by ``make(directory)`` once per run.

    Build the fixture's value from the returned directory alone (paths into it), so
    a worker that did not call ``make`` gets the same value."""
    once = run_root(tmp_path_factory) / "once"
    once.mkdir(exist_ok=True)
    out = once / name
    done = once / f"{name}.done"
    lock_dir = once / f"{name}.lock"
    lock_dir.mkdir(exist_ok=True)
    with platform.dir_lock(lock_dir, "lock"):  # released even if make() raises
        if not done.exists():
            if out.exists():
                shutil.rmtree(out)  # a failed attempt's leftovers
            out.mkdir()
            make(out)
            done.touch()
    return out

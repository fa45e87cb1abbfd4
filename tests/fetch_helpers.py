"""Helpers shared by the `symtool fetch` tests (subprocess runs against nginx)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(args, env, cwd):
    """`symtool fetch ARGS` in a subprocess; never a traceback."""
    proc = subprocess.run([sys.executable, "-m", "symtool", "fetch", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

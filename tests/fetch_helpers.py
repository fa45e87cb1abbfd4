"""Helpers shared by the `symtool fetch` tests (subprocess runs against nginx)."""

from __future__ import annotations

from pathlib import Path

from cli_runner import symtool_in_process


def run(args, env, cwd):
    """`symtool fetch ARGS` in a subprocess; never a traceback."""
    proc = symtool_in_process("fetch", *map(str, args), env=env, cwd=cwd, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

"""Stores are readable by others: files and directories get the modes `cp` and `mkdir` would give.

The oracle is the operating system: `cp` and `mkdir` run under the same umask,
and nginx, whose workers run as an unprivileged user, serves what was published.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import need_tool
from fetch_helpers import run as run_fetch
from symtool.fsutil import atomic_copy, atomic_write_bytes


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in sorted(root.rglob("*"))}


def _publish(store: Path, inputs: list[Path], umask: int, cwd: Path) -> subprocess.CompletedProcess:
    code = f"import os, sys; os.umask(0o{umask:o}); from symtool.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, "publish", "--store", str(store), *map(str, inputs)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_published_store_has_the_modes_cp_and_mkdir_give(fixtures_dir, tmp_path, umask):
    need_tool("cp")
    inputs = [fixtures_dir / "pe-pdb" / "crash.exe", fixtures_dir / "pe-pdb" / "crash.pdb"]
    proc = _publish(tmp_path / "store", inputs, umask, tmp_path)
    assert proc.returncode == 0, proc.stderr
    # What cp and mkdir make under the same umask, for a file like each input and for a new dir.
    reference = tmp_path / "reference"
    script = f"umask {umask:03o} && mkdir {reference} && " + " && ".join(
        f"cp {src} {reference}/{src.name}" for src in inputs) + f" && mkdir {reference}/d && touch {reference}/t"
    subprocess.run(["sh", "-c", script], check=True)
    want_file = {p.name: stat.S_IMODE((reference / p.name).stat().st_mode) for p in inputs}
    want_dir = stat.S_IMODE((reference / "d").stat().st_mode)
    want_generated = stat.S_IMODE((reference / "t").stat().st_mode)
    for rel, mode in _modes(tmp_path / "store").items():
        path = tmp_path / "store" / rel
        if path.is_dir():
            assert mode == want_dir, rel
        elif path.name in want_file:
            assert mode == want_file[path.name], rel
        else:  # refs.ptr, 000Admin files, pingme.txt: generated content, like `touch`
            assert mode == want_generated, rel


def test_replacing_a_file_keeps_its_mode_and_a_source_mode_carries_over(tmp_path):
    old_mask = os.umask(0o022)
    try:
        target = tmp_path / "kept"
        target.write_bytes(b"old")
        target.chmod(0o640)
        atomic_write_bytes(target, b"new")
        assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() == b"new"
        src = tmp_path / "tool"
        src.write_bytes(b"#!/bin/sh\n")
        src.chmod(0o755)
        atomic_copy(src, tmp_path / "copy")
        assert stat.S_IMODE((tmp_path / "copy").stat().st_mode) == 0o755
    finally:
        os.umask(old_mask)


def test_nginx_with_unprivileged_workers_serves_a_freshly_published_store(nginx, fixtures_dir, env, tmp_path):
    assert os.geteuid() != 0 or "user nobody" in (nginx.prefix / "nginx.conf").read_text()
    store = nginx.www / "fresh"
    proc = _publish(store, [fixtures_dir / "pe-pdb" / "crash.exe", fixtures_dir / "pe-pdb" / "crash.pdb"],
                    0o022, tmp_path)
    assert proc.returncode == 0, proc.stderr
    key = "crash.pdb/3249D99D0C4049318610F4E4FB0B69361/crash.pdb"
    answer = requests.get(nginx.url(f"fresh/{key}"), timeout=10)
    assert answer.status_code == 200
    assert answer.content == (fixtures_dir / "pe-pdb" / "crash.pdb").read_bytes()
    fetched = run_fetch(["--pdb", "crash.pdb", "--id", "3249D99D0C4049318610F4E4FB0B69361",
                         "--server", nginx.url("fresh"), "--cache", tmp_path / "cache"], env, tmp_path)
    assert fetched.returncode == 0, fetched.stderr

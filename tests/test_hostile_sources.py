"""Hostile inputs, second round (issue 22, docs/security.md): what a PDB or DWARF line table can
make ``--sources`` read, and what a store owner's symlinks can make publish write.

Real files from real compilers: ``clang --target=x86_64-pc-windows-msvc -gcodeview`` with
``lld-link`` for PDBs, ``gcc -g`` for ELF.  The line tables name files with ``#line``, as
any C source (or a build script generating one) can.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import need_tool
from hostile_helpers import all_bytes, clean_env, symtool

TOKEN = "tok-SYMTOOL-SECRET-4242"
AWS = "aws-SECRET-ACCESS-KEY-9999"
KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture
def env(tmp_path):
    return clean_env(tmp_path, SYMTOOL_HTTP_TOKEN=TOKEN, AWS_SECRET_ACCESS_KEY=AWS, SYMTOOL_LOCK_TIMEOUT="600")


def hostile_workspace(tmp_path: Path) -> dict:
    """A cargo workspace whose C file's line table names /proc/self/environ, an SSH key outside
    the workspace, a symlink inside it pointing at the key, and a FIFO; and one honest file."""
    home = tmp_path / "home" / "u"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_rsa"
    key.write_bytes(KEY)
    key.chmod(0o600)
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "Cargo.toml").write_text("[workspace]\nmembers = []\n")
    (ws / "src" / "key_link.c").symlink_to(key)
    os.mkfifo(ws / "src" / "pipe.c")
    (ws / "src" / "honest.c").write_text("int honest(int x) {\n  return x + 1;\n}\n")
    (ws / "src" / "main.c").write_text(
        '#include "honest.c"\n'
        '#line 1 "/proc/self/environ"\nint leak_env(void) { return 1; }\n'
        f'#line 1 "{key}"\nint leak_key(void) {{ return 2; }}\n'
        f'#line 1 "{ws / "src" / "key_link.c"}"\nint leak_link(void) {{ return 3; }}\n'
        f'#line 1 "{ws / "src" / "pipe.c"}"\nint leak_pipe(void) {{ return 4; }}\n'
        "int main(void) { return honest(leak_env() + leak_key() + leak_link() + leak_pipe()); }\n")
    return {"ws": ws, "key": key}


def build_pdb(ws: Path, out: Path) -> Path:
    need_tool("clang"), need_tool("lld-link")
    out.mkdir(parents=True, exist_ok=True)
    obj = out / "main.obj"
    subprocess.run(["clang", "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-c", "src/main.c", "-o", str(obj)],
                   check=True, capture_output=True, cwd=ws)
    subprocess.run(["lld-link", "/debug", "/nodefaultlib", "/entry:main", "/subsystem:console",
                    f"/out:{out / 'app.exe'}", f"/pdb:{out / 'app.pdb'}", str(obj)], check=True, capture_output=True)
    return out / "app.pdb"


def build_elf(ws: Path, out: Path) -> Path:
    need_tool("gcc")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-g", "-O0", "-Wl,--build-id", "src/main.c", "-o", str(out / "app")], check=True,
                   capture_output=True, cwd=ws)
    return out / "app"


def assert_no_secrets(store: Path, key: Path) -> None:
    data = all_bytes(store)
    assert TOKEN.encode() not in data and AWS.encode() not in data and b"SECRET-KEY-MATERIAL" not in data
    names = [p.name for p in store.rglob("*")]
    assert "environ" not in names and "id_rsa" not in names and "key_link.c" not in names and "pipe.c" not in names
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


# -- 1. --sources copies only what the allow-list admits ------------------------------------------------

def test_pdb_sources_archive_no_secrets(tmp_path, env):
    h = hostile_workspace(tmp_path)
    pdb = build_pdb(h["ws"], h["ws"] / "target" / "release")
    store = tmp_path / "store"
    proc = symtool("publish", pdb.parent, "--store", store, "--source-index", "--sources", "--json",
                   env=env, cwd=h["ws"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert_no_secrets(store, h["key"])
    # The honest workspace files are archived...
    assert (store / "honest.c").is_dir()
    # ...and everything refused is listed with the reason.
    warnings = "\n".join(report["warnings"])
    assert "/proc/self/environ" in warnings and "under /proc" in warnings
    assert f"{h['key']} not" in warnings.replace(": not", " not") or str(h["key"]) in warnings
    assert "key_link.c" in warnings and "outside the workspace" in warnings
    assert "pipe.c" in warnings and "a FIFO" in warnings


def test_srcindex_sources_root_admits_more(tmp_path, env):
    """--sources-root adds a directory; /proc stays refused even when named as a root."""
    h = hostile_workspace(tmp_path)
    pdb = build_pdb(h["ws"], tmp_path / "out")
    store = tmp_path / "store"
    store.mkdir()
    proc = symtool("srcindex", pdb, "--sources", store, "--sources-root", h["key"].parent, "--sources-root", "/proc",
                   "--json", env=env, cwd=h["ws"], timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # environ and the FIFO stay unserved
    files = {Path(f["path"]).name: f for f in json.loads(proc.stdout)[0]["files"]}
    assert files["id_rsa"]["rule"] == "archive"  # the user asked for that directory
    stored = next((store / "id_rsa").rglob("id_rsa"))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600  # the source's mode, not the umask's 0644
    assert files["environ"]["rule"] == "none" and any("under /proc" in r for r in files["environ"]["reasons"])
    assert not (store / "environ").exists()


def test_elf_sources_archive_no_secrets(tmp_path, env):
    h = hostile_workspace(tmp_path)
    binary = build_elf(h["ws"], h["ws"] / "target" / "release")
    store = tmp_path / "store"
    proc = symtool("publish", binary, "--store", store, "--sources", "--json", env=env, cwd=h["ws"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert_no_secrets(store, h["key"])
    sources = list((store / "debuginfod" / "buildid").glob("*/source"))
    assert len(sources) == 1
    archived = sorted("/" + p.relative_to(sources[0]).as_posix() for p in sources[0].rglob("*") if p.is_file())
    assert archived == [str(h["ws"] / "src" / "honest.c"), str(h["ws"] / "src" / "main.c")]
    warnings = "\n".join(report["warnings"])
    assert "/proc/self/environ not archived: under /proc" in warnings
    assert f"{h['key']} not archived: outside" in warnings
    assert "key_link.c not archived: outside" in warnings and "pipe.c not archived: a FIFO" in warnings


# -- 2. a store owner's symlinks never take a write outside the store --------------------------------

def test_symlinked_debuginfod_dir_gets_no_links_or_sources(tmp_path, env):
    h = hostile_workspace(tmp_path)
    binary = build_elf(h["ws"], h["ws"] / "target" / "release")
    store, outside = tmp_path / "store", tmp_path / "outside"
    store.mkdir()
    outside.mkdir()
    (store / "debuginfod").symlink_to(outside)
    for extra in ((), ("--sources",)):
        proc = symtool("publish", binary, "--store", store, *extra, "--json", env=env, cwd=h["ws"], timeout=120)
        assert proc.returncode == 1, proc.stdout + proc.stderr  # committed, but the view was refused
        report = json.loads(proc.stdout)
        assert any("debuginfod is a symbolic link" in w for w in report["warnings"]), report["warnings"]
        assert list(outside.iterdir()) == []


def test_symlinked_source_dir_inside_the_view_is_refused(tmp_path, env):
    h = hostile_workspace(tmp_path)
    binary = build_elf(h["ws"], h["ws"] / "target" / "release")
    from symtool.formats.elf import read_elf

    bid = read_elf(binary).index
    store, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    (store / "debuginfod" / "buildid" / bid).mkdir(parents=True)
    (store / "debuginfod" / "buildid" / bid / "source").symlink_to(outside)
    proc = symtool("publish", binary, "--store", store, "--sources", "--json", env=env, cwd=h["ws"], timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert any("source is a symbolic link" in w for w in json.loads(proc.stdout)["warnings"])
    assert list(outside.iterdir()) == []


def test_symlinked_archive_name_dir_is_refused(tmp_path, env):
    """srcindex's archive (publish --source-index --sources): a symlinked <name>/ is refused before anything is written."""
    h = hostile_workspace(tmp_path)
    pdb = build_pdb(h["ws"], h["ws"] / "target" / "release")
    before = pdb.read_bytes()
    store, outside = tmp_path / "store", tmp_path / "outside"
    store.mkdir()
    outside.mkdir()
    (store / "honest.c").symlink_to(outside)
    proc = symtool("publish", pdb.parent, "--store", store, "--source-index", "--sources", env=env, cwd=h["ws"],
                   timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "honest.c is a symbolic link" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert list(outside.iterdir()) == [] and pdb.read_bytes() == before

"""``symtool srcindex``: mapping rules, the written streams, and retrieval of
every URL from a real nginx serving a clone of the git repository at the
commit and the source archive of a store."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_runner import symtool_in_process
from symtool.formats.pdb import SourceFile, iter_source_files, open_msf, read_pdb
from symtool.srcindex.git import parse_remote, raw_url
from symtool.srcindex.rules import IndexConfig, resolve
from symtool.srcindex.streams import parse_srcsrv, srcsrv_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def need(*tools: str) -> None:
    for t in tools:
        if not shutil.which(t) and not Path(t).exists():
            pytest.skip(f"{t} not installed")


def export(pdb: Path, name: str, tmp: Path) -> bytes:
    out = tmp / f"export-{name}"
    proc = subprocess.run(["llvm-pdbutil", "export", f"--stream={name}", f"--out={out}", str(pdb)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


# -- rules ---------------------------------------------------------------------------------------

def test_std_paths_both_separators():
    commit = "90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf"
    cfg = IndexConfig()
    for path in (f"/rustc/{commit}/library/core/src/ptr/mod.rs", f"\\rustc\\{commit}\\library\\core\\src\\ptr\\mod.rs"):
        r = resolve(SourceFile(path, "sha256", "00" * 32), cfg)
        assert r.rule == "std"
        assert r.target == f"https://raw.githubusercontent.com/rust-lang/rust/{commit}/library/core/src/ptr/mod.rs"


def test_map_prefix_case_and_separator_insensitive(tmp_path):
    cfg = IndexConfig(maps=[("D:/a/proj/", "https://example.com/raw/abc/")])
    r = resolve(SourceFile("d:\\A\\proj\\src\\main file.rs"), cfg)
    assert (r.rule, r.target) == ("map", "https://example.com/raw/abc/src/main%20file.rs")
    # A prefix matches whole path components only.
    assert resolve(SourceFile("d:\\a\\projector\\x.rs"), IndexConfig(maps=[("d:\\a\\proj", "https://e/")])).rule == "none"
    # A local file whose content differs from the PDB's checksum is never mapped.
    f = tmp_path / "x.rs"
    f.write_bytes(b"fn main() {}\n")
    cfg = IndexConfig(maps=[(str(tmp_path), "https://e/")])
    good = hashlib.sha256(b"fn main() {}\n").hexdigest()
    assert resolve(SourceFile(str(f), "sha256", good), cfg).rule == "map"
    bad = resolve(SourceFile(str(f), "sha256", "11" * 32), cfg)
    assert bad.rule == "none" and "differs" in bad.reasons[0]


def test_registry_crate_rule(tmp_path):
    home = tmp_path / "cargo"
    crate = home / "registry" / "src" / "index.crates.io-6f17d22bba15001f" / "zmq-0.10.0"
    (crate / "src").mkdir(parents=True)
    body = b"pub fn f() {}\n"
    (crate / "src" / "lib.rs").write_bytes(body)
    (crate / "Cargo.toml").write_text('[package]\nname = "zmq"\nrepository = "https://github.com/erickt/rust-zmq"\n')
    (crate / ".cargo_vcs_info.json").write_text(json.dumps({"git": {"sha1": "a" * 40}, "path_in_vcs": ""}))
    ci_path = "C:\\Users\\ci\\.cargo\\registry\\src\\index.crates.io-6f17d22bba15001f\\zmq-0.10.0\\src\\lib.rs"
    cfg = IndexConfig(cargo_home=home)
    r = resolve(SourceFile(ci_path, "sha256", hashlib.sha256(body).hexdigest()), cfg)
    assert (r.rule, r.target) == ("crate", f"https://raw.githubusercontent.com/erickt/rust-zmq/{'a' * 40}/src/lib.rs")
    # The published crate differs from what was compiled: archive (if any), never the repository.
    r = resolve(SourceFile(ci_path, "sha256", "22" * 32), cfg)
    assert r.rule == "none" and r.target is None
    # No vcs info: the archive takes the local copy.
    (crate / ".cargo_vcs_info.json").unlink()
    r = resolve(SourceFile(ci_path, "sha256", hashlib.sha256(body).hexdigest()),
                IndexConfig(cargo_home=home, archive_url="https://sym.example/store"))
    assert r.rule == "archive" and r.target.startswith("https://sym.example/store/lib.rs/")


def _microsofts(path: str) -> bool:
    """Files of Visual Studio, the Windows SDK, the CRT's build trees or link.exe's temp files, by plain
    substrings of the paths as these two PDBs record them (the oracle for the toolchain rule)."""
    low = path.lower()
    return any(part in low for part in ("\\microsoft visual studio\\", "\\windows kits\\", "\\vctools\\",
                                        "\\appdata\\local\\temp\\1\\lnk{")) or low.startswith("f:\\dd\\")


@pytest.mark.parametrize("pdb, ours, n_ours", [
    ("dump_syms_regtest64.pdb", "c:\\cygwin64\\wip\\breakpad-depot\\", 1),
    ("crash.pdb", "c:\\projects\\breakpad-tools\\", 17),
])
def test_msvc_toolchain_files_are_counted_not_findings(pdb, ours, n_ours, tmp_path):
    """Issue 26, item 6: real MSVC builds (Breakpad's and symbolic's fixtures) name hundreds of files
    of Visual Studio, the Windows SDK and the CRT's build machines.  They are "toolchain (not
    ours)": counted and listed in --json, never the reason for exit 1; the project's own files are."""
    import sys

    shutil.copy(FIXTURES / "pe-pdb" / pdb, tmp_path / pdb)

    def srcindex(*args):
        return symtool_in_process("srcindex", "--dry-run", "--json", *args, str(tmp_path / pdb), cwd=tmp_path,
                                  timeout=120)

    proc = srcindex()
    assert proc.returncode == 1, proc.stderr  # the project's own files have no rule yet
    (plan,) = json.loads(proc.stdout)
    toolchain = sorted(f["path"] for f in plan["files"] if f["rule"] == "toolchain")
    assert toolchain == sorted(f["path"] for f in plan["files"] if _microsofts(f["path"]))
    assert len(toolchain) > 100 and plan["counts"]["toolchain"] == len(toolchain)
    assert all(f["reasons"][0].startswith("toolchain (not ours): ") for f in plan["files"] if f["rule"] == "toolchain")
    assert plan["counts"]["none"] == n_ours
    assert all(f["path"].lower().startswith(ours) for f in plan["files"] if f["rule"] == "none")

    proc = srcindex("--map", f"{ours}=https://src.example.com/proj/")
    assert proc.returncode == 0, proc.stderr  # everything of ours is mapped: no finding left
    (plan,) = json.loads(proc.stdout)
    assert plan["counts"]["map"] == n_ours and plan["counts"]["none"] == 0
    assert plan["counts"]["toolchain"] == len(toolchain)


def test_remote_parsing_and_forges():
    assert parse_remote("git@github.com:me/proj.git") == ("github.com", "me/proj")
    assert parse_remote("https://gitlab.example.com/g/sub/proj") == ("gitlab.example.com", "g/sub/proj")
    assert raw_url("https://github.com/me/proj.git", "c" * 40, "src/a b.rs") == \
        f"https://raw.githubusercontent.com/me/proj/{'c' * 40}/src/a%20b.rs"
    assert raw_url("git@gitlab.com:g/p.git", "c" * 40, "x.rs") == f"https://gitlab.com/g/p/-/raw/{'c' * 40}/x.rs"
    assert raw_url("ssh://git@host/p", "c" * 40, "x.rs", template="https://{host}/{repo}/{commit}/{path}") == \
        f"https://host/p/{'c' * 40}/x.rs"


def test_srcsrv_text_format():
    text = srcsrv_text([("c:\\src\\100%.rs", "https://h/100%25.rs")])
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    assert "VERSION=2\r\n" in text and "SRCSRVTRG=%var2%\r\n" in text and "SRCSRVCMD" not in text
    assert "c:\\src\\100%%.rs*https://h/100%%25.rs\r\n" in text
    assert parse_srcsrv(text) == [("c:\\src\\100%.rs", "https://h/100%25.rs")]


# -- end to end: clang + lld-link PDB of a git workspace, served by nginx ------------------------

class Nginx:
    def __init__(self, root: Path, work: Path):
        need("/usr/sbin/nginx")
        for d in ("logs", "tmp"):
            (work / d).mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = work / "nginx.conf"
        t = work / "tmp"
        conf.write_text(f"""
master_process off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/logs/error.log;
events {{ worker_connections 32; }}
http {{
  access_log off; client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t};
  uwsgi_temp_path {t}; scgi_temp_path {t}; default_type application/octet-stream;
  server {{ listen 127.0.0.1:{self.port}; root {root}; location / {{ }} }}
}}
""")
        self.proc = subprocess.Popen(["/usr/sbin/nginx", "-e", str(work / "logs" / "error.log"), "-p", str(work),
                                      "-c", str(conf), "-g", "daemon off;"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("nginx did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@e", GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def build_pdb(ws: Path, sources: list[Path], out: Path) -> Path:
    objs = []
    for src in sources:
        obj = out / (src.stem + ".obj")
        subprocess.run(["clang", "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True, cwd=ws)
        objs.append(str(obj))
    subprocess.run(["lld-link", "/debug", "/nodefaultlib", "/entry:main", "/subsystem:console",
                    f"/out:{out / 'app.exe'}", f"/pdb:{out / 'app.pdb'}", *objs], check=True, capture_output=True)
    return out / "app.pdb"


@pytest.fixture
def git_workspace(tmp_path):
    need("clang", "lld-link", "git", "llvm-pdbutil")
    served = tmp_path / "www"
    served.mkdir()
    server = Nginx(served, tmp_path / "nginx")
    bare = tmp_path / "upstream.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    ws = tmp_path / "ws"
    git(tmp_path, "clone", "-q", str(bare), str(ws))
    (ws / "src").mkdir()
    (ws / "Cargo.toml").write_text(
        '[workspace]\nmembers = []\n[workspace.metadata.symtool.srcindex]\n'
        f'url-template = "{server.base}/git/{{commit}}/{{path}}"\n')
    (ws / "src" / "util.h").write_text("static inline int twice(int x) {\n  return 2 * x;\n}\n")
    (ws / "src" / "main.c").write_text('#include "util.h"\nint helper(int);\nint main(void) {\n'
                                       "  return twice(helper(3));\n}\n")
    (ws / "src" / "dirty.c").write_text("int dirty(int x) {\n  return x + 1;\n}\n")
    git(ws, "add", ".")
    git(ws, "commit", "-qm", "init")
    git(ws, "push", "-q", "origin", "HEAD:main")
    git(ws, "fetch", "-q")
    # After the commit: a modified file and an untracked (generated) one -> the archive.
    (ws / "src" / "dirty.c").write_text("int dirty(int x) {\n  return x + 2;\n}\n")
    (ws / "src" / "gen.c").write_text("int helper(int x) {\n  return x * 7;\n}\n")
    # A vendored C library outside the repository, mapped with --map.
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "v.c").write_text("int vend(int x) {\n  return x - 1;\n}\n")
    out = tmp_path / "out"
    out.mkdir()
    pdb = build_pdb(ws, [ws / "src" / "main.c", ws / "src" / "dirty.c", ws / "src" / "gen.c", vendor / "v.c"], out)
    head = git(ws, "rev-parse", "HEAD").strip()
    # What nginx serves: the repository at the commit, the vendored tree, the store.
    git(tmp_path, "clone", "-q", str(bare), str(served / "git" / head))
    git(served / "git" / head, "checkout", "-q", head)
    shutil.copytree(vendor, served / "vendor")
    store = served / "store"
    store.mkdir()
    yield {"ws": ws, "pdb": pdb, "head": head, "server": server, "store": store, "vendor": vendor, "tmp": tmp_path}
    server.stop()


def run_cli(args: list[str], cwd: Path):
    from symtool.cli import app

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args)
    finally:
        os.chdir(old)


def test_every_url_serves_the_pdbs_bytes(git_workspace, tmp_path):
    g = git_workspace
    pdb, server = g["pdb"], g["server"]
    before = read_pdb(pdb)
    res = run_cli(["srcindex", str(pdb), "--map", f"{g['vendor']}={server.base}/vendor/",
                   "--sources", str(g["store"]), "--sources-url", f"{server.base}/store", "--json"], g["ws"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)[0]
    rules = {Path(f["path"]).name: f["rule"] for f in report["files"]}
    assert rules == {"main.c": "workspace", "util.h": "workspace", "dirty.c": "archive", "gen.c": "archive",
                     "v.c": "map"}
    reasons = {Path(f["path"]).name: f["reasons"] for f in report["files"]}
    assert any("modified or untracked" in r for r in reasons["dirty.c"])
    after = read_pdb(pdb)
    assert (after.index, after.age, after.guid) == (before.index, before.age, before.guid)

    srcsrv = export(pdb, "srcsrv", tmp_path).decode()
    entries = parse_srcsrv(srcsrv)
    assert len(entries) == 5
    sourcelink = json.loads(export(pdb, "sourcelink", tmp_path))
    assert sourcelink["documents"] == dict(entries)
    f, msf = open_msf(pdb)
    with f:
        checksums = {sf.path: sf for sf in iter_source_files(msf)}
    for path, url in entries:
        sf = checksums[path]
        assert sf.algorithm
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
        assert hashlib.new(sf.algorithm, body).hexdigest() == sf.digest, url
    # The archive holds the *built* content of the modified file, not the committed one.
    dirty = [u for p, u in entries if p.endswith("dirty.c")][0]
    assert b"x + 2" in urllib.request.urlopen(dirty, timeout=10).read()

    # id --json reports the index.
    res = run_cli(["id", "--json", str(pdb)], g["ws"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["source_index"] == {"srcsrv": 5, "sourcelink": 5}


def test_changed_after_build_is_not_indexed_and_unpushed_commit_goes_to_archive(git_workspace, tmp_path):
    g = git_workspace
    ws, pdb = g["ws"], g["pdb"]
    (ws / "src" / "gen.c").write_text("int helper(int x) {\n  return x * 8;\n}\n")  # differs from the build
    git(ws, "commit", "-qam", "local only")  # HEAD is now on no remote branch
    res = run_cli(["srcindex", str(pdb), "--sources", str(g["store"]), "--json"], ws)
    assert res.exit_code == 1, res.output  # gen.c can be served from nowhere
    files = {Path(f["path"]).name: f for f in json.loads(res.stdout)[0]["files"]}
    assert files["gen.c"]["rule"] == "none" and files["gen.c"]["target"] is None
    assert files["main.c"]["rule"] == "archive"
    assert any("no remote branch" in r for r in files["main.c"]["reasons"])
    assert files["dirty.c"]["rule"] == "archive"  # the local copy still is what was built
    text = export(pdb, "srcsrv", tmp_path).decode()
    assert "gen.c" not in text


def test_corrupt_pdb_refused_exit_2_untouched(tmp_path):
    src = (FIXTURES / "symstore-exe" / "inputs" / "dummyprog.pdb").read_bytes()
    bad = bytearray(src)
    bad[44:48] = (10 ** 6).to_bytes(4, "little")  # directory size past the file
    p = tmp_path / "bad.pdb"
    p.write_bytes(bytes(bad))
    res = run_cli(["srcindex", str(p), "--map", "c:\\=https://e/"], tmp_path)
    assert res.exit_code == 2
    assert p.read_bytes() == bytes(bad)
    assert os.listdir(tmp_path) == ["bad.pdb"]


def test_in_place_cli_indexes_the_same_file(tmp_path):
    """--in-place: the PDB's own inode gains the streams (no renamed copy); a corrupt PDB is still refused."""
    p = tmp_path / "crash.pdb"
    shutil.copyfile(FIXTURES / "pe-pdb" / "crash.pdb", p)
    inode = p.stat().st_ino
    res = run_cli(["srcindex", str(p), "--in-place", "--map", "c:\\=https://e.invalid/", "--json"], tmp_path)
    assert res.exit_code in (0, 1), res.output
    out = json.loads(res.stdout)[0]
    assert out["written"] and out["write_mode"] == "in-place"
    assert p.stat().st_ino == inode
    text = export(p, "srcsrv", tmp_path).decode()
    assert "https://e.invalid/" in text
    bad = bytearray((FIXTURES / "symstore-exe" / "inputs" / "dummyprog.pdb").read_bytes())
    bad[44:48] = (10 ** 6).to_bytes(4, "little")
    q = tmp_path / "bad.pdb"
    q.write_bytes(bytes(bad))
    res = run_cli(["srcindex", str(q), "--in-place", "--map", "c:\\=https://e/"], tmp_path)
    assert res.exit_code == 2 and q.read_bytes() == bytes(bad)


def test_check_reports_and_publish_indexes_before_copying(git_workspace, tmp_path):
    g = git_workspace
    ws = g["ws"]
    rel = ws / "target" / "release"
    rel.mkdir(parents=True)
    shutil.copyfile(g["pdb"], rel / "app.pdb")
    shutil.copyfile(g["pdb"].with_suffix(".exe"), rel / "app.exe")
    res = run_cli(["check", "--source-index", "--json", str(ws)], ws)
    assert res.exit_code == 1, res.output  # v.c has no rule without --map, and no archive is configured
    totals = json.loads(res.stdout)["source_index"]["totals"]
    assert totals["workspace"] == 2 and totals["none"] == 3
    before = (rel / "app.pdb").read_bytes()
    store = tmp_path / "pubstore"
    store.mkdir()
    res = run_cli(["publish", str(rel), "--store", str(store), "--source-index", "--sources", "--json"], ws)
    assert res.exit_code == 0, res.output
    assert (rel / "app.pdb").read_bytes() != before  # indexed in place, then published
    info = read_pdb(rel / "app.pdb")
    stored = store / "app.pdb" / info.index / "app.pdb"
    assert stored.read_bytes() == (rel / "app.pdb").read_bytes()
    entries = dict(parse_srcsrv(export(stored, "srcsrv", tmp_path).decode()))
    archived = [t for t in entries.values() if not t.startswith("http")]
    assert archived and all(Path(t).is_file() and Path(t).is_relative_to(store) for t in archived)
    res = run_cli(["id", "--json", str(stored)], ws)
    assert json.loads(res.stdout)[0]["source_index"]["srcsrv"] == len(entries)

"""publish / fetch / store for ELF, .dwp and Mach-O files, checked by the clients people use:
elfutils' debuginfod-find against a real nginx, elfutils' own `debuginfod -F` as the reference
server, gdb (debuginfod download, .dwp placed by `symtool fetch`, inlined frames),
llvm-symbolizer --dwp, and lldb-19 with the rebuilt .dSYM."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import need_tool
from nginx_server import free_port
from symtool.formats.elf import read_elf
from symtool.formats.macho import dsym_dwarf_files, read_macho


def symtool(*args, env=None) -> subprocess.CompletedProcess:
    return symtool_in_process(*map(str, args), env=env, timeout=300)


def published(store: Path, *paths, env=None) -> dict:
    proc = symtool("publish", "--json", "--store", store, *paths, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def crash_stack(linux_builds):
    """samples/ at full-debug for Linux, including crash-deep (an inlined middle frame): the session's build."""
    return linux_builds.dwarf4


def stripped_copy(binary: Path, where: Path) -> Path:
    """What is shipped: the binary without its DWARF (the build-id note stays)."""
    where.mkdir(parents=True, exist_ok=True)
    out = where / binary.name
    subprocess.run([need_tool("llvm-objcopy"), "--strip-debug", str(binary), str(out)], check=True)
    assert read_elf(out).index == read_elf(binary).index and not read_elf(out).has_dwarf
    return out


def debuginfod_env(env: dict, url: str, cache: Path) -> dict:
    return dict(env, DEBUGINFOD_URLS=url, DEBUGINFOD_CACHE_PATH=str(cache), DEBUGINFOD_TIMEOUT="20")


# -- publish + debuginfod-find through nginx --------------------------------------------------

def test_publish_layout_served_to_debuginfod_find(linux_builds, nginx, env, tmp_path):
    find = need_tool("debuginfod-find")
    build = linux_builds.dwarf4
    store = nginx.www / f"elf-{tmp_path.name}"
    report = published(store, build.out, env=env)
    bid = read_elf(build.bin()).index
    keys = {f["key"] for f in report["files"]}
    assert {f"crash-me/elf-buildid-{bid}/crash-me", f"_.debug/elf-buildid-sym-{bid}/_.debug",
            f"crash-me.dwp/elf-buildid-{bid}/crash-me.dwp"} <= keys
    assert report["summary"]["added"] == len(report["files"]) and report["transaction"] == "0000000001"
    denv = debuginfod_env(env, nginx.url(f"{store.name}/debuginfod"), tmp_path / "dcache")
    for artifact in ("executable", "debuginfo"):
        proc = subprocess.run([find, artifact, bid], capture_output=True, text=True, env=denv, timeout=60)
        assert proc.returncode == 0, proc.stderr
        got = Path(proc.stdout.strip())
        assert got == tmp_path / "dcache" / bid / artifact
        assert got.read_bytes() == build.bin().read_bytes()
    # SSQP keys are plain files over HTTP too.
    with urllib.request.urlopen(nginx.url(f"{store.name}/crash-me.dwp/elf-buildid-{bid}/crash-me.dwp")) as r:
        assert r.read() == build.dwp().read_bytes()
    proc = subprocess.run([find, "debuginfo", "00" * 20], capture_output=True, text=True, env=denv, timeout=60)
    assert proc.returncode != 0  # an unknown build-id: 404, not a wrong file
    # Republishing the same build: present, no new files.
    again = published(store, build.out, env=env)
    assert again["summary"]["present"] == len(again["files"])


def test_elfutils_debuginfod_agrees_with_our_keys(linux_builds, nginx, env, tmp_path):
    """elfutils' own server indexing the build (-F) serves, for every build-id, what our store serves."""
    server, find = need_tool("debuginfod"), need_tool("debuginfod-find")
    build = linux_builds.dwarf5
    src = tmp_path / "scan"
    src.mkdir()
    for name in ("crash-me", "hello"):
        shutil.copy(build.bin(name), src / name)
    store = nginx.www / f"ref-{tmp_path.name}"
    published(store, src, env=env)
    port = free_port()
    proc = subprocess.Popen([server, "-F", "-d", str(tmp_path / "db.sqlite"), "-p", str(port), str(src)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for name in ("crash-me", "hello"):
            bid = read_elf(src / name).index
            for artifact in ("executable", "debuginfo"):
                ref, ours = (tmp_path / f"ref-{name}-{artifact}"), (tmp_path / f"ours-{name}-{artifact}")
                ref.mkdir()  # the client makes its cache directory, not the ones above it
                deadline = time.monotonic() + 60
                attempt = 0
                while True:  # the server scans in the background; a miss is cached: a new cache each try
                    attempt += 1
                    r = subprocess.run([find, artifact, bid], capture_output=True, text=True, timeout=60,
                                       env=debuginfod_env(env, f"http://127.0.0.1:{port}", ref / str(attempt)))
                    if r.returncode == 0 or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                assert r.returncode == 0, r.stderr
                o = subprocess.run([find, artifact, bid], capture_output=True, text=True, timeout=60,
                                   env=debuginfod_env(env, nginx.url(f"{store.name}/debuginfod"), ours))
                assert o.returncode == 0, o.stderr
                assert Path(o.stdout.strip()).read_bytes() == Path(r.stdout.strip()).read_bytes()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- gdb, llvm-symbolizer: the stripped binary, debuginfo by debuginfod, the .dwp by symtool fetch ---

def gdb_backtrace(binary: Path, env: dict) -> str:
    gdb = need_tool("gdb")
    proc = subprocess.run([gdb, "-nx", "-batch", "-iex", "set debuginfod enabled on", "-ex", "run", "-ex", "bt",
                           str(binary)], capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)
    return proc.stdout + proc.stderr


def test_gdb_downloads_debuginfo_and_reads_the_fetched_dwp(crash_stack, nginx, env, tmp_path):
    store = nginx.www / f"gdb-{tmp_path.name}"
    published(store, crash_stack.out, env=env)
    shipped = stripped_copy(crash_stack.bin("crash-deep"), tmp_path / "shipped")
    bid = read_elf(shipped).index
    denv = debuginfod_env(env, nginx.url(f"{store.name}/debuginfod"), tmp_path / "dcache")
    before = gdb_backtrace(shipped, denv)
    assert "Downloading" in before and (tmp_path / "dcache" / bid / "debuginfo").is_file()
    assert "Could not find DWO CU" in before  # skeletons only: the units are in the .dwp
    proc = symtool("fetch", "--exe", shipped, "--server", nginx.url(store.name), "--cache", tmp_path / "cache",
                   env=denv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dwp = tmp_path / "dcache" / bid / "crash-deep.dwp"
    assert dwp.read_bytes() == crash_stack.dwp("crash-deep").read_bytes()
    after = gdb_backtrace(shipped, denv)
    assert "Could not find DWO CU" not in after
    frames = re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\) at (\S+):(\d+)$", after, re.M)
    names = [f[0] for f in frames]
    assert names[:5] == ["minicore::poke", "crash_deep::level3", "crash_deep::middle", "crash_deep::level2",
                         "crash_deep::level1"], after
    assert all(f[1].endswith((".rs",)) and int(f[2]) > 0 for f in frames)
    # llvm-symbolizer with the same .dwp names the same frames, the inlined one included.
    ret = int(re.search(r"^#2\s+(0x[0-9a-f]+) in crash_deep::middle", after, re.M).group(1), 16)
    sym = subprocess.run([need_tool("llvm-symbolizer"), f"--obj={crash_stack.bin('crash-deep')}", f"--dwp={dwp}",
                          "--inlining", "--output-style=JSON", hex(ret - 1)], capture_output=True, text=True,
                         check=True)
    got = [f["FunctionName"] for f in json.loads(sym.stdout)[0]["Symbol"]]
    assert got == ["crash_deep::middle", "crash_deep::level2"], sym.stdout
    # LLVM's own debuginfod client (llvm-symbolizer 19: Debian 12's llvm-19) on the stripped binary.
    sym19 = subprocess.run([need_tool("llvm-symbolizer-19"), "--debuginfod", f"--obj={shipped}", f"--dwp={dwp}",
                            "--inlining", "--output-style=JSON", hex(ret - 1)], capture_output=True, text=True,
                           check=True, env=dict(denv, DEBUGINFOD_CACHE_PATH=str(tmp_path / "llvm-cache")))
    frames19 = json.loads(sym19.stdout)[0]["Symbol"]
    assert [f["FunctionName"] for f in frames19] == got, sym19.stdout
    assert [(Path(f["FileName"]).name, f["Line"]) for f in frames19] == \
        [(Path(f["FileName"]).name, f["Line"]) for f in json.loads(sym.stdout)[0]["Symbol"]]
    assert any(tmp_path.joinpath("llvm-cache").iterdir())  # it did download


def test_fetch_refuses_a_dwp_from_another_build(linux_builds, tmp_path, env):
    """A store whose .dwp entry holds another build's package: fetch does not place it for gdb."""
    store = tmp_path / "store"
    build = linux_builds.dwarf4
    published(store, build.out, env=env)
    bid = read_elf(build.bin()).index
    entry = store / f"crash-me.dwp/elf-buildid-{bid}/crash-me.dwp"
    entry.write_bytes(linux_builds.dwarf5.dwp().read_bytes())
    shipped = stripped_copy(build.bin(), tmp_path / "shipped")
    denv = dict(env, DEBUGINFOD_CACHE_PATH=str(tmp_path / "dcache"))
    proc = symtool("fetch", "--exe", shipped, "--server", store, "--cache", tmp_path / "cache", env=denv)
    assert proc.returncode == 2 and "not placed" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "dcache" / bid / "crash-me.dwp").exists()


# -- Mach-O: publish, fetch, a rebuilt .dSYM, lldb ---------------------------------------------

def lldb_add(binary: Path, dwarf: Path) -> str:
    lldb = need_tool("lldb-19")
    proc = subprocess.run([lldb, "--batch", "-o", f"target create {binary}", "-o", f"target symbols add {dwarf}",
                           "-o", "image lookup -r -n crash_now"], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    return proc.stdout + proc.stderr


def test_fetch_rebuilds_a_dsym_lldb_loads(mac_builds, tmp_path, env):
    store = tmp_path / "store"
    report = published(store, mac_builds.arm64.out, mac_builds.x86_64.out, env=env)
    for build in (mac_builds.arm64, mac_builds.x86_64):
        uuid = read_macho(build.bin()).index
        assert f"_.dwarf/mach-uuid-sym-{uuid}/_.dwarf" in {f["key"] for f in report["files"]}
        assert f"crash-me/mach-uuid-{uuid}/crash-me" in {f["key"] for f in report["files"]}
    shipped = tmp_path / "shipped" / "crash-me"
    shipped.parent.mkdir()
    shutil.copy(mac_builds.arm64.bin(), shipped)
    proc = symtool("fetch", "--exe", shipped, "--server", store, "--cache", tmp_path / "cache", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bundle = shipped.parent / "crash-me.dSYM"
    assert (bundle / "Contents" / "Info.plist").is_file()
    dwarf = bundle / "Contents" / "Resources" / "DWARF" / "crash-me"
    assert dsym_dwarf_files(bundle) == [dwarf]
    assert symtool("verify", shipped, env=env).returncode == 0
    out = lldb_add(shipped, dwarf)
    assert "has been added to" in out and "crash_me::crash_now at main.rs:" in out, out
    # lldb itself rejects the dSYM of another build: so does verify.
    other = dsym_dwarf_files(mac_builds.other_arm64.dsym())[0]
    assert "does not match any existing module" in lldb_add(shipped, other)
    assert symtool("verify", shipped, mac_builds.other_arm64.dsym(), env=env).returncode == 1


def test_publish_refuses_a_dsym_of_another_build_named_with_its_binary(mac_builds, tmp_path, env):
    """Issue 26, item 1, for Mach-O: a binary and a .dSYM named together are paired as verify pairs
    them; the dSYM of another build (verify: mismatch; lldb refuses it too, above) is refused with
    its binary, nothing stored; the right one is published."""
    binary, other = mac_builds.arm64.bin(), mac_builds.other_arm64.dsym()
    assert symtool("verify", binary, other, env=env).returncode == 1  # the oracle
    store = tmp_path / "store"
    proc = symtool("publish", binary, other, "--store", store, "--json", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert {f["status"] for f in out["files"]} == {"refused"} and len(out["files"]) == 2
    assert all(f["reason"].startswith("mismatched pair: ") for f in out["files"])
    assert out["transaction"] is None and not store.exists()
    proc = symtool("publish", binary, mac_builds.arm64.dsym(), "--store", store, "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {f["status"] for f in json.loads(proc.stdout)["files"]} == {"added"}


# -- store administration ------------------------------------------------------------------------

def test_delete_prune_verify_cover_native_entries(linux_builds, mac_builds, tmp_path, env):
    store = tmp_path / "store"
    published(store, linux_builds.dwarf4.out, env=env)
    published(store, linux_builds.dwarf5.out, mac_builds.arm64.out, env=env)
    bid4 = read_elf(linux_builds.dwarf4.bin()).index
    links = store / "debuginfod" / "buildid" / bid4
    assert sorted(p.name for p in links.iterdir()) == ["debuginfo", "dwp", "executable"]
    assert all(p.is_symlink() and p.exists() for p in links.iterdir())
    proc = symtool("store", "verify", "--store", store, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A wrong file under a key is found by identity.
    wrong = store / f"_.debug/elf-buildid-sym-{bid4}/_.debug"
    saved = wrong.read_bytes()
    wrong.write_bytes(linux_builds.dwarf5.bin().read_bytes())
    proc = symtool("store", "verify", "--store", store, env=env)
    assert proc.returncode != 0 and "identity" in proc.stdout + proc.stderr
    wrong.write_bytes(saved)
    proc = symtool("store", "delete", "--store", store, "1", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not links.exists()  # the view follows the entries
    bid5 = read_elf(linux_builds.dwarf5.bin()).index
    assert (store / "debuginfod" / "buildid" / bid5 / "executable").exists()
    proc = symtool("store", "prune", "--store", store, "--keep-last", "0", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not any((store / "debuginfod" / "buildid").iterdir())
    assert symtool("store", "verify", "--store", store, env=env).returncode == 0


def test_publish_refuses_what_cannot_be_keyed(linux_builds, tmp_path, env):
    store = tmp_path / "store"
    proc = symtool("publish", "--json", "--store", store, linux_builds.dwarf4.dwp(), env=env)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["files"][0]["status"] == "refused"
    assert "publish it with its binary" in report["files"][0]["reason"]
    proc = symtool("publish", "--json", "--store", store, linux_builds.no_build_id.bin(), env=env)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["files"][0]["status"] == "refused"
    assert "build-id" in report["files"][0]["reason"]
    # The wrong .dwp beside a binary is not published under that binary's key.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(linux_builds.dwarf4.bin(), mixed / "crash-me")
    shutil.copy(linux_builds.dwarf5.dwp(), mixed / "crash-me.dwp")
    proc = symtool("publish", "--json", "--store", store, mixed / "crash-me", mixed / "crash-me.dwp", env=env)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert {f["status"] for f in report["files"] if f["path"].endswith(".dwp")} == {"refused"}


def test_two_tier_store_and_file_urls(linux_builds, tmp_path, env):
    """The debuginfod view of a two-tier store (na/name/INDEX/name) works too, read through file://;
    --compress leaves ELF files plain (no debuginfod client reads a CAB)."""
    find = need_tool("debuginfod-find")
    store = tmp_path / "store"
    assert symtool("store", "init", "--store", store, "--two-tier", env=env).returncode == 0
    proc = symtool("publish", "--json", "--compress", "--store", store, linux_builds.dwarf5.out, env=env)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert {f["stored_as"] for f in report["files"]} == {"plain"}
    assert any("stored plain" in n for n in report["notes"])
    bid = read_elf(linux_builds.dwarf5.bin()).index
    assert (store / "cr" / "crash-me" / f"elf-buildid-{bid}" / "crash-me").is_file()
    dcache = tmp_path / "dcache"
    for artifact in ("executable", "debuginfo"):
        r = subprocess.run([find, artifact, bid], capture_output=True, text=True, timeout=60,
                           env=debuginfod_env(env, f"file://{store}/debuginfod", dcache))
        assert r.returncode == 0, r.stderr
        assert Path(r.stdout.strip()).read_bytes() == linux_builds.dwarf5.bin().read_bytes()
    assert (store / "debuginfod" / "buildid" / bid / "dwp").resolve() == \
        (store / "cr" / "crash-me.dwp" / f"elf-buildid-{bid}" / "crash-me.dwp").resolve()


@pytest.mark.parametrize("backend", ["s3", "azure"])
def test_object_store_debuginfod_view(linux_builds, request, env, tmp_path, backend):
    """On object storage the debuginfod view is a copy of each ELF payload (no symlinks there):
    elfutils' debuginfod-find reads it from the public-read bucket; `store verify` checks it,
    and once the transaction is deleted, `verify --repair` removes the copies with the payloads."""
    import uuid

    from objstore_servers import client_env

    find = need_tool("debuginfod-find")
    server = request.getfixturevalue("seaweedfs" if backend == "s3" else "azurite")
    build = linux_builds.dwarf4
    prefix = f"dbg-{uuid.uuid4().hex[:10]}"
    loc = server.location(prefix)
    cenv = dict(client_env(server), HOME=str(tmp_path / "home"))
    report = published(loc, build.bin(), build.dwp(), env=cenv)
    bid = read_elf(build.bin()).index
    assert report["transaction"] == "0000000001"
    view = f"debuginfod/buildid/{bid}"
    objects = {o.key for o in server.backend(prefix).list("debuginfod/")}
    assert objects == {f"{view}/executable", f"{view}/debuginfo", f"{view}/dwp"}
    got = server.backend(prefix).get(f"{view}/dwp").data
    assert got == build.dwp().read_bytes()
    if backend == "s3":  # the anonymous, public-read bucket, as debuggers reach it
        denv = debuginfod_env(env, f"{server.public_url(prefix)}/debuginfod", tmp_path / "dcache")
        for artifact in ("executable", "debuginfo"):
            proc = subprocess.run([find, artifact, bid], capture_output=True, text=True, env=denv, timeout=60)
            assert proc.returncode == 0, proc.stderr
            assert Path(proc.stdout.strip()).read_bytes() == build.bin().read_bytes()
    proc = symtool("store", "verify", "--store", loc, "--json", env=cenv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A lost copy is a finding that --repair fixes.
    server.backend(prefix).delete(f"{view}/debuginfo")
    proc = symtool("store", "verify", "--store", loc, "--repair", "--json", env=cenv)
    assert "debuginfod-view" in proc.stdout, proc.stdout
    assert server.backend(prefix).get(f"{view}/debuginfo").data == build.bin().read_bytes()
    assert symtool("store", "delete", "1", "--store", loc, env=cenv).returncode == 0
    proc = symtool("store", "verify", "--store", loc, "--repair", env=dict(cenv, SYMTOOL_STORE_GRACE="0"))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert not list(server.backend(prefix).list("debuginfod/"))


def test_publish_sources_served_to_debuginfod_find_source(crash_stack, nginx, env, tmp_path):
    """`publish --sources` puts every local source file the binary's DWARF names under
    debuginfod/buildid/<id>/source/<path>: elfutils' debuginfod-find source gets them through
    nginx, byte for byte what elfutils' own server (-F, indexing the same binary) serves; the
    file list agrees with llvm-dwarfdump's; deleting the build removes them."""
    find, server = need_tool("debuginfod-find"), need_tool("debuginfod")
    binary = crash_stack.bin("crash-deep")
    bid = read_elf(binary).index
    store = nginx.www / f"src-{tmp_path.name}"
    # Run from outside the workspace: --sources-root admits it (srcindex/roots.py's allow-list).
    report = published(store, binary, crash_stack.dwp("crash-deep"), "--sources", "--sources-root",
                       crash_stack.target_dir.parent, env=env)
    assert any("archived" in n and "debuginfod" in n for n in report["notes"]), report["notes"]
    # Every source file gdb knows for the binary (its `info sources`) that exists here is archived.
    listing = subprocess.run([need_tool("gdb"), "-nx", "-batch", "-ex", "info sources", str(binary)],
                             capture_output=True, text=True, timeout=120).stdout
    local = sorted({Path(n.strip()) for line in listing.splitlines() if line.startswith("/") and not line.endswith(":")
                    for n in line.split(", ") if Path(n.strip()).is_file()})
    assert any(p.name == "crash-deep.rs" for p in local) and any(p.name == "lib.rs" for p in local), listing
    root = store / "debuginfod" / "buildid" / bid / "source"
    archived = sorted(Path("/") / p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert archived == local
    samples = local
    denv = debuginfod_env(env, nginx.url(f"{store.name}/debuginfod"), tmp_path / "dcache")
    port = free_port()
    scan = tmp_path / "scan"
    scan.mkdir()
    shutil.copy(binary, scan / binary.name)
    ref = subprocess.Popen([server, "-F", "-d", str(tmp_path / "db.sqlite"), "-p", str(port), str(scan)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for src in samples:
            ours = subprocess.run([find, "source", bid, str(src)], capture_output=True, text=True, env=denv,
                                  timeout=60)
            assert ours.returncode == 0, ours.stderr
            assert Path(ours.stdout.strip()).read_bytes() == src.read_bytes()
            deadline, attempt = time.monotonic() + 60, 0
            while True:  # the reference server scans in the background
                attempt += 1
                theirs = subprocess.run([find, "source", bid, str(src)], capture_output=True, text=True, timeout=60,
                                        env=debuginfod_env(env, f"http://127.0.0.1:{port}", tmp_path / f"r{attempt}"))
                if theirs.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert theirs.returncode == 0, theirs.stderr
            assert Path(theirs.stdout.strip()).read_bytes() == Path(ours.stdout.strip()).read_bytes()
    finally:
        ref.terminate()
        ref.wait(10)
    missing = subprocess.run([find, "source", bid, "/nonexistent/src/x.rs"], capture_output=True, text=True,
                             env=denv, timeout=60)
    assert missing.returncode != 0
    # Deleting the only transaction (then repair) takes the links and the sources with it.
    assert symtool("store", "delete", "1", "--store", store, env=env).returncode == 0
    assert not (store / "debuginfod" / "buildid" / bid).exists()

"""The MSF 7.00 named-stream writer against llvm-pdbutil, on real PDBs of every
page size: Microsoft's (crash.pdb, pdbstr's crash_with_srcsrv.pdb, 1 KB-page
dump_syms_regtest64.pdb, 512-byte-page dummy*.pdb), lld-link's (with extra
named streams) and the sample workspace's rust-lld PDBs."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from symtool.errors import FormatError
from symtool.formats.binio import BoundedReader
from symtool.formats.msf_write import NamedStreamTable, name_hash, read_layout, write_named_streams
from symtool.formats.pdb import Msf, read_pdb

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_PDBS = [
    FIXTURES / "pe-pdb" / "crash.pdb",
    FIXTURES / "pe-pdb" / "crash_with_srcsrv.pdb",
    FIXTURES / "pe-pdb" / "dump_syms_regtest64.pdb",
    FIXTURES / "symstore-exe" / "inputs" / "dummylib.pdb",
    FIXTURES / "symstore-exe" / "inputs" / "dummyprog.pdb",
    FIXTURES / "symstore-exe" / "inputs" / "bigage.pdb",
]
SRCSRV = (b"SRCSRV: ini ------------------------------------------------\r\nVERSION=2\r\n"
          b"SRCSRV: variables ------------------------------------------\r\nSRCSRVTRG=%var2%\r\n"
          b"SRCSRV: source files ---------------------------------------\r\n"
          b"c:\\src\\a.rs*https://example.invalid/a.rs\r\n"
          b"SRCSRV: end ------------------------------------------------\r\n")
SOURCELINK = b'{"documents":{"c:\\\\src\\\\*":"https://example.invalid/*"}}'


def pdbutil() -> str:
    tool = shutil.which("llvm-pdbutil")
    if not tool:
        pytest.skip("llvm-pdbutil not installed")
    return tool


def export(pdb: Path, name: str, tmp: Path) -> bytes:
    out = tmp / f"export-{name}"
    proc = subprocess.run([pdbutil(), "export", f"--stream={name}", f"--out={out}", str(pdb)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


def dump_ok(pdb: Path) -> str:
    proc = subprocess.run([pdbutil(), "dump", "--summary", "--streams", "--named-streams", str(pdb)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "error" not in proc.stderr.lower(), proc.stderr
    return proc.stdout


def all_streams(pdb: Path) -> list[bytes | None]:
    with open(pdb, "rb") as f:
        msf = Msf(BoundedReader(f, str(pdb)))
        return [msf.read_stream(i) if msf.stream_size(i) or msf._raw_size(i) != 0xFFFFFFFF else None
                for i in range(msf.num_streams)]


def fpm_invariant(pdb: Path) -> None:
    """Every page is free, referenced or reserved; no page is both, none used twice."""
    with open(pdb, "rb") as f:
        reader = BoundedReader(f, str(pdb))
        layout = read_layout(reader)  # raises on a page used twice or a reserved page used
        bs, n = layout.block_size, layout.num_blocks
        assert reader.size == n * bs
        fpm = b""
        i = 0
        while len(fpm) < -(-n // 8):
            fpm += reader.read((i * bs + layout.fpm_block) * bs, bs)
            i += 1
    referenced = set(layout.map_blocks) | set(layout.dir_blocks)
    for bl in layout.blocks:
        referenced |= set(bl)
    for b in range(n):
        free = bool(fpm[b // 8] >> (b % 8) & 1)
        reserved = b == 0 or b % bs in (1, 2)
        assert [free, b in referenced, reserved].count(True) == 1, (pdb, b, free, b in referenced, reserved)


def index_and_check(src: Path, tmp: Path, streams: dict[str, bytes], in_place: bool = False) -> dict:
    pdb = tmp / src.name
    shutil.copyfile(src, pdb)
    before_id = read_pdb(pdb)
    before = all_streams(pdb)
    inode = pdb.stat().st_ino
    report = write_named_streams(pdb, streams, in_place=in_place)
    # In place: the same file (no copy, no rename); otherwise a renamed copy.
    assert report.mode == ("in-place" if in_place else "copy")
    assert (pdb.stat().st_ino == inode) == in_place
    if in_place:
        assert report.bytes_copied == 0
        assert report.bytes_written < report.old_size or report.old_size < 64 * 1024
    for name, data in streams.items():
        assert export(pdb, name, tmp) == data
    dump_ok(pdb)
    after_id = read_pdb(pdb)
    assert (after_id.guid, after_id.age, after_id.info_age, after_id.signature, after_id.index) == \
           (before_id.guid, before_id.age, before_id.info_age, before_id.signature, before_id.index)
    after = all_streams(pdb)
    new_nums = set(report.streams.values())
    for i, data in enumerate(before):
        if i in (0, 1) or i in new_nums:
            continue
        assert after[i] == data, f"stream {i} changed"
    # The info stream keeps its header (GUID, signature, age) and feature codes.
    assert after[1][:28] == before[1][:28]
    assert after[1][-8:] == before[1][-8:]
    # The old directory became stream 0.
    for name, num in before_id.named_streams.items():
        if name not in streams:
            assert after_id.named_streams[name] == num
    fpm_invariant(pdb)
    return {"pdb": pdb, "report": report, "before": before_id, "after": after_id}


@pytest.mark.parametrize("in_place", [False, True], ids=["copy", "in-place"])
@pytest.mark.parametrize("src", FIXTURE_PDBS, ids=lambda p: p.name)
def test_fixture_pdbs_gain_streams_llvm_reads_them(src, tmp_path, in_place):
    res = index_and_check(src, tmp_path, {"srcsrv": SRCSRV, "sourcelink": SOURCELINK}, in_place)
    pdb = res["pdb"]
    nums = dict(res["after"].named_streams)
    # A second run replaces the streams instead of adding others.
    shorter = SRCSRV.replace(b"example.invalid", b"e.invalid")
    again = write_named_streams(pdb, {"srcsrv": shorter, "sourcelink": b"{}"}, in_place=in_place)
    assert sorted(again.replaced) == ["sourcelink", "srcsrv"]
    assert read_pdb(pdb).named_streams == nums
    assert read_pdb(pdb).num_streams == res["after"].num_streams
    assert export(pdb, "srcsrv", tmp_path) == shorter
    assert export(pdb, "sourcelink", tmp_path) == b"{}"
    fpm_invariant(pdb)
    # Repeated runs reuse freed pages: the file reaches a steady size.
    sizes = []
    for _ in range(3):
        sizes.append(write_named_streams(pdb, {"srcsrv": shorter, "sourcelink": b"{}"}, in_place=in_place).new_size)
        fpm_invariant(pdb)
    assert sizes[1] == sizes[2]


def test_pdbstr_output_reindexed_keeps_other_named_streams(tmp_path):
    src = FIXTURES / "pe-pdb" / "crash_with_srcsrv.pdb"
    before = read_pdb(src).named_streams
    assert set(before) == {"srcsrv", "/names", "/LinkInfo", "/src/headerblock"}
    res = index_and_check(src, tmp_path, {"srcsrv": SRCSRV})
    after = res["after"].named_streams
    assert after == before  # srcsrv replaced in its own stream number, others untouched
    assert res["report"].replaced == ["srcsrv"]
    # pdbstr bumped the info age; the DBI age (the key) is what it was before pdbstr.
    assert read_pdb(FIXTURES / "pe-pdb" / "crash.pdb").index == res["after"].index


def test_empty_stream_and_multi_page_payload(tmp_path):
    big = bytes(range(256)) * 100  # 25 600 bytes: 50 pages of 512
    res = index_and_check(FIXTURES / "symstore-exe" / "inputs" / "dummylib.pdb", tmp_path,
                          {"srcsrv": big, "empty": b""})
    assert res["after"].named_streams["empty"] == res["report"].streams["empty"]


def _lld_pdb(tmp: Path, names: list[str]) -> Path:
    for tool in ("clang", "lld-link"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    (tmp / "m.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["clang", "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-c", str(tmp / "m.c"),
                    "-o", str(tmp / "m.obj")], check=True, capture_output=True)
    args = []
    for n in names:
        (tmp / f"{n}.txt").write_bytes(n.encode() * 3)
        args.append(f"/pdbstream:{n}={tmp / (n + '.txt')}")
    subprocess.run(["lld-link", "/debug", "/nodefaultlib", "/entry:main", "/subsystem:console",
                    f"/out:{tmp / 'm.exe'}", f"/pdb:{tmp / 'in.pdb'}", str(tmp / "m.obj"), *args],
                   check=True, capture_output=True)
    return tmp / "in.pdb"


@pytest.mark.parametrize("extra", [[], ["alpha"], ["alpha", "beta"], ["a", "b", "c", "d", "e"]])
def test_lld_pdbs_table_growth(tmp_path, extra):
    src = _lld_pdb(tmp_path, extra)
    out = tmp_path / "out"
    out.mkdir()
    res = index_and_check(src, out, {"srcsrv": SRCSRV, "sourcelink": SOURCELINK})
    for n in extra:  # the older names still resolve through their (possibly moved) buckets
        assert export(res["pdb"], n, out) == n.encode() * 3


def test_hash_table_rules():
    table = NamedStreamTable(bytearray(), 4, {})
    names = [f"name{i}" for i in range(40)]
    caps = []
    for i, n in enumerate(names):
        table.set(n, 100 + i)
        caps.append(table.capacity)
        for j, m in enumerate(names[:i + 1]):
            assert table.get(m) == 100 + j
    # Grows to 2*(cap*2/3+1) when size reaches cap*2/3+1: 4 (until size 3) -> 6 -> 10 -> 14 -> 20 -> 28 -> 38 -> 52 -> 70.
    assert sorted(set(caps)) == [4, 6, 10, 14, 20, 28, 38, 52, 70]
    data, end = NamedStreamTable.parse(b"\0" * 28 + table.serialize(), 28)
    assert data.items() == table.items() and data.capacity == table.capacity
    # Linear probing from the 16-bit hash.
    for bucket, (key, _stream) in table.buckets.items():
        home = name_hash(table.name_at(key)) % table.capacity
        k = home
        while k != bucket:
            assert k in table.buckets
            k = (k + 1) % table.capacity


def test_known_hashes():
    # LLVM's hashStringV1 values (unittests/DebugInfo/PDB/HashTableTest.cpp and pdbutil dumps).
    from symtool.formats.msf_write import pdb_hash_v1

    assert pdb_hash_v1(b"/names") & 0xFFFF == name_hash(b"/names")
    # Microsoft's own table in crash.pdb: every name is found by probing from its 16-bit hash.
    info = FIXTURES / "pe-pdb" / "crash.pdb"
    with open(info, "rb") as f:
        reader = BoundedReader(f, str(info))
        layout = read_layout(reader)
        from symtool.formats.msf_write import _read_info

        _h, table, _tail = _read_info(reader, layout)
    assert table.items() == {"/LinkInfo": 5, "/names": 11, "/src/headerblock": 84}
    for name, stream in table.items().items():
        assert table.get(name) == stream
    for bucket, (key, _s) in table.buckets.items():
        k = name_hash(table.name_at(key)) % table.capacity
        while k != bucket:
            assert k in table.buckets
            k = (k + 1) % table.capacity


def test_sample_rust_lld_pdbs(sample_build, tmp_path):
    pdbs = sorted(sample_build.out("release").glob("*.pdb"))
    assert pdbs
    for src in pdbs:
        sub = tmp_path / src.stem
        sub.mkdir()
        index_and_check(src, sub, {"srcsrv": SRCSRV, "sourcelink": SOURCELINK})


def test_msf2_and_garbage_refused_untouched(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from builders.msf import build_msf2

    for name, data in (("old.pdb", build_msf2([b"", b"x" * 40, b"", b""])), ("junk.pdb", b"hello" * 100)):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(FormatError):
            write_named_streams(p, {"srcsrv": SRCSRV})
        assert p.read_bytes() == data
        assert sorted(os.listdir(tmp_path)) == sorted({name} | {q for q in os.listdir(tmp_path)})


KILL_SCRIPT = r"""
import os, signal, sys
from symtool.formats import msf_write
limit = int(sys.argv[2])
in_place = sys.argv[3] == "in-place"
count = [0]
real = os.pwrite
def pwrite(fd, data, off):
    count[0] += 1
    if count[0] > limit:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(fd, data, off)
os.pwrite = pwrite
import symtool.fsutil as fsutil
real_replace = os.replace
def replace(a, b):
    if limit == 999:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(a, b)
os.replace = replace
msf_write.write_named_streams(sys.argv[1], {"srcsrv": b"x" * 5000, "sourcelink": b"{}"}, in_place=in_place)
"""


def test_sigkill_at_any_point_leaves_original(tmp_path):
    src = FIXTURES / "symstore-exe" / "inputs" / "dummyprog.pdb"
    pdb = tmp_path / "dummyprog.pdb"
    shutil.copyfile(src, pdb)
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    kills = 0
    for limit in [999] + list(range(0, 200)):
        proc = subprocess.run([sys.executable, str(script), str(pdb), str(limit), "copy"], capture_output=True)
        if proc.returncode == 0:
            break  # ran to the end: every earlier write point was tried
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert hashlib.sha256(pdb.read_bytes()).hexdigest() == want
        read_pdb(pdb)
        kills += 1
    assert kills > 10
    assert export(pdb, "srcsrv", tmp_path) == b"x" * 5000


@pytest.mark.parametrize("src", [FIXTURES / "symstore-exe" / "inputs" / "dummyprog.pdb",
                                 FIXTURES / "pe-pdb" / "dump_syms_regtest64.pdb"], ids=lambda p: p.name)
def test_in_place_sigkill_at_any_write_leaves_the_original_pdb(tmp_path, src):
    """In place, a kill before the superblock write leaves the PDB every reader sees unchanged:
    the same superblock, the same streams byte for byte, llvm-pdbutil reads it.  Only pages the
    old superblock does not reach (free, appended, the inactive FPM) may differ."""
    pdb = tmp_path / src.name
    shutil.copyfile(src, pdb)
    original = src.read_bytes()
    bs = read_layout(BoundedReader(open(src, "rb"), str(src))).block_size
    streams_before = all_streams(src)
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    kills = 0
    for limit in range(0, 400):
        proc = subprocess.run([sys.executable, str(script), str(pdb), str(limit), "in-place"], capture_output=True)
        if proc.returncode == 0:
            break  # the superblock was written: every earlier write point was tried
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        data = pdb.read_bytes()
        assert data[:bs] == original[:bs], f"superblock changed by a kill after {limit} writes"
        assert all_streams(pdb) == streams_before
        dump_ok(pdb)
        kills += 1
    assert kills > 10
    assert export(pdb, "srcsrv", tmp_path) == b"x" * 5000
    fpm_invariant(pdb)
    # A later run over a file an interrupted run left longer trims it back.
    write_named_streams(pdb, {"srcsrv": b"y" * 10, "sourcelink": b"{}"}, in_place=True)
    fpm_invariant(pdb)


def test_in_place_copies_a_hard_linked_pdb(tmp_path):
    """In place would change every name of the file (a store's copy too): a linked PDB is copied."""
    src = FIXTURES / "pe-pdb" / "crash.pdb"
    pdb, twin = tmp_path / "crash.pdb", tmp_path / "store-copy.pdb"
    shutil.copyfile(src, pdb)
    os.link(pdb, twin)
    report = write_named_streams(pdb, {"srcsrv": SRCSRV}, in_place=True)
    assert report.mode == "copy"
    assert twin.read_bytes() == src.read_bytes()
    assert export(pdb, "srcsrv", tmp_path) == SRCSRV


@pytest.mark.parametrize("stem", ["crash", "dump_syms_regtest64"])
def test_verify_still_matches_after_indexing(tmp_path, stem):
    from typer.testing import CliRunner

    from symtool.cli import app

    for ext in (".exe", ".pdb"):
        shutil.copyfile(FIXTURES / "pe-pdb" / (stem + ext), tmp_path / (stem + ext))
    before = CliRunner().invoke(app, ["verify", str(tmp_path / (stem + ".exe"))])
    write_named_streams(tmp_path / (stem + ".pdb"), {"srcsrv": SRCSRV, "sourcelink": SOURCELINK})
    after = CliRunner().invoke(app, ["verify", str(tmp_path / (stem + ".exe"))])
    assert before.exit_code == after.exit_code == 0, after.output
    assert "match" in after.stdout and before.stdout == after.stdout

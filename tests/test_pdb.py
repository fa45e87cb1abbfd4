"""PDB reader (symtool/formats/pdb.py) on real PDBs, cross-checked with
llvm-pdbutil (and pdbparse where it installs), plus MSF files built here from
the documented layouts: MSF 2.00, 512-byte pages with a directory whose block
map spans several blocks, a PDB without a DBI stream, portable PDBs."""

from __future__ import annotations

import random
import re
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from builders.msf import build_msf2, build_msf7
from builders.portable_pdb import build_portable_pdb
from conftest import need_tool
from symtool.errors import FormatError
from symtool.formats.detect import detect, read_identity
from symtool.formats.pdb import (
    MSF2_MAGIC,
    MSF7_MAGIC,
    NIL_STREAM,
    iter_modules,
    open_msf,
    read_dbi_header,
    read_pdb,
)

FIXTURE_PDBS = [
    "pe-pdb/crash.pdb",
    "pe-pdb/crash_with_srcsrv.pdb",
    "pe-pdb/dump_syms_regtest64.pdb",
    "symstore-exe/inputs/bigage.pdb",
    "symstore-exe/inputs/dummylib.pdb",
    "symstore-exe/inputs/dummyprog.pdb",
]


# -- helpers ------------------------------------------------------------------

def pdb_streams(path) -> list[bytes | None]:
    """All streams of a PDB (None for nil streams), read through our Msf."""
    f, msf = open_msf(path)
    with f:
        out = []
        for i in range(msf.num_streams):
            raw = msf._raw_size(i)
            out.append(None if raw == NIL_STREAM else msf.read_stream(i))
        return out


# -- oracles --------------------------------------------------------------------

def llvm_summary(path) -> dict:
    tool = need_tool("llvm-pdbutil")
    out = subprocess.run([tool, "dump", "--summary", str(path)], capture_output=True, text=True, check=True).stdout
    guid = re.search(r"GUID: \{([0-9A-Fa-f-]+)\}", out).group(1).upper()
    return {
        "guid": guid,
        "info_age": int(re.search(r"^\s*Age: (\d+)", out, re.M).group(1)),
        "block_size": int(re.search(r"Block Size: (\d+)", out).group(1)),
        "num_streams": int(re.search(r"Number of streams: (\d+)", out).group(1)),
        "signature": int(re.search(r"Signature: (\d+)", out).group(1)),
    }


def llvm_dbi_age(path) -> int:
    tool = need_tool("llvm-pdbutil")
    out = subprocess.run([tool, "pdb2yaml", "--dbi-stream", str(path)], capture_output=True, text=True,
                         check=True).stdout
    dbi = out[out.index("DbiStream:"):]
    return int(re.search(r"^\s+Age:\s+(\d+)", dbi, re.M).group(1))


def symstore_keys(fixtures_dir: Path) -> dict[str, set[str]]:
    """file name -> the INDEX directories symstore.exe chose for it, over all fixture stores."""
    keys: dict[str, set[str]] = {}
    for store in (fixtures_dir / "symstore-exe" / "stores").iterdir():
        for f in store.glob("*/*/*"):
            if f.is_file() and f.name == f.parent.parent.name:
                keys.setdefault(f.name, set()).add(f.parent.name)
    return keys


# -- real PDBs ------------------------------------------------------------------

@pytest.mark.parametrize("rel", FIXTURE_PDBS)
def test_fixture_pdb_agrees_with_llvm_pdbutil(fixtures_dir, rel):
    path = fixtures_dir / rel
    info = read_pdb(path)
    want = llvm_summary(path)
    assert info.kind == "pdb" and detect(path) == "pdb"
    assert info.guid == want["guid"]
    assert info.info_age == want["info_age"]
    assert info.age == llvm_dbi_age(path)
    assert info.block_size == want["block_size"]
    assert info.num_streams == want["num_streams"]
    assert info.signature == want["signature"]
    assert info.index == info.guid.replace("-", "") + format(info.age, "x")
    assert info.bytes_read < 4096  # superblock, two directory entries, two first blocks


def test_store_keys_equal_symstore_exe_directories(fixtures_dir):
    keys = symstore_keys(fixtures_dir)
    checked = 0
    for name, indexes in keys.items():
        if not name.endswith(".pdb"):
            continue
        assert len(indexes) == 1, (name, indexes)
        (index,) = indexes
        for store in (fixtures_dir / "symstore-exe" / "stores").iterdir():
            stored = store / name / index / name
            if stored.is_file():
                assert read_identity(stored).index == index
        assert read_identity(fixtures_dir / "symstore-exe" / "inputs" / name).index == index
        checked += 1
    assert checked == 3  # bigage (age 10 -> 'a'), dummyprog, dummylib


@pytest.mark.parametrize("rel", FIXTURE_PDBS)
def test_dbi_modules_agree_with_llvm_pdbutil(fixtures_dir, rel):
    path = fixtures_dir / rel
    out = subprocess.run([need_tool("llvm-pdbutil"), "dump", "--modules", str(path)], capture_output=True,
                         text=True, check=True).stdout
    want = [(int(i), name, obj, int(stream)) for i, name, obj, stream in re.findall(
        r"Mod (\d+) \| `(.*)`:\s*\n\s*Obj: `(.*)`:\s*\n\s*debug stream: (\d+)", out)]
    f, msf = open_msf(path)
    with f:
        dbi = read_dbi_header(msf)
        got = [(m.index, m.name, m.obj_name, m.stream) for m in iter_modules(msf, dbi)]
    assert got == want
    assert dbi.age == llvm_dbi_age(path)
    summary = subprocess.run([need_tool("llvm-pdbutil"), "dump", "--summary", str(path)], capture_output=True,
                             text=True, check=True).stdout
    assert dbi.stripped == (re.search(r"Is stripped: (\w+)", summary).group(1) == "true")


def test_srcsrv_pdb_keeps_dbi_age_and_reports_info_age(fixtures_dir):
    plain = read_pdb(fixtures_dir / "pe-pdb/crash.pdb")
    indexed = read_pdb(fixtures_dir / "pe-pdb/crash_with_srcsrv.pdb")
    assert indexed.info_age == 4 and indexed.age == 1
    assert indexed.index == plain.index == "3249D99D0C4049318610F4E4FB0B69361"
    assert "srcsrv" in indexed.named_streams and "srcsrv" not in plain.named_streams
    assert indexed.named_streams["/names"] == plain.named_streams["/names"]


def test_bigage_lowercase_hex_age(fixtures_dir):
    assert read_pdb(fixtures_dir / "symstore-exe/inputs/bigage.pdb").index == "C9A61DDDD7E44353A668E39AC614A7EAa"


def test_sample_build_pdbs_agree_with_llvm(sample_build):
    for profile in ("release", "dist"):
        for name in ("crash-me", "hello"):
            path = sample_build.pdb(name, profile)
            info = read_pdb(path)
            want = llvm_summary(path)
            assert (info.guid, info.info_age, info.age) == (want["guid"], want["info_age"], llvm_dbi_age(path))


def test_pdbparse_agrees_where_installed(fixtures_dir):
    try:
        import pdbparse
    except Exception as err:  # release 1.5 does not install on Python >= 3.12
        pytest.skip(f"optional: pdbparse not importable ({type(err).__name__})")
    import pdbparse.dbi
    import pdbparse.info

    for rel in FIXTURE_PDBS:
        path = fixtures_dir / rel
        # fast_load: pdbparse reads the whole stream directory; only the info
        # and DBI headers are parsed here (its full DBI parse crashes on
        # VS2015 PDBs).
        pdb = pdbparse.parse(str(path), fast_load=True)
        root = pdbparse.info.parse(pdb.streams[1].data)
        dbi = pdbparse.dbi.DBIHeader.parse(pdb.streams[3].data[:64])
        info = read_pdb(path)
        assert uuid.UUID(bytes_le=_guid_bytes(root.GUID)) == uuid.UUID(info.guid), rel
        assert (root.Age, dbi.age) == (info.info_age, info.age), rel


def _guid_bytes(g) -> bytes:
    return struct.pack("<IHH", g.Data1, g.Data2, g.Data3) + bytes(g.Data4)


# -- layouts no fixture has --------------------------------------------------------

def test_relaid_into_scattered_small_pages_agrees_with_llvm(fixtures_dir, tmp_path):
    """crash.pdb's streams re-laid into 512-byte pages in random block order:
    llvm-pdbutil accepts it (one directory map block) and both agree."""
    src = fixtures_dir / "pe-pdb/crash.pdb"
    out = tmp_path / "small.pdb"
    out.write_bytes(build_msf7(pdb_streams(src), 512, shuffle_seed=7))
    info = read_pdb(out)
    want = llvm_summary(out)
    assert info.block_size == 512 == want["block_size"]
    assert (info.guid, info.info_age, info.age) == (want["guid"], want["info_age"], llvm_dbi_age(out))
    assert info.index == read_pdb(src).index
    assert info.named_streams == read_pdb(src).named_streams


def test_directory_map_spanning_several_blocks(fixtures_dir, tmp_path):
    """512-byte pages and 30000 extra empty streams: the directory needs 241
    blocks, whose block list needs 2 map blocks listed in the superblock (as
    in big PDBs).  llvm-pdbutil reads only one map block; when it refuses,
    the original PDB (same streams) is the reference."""
    src = fixtures_dir / "pe-pdb/dump_syms_regtest64.pdb"
    streams = pdb_streams(src) + [b""] * 30000
    data = build_msf7(streams, 512, shuffle_seed=3)
    n_map = len([x for x in struct.unpack_from("<4I", data, 52) if x])
    assert n_map >= 2
    out = tmp_path / "bigdir.pdb"
    out.write_bytes(data)
    info = read_pdb(out)
    ref = read_pdb(src)
    assert (info.index, info.info_age, info.named_streams) == (ref.index, ref.info_age, ref.named_streams)
    assert info.num_streams == len(streams)
    assert info.bytes_read < 8192
    f, msf = open_msf(out)
    with f:  # a stream whose directory entry sits in the second map block's range
        assert msf.read_stream(len(streams) - 1) == b""
        assert msf.read_stream(4) == pdb_streams(src)[4]
    proc = subprocess.run([need_tool("llvm-pdbutil"), "dump", "--summary", str(out)], capture_output=True, text=True)
    if proc.returncode == 0 and "GUID" in proc.stdout:
        assert llvm_summary(out)["guid"] == info.guid


def test_msf2_pdb_built_from_documented_layout(tmp_path):
    info_stream = struct.pack("<III", 19941610, 0x3A2B1C0D, 5)  # VC4 version, signature, age
    dbi = struct.pack("<iII", -1, 19960307, 6) + b"\0" * 52  # new-format DBI header, age 6
    streams = [b"\0" * 10, info_stream, b"", dbi, b"x" * 3000]
    out = tmp_path / "old.pdb"
    out.write_bytes(build_msf2(streams, 1024))
    assert detect(out) == "pdb2"
    info = read_pdb(out)
    assert info.kind == "pdb2"
    assert info.debug_id.kind == "nb10" and info.guid is None
    assert (info.signature, info.info_age, info.age) == (0x3A2B1C0D, 5, 6)
    assert info.index == "3A2B1C0D6"
    f, msf = open_msf(out)
    with f:
        assert msf.version == 2 and msf.num_streams == 5
        assert msf.read_stream(4) == b"x" * 3000
        assert msf.read_stream(4, 1020, 10) == b"x" * 10


def test_msf2_without_dbi_uses_info_age(tmp_path):
    out = tmp_path / "old.pdb"
    out.write_bytes(build_msf2([b"", struct.pack("<III", 19941610, 0xDEADBEEF, 0x1f)], 512))
    assert read_pdb(out).index == "DEADBEEF1f"


def test_pdb_without_dbi_is_keyed_by_guid_alone(fixtures_dir, tmp_path):
    streams = pdb_streams(fixtures_dir / "pe-pdb/crash.pdb")
    streams[3] = None
    out = tmp_path / "nodbi.pdb"
    out.write_bytes(build_msf7(streams, 4096))
    info = read_pdb(out)
    assert info.age is None and info.info_age == 1
    assert info.index == "3249D99D0C4049318610F4E4FB0B6936"


def test_portable_pdb_is_recognised_not_misparsed(tmp_path):
    g = uuid.UUID("12345678-9abc-def0-1122-334455667788")
    out = tmp_path / "managed.pdb"
    out.write_bytes(build_portable_pdb(g, 0xCAFEBABE))
    assert detect(out) == "portable-pdb"
    info = read_pdb(out)
    assert info.kind == "portable-pdb" and info.guid == str(g).upper()
    assert info.index == "123456789ABCDEF01122334455667788FFFFFFFF"
    assert info.age is None and info.signature == 0xCAFEBABE


# -- hostile PDBs -------------------------------------------------------------------

def _patched(src: bytes, offset: int, fmt: str, *values) -> bytes:
    data = bytearray(src)
    struct.pack_into(fmt, data, offset, *values)
    return bytes(data)


def hostile_pdbs(fixtures_dir) -> dict[str, bytes]:
    """Named hostile variants of a real PDB (also used by the CLI tests)."""
    real = (fixtures_dir / "symstore-exe/inputs/dummyprog.pdb").read_bytes()  # 512-byte pages
    bs, nblocks = struct.unpack_from("<I", real, 32)[0], struct.unpack_from("<I", real, 40)[0]
    map_block = struct.unpack_from("<I", real, 52)[0]
    dir_block = struct.unpack_from("<I", real, map_block * bs)[0]
    f, msf = open_msf(fixtures_dir / "symstore-exe/inputs/dummyprog.pdb")
    with f:
        info_list = msf._block_list_offset(1)  # where stream 1's first block number sits
    assert info_list + 4 <= bs  # the directory is one block here
    return {
        "empty": b"",
        "magic-only": MSF7_MAGIC,
        "truncated-superblock": real[:40],
        "truncated-half": real[: len(real) // 2],
        "random-after-magic": MSF7_MAGIC + random.Random(1).randbytes(4000),
        "block-size-odd": _patched(real, 32, "<I", 1000),
        "num-blocks-past-eof": _patched(real, 40, "<I", nblocks * 4),
        "directory-size-past-eof": _patched(real, 44, "<I", 0xFFFFFFF0),
        "directory-map-block-past-eof": _patched(real, 52, "<I", 0x7FFFFFFF),
        "directory-block-past-eof": _patched(real, map_block * bs, "<I", 0x10000),
        "huge-stream-count": _patched(real, dir_block * bs, "<I", 0xFFFFFFFF),
        "stream-block-past-eof": _patched(real, dir_block * bs + info_list, "<I", 0xFFFFFF),
        "info-stream-huge": _patched(real, dir_block * bs + 8, "<I", 0x7FFFFFFF),
        "msf2-truncated": MSF2_MAGIC + struct.pack("<IHH", 1024, 1, 50),
    }


def test_hostile_pdbs_raise_format_error(fixtures_dir, tmp_path):
    for name, data in hostile_pdbs(fixtures_dir).items():
        p = tmp_path / f"{name}.pdb"
        p.write_bytes(data)
        with pytest.raises(FormatError) as err:
            read_pdb(p)
        assert str(p) in str(err.value), name


def test_read_stream_refuses_stream_larger_than_file(fixtures_dir, tmp_path):
    real = (fixtures_dir / "symstore-exe/inputs/dummyprog.pdb").read_bytes()
    f, msf = open_msf(fixtures_dir / "symstore-exe/inputs/dummyprog.pdb")
    with f:
        # llvm-pdbutil dump --streams --stream-blocks: "Stream 3 (411 bytes) [DBI Stream] Blocks: [19]".
        assert (msf.stream_size(3), msf.stream_blocks(3)) == (411, [19])
    # Stream 3's size says 1 GiB: its block list would repeat blocks to fill it.
    bs = 512
    map_block = struct.unpack_from("<I", real, 52)[0]
    dir_block = struct.unpack_from("<I", real, map_block * bs)[0]
    p = tmp_path / "big3.pdb"
    p.write_bytes(_patched(real, dir_block * bs + 4 + 12, "<I", 1 << 30))
    f, msf = open_msf(p)
    with f:
        with pytest.raises(FormatError, match="larger than the file"):
            msf.read_stream(3)
        with pytest.raises(FormatError, match="larger than the file"):
            msf.stream_blocks(3)

"""Property tests: real PE and PDB fixtures, mutated (byte flips, truncation,
field overwrites at header and directory offsets), must give a result or a
FormatError: never another exception, a hang, or a giant allocation."""

from __future__ import annotations

import io
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_runner import symtool_in_process
from conftest import FIXTURES_DIR
from symtool.errors import FormatError
from symtool.formats.detect import sniff
from symtool.formats.pdb import Msf, read_pdb_file
from symtool.formats.binio import BoundedReader
from symtool.formats.codeview import MAX_CODEVIEW, parse_codeview
from symtool.formats.pe import read_pe_bytes


# Example counts keep each test well under ~20 s on a loaded 2-core machine (the PE reader parses
# its headers with struct since pefile left that path: as many examples as the others).
SETTINGS = settings(max_examples=int(os.environ.get("SYMTOOL_FUZZ_EXAMPLES", "500")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
PE_SETTINGS = SETTINGS

INTERESTING_U32 = [0, 1, 2, 0x7F, 0x100, 0x200, 0x1000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
                   0xFFFFFFFF]


def _load(rel: str) -> bytes:
    return (FIXTURES_DIR / rel).read_bytes()


PDBS = {rel: _load(rel) for rel in (
    "symstore-exe/inputs/dummyprog.pdb",  # 512-byte pages
    "symstore-exe/inputs/bigage.pdb",  # 4 KB pages, age 10
    "pe-pdb/dump_syms_regtest64.pdb",  # 1 KB pages
)}
PES = {rel: _load(rel) for rel in (
    "pe-pdb/crash.exe",
    "pe-pdb/dump_syms_regtest64.exe",
    "symstore-exe/inputs/dummyprog.exe",
    "symstore-exe/inputs/dummylib.dll",
)}


def _pdb_hot_offsets(data: bytes) -> list[int]:
    """Superblock fields, the directory's block-map and directory entries, and
    the first bytes of streams 1 and 3 (where identity comes from)."""
    offs = list(range(32, 64, 4))
    bs = struct.unpack_from("<I", data, 32)[0]
    f = io.BytesIO(data)
    msf = Msf(BoundedReader(f, "x"))
    map_block = struct.unpack_from("<I", data, 52)[0]
    offs += [map_block * bs + 4 * k for k in range(4)]
    dir_block = struct.unpack_from("<I", data, map_block * bs)[0]
    offs += [dir_block * bs + 4 * k for k in range(32)]
    for s in (1, 3):
        first = msf.stream_blocks(s)[0] * bs
        offs += [first + 4 * k for k in range(8)]
    return offs


def _pe_hot_offsets(data: bytes) -> list[int]:
    import pefile

    pe = pefile.PE(data=data, fast_load=True)
    offs = [0x3C]
    fh = pe.FILE_HEADER.get_file_offset()
    offs += [fh, fh + 2, fh + 4, fh + 16]
    oh = pe.OPTIONAL_HEADER.get_file_offset()
    offs += [oh + k for k in range(0, 96, 4)]
    dd = pe.OPTIONAL_HEADER.DATA_DIRECTORY[6]
    offs += [dd.get_file_offset(), dd.get_file_offset() + 4]
    for sec in pe.sections:
        offs += [sec.get_file_offset() + k for k in (8, 12, 16, 20)]
    dbg = pe.get_offset_from_rva(dd.VirtualAddress)
    for k in range(dd.Size // 28):
        offs += [dbg + 28 * k + j for j in (12, 16, 20, 24)]
        ptr = struct.unpack_from("<I", data, dbg + 28 * k + 24)[0]
        offs += [ptr, ptr + 4, ptr + 20]
    return [o for o in offs if o + 4 <= len(data)]


HOT = {**{k: _pdb_hot_offsets(v) for k, v in PDBS.items() if v},
       **{k: _pe_hot_offsets(v) for k, v in PES.items() if v}}


@st.composite
def mutated(draw, corpus: dict[str, bytes]):
    rel = draw(st.sampled_from(sorted(corpus)))
    data = bytearray(corpus[rel])
    hot = HOT[rel]
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.sampled_from(hot))
        value = draw(st.one_of(st.sampled_from(INTERESTING_U32), st.integers(0, 0xFFFFFFFF),
                               st.integers(0, len(data) * 2)))
        struct.pack_into("<I", data, at, value & 0xFFFFFFFF)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.one_of(st.sampled_from(hot), st.integers(0, len(data) - 1)))
        data[at] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return rel, bytes(data)


@SETTINGS
@given(mutated(PDBS))
def test_mutated_pdbs_give_result_or_format_error(case):
    rel, data = case
    try:
        info = read_pdb_file(io.BytesIO(data), rel)
    except FormatError:
        return
    assert info.kind in ("pdb", "pdb2", "portable-pdb")
    assert info.index  # a key can always be made from what was read
    assert info.bytes_read <= 4 * 1024 * 1024


@SETTINGS
@given(mutated(PDBS), st.integers(0, 40), st.integers(0, 1 << 20), st.integers(0, 1 << 16))
def test_mutated_pdb_streams_read_or_format_error(case, stream, offset, length):
    rel, data = case
    try:
        msf = Msf(BoundedReader(io.BytesIO(data), rel))
        got = msf.read_stream(stream, offset, length)
    except FormatError:
        return
    assert len(got) <= length and len(got) <= len(data)


@PE_SETTINGS
@given(mutated(PES))
def test_mutated_pes_give_result_or_format_error(case):
    rel, data = case
    try:
        info = read_pe_bytes(data, rel)
    except FormatError:
        return
    assert info.index and all(cv.debug_id.index() for cv in info.codeview)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=4096), st.sampled_from([b"", b"MZ", b"BSJB",
                                                               b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0",
                                                               b"Microsoft C/C++ program database 2.00\r\n\x1aJG\0\0"]))
def test_random_bytes_behind_every_magic(tail, magic):
    data = magic + tail
    kind = sniff(data)
    try:
        if kind == "pe":
            read_pe_bytes(data, "r")
        else:
            read_pdb_file(io.BytesIO(data), "r")
    except FormatError:
        pass


@SETTINGS
@given(signature=st.sampled_from([b"RSDS", b"NB10", b"LEpB", b"NB11", b""]), tail=st.binary(max_size=64))
def test_codeview_records_parse_or_format_error(signature, tail):
    data = signature + tail
    kind = {b"RSDS": "RSDS", b"NB10": "NB10", b"LEpB": "ELF"}.get(data[:4])
    try:
        cv = parse_codeview(data)
    except FormatError:
        # Only what is too short for its signature's fixed part is refused.
        assert len(data) < {"RSDS": 24, "NB10": 16, "ELF": 5}.get(kind, 4)
        return
    assert (cv.kind if cv is not None else None) == kind


@SETTINGS
@given(annotations=st.one_of(st.binary(max_size=48), st.lists(st.sampled_from(
    [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 0x80, 0xC0, 0xFF, 0x7F]), max_size=48).map(bytes)))
def test_inline_site_annotations_decode_or_stop(annotations):
    """An S_INLINESITE's binary annotations (decoded with their opcodes read inline): whatever the
    bytes, ranges with start < end, never an exception; the work is one pass over them."""
    from symtool.formats.pdb_symbols import inline_ranges

    ranges = inline_ranges(annotations, 10, 0)
    assert all(start < end for start, end, _line, _file in ranges)
    assert len(ranges) <= len(annotations)


def test_codeview_record_size_is_bounded():
    with pytest.raises(FormatError, match="implausibly large"):
        parse_codeview(b"RSDS" + b"\0" * MAX_CODEVIEW)


# -- ELF, .dwp and Mach-O (tests/fixtures/elf-macho: real rustc/lld/dsymutil outputs) ------------

from symtool.formats.elf import read_elf_bytes  # noqa: E402
from symtool.formats.macho import read_macho_bytes  # noqa: E402

ELFS = {rel: _load(rel) for rel in (
    "elf-macho/crash-me.dwarf4",  # GNU skeleton units (DW_AT_GNU_dwo_id)
    "elf-macho/crash-me.dwarf4.dwp",  # .debug_cu_index v2
    "elf-macho/crash-me.dwarf5",  # DW_UT_skeleton
    "elf-macho/crash-me.dwarf5.dwp",  # .debug_cu_index v5
)}
MACHOS = {rel: _load(rel) for rel in (
    "elf-macho/crash-me.arm64",
    "elf-macho/crash-me.arm64.dwarf",  # MH_DSYM
    "elf-macho/crash-me.universal",  # CAFEBABE, arm64 + x86_64
)}


def _elf_hot_offsets(data: bytes) -> list[int]:
    """ELF header fields, every section header's type/offset/size, and the first words of the
    note, .debug_info(.dwo), .debug_abbrev(.dwo) and .debug_cu_index sections."""
    offs = list(range(16, 64, 2))
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    names_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 24)[0]
    for k in range(shnum):
        at = shoff + k * shentsize
        offs += [at + j for j in (0, 4, 8, 24, 32, 40)]
        name_at, = struct.unpack_from("<I", data, at)
        name = data[names_off + name_at:data.index(b"\0", names_off + name_at)]
        if name.startswith((b".note", b".debug_info", b".debug_abbrev", b".debug_cu_index", b".gnu_debuglink")):
            start = struct.unpack_from("<Q", data, at + 24)[0]
            offs += [start + j for j in range(0, 48, 4)]
    return [o for o in offs if o + 4 <= len(data)]


def _macho_hot_offsets(data: bytes) -> list[int]:
    """Fat header and arch records, each slice's header and every load command's cmd/cmdsize."""
    offs: list[int] = []
    slices = [0]
    if data[:4] == b"\xca\xfe\xba\xbe":
        n = struct.unpack_from(">I", data, 4)[0]
        offs += [0, 4] + [8 + 20 * k + j for k in range(n) for j in (0, 4, 8, 12)]
        slices = [struct.unpack_from(">I", data, 8 + 20 * k + 8)[0] for k in range(n)]
    for base in slices:
        offs += [base + j for j in range(0, 28, 4)]
        ncmds, _size = struct.unpack_from("<II", data, base + 16)
        pos = base + 32
        for _ in range(ncmds):
            offs += [pos, pos + 4, pos + 8]
            pos += struct.unpack_from("<I", data, pos + 4)[0]
    return [o for o in offs if o + 4 <= len(data)]


HOT.update({k: _elf_hot_offsets(v) for k, v in ELFS.items()})
HOT.update({k: _macho_hot_offsets(v) for k, v in MACHOS.items()})


@SETTINGS
@given(mutated(ELFS))
def test_mutated_elfs_and_dwps_give_result_or_format_error(case):
    rel, data = case
    try:
        info = read_elf_bytes(data, rel)
    except FormatError:
        return
    assert info.kind in ("elf", "dwp", "dwo")
    assert info.index is None or 2 <= len(info.index) <= 128
    assert info.dwo_ids is None or len(info.dwo_ids) <= len(data)


@SETTINGS
@given(mutated(MACHOS))
def test_mutated_machos_give_result_or_format_error(case):
    rel, data = case
    try:
        info = read_macho_bytes(data, rel)
    except FormatError:
        return
    assert info.slices and all(s.index is None or len(s.index) == 32 for s in info.slices)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=4096),
       st.sampled_from([b"\x7fELF\x02\x01\x01", b"\x7fELF\x01\x02\x01", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xce",
                        b"\xca\xfe\xba\xbe\0\0\0\x01", b"\xca\xfe\xba\xbf\0\0\0\x02"]))
def test_random_bytes_behind_elf_and_macho_magics(tail, magic):
    data = magic + tail
    try:
        (read_elf_bytes if sniff(data) == "elf" else read_macho_bytes)(data, "r")
    except FormatError:
        pass


def test_fuzzed_files_exit_2_without_traceback(tmp_path):
    """The CLI on mutated ELF, .dwp and Mach-O files: a report or one error line each, exit 0 or 2."""
    import random

    rng = random.Random(13)
    files = []
    for k in range(40):
        rel, src = rng.choice(sorted({**ELFS, **MACHOS}.items()))
        data = bytearray(src)
        for _ in range(rng.randint(1, 4)):
            struct.pack_into("<I", data, rng.choice(HOT[rel]), rng.choice(INTERESTING_U32 + [rng.getrandbits(32)]))
        if k % 4 == 0:
            data = data[:rng.randint(0, len(data))]
        p = tmp_path / f"f{k}"
        p.write_bytes(bytes(data))
        files.append(p)
    proc = symtool_in_process("id", *files, timeout=120)
    assert "Traceback" not in proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in errors), proc.stderr
    assert proc.returncode == (2 if errors else 0)
    assert len(errors) >= 10  # the truncated ones at least
    proc = symtool_in_process("verify", *files, timeout=120)
    assert "Traceback" not in proc.stderr and proc.returncode in (1, 2), proc.stderr

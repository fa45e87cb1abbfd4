"""The test-only writers in tests/builders, each checked against a reader no one
on this project wrote: the `minidump` package for minidumps, pefile (on a real
image) for CodeView records, llvm-pdbutil for MSF 7.00 files and pdbparse
(where it installs) for MSF 2.00 files."""

from __future__ import annotations

import logging
import re
import struct
import subprocess
import uuid

import pytest

from builders.minidump import build_minidump, codeview_rsds
from builders.msf import build_msf2, build_msf7
from conftest import need_tool


def _minidump_package(data: bytes):
    from minidump.minidumpfile import MinidumpFile

    logging.getLogger().disabled = True  # it logs tracebacks for PEB parsing of non-full dumps
    try:
        return MinidumpFile.parse_bytes(data)
    finally:
        logging.getLogger().disabled = False


def test_minidump_builder_read_by_the_minidump_package():
    guid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff").bytes_le
    modules = [
        {"name": "C:\\app\\app.exe", "base": 0x140000000, "size": 0x5000, "timestamp": 0x11223344,
         "codeview": codeview_rsds(guid, 3, "C:\\build\\app.pdb")},
        {"name": "C:\\Windows\\System32\\ntdll.dll", "base": 0x7FFB0000, "size": 0x1F0000, "timestamp": 0x55667788},
    ]
    data = build_minidump(modules=modules, arch=9, platform_id=2, version=(10, 0, 19045),
                          exception={"code": 0xC0000409, "address": 0x140001234, "parameters": [7, 0x99],
                                     "thread_id": 42, "flags": 1},
                          comments=["ProcDump comment"], timestamp=1_700_000_000)
    ref = _minidump_package(data)
    assert ref.header.NumberOfStreams == 4 and ref.header.StreamDirectoryRva == 32
    # The package splits Version into two u16 and calls the u32 at offset 20 "Reserved": in
    # minidumpapiset.h that u32 is the union of Reserved and TimeDateStamp.
    assert ref.header.Version == 0xA793 and ref.header.Reserved == 1_700_000_000
    assert [(m.name, m.baseaddress, m.size, m.timestamp) for m in ref.modules.modules] == [
        (m["name"], m["base"], m["size"], m["timestamp"]) for m in modules]
    (exc,) = ref.exception.exception_records
    assert exc.ThreadId == 42
    assert exc.ExceptionRecord.ExceptionCode_raw == 0xC0000409  # the package has no name for it
    assert exc.ExceptionRecord.ExceptionFlags == 1
    assert exc.ExceptionRecord.ExceptionAddress == 0x140001234
    assert exc.ExceptionRecord.NumberParameters == 2
    assert list(exc.ExceptionRecord.ExceptionInformation) == [7, 0x99]
    si = ref.sysinfo
    assert (si.ProcessorArchitecture.value, si.PlatformId.value) == (9, 2)
    assert (si.MajorVersion, si.MinorVersion, si.BuildNumber) == (10, 0, 19045)


def test_codeview_rsds_builder_equals_a_real_images_record(fixtures_dir):
    """pefile reads crash.exe's CodeView entry; the builder, given the same GUID,
    age and path, must write the same bytes."""
    import pefile

    pe = pefile.PE(str(fixtures_dir / "pe-pdb" / "crash.exe"))
    (entry,) = [d for d in pe.DIRECTORY_ENTRY_DEBUG if d.struct.Type == 2]
    cv = entry.entry
    # pefile's CV_INFO_PDB70 splits the GUID into Data1-3, the bytes Data4 and Data5, and 6-byte Data6.
    guid = struct.pack("<IHHBB6s", cv.Signature_Data1, cv.Signature_Data2, cv.Signature_Data3, cv.Signature_Data4,
                       cv.Signature_Data5, cv.Signature_Data6)
    raw = pe.__data__[entry.struct.PointerToRawData:entry.struct.PointerToRawData + entry.struct.SizeOfData]
    assert codeview_rsds(guid, cv.Age, cv.PdbFileName.rstrip(b"\0").decode()) == bytes(raw)


def _pdbutil(*args: str) -> str:
    return subprocess.run([need_tool("llvm-pdbutil"), *args], capture_output=True, text=True, check=True).stdout


def _stream_lines(out: str) -> list[tuple[int, int]]:
    return [(int(n), int(size)) for n, size in re.findall(r"Stream\s+(\d+) \(\s*(\d+) bytes\)", out)]


def _exported_streams(path, tmp_path) -> list[bytes]:
    """Every stream of a PDB as llvm-pdbutil exports it."""
    out = []
    for index, _size in _stream_lines(_pdbutil("dump", "--streams", str(path))):
        dest = tmp_path / f"stream{index}.bin"
        _pdbutil("export", f"--stream={index}", f"--out={dest}", str(path))
        out.append(dest.read_bytes())
    return out


def test_msf7_builder_read_by_llvm_pdbutil(fixtures_dir, tmp_path):
    """dummyprog.pdb's streams (exported by llvm-pdbutil), plus a nil and a
    multi-block stream, re-laid by the builder into 1 KB blocks in random
    order: llvm-pdbutil must see the same PDB, stream for stream."""
    src = fixtures_dir / "symstore-exe" / "inputs" / "dummyprog.pdb"
    streams: list[bytes | None] = _exported_streams(src, tmp_path)
    extra = bytes(range(256)) * 12  # 3 KB: spans blocks
    built = tmp_path / "built.pdb"
    built.write_bytes(build_msf7([*streams, None, extra], 1024, shuffle_seed=11))
    want, got = _pdbutil("dump", "--summary", "--streams", str(src)), _pdbutil("dump", "--summary", "--streams",
                                                                                str(built))
    assert re.search(r"Block Size: (\d+)", got).group(1) == "1024"
    assert re.search(r"Number of streams: (\d+)", got).group(1) == str(len(streams) + 2)
    for field in ("Signature", "Age", "GUID", "Features", "Has Debug Info", "Has Types", "Is stripped"):
        pattern = rf"{field}: (.*)"
        assert re.search(pattern, got).group(1) == re.search(pattern, want).group(1), field
    # llvm-pdbutil prints a nil stream's size as stored in the directory: 0xFFFFFFFF.
    assert _stream_lines(got) == [*_stream_lines(want), (len(streams), 0xFFFFFFFF), (len(streams) + 1, len(extra))]
    back = tmp_path / "back.bin"
    _pdbutil("export", f"--stream={len(streams) + 1}", f"--out={back}", str(built))
    assert back.read_bytes() == extra


def test_msf2_builder_read_by_pdbparse(tmp_path):
    try:
        import pdbparse
    except Exception as err:  # release 1.5 does not install on Python >= 3.12
        pytest.skip(f"optional: pdbparse not importable ({type(err).__name__})")
    # No nil stream: pdbparse reads a size of -1 as 4 GB.
    streams = [b"\0" * 10, struct.pack("<III", 19941610, 0x3A2B1C0D, 5), b"", b"y" * 1500, b"x" * 3000]
    path = tmp_path / "old.pdb"
    path.write_bytes(build_msf2(streams, 1024))
    pdb = pdbparse.parse(str(path), fast_load=True)
    assert type(pdb).__name__ == "PDB2"
    assert [s.data for s in pdb.streams] == streams

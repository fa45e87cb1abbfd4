"""Minidump reader: real dumps, cross-checked against the `minidump` package and
the PE files the dumps were made from; hostile input never escapes as anything
but FormatError."""

from __future__ import annotations

import io
import logging
import random
import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symtool.errors import FormatError
from symtool.formats.minidump import read_minidump, read_minidump_file
from symtool.formats.pe import read_pe

FIXTURE_DUMPS = ("symbolic-windows-mini.dmp", "rm-test.dmp", "rm-linux-mini.dmp")


def _reference(path: Path):
    """The `minidump` package's view (it logs tracebacks for PEB parsing of non-full dumps)."""
    from minidump.minidumpfile import MinidumpFile

    logging.getLogger().disabled = True
    try:
        return MinidumpFile.parse(str(path))
    finally:
        logging.getLogger().disabled = False


@pytest.mark.parametrize("name", FIXTURE_DUMPS)
def test_matches_minidump_package(fixtures_dir, name):
    path = fixtures_dir / "dumps" / name
    ours = read_minidump(path)
    ref = _reference(path)
    # The package calls the header's u32 at offset 20 "Reserved" (minidumpapiset.h: a union
    # of Reserved and TimeDateStamp).
    assert ours.timestamp == ref.header.Reserved
    # The package leaves out stream types it has no name for (Breakpad's 0x4767xxxx ones).
    from minidump.constants import MINIDUMP_STREAM_TYPE

    known = {t.value for t in MINIDUMP_STREAM_TYPE} - {0}
    assert [s for s in ours.streams if s[0] in known] == [
        (d.StreamType.value, d.Location.DataSize, d.Location.Rva) for d in ref.directories
        if d.StreamType.value != 0]
    assert ours.process_id == (ref.misc_info.ProcessId if ref.misc_info else None)
    assert ours.exception is not None
    exc = ref.exception.exception_records[0]
    assert ours.exception.code == exc.ExceptionRecord.ExceptionCode_raw
    assert ours.exception.address == exc.ExceptionRecord.ExceptionAddress
    assert ours.exception.thread_id == exc.ThreadId
    assert ours.exception.flags == exc.ExceptionRecord.ExceptionFlags
    assert ours.exception.parameters == list(exc.ExceptionRecord.ExceptionInformation)
    assert len(ours.modules) == len(ref.modules.modules)
    for mine, theirs in zip(ours.modules, ref.modules.modules):
        assert mine.name == theirs.name
        assert mine.base == theirs.baseaddress
        assert mine.size == theirs.size
        assert mine.timestamp == theirs.timestamp
        assert mine.checksum == theirs.checksum
        assert mine.error is None
    si = ref.sysinfo
    assert (ours.system.major, ours.system.minor, ours.system.build) == (si.MajorVersion, si.MinorVersion,
                                                                         si.BuildNumber)
    assert (ours.system.processor_level, ours.system.processor_revision, ours.system.cpus) == (
        si.ProcessorLevel, si.ProcessorRevision, si.NumberOfProcessors)
    assert ours.system.platform_id == si.PlatformId.value
    assert ours.system.arch == si.ProcessorArchitecture.value


def test_windows_crash_dump_identities_match_the_pe(fixtures_dir):
    dump = read_minidump(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp")
    assert dump.platform == "windows" and dump.system.cpu == "x86"
    assert dump.exception.code_hex == "C0000005"
    assert dump.exception.parameters == [1, 0x45]  # a write to 0x45
    crash = dump.module_at(dump.exception.address)
    assert crash is not None and crash.file_name == "crash.exe"
    pe = read_pe(fixtures_dir / "pe-pdb" / "crash.exe")
    assert crash.code_id == pe.code_id.index()
    assert crash.debug_id.index() == pe.primary_codeview.debug_id.index()
    assert crash.pdb_path == pe.primary_codeview.pdb_path
    assert crash.pdb_name == "crash.pdb"
    # Every Windows module of this dump names its PDB by an RSDS record.
    assert all(m.codeview_kind == "RSDS" and m.debug_id is not None for m in dump.modules)


def test_xp_dump(fixtures_dir):
    dump = read_minidump(fixtures_dir / "dumps" / "rm-test.dmp")
    assert dump.system.os.startswith("Windows NT 5.1.2600")
    assert "Service Pack 2" in dump.system.os
    main = dump.modules[0]
    assert main.file_name == "test_app.exe" and main.pdb_name == "test_app.pdb"


def test_linux_dump_is_recognised(fixtures_dir):
    dump = read_minidump(fixtures_dir / "dumps" / "rm-linux-mini.dmp")
    assert dump.platform == "linux"
    assert dump.system.platform_id == 0x8201
    assert dump.system.os.startswith("Linux 4.9.60")
    assert dump.exception.code == 11  # SIGSEGV: Breakpad stores the signal number
    assert all(m.codeview_kind == "ELF" and m.build_id for m in dump.modules)
    assert dump.modules[0].name == "/work/linux/build/crash"
    # The build id is the code id; the Breakpad debug id is its first 16 bytes as a GUID + age 0.
    m = dump.modules[0]
    assert m.code_id == m.build_id.hex()
    assert m.debug_id.guid == uuid.UUID(bytes_le=m.build_id[:16]) and m.debug_id.age == 0
    assert "LinuxMaps" in dump.stream_names()


# --- hostile input ---------------------------------------------------------------------------------

def _read_bytes(data: bytes):
    try:
        return read_minidump_file(io.BytesIO(data), "hostile.dmp", len(data))
    except FormatError as err:
        assert err.path == "hostile.dmp"
        return None


@pytest.mark.parametrize("name", FIXTURE_DUMPS)
def test_every_truncation(fixtures_dir, name):
    data = (fixtures_dir / "dumps" / name).read_bytes()
    full = read_minidump_file(io.BytesIO(data), "x", len(data))
    for cut in sorted({0, 1, 3, 4, 31, 32, 33, *range(0, len(data), 97)}):
        got = _read_bytes(data[:cut])
        if got is not None:
            # What is still read must agree with the full file.
            assert got.timestamp == full.timestamp


def test_not_a_minidump():
    for data in (b"", b"MDMP", b"PK\x03\x04" + b"\0" * 100, b"\0" * 64):
        with pytest.raises(FormatError):
            read_minidump_file(io.BytesIO(data), "x", len(data))


def test_hostile_counts_are_bounded(fixtures_dir):
    data = bytearray((fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").read_bytes())
    # Stream count of 2**32-1 and a module count of 2**32-1: refused, not looped over.
    bad = bytearray(data)
    struct.pack_into("<I", bad, 8, 0xFFFFFFFF)
    assert _read_bytes(bytes(bad)) is None
    dump = read_minidump_file(io.BytesIO(bytes(data)), "x", len(data))
    mod_rva = next(rva for t, _s, rva in dump.streams if t == 4)
    bad = bytearray(data)
    struct.pack_into("<I", bad, mod_rva, 0xFFFFFFFF)
    assert _read_bytes(bytes(bad)) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(FIXTURE_DUMPS), n=st.integers(1, 64))
def test_mutated_real_dumps(fixtures_dir, seed, which, n):
    data = bytearray((fixtures_dir / "dumps" / which).read_bytes())
    rng = random.Random(seed)
    # Mutations concentrated on the header, directory and stream headers, where they matter.
    for _ in range(n):
        pos = rng.randrange(0, len(data)) if rng.random() < 0.5 else rng.randrange(0, min(len(data), 2048))
        data[pos] = rng.randrange(256)
    _read_bytes(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _read_bytes(b"MDMP\x93\xa7\0\0" + data)
    _read_bytes(data)

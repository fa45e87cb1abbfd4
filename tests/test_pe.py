"""PE reader (symtool/formats/pe.py) on real images, cross-checked with
llvm-readobj; a /Brepro image linked here with clang + lld-link; hostile
variants of real images."""

from __future__ import annotations

import random
import re
import struct
import subprocess

import pytest

from conftest import need_tool
from symtool.errors import FormatError
from symtool.formats.detect import detect, read_identity
from symtool.formats.pe import read_pe, read_pe_bytes

FIXTURE_PES = [
    "pe-pdb/crash.exe",
    "pe-pdb/dump_syms_regtest64.exe",
    "symstore-exe/inputs/dummyprog.exe",
    "symstore-exe/inputs/dummylib.dll",
]


def readobj(path) -> dict:
    """File header fields and CodeView entries as llvm-readobj prints them."""
    tool = need_tool("llvm-readobj")
    out = subprocess.run([tool, "--file-headers", "--coff-debug-directory", str(path)],
                         capture_output=True, text=True, check=True).stdout
    header = out[: out.index("DebugDirectory")] if "DebugDirectory" in out else out
    res = {
        "machine": int(re.search(r"Machine: \S+ \((0x[0-9A-Fa-f]+)\)", header).group(1), 16),
        "timestamp": int(re.search(r"TimeDateStamp: .*\((0x[0-9A-Fa-f]+)\)", header).group(1), 16),
        "size_of_image": int(re.search(r"SizeOfImage: (\d+)", header).group(1)),
        "image_base": int(re.search(r"ImageBase: (0x[0-9A-Fa-f]+)", header).group(1), 16),
        "is_64": re.search(r"Magic: (0x[0-9A-Fa-f]+)", header).group(1).upper() == "0X20B",
        "codeview": [],
        "types": [int(t, 16) for t in re.findall(r"Type: \S+ \((0x[0-9A-Fa-f]+)\)", out[len(header):])],
    }
    for m in re.finditer(r"PDBGUID: \(([0-9A-F ]+)\)\s+PDBAge: (\d+)\s+PDBFileName: ([^\n]*)", out):
        res["codeview"].append((bytes.fromhex(m.group(1).replace(" ", "")), int(m.group(2)), m.group(3).strip()))
    return res


def assert_agrees_with_readobj(path) -> None:
    info = read_pe(path)
    want = readobj(path)
    assert (info.machine, info.timestamp, info.size_of_image, info.image_base, info.is_64) == (
        want["machine"], want["timestamp"], want["size_of_image"], want["image_base"], want["is_64"])
    assert info.debug_types == want["types"]
    got = [(c.debug_id.guid.bytes_le, c.debug_id.age, c.pdb_path) for c in info.codeview]
    assert got == want["codeview"]
    assert info.index == f"{want['timestamp']:08X}{want['size_of_image']:x}"


@pytest.mark.parametrize("rel", FIXTURE_PES)
def test_fixture_pe_agrees_with_llvm_readobj(fixtures_dir, rel):
    assert detect(fixtures_dir / rel) == "pe"
    assert_agrees_with_readobj(fixtures_dir / rel)


def test_pe_store_keys_equal_symstore_exe_directories(fixtures_dir):
    store = fixtures_dir / "symstore-exe/stores/pe_store"
    # The directories symstore.exe made: TimeDateStamp %08X + SizeOfImage %x.
    for name, index in (("dummyprog.exe", "5617D4FE8000"), ("dummylib.dll", "5617D5638000")):
        assert [entry.name for entry in (store / name).iterdir()] == [index]
        assert read_identity(store / name / index / name).index == index
        assert read_pe(fixtures_dir / "symstore-exe/inputs" / name).index == index


def test_fixture_details(fixtures_dir):
    crash = read_pe(fixtures_dir / "pe-pdb/crash.exe")
    assert crash.machine_name == "x86" and not crash.is_64 and not crash.is_dll
    cv = crash.primary_codeview
    assert cv.pdb_name == "crash.pdb" and cv.debug_id.index() == "3249D99D0C4049318610F4E4FB0B69361"
    x64 = read_pe(fixtures_dir / "pe-pdb/dump_syms_regtest64.exe")
    assert x64.machine_name == "x64" and x64.is_64 and x64.primary_codeview.debug_id.age == 3
    assert read_pe(fixtures_dir / "symstore-exe/inputs/dummylib.dll").is_dll


def test_sample_build_exes_agree_with_llvm_readobj(sample_build):
    for profile in ("release", "dist"):
        for name in ("crash-me", "hello"):
            assert_agrees_with_readobj(sample_build.exe(name, profile))
    cv = read_pe(sample_build.exe("crash-me")).primary_codeview
    assert cv.pdb_path == "crash_me.pdb"  # rustc: /PDBALTPATH, file name only


def test_brepro_image_has_repro_entry(tmp_path):
    """A real /Brepro link: lld-link then writes a REPRO entry and a hash as TimeDateStamp."""
    clang, lld = need_tool("clang"), need_tool("lld-link")
    (tmp_path / "m.c").write_text("int mainCRTStartup(void) { return 42; }\n")
    subprocess.run([clang, "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-c", "m.c", "-o", "m.obj"],
                   cwd=tmp_path, check=True, capture_output=True)
    subprocess.run([lld, "/nologo", "/debug", "/Brepro", "/entry:mainCRTStartup", "/subsystem:console",
                    "/nodefaultlib", "/out:m.exe", "/pdb:m.pdb", "m.obj"], cwd=tmp_path, check=True,
                   capture_output=True)
    info = read_pe(tmp_path / "m.exe")
    assert info.repro and 16 in info.debug_types
    assert_agrees_with_readobj(tmp_path / "m.exe")
    from symtool.formats.pdb import read_pdb

    assert read_pdb(tmp_path / "m.pdb").index == info.primary_codeview.debug_id.index()


# -- patching helpers --------------------------------------------------------------

def pe_layout(data: bytes) -> dict:
    """File offsets of the fields hostile variants overwrite (found with pefile)."""
    import pefile

    pe = pefile.PE(data=data, fast_load=True)
    dd = pe.OPTIONAL_HEADER.DATA_DIRECTORY[6]
    debug_off = pe.get_offset_from_rva(dd.VirtualAddress)
    entries = []
    for k in range(dd.Size // 28):
        at = debug_off + 28 * k
        entries.append((at, struct.unpack_from("<IIHHIIII", data, at)))
    cv_at = next(at for at, e in entries if e[4] == 2)
    sec = next(s for s in pe.sections
               if s.PointerToRawData <= entries[0][1][7] < s.PointerToRawData + s.SizeOfRawData)
    return {
        "e_lfanew": pe.DOS_HEADER.e_lfanew,
        "datadir_debug": dd.get_file_offset(),
        "debug_off": debug_off,
        "cv_entry": cv_at,
        "cv_section_end": sec.PointerToRawData + sec.SizeOfRawData,
        "num_sections": pe.FILE_HEADER.get_file_offset() + 2,
    }


def patched(data: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def hostile_pes(fixtures_dir) -> dict[str, bytes]:
    real = (fixtures_dir / "pe-pdb/crash.exe").read_bytes()
    lay = pe_layout(real)
    cv = lay["cv_entry"]
    return {
        "empty": b"",
        "mz-only": b"MZ",
        "truncated-dos-header": real[:40],
        "truncated-before-debug": real[: lay["debug_off"] - 100],
        "truncated-in-codeview": real[: struct.unpack_from("<I", real, cv + 24)[0] + 10],
        "e_lfanew-past-eof": patched(real, 0x3C, "<I", 0x7FFFFFF0),
        "random-after-headers": real[:0x400] + random.Random(5).randbytes(len(real) - 0x400),
        "num-sections-huge": patched(real, lay["num_sections"], "<H", 0xFFFF),
        "debug-dir-size-huge": patched(real, lay["datadir_debug"] + 4, "<I", 0xFFFFFFF0),
        "debug-dir-rva-past-image": patched(real, lay["datadir_debug"], "<I", 0x7FFFFFF0),
        "codeview-size-past-eof": patched(real, cv + 16, "<I", 0x7FFFFF00),
        "codeview-pointer-past-eof": patched(real, cv + 24, "<I", 0x7FFFFF00),
        "codeview-off-its-section": patched(real, cv + 24, "<I", lay["cv_section_end"] - 8),
        "codeview-truncated-rsds": patched(real, cv + 16, "<I", 10),
    }


# Damage that leaves a readable image (asserted by value in test_damage_that_leaves_a_readable_image;
# test_ident_verify skips these too).
MAY_STILL_READ = {"random-after-headers", "num-sections-huge"}


def test_hostile_pes_raise_format_error(fixtures_dir, tmp_path):
    for name, data in hostile_pes(fixtures_dir).items():
        if name in MAY_STILL_READ:
            continue
        p = tmp_path / f"{name}.exe"
        p.write_bytes(data)
        with pytest.raises(FormatError) as err:
            read_pe(p)
        assert str(p) in str(err.value), name


def test_damage_that_leaves_a_readable_image(fixtures_dir):
    original = (fixtures_dir / "pe-pdb/crash.exe").read_bytes()
    real = read_pe_bytes(original)
    pes = hostile_pes(fixtures_dir)
    # pefile caps the section count: the image reads as the original.
    capped = read_pe_bytes(pes["num-sections-huge"])
    assert (capped.index, capped.codeview, capped.debug_types) == (real.index, real.codeview, real.debug_types)
    # Random bytes after the headers: the identity in the headers stands, and the debug
    # directory's four entries now have random types (none CodeView): no PDB is named.
    data = pes["random-after-headers"]
    debug_off = pe_layout(original)["debug_off"]
    randomized = read_pe_bytes(data)
    assert randomized.index == real.index and randomized.codeview == []
    assert randomized.debug_types == [struct.unpack_from("<I", data, debug_off + 28 * k + 12)[0] for k in range(4)]
    assert not {2, 16, 19} & set(randomized.debug_types)


def test_codeview_off_its_section_is_named(fixtures_dir):
    data = hostile_pes(fixtures_dir)["codeview-off-its-section"]
    with pytest.raises(FormatError, match="runs off its section .rdata"):
        read_pe_bytes(data, "x.exe")


def test_nb10_record(fixtures_dir):
    """An NB10 record (PDB 2.0 era) written over the RSDS record of a real image."""
    real = (fixtures_dir / "symstore-exe/inputs/dummyprog.exe").read_bytes()
    lay = pe_layout(real)
    size = struct.unpack_from("<I", real, lay["cv_entry"] + 16)[0]
    ptr = struct.unpack_from("<I", real, lay["cv_entry"] + 24)[0]
    record = b"NB10" + struct.pack("<III", 0, 0x31C0FFEE, 0x2B) + b"old.pdb\0"
    data = bytearray(real)
    data[ptr:ptr + len(record)] = record
    struct.pack_into("<I", data, lay["cv_entry"] + 16, len(record))
    info = read_pe_bytes(bytes(data))
    cv = info.primary_codeview
    assert cv.debug_id.kind == "nb10" and cv.pdb_name == "old.pdb"
    assert cv.debug_id.index() == "31C0FFEE2b"
    assert size > len(record)


def test_unknown_codeview_signature_is_skipped_not_misread(fixtures_dir):
    real = (fixtures_dir / "symstore-exe/inputs/dummyprog.exe").read_bytes()
    lay = pe_layout(real)
    ptr = struct.unpack_from("<I", real, lay["cv_entry"] + 24)[0]
    info = read_pe_bytes(real[:ptr] + b"NB11" + real[ptr + 4:])
    assert info.codeview == [] and info.debug_types == [2]
    assert info.primary_codeview is None


def test_image_without_debug_directory(fixtures_dir):
    real = (fixtures_dir / "symstore-exe/inputs/dummyprog.exe").read_bytes()
    lay = pe_layout(real)
    info = read_pe_bytes(patched(real, lay["datadir_debug"], "<II", 0, 0))
    assert info.codeview == [] and info.index == "5617D4FE8000"


def test_detect_ignores_extension(fixtures_dir, tmp_path):
    renamed = tmp_path / "driver.sys.bak"
    renamed.write_bytes((fixtures_dir / "pe-pdb/crash.exe").read_bytes())
    assert detect(renamed) == "pe"
    pdb_named_exe = tmp_path / "looks.exe"
    pdb_named_exe.write_bytes((fixtures_dir / "pe-pdb/crash.pdb").read_bytes())
    assert read_identity(pdb_named_exe).kind == "pdb"
    dos = tmp_path / "dos.exe"
    dos.write_bytes(b"MZ" + b"\0" * 62 + b"\0" * 64)
    with pytest.raises(FormatError, match="without a PE header"):
        read_identity(dos)
    assert read_identity(renamed).index == "5AB380779000"  # crash.exe's, whatever the file is called


# -- the header reader against pefile ------------------------------------------------------

def pefile_reading(data: bytes):
    """What pefile (a reader nobody here wrote) makes of an image's headers: (machine,
    timestamp, SizeOfImage, ImageBase, PE32+, DLL, debug directory (RVA, size), its file
    offset), or None where pefile refuses the image."""
    import pefile

    try:
        pe = pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError:
        return None
    dirs = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    debug = (dirs[6].VirtualAddress, dirs[6].Size) if len(dirs) > 6 else None
    try:
        offset = pe.get_offset_from_rva(debug[0]) if debug and debug[0] else None
    except pefile.PEFormatError:
        offset = "outside"
    return (pe.FILE_HEADER.Machine, pe.FILE_HEADER.TimeDateStamp, pe.OPTIONAL_HEADER.SizeOfImage,
            pe.OPTIONAL_HEADER.ImageBase, pe.OPTIONAL_HEADER.Magic == 0x20B,
            bool(pe.FILE_HEADER.Characteristics & 0x2000), debug, offset)


def our_reading(data: bytes):
    from symtool.formats.pe import IMAGE_DIRECTORY_ENTRY_DEBUG, _Headers

    try:
        pe = _Headers(data, "x.exe")
    except FormatError:
        return None
    dirs = pe.directories
    debug = dirs[IMAGE_DIRECTORY_ENTRY_DEBUG] if len(dirs) > IMAGE_DIRECTORY_ENTRY_DEBUG else None
    offset = None
    if debug and debug[0]:
        offset = pe.offset_of_rva(debug[0])
        offset = "outside" if offset is None else offset
    return (pe.machine, pe.timestamp, pe.size_of_image, pe.image_base, pe.is_64,
            bool(pe.characteristics & 0x2000), debug, offset)


def test_headers_read_as_pefile_reads_them(fixtures_dir):
    """The struct reader of symtool.formats.pe (which replaced pefile on this path) against
    pefile on every fixture image, the hostile variants, and each fixture with the bytes of its
    headers overwritten one field-sized piece at a time: the same fields, the same debug directory
    and its file offset, and the same images refused."""
    rng = random.Random(25)
    images = {rel: (fixtures_dir / rel).read_bytes() for rel in FIXTURE_PES}
    cases = dict(images)
    cases.update({f"hostile {k}": v for k, v in hostile_pes(fixtures_dir).items() if len(v) >= 64})
    for rel, real in images.items():
        header_end = min(len(real), 0x400)
        for k in range(300):
            at = rng.randrange(0x3C, header_end - 4)
            cases[f"{rel} +{at:#x} #{k}"] = patched(real, at, "<I", rng.choice(
                [0, 0xFFFFFFFF, rng.randrange(1 << 32), rng.randrange(1 << 12), rng.randrange(1 << 20)]))
    differ = [name for name, data in cases.items() if our_reading(data) != pefile_reading(data)]
    assert not differ, (differ[:5], [(our_reading(cases[n]), pefile_reading(cases[n])) for n in differ[:2]])

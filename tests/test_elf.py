"""ELF, .dwp and .dwo identities (symtool/formats/elf.py, dwarf.py) and `symtool id`/`verify`
on them, checked against LLVM's readers, sentry-cli and objcopy on real builds of samples/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import FIXTURES_DIR, need_tool
from symtool.errors import FormatError
from symtool.formats.elf import debuglink_crc, read_elf, read_elf_bytes
from symtool.store.layout import (
    debuginfod_key, ssqp_dwarf_key, ssqp_elf_debug_key, ssqp_elf_key, ssqp_macho_key,
)
from symtool.verify import DWP_MISSING, DWP_NOT_NEEDED, MATCH, MISMATCH, NO_BUILD_ID, verify_paths

FX = FIXTURES_DIR / "elf-macho"


def symtool(*args, env=None) -> subprocess.CompletedProcess:
    return symtool_in_process(*map(str, args), env=env, timeout=120)


def ident(*files) -> list[dict]:
    proc = symtool("id", "--json", *files)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def readelf_build_id(path: Path) -> str | None:
    out = subprocess.run([need_tool("llvm-readelf"), "--notes", str(path)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1) if m else None


def dwarfdump_cu_index(path: Path) -> tuple[int, set[str]]:
    out = subprocess.run([need_tool("llvm-dwarfdump"), "--debug-cu-index", str(path)], capture_output=True,
                         text=True, check=True).stdout
    version = int(re.search(r"version = (\d+)", out).group(1))
    return version, set(re.findall(r"^\s*\d+ 0x([0-9a-f]{16}) ", out, re.M))


def dwarfdump_skeleton_ids(path: Path) -> set[str]:
    out = subprocess.run([need_tool("llvm-dwarfdump"), "--debug-info", str(path)], capture_output=True,
                         text=True, check=True).stdout
    ids = re.findall(r"DW_AT_GNU_dwo_id\s+\(0x([0-9a-f]{16})\)", out)
    ids += re.findall(r"DW_UT_skeleton.*DWO_id = 0x([0-9a-f]{16})", out)
    return set(ids)


# -- identities against LLVM -------------------------------------------------------------

@pytest.mark.parametrize("variant, index_version", [("dwarf4", 2), ("dwarf5", 5)])
def test_build_id_and_dwo_ids_agree_with_llvm(linux_builds, variant, index_version):
    build = getattr(linux_builds, variant)
    binary, dwp = ident(build.bin(), build.dwp())
    assert binary["kind"] == "elf" and binary["machine"] == "x86_64"
    assert binary["build_id"] == binary["index"] == readelf_build_id(build.bin())
    assert len(binary["build_id"]) == 40  # lld's default --build-id is a 20-byte hash
    skeletons = set(binary["dwo_ids"])
    assert len(skeletons) == 2 and skeletons == dwarfdump_skeleton_ids(build.bin())
    assert dwp["kind"] == "dwp" and dwp["index"] is None and dwp["store_path"] is None
    version, signatures = dwarfdump_cu_index(build.dwp())
    assert dwp["cu_index_version"] == version == index_version
    assert set(dwp["dwo_ids"]) == signatures == skeletons


def test_id_json_keys_lead_with_those_of_pe_and_pdb(linux_builds):
    rec, = ident(linux_builds.dwarf4.bin())
    assert list(rec)[:4] == ["path", "kind", "index", "store_path"]
    bid = rec["build_id"]
    assert rec["store_path"] == f"crash-me/elf-buildid-{bid}/crash-me" == ssqp_elf_key("crash-me", bid)
    assert [k["key"] for k in rec["store_keys"]] == [
        f"crash-me/elf-buildid-{bid}/crash-me", f"debuginfod/buildid/{bid}/executable",
        f"_.debug/elf-buildid-sym-{bid}/_.debug", f"debuginfod/buildid/{bid}/debuginfo",
    ]


def test_text_output_names_each_identity(linux_builds):
    build = linux_builds.dwarf5
    proc = symtool("id", build.bin(), build.dwp())
    assert proc.returncode == 0, proc.stderr
    bid = readelf_build_id(build.bin())
    assert f"build-id {bid}" in proc.stdout
    assert f"_.debug/elf-buildid-sym-{bid}/_.debug" in proc.stdout
    assert "(.debug_cu_index v5)" in proc.stdout
    for sig in dwarfdump_cu_index(build.dwp())[1]:
        assert f"dwo-id {sig}" in proc.stdout


def test_line_tables_only_has_no_skeletons_and_an_empty_dwp(linux_builds):
    build = linux_builds.line_tables
    binary, dwp = ident(build.bin(), build.dwp())
    assert binary["has_dwarf"] and binary["dwo_ids"] == [] and dwarfdump_skeleton_ids(build.bin()) == set()
    assert dwp["kind"] == "dwp" and dwp["dwo_ids"] == []


def test_separate_debug_file_and_debuglink(linux_builds, tmp_path):
    objcopy = need_tool("llvm-objcopy")
    binary = tmp_path / "crash-me"
    shutil.copy(linux_builds.dwarf4.bin(), binary)
    debug = tmp_path / "crash-me.debug"
    stripped = tmp_path / "crash-me.stripped"
    subprocess.run([objcopy, "--only-keep-debug", str(binary), str(debug)], check=True)
    subprocess.run([objcopy, "--strip-debug", f"--add-gnu-debuglink={debug}", str(binary), str(stripped)],
                   check=True)
    d, s = read_elf(debug), read_elf(stripped)
    assert d.index == s.index == readelf_build_id(binary)
    assert d.is_debug_only and d.has_dwarf and not d.has_code
    assert {f"{x:016x}" for x in d.dwo_ids} == dwarfdump_skeleton_ids(binary)
    assert not s.has_dwarf and s.has_code and s.dwo_ids == []
    # objcopy wrote the CRC-32 of the debug file's content: gdb checks exactly that.
    assert s.debuglink == ("crash-me.debug", zlib.crc32(debug.read_bytes())) == ("crash-me.debug", debuglink_crc(debug))
    rec, = ident(debug)
    assert rec["debug_only"] and rec["store_path"] == ssqp_elf_debug_key(d.index)
    assert [k["key"] for k in rec["store_keys"]] == [ssqp_elf_debug_key(d.index),
                                                     f"debuginfod/{debuginfod_key(d.index, 'debuginfo')}"]


def test_zlib_compressed_debug_sections_give_the_same_ids(linux_builds, tmp_path):
    objcopy = need_tool("llvm-objcopy")
    for build in (linux_builds.dwarf4, linux_builds.dwarf5):
        packed = tmp_path / "packed"
        subprocess.run([objcopy, "--compress-debug-sections=zlib", str(build.bin()), str(packed)], check=True)
        assert "C" in subprocess.run([need_tool("llvm-readelf"), "-S", str(packed)], capture_output=True,
                                     text=True).stdout.split(".debug_info", 1)[1].splitlines()[0]
        assert read_elf(packed).dwo_ids == read_elf(build.bin()).dwo_ids


@pytest.mark.parametrize("triple", ["i386-linux-gnu", "powerpc64-linux-gnu", "aarch64-linux-gnu"])
@pytest.mark.parametrize("dwarf", ["-gdwarf-4", "-gdwarf-5"])
def test_other_classes_and_byte_orders(tmp_path, triple, dwarf):
    """32-bit and big-endian ELF, GNU (DWARF 4) and standard (DWARF 5) split units, from clang + ld.lld."""
    clang, lld = need_tool("clang"), need_tool("ld.lld")
    src = tmp_path / "m.c"
    src.write_text("static int helper(int x) { return x * 3 + 1; }\nint answer(int x) { return helper(x) + 41; }\n"
                   "void _start(void) { answer(1); for (;;) {} }\n")
    obj, exe = tmp_path / "m.o", tmp_path / "m"
    subprocess.run([clang, "-target", triple, dwarf, "-gsplit-dwarf", "-O1", "-c", str(src), "-o", str(obj)],
                   check=True, cwd=tmp_path)
    subprocess.run([lld, "--build-id=sha1", "-e", "_start", str(obj), "-o", str(exe)], check=True)
    info = read_elf(exe)
    assert info.index == readelf_build_id(exe)
    assert {f"{x:016x}" for x in info.dwo_ids} == dwarfdump_skeleton_ids(exe) != set()
    dwo = read_elf(tmp_path / "m.dwo")
    assert dwo.kind == "dwo" and dwo.dwo_ids == info.dwo_ids
    assert info.endian == (">" if triple.startswith("powerpc64") else "<")
    assert info.is_64 == (not triple.startswith("i386"))


def test_sentry_cli_agrees_on_build_ids(linux_builds):
    sentry = need_tool("sentry-cli")
    for build in (linux_builds.dwarf4, linux_builds.dwarf5):
        out = subprocess.run([sentry, "debug-files", "check", str(build.bin())], capture_output=True, text=True,
                             check=True).stdout
        assert re.search(r"Code ID:\s+([0-9a-f]+)", out).group(1) == read_elf(build.bin()).index


def test_store_keys_are_lower_case_and_validated():
    bid = "77CFA307D69BB3EA43B535D505FAD02CD9B38B28"
    assert ssqp_elf_key("Crash-Me", bid) == f"crash-me/elf-buildid-{bid.lower()}/crash-me"
    assert ssqp_elf_debug_key(bid) == f"_.debug/elf-buildid-sym-{bid.lower()}/_.debug"
    uuid = "4C4C4481-5555-3144-A13E-E218B20B0C4B"
    assert ssqp_macho_key("crash-me", uuid) == "crash-me/mach-uuid-4c4c448155553144a13ee218b20b0c4b/crash-me"
    assert ssqp_dwarf_key(uuid) == "_.dwarf/mach-uuid-sym-4c4c448155553144a13ee218b20b0c4b/_.dwarf"
    assert debuginfod_key(bid, "debuginfo") == f"buildid/{bid.lower()}/debuginfo"
    for bad in ("", "abc", "zz" * 10, "../" * 10):
        with pytest.raises(FormatError):
            ssqp_elf_debug_key(bad)
    with pytest.raises(FormatError):
        ssqp_dwarf_key("4c4c4481")  # a UUID is 16 bytes
    from symtool.errors import UnsafeNameError

    with pytest.raises(UnsafeNameError):
        ssqp_elf_key("../x", bid)


# -- fixtures (tests/fixtures/elf-macho) and malformed input -------------------------------

def test_fixtures_read_as_recorded():
    assert read_elf(FX / "crash-me.dwarf4.dwp").cu_index_version == 2
    assert read_elf(FX / "crash-me.dwarf5.dwp").cu_index_version == 5
    for v in ("dwarf4", "dwarf5"):
        assert sorted(read_elf(FX / f"crash-me.{v}").dwo_ids) == sorted(read_elf(FX / f"crash-me.{v}.dwp").dwo_ids)


def test_cu_index_signature_cross_checked_with_the_unit(tmp_path):
    """A .dwp whose index names a signature the unit does not carry is malformed, not trusted."""
    data = bytearray((FX / "crash-me.dwarf5.dwp").read_bytes())
    sig = read_elf_bytes(bytes(data)).dwo_ids[0].to_bytes(8, "little")
    at = data.find(sig)
    index_at = data.find(sig, at + 1) if data.count(sig) > 1 else at
    data[index_at] ^= 0xFF  # the first occurrence after the header is the index (or the unit)
    with pytest.raises(FormatError, match="DWO ID|unit index"):
        read_elf_bytes(bytes(data))


@pytest.mark.parametrize("cut", [1, 4, 20, 63, 64, 200, 1000])
def test_truncated_elf_is_a_format_error(cut):
    data = (FX / "crash-me.dwarf4").read_bytes()[:cut]
    with pytest.raises(FormatError):
        read_elf_bytes(data)


def test_truncated_files_exit_2_with_one_line_each(tmp_path):
    names = []
    for src in ("crash-me.dwarf4", "crash-me.dwarf5.dwp", "crash-me.arm64", "crash-me.universal"):
        p = tmp_path / src
        p.write_bytes((FX / src).read_bytes()[:300])
        names.append(p)
    proc = symtool("id", *names)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(names) and all(line.startswith("error: ") for line in lines), proc.stderr


# -- verify ------------------------------------------------------------------------------

def test_verify_pairs_binaries_with_their_dwp(linux_builds):
    for build in (linux_builds.dwarf4, linux_builds.dwarf5):
        verdicts = verify_paths([build.out])
        statuses = {Path(v.binary).name: v.status for v in verdicts}
        assert {"crash-me", "hello"} <= set(statuses) and set(statuses.values()) == {MATCH}, statuses
        v = next(v for v in verdicts if v.binary.endswith("crash-me"))
        assert v.debug_file == str(build.dwp()) and v.missing_ids == [] and v.extra_ids == []
    proc = symtool("verify", linux_builds.dwarf5.out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^(\d+) binaries: \1 match$", proc.stdout, re.M), proc.stdout


def test_verify_reports_a_dwp_from_another_build(linux_builds):
    binary, other = linux_builds.dwarf4.bin(), linux_builds.dwarf5.dwp()
    proc = symtool("verify", "--json", binary, other)
    assert proc.returncode == 1, proc.stderr
    v, = json.loads(proc.stdout)
    assert v["status"] == MISMATCH and v["mismatch"] == "dwo-id" and v["format"] == "elf"
    assert set(v["missing_ids"]) == {f"{x:016x}" for x in read_elf(binary).dwo_ids}
    assert set(v["extra_ids"]) == {f"{x:016x}" for x in read_elf(other).dwo_ids}


def test_verify_dwp_missing_not_needed_and_no_build_id(linux_builds, tmp_path):
    lone = tmp_path / "crash-me"
    shutil.copy(linux_builds.dwarf4.bin(), lone)
    v, = verify_paths([lone])
    assert v.status == DWP_MISSING and len(v.missing_ids) == 2 and v.searched == [str(lone) + ".dwp"]
    statuses = {Path(v.binary).name: v.status for v in verify_paths([linux_builds.line_tables.out])}
    assert statuses["crash-me"] == statuses["hello"] == DWP_NOT_NEEDED
    # Not always: crash-deep (an inlined function) gets a skeleton unit even at line-tables-only, its
    # inline records going to the .dwp; verify pairs it like any other.
    assert set(statuses.values()) <= {DWP_NOT_NEEDED, MATCH}
    assert symtool("verify", linux_builds.line_tables.out).returncode == 0
    v, = verify_paths([linux_builds.no_build_id.bin()])
    assert v.status == NO_BUILD_ID and "--build-id" in v.reason and v.build_id is None
    proc = symtool("verify", linux_builds.no_build_id.bin())
    assert proc.returncode == 1 and "no-build-id" in proc.stdout


def test_verify_pairs_given_dwp_by_name(linux_builds, tmp_path):
    """Two binaries and one .dwp: crash-me.dwp is compared with crash-me (a mismatch, reported);
    a .dwp named after no binary given is a usage error."""
    d4, d5 = linux_builds.dwarf4, linux_builds.dwarf5
    proc = symtool("verify", d4.bin(), d4.bin("hello"), d5.dwp())
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"mismatch\s+\S+/crash-me: ", proc.stdout) and re.search(r"match\s+\S+/hello: ", proc.stdout)
    stray = tmp_path / "other.dwp"
    shutil.copy(d5.dwp(), stray)
    proc = symtool("verify", d4.bin(), d4.bin("hello"), stray)
    assert proc.returncode == 2 and "other.dwp" in proc.stderr and "Traceback" not in proc.stderr

"""Mach-O identities (symtool/formats/macho.py): LC_UUID per slice, thin, fat (CAFEBABE) and
fat64 (CAFEBABF), MH_DSYM; `symtool id` and `verify` with .dSYM bundles, checked against
llvm-dwarfdump --uuid, llvm-lipo and sentry-cli on real apple-darwin builds of samples/."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import FIXTURES_DIR, need_tool
from symtool.errors import FormatError
from symtool.formats.macho import FAT_ARCH, FAT_ARCH_64, dsym_dwarf_files, read_macho, read_macho_bytes
from symtool.verify import DSYM_MISSING, MATCH, MISMATCH, verify_paths

FX = FIXTURES_DIR / "elf-macho"


def symtool(*args) -> subprocess.CompletedProcess:
    return symtool_in_process(*map(str, args), timeout=120)


def dwarfdump_uuids(path: Path) -> dict[str, str]:
    """arch -> UUID (lower-case hex, no dashes) as llvm-dwarfdump --uuid prints them."""
    out = subprocess.run([need_tool("llvm-dwarfdump"), "--uuid", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {arch: u.replace("-", "").lower() for u, arch in re.findall(r"UUID: ([0-9A-F-]{36}) \((\w+)\)", out)}


def lipo(out: Path, *slices: Path) -> Path:
    subprocess.run([need_tool("llvm-lipo"), "-create", *map(str, slices), "-output", str(out)], check=True)
    return out


def fat64_of(fat: bytes) -> bytes:
    """The same slices behind a CAFEBABF header (64-bit offsets), as `lipo -fat64` writes it."""
    magic, n = struct.unpack_from(">II", fat)
    assert magic == 0xCAFEBABE
    arches = [FAT_ARCH.unpack_from(fat, 8 + k * FAT_ARCH.size) for k in range(n)]
    head = struct.pack(">II", 0xCAFEBABF, n)
    head += b"".join(FAT_ARCH_64.pack(c, s, off, size, align, 0) for c, s, off, size, align in arches)
    assert len(head) <= min(a[2] for a in arches)
    return head + fat[len(head):]


def test_thin_binaries_and_dsyms_agree_with_dwarfdump(mac_builds):
    for build, arch in ((mac_builds.arm64, "arm64"), (mac_builds.x86_64, "x86_64")):
        info = read_macho(build.bin())
        assert [s.arch for s in info.slices] == [arch] and not info.fat and not info.is_dsym
        assert info.uuids() == dwarfdump_uuids(build.bin())
        assert build.dsym().is_symlink()  # cargo's X.dSYM points into deps/
        dwarf, = dsym_dwarf_files(build.dsym())
        assert dwarf.name.startswith("crash_me-")  # <crate>-<hash>, not the binary's name
        d = read_macho(dwarf)
        assert d.is_dsym and d.has_dwarf and d.uuids() == info.uuids() == dwarfdump_uuids(dwarf)


def test_universal_and_fat64(mac_builds, tmp_path):
    fat = lipo(tmp_path / "crash-me", mac_builds.arm64.bin(), mac_builds.x86_64.bin())
    info = read_macho(fat)
    assert info.fat and not info.fat64
    assert info.uuids() == dwarfdump_uuids(fat) and set(info.uuids()) == {"arm64", "x86_64"}
    f64 = tmp_path / "crash-me-64"
    f64.write_bytes(fat64_of(fat.read_bytes()))
    info64 = read_macho(f64)
    assert info64.fat64 and info64.uuids() == info.uuids() == dwarfdump_uuids(f64)
    rec, = json.loads(symtool("id", "--json", f64).stdout)
    assert rec["fat64"] and [s["arch"] for s in rec["slices"]] == [s.arch for s in info64.slices]
    for s in rec["slices"]:
        assert s["store_path"] == f"crash-me-64/mach-uuid-{s['index']}/crash-me-64"


def test_sentry_cli_agrees_on_uuids(mac_builds, tmp_path):
    sentry = need_tool("sentry-cli")
    fat = lipo(tmp_path / "crash-me", mac_builds.arm64.bin(), mac_builds.x86_64.bin())
    for path in (fat, dsym_dwarf_files(mac_builds.arm64.dsym())[0]):
        out = subprocess.run([sentry, "debug-files", "check", str(path)], capture_output=True, text=True,
                             check=True).stdout
        theirs = {arch: u.replace("-", "") for u, arch in re.findall(r"Debug ID: ([0-9a-f-]{36})\s+Code ID:\s+\S+\s+"
                                                                      r"Arch:\s+(\w+)", out)}
        assert theirs == read_macho(path).uuids(), out


def test_id_on_a_dsym_bundle_lists_its_dwarf_files(mac_builds):
    proc = symtool("id", "--json", mac_builds.arm64.dsym())
    assert proc.returncode == 0, proc.stderr
    rec, = json.loads(proc.stdout)
    uuid = read_macho(mac_builds.arm64.bin()).index
    assert list(rec)[:4] == ["path", "kind", "index", "store_path"]
    assert rec["kind"] == "macho" and rec["dsym"] and rec["index"] == uuid
    assert rec["store_path"] == f"_.dwarf/mach-uuid-sym-{uuid}/_.dwarf"
    text = symtool("id", mac_builds.arm64.bin()).stdout
    assert f"crash-me/mach-uuid-{uuid}/crash-me" in text and "arm64 executable uuid" in text


def test_verify_pairs_binaries_with_their_dsym(mac_builds):
    verdicts = verify_paths([mac_builds.arm64.out, mac_builds.x86_64.out])
    names = [Path(v.binary).name for v in verdicts]
    assert names.count("crash-me") == names.count("hello") == 2
    assert {v.status for v in verdicts} == {MATCH}, [(v.binary, v.reason) for v in verdicts]
    assert symtool("verify", mac_builds.arm64.out).returncode == 0


def test_verify_reports_a_dsym_of_another_build(mac_builds):
    proc = symtool("verify", "--json", mac_builds.arm64.bin(), mac_builds.other_arm64.dsym())
    assert proc.returncode == 1, proc.stderr
    v, = json.loads(proc.stdout)
    want = read_macho(mac_builds.arm64.bin()).index
    other = read_macho(mac_builds.other_arm64.bin()).index
    assert want != other
    assert v["status"] == MISMATCH and v["mismatch"] == "uuid"
    assert v["missing_ids"] == [f"arm64:{want}"] and v["extra_ids"] == [f"arm64:{other}"]
    # The other architecture's dSYM: no arm64 UUID at all.
    v, = verify_paths([mac_builds.arm64.bin(), mac_builds.x86_64.dsym()])
    assert v.status == MISMATCH and v.debug_uuids == read_macho(mac_builds.x86_64.bin()).uuids()


def test_verify_universal_binary_against_a_bundle_found_by_content(mac_builds, tmp_path):
    fat = lipo(tmp_path / "crash-me", mac_builds.arm64.bin(), mac_builds.x86_64.bin())
    assert verify_paths([fat])[0].status == DSYM_MISSING
    dwarf_dir = tmp_path / "crash-me.dSYM" / "Contents" / "Resources" / "DWARF"
    dwarf_dir.mkdir(parents=True)
    for k, build in enumerate((mac_builds.arm64, mac_builds.x86_64)):
        shutil.copy(dsym_dwarf_files(build.dsym())[0], dwarf_dir / f"whatever-{k}")
    (dwarf_dir / "notes.txt").write_text("not Mach-O")
    v, = verify_paths([fat])
    assert v.status == MATCH and set(v.uuids) == {"arm64", "x86_64"}, v.reason
    (dwarf_dir / "whatever-1").unlink()
    v, = verify_paths([fat])
    assert v.status == MISMATCH and v.missing_ids == [f"x86_64:{read_macho(mac_builds.x86_64.bin()).index}"]


def test_fixtures_and_malformed_input():
    assert read_macho(FX / "crash-me.arm64").uuids() == read_macho(FX / "crash-me.arm64.dwarf").uuids()
    assert read_macho(FX / "crash-me.arm64.dwarf").is_dsym
    assert len(read_macho(FX / "crash-me.universal").slices) == 2
    java = struct.pack(">IHH", 0xCAFEBABE, 0, 52) + bytes(64)  # a Java 8 class file header
    with pytest.raises(FormatError, match="Java"):
        read_macho_bytes(java)
    data = (FX / "crash-me.arm64").read_bytes()
    for cut in (3, 8, 31, 32, 100):
        with pytest.raises(FormatError):
            read_macho_bytes(data[:cut])
    bad = bytearray(data)
    struct.pack_into("<I", bad, 20, 0xFFFFFF)  # sizeofcmds
    with pytest.raises(FormatError):
        read_macho_bytes(bytes(bad))


def test_publish_p_takes_the_packages_dsym_dwarf(mac_builds, tmp_path):
    """`publish -p crash-me` publishes the binary and the DWARF file of its dSYM (named
    <crate>-<hash> inside the bundle), and nothing of the other packages."""
    build = mac_builds.arm64
    ws = build.target_dir.parent
    store = tmp_path / "store"
    proc = symtool_in_process("publish", "-p", "crash-me", "--profile", build.profile, "--target", build.triple,
                              "--store", str(store), "--json", cwd=ws, timeout=120,
                              env={**os.environ, "CARGO_TARGET_DIR": str(build.target_dir)})
    assert proc.returncode == 0, proc.stderr
    keys = sorted(f["key"] for f in json.loads(proc.stdout)["files"])
    uuid = read_macho(build.bin()).uuids()["arm64"]
    assert keys == [f"_.dwarf/mach-uuid-sym-{uuid}/_.dwarf", f"crash-me/mach-uuid-{uuid}/crash-me"], keys


def test_dsym_listing_is_bounded(tmp_path, monkeypatch):
    """A bundle's DWARF directory is listed only MAX_DSYM_ENTRIES entries far: a hostile bundle of
    many files costs a bounded number of opens."""
    from symtool.formats import macho

    d = tmp_path / "x.dSYM" / "Contents" / "Resources" / "DWARF"
    d.mkdir(parents=True)
    for i in range(macho.MAX_DSYM_ENTRIES * 3):
        (d / f"f{i:04}").write_bytes(b"\xcf\xfa\xed\xfe" + bytes(28))
    opened = []
    real = macho._is_macho
    monkeypatch.setattr(macho, "_is_macho", lambda p: opened.append(p) or real(p))
    macho.dsym_dwarf_files(tmp_path / "x.dSYM")
    assert len(opened) == macho.MAX_DSYM_ENTRIES

"""The CLI contract every command shares, and the sample build itself."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from symtool.ids import PORTABLE, BuildId, CodeId, DebugId, MachUuid, check_file_name
from symtool.store.layout import key_path
from symtool.errors import UnsafeNameError

import pytest


def test_python_m_and_version():
    out = subprocess.run([sys.executable, "-m", "symtool", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("symtool ")


def test_unknown_command_is_usage_error():
    out = subprocess.run([sys.executable, "-m", "symtool", "no-such-command"], capture_output=True, text=True)
    assert out.returncode == 2


def test_debug_id_index_formats():
    raw = bytes.fromhex("9dd94932400c3149" "8610f4e4fb0b6936")
    did = DebugId.from_guid_bytes(raw, 1)
    assert did.index() == "3249D99D0C4049318610F4E4FB0B69361"
    assert DebugId.from_guid_bytes(raw, 10).index().endswith("6936a")
    assert DebugId.from_guid_bytes(raw, None).index() == "3249D99D0C4049318610F4E4FB0B6936"
    assert DebugId.nb10(0x1234ABCD, 0x1F).index() == "1234ABCD1f"
    assert CodeId(0x5617D4FE, 0x8000).index() == "5617D4FE8000"


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(min_size=16, max_size=16), age=st.none() | st.integers(0, 2**32 - 1))
def test_identity_text_matches_the_uuid_module(raw, age):
    """GUIDs are formatted by symtool.ids itself (uuid is not imported on `symtool id`'s path):
    Python's uuid module is the oracle for the registry form and the store index."""
    want = uuid.UUID(bytes_le=raw)
    did = DebugId.from_guid_bytes(raw, age)
    assert did.guid == want and did.guid_str == str(want).upper()
    assert did.index() == want.hex.upper() + ("" if age is None else format(age, "x"))
    assert DebugId(PORTABLE, guid_le=raw).index() == want.hex.upper() + "FFFFFFFF"
    assert MachUuid(raw).uuid_str == str(uuid.UUID(bytes=raw)).upper()


def test_identities_are_values():
    """What the frozen dataclasses they replaced gave: equality and hash by fields, immutability,
    copy and pickle, a readable repr."""
    raw = bytes(range(16))
    did = DebugId.from_guid_bytes(raw, 3)
    assert did == DebugId.from_guid_bytes(raw, 3) and len({did, DebugId.from_guid_bytes(raw, 3)}) == 1
    assert did != DebugId.from_guid_bytes(raw, 4) and did != DebugId(PORTABLE, guid_le=raw, age=3)
    assert CodeId(1, 2) != BuildId(b"\x01\x02") and BuildId(b"ab") == BuildId(b"ab")
    for value in (did, DebugId.nb10(0x1234, 5), CodeId(0x5617D4FE, 0x8000), BuildId(b"\x01\x02"), MachUuid(raw)):
        assert copy.deepcopy(value) == value and pickle.loads(pickle.dumps(value)) == value
        assert repr(value).startswith(type(value).__name__ + "(")
        with pytest.raises(AttributeError):
            value.kind = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        DebugId.from_guid_bytes(b"short", 1)


@pytest.mark.parametrize("name", ["..", "a/b", "a\\b", "C:x", "CON", "nul.pdb", "x\0y", "", "a.pdb."])
def test_unsafe_names_refused(name):
    with pytest.raises(UnsafeNameError):
        check_file_name(name)


def test_store_relpath_two_tier():
    assert key_path("crash.pdb", "ABCDEF0123", two_tier=True) == "cr/crash.pdb/ABCDEF0123/crash.pdb"


def test_sample_build_makes_pe_and_pdb(sample_build):
    for profile in ("release", "dist"):
        assert sample_build.exe("crash-me", profile).is_file()
        assert sample_build.pdb("crash-me", profile).is_file()
        assert sample_build.pdb("crash-me", profile).name == "crash_me.pdb"
        assert sample_build.exe("hello", profile).read_bytes()[:2] == b"MZ"


def test_linux_target_packed_split_debuginfo_writes_real_dwp(tmp_path):
    """samples/ also builds for the Linux host; with split-debuginfo = "packed"
    cargo writes a .dwp.  With debug = "line-tables-only" the line tables stay
    in the binary and the .dwp holds no units, so full debug info is used here
    to prove the .dwp is real DWARF."""
    from conftest import SAMPLES, cargo_env, need_tool

    need_tool("cargo")
    dwarfdump = need_tool("llvm-dwarfdump")
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    env = cargo_env(CARGO_TARGET_DIR=str(ws / "target"), CARGO_PROFILE_RELEASE_DEBUG="full")
    proc = subprocess.run(
        ["cargo", "build", "--release", "--target", "x86_64-unknown-linux-gnu", "-v"],
        cwd=ws, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "-C split-debuginfo=packed" in proc.stderr
    out = ws / "target" / "x86_64-unknown-linux-gnu" / "release"
    dwp = out / "crash-me.dwp"
    assert dwp.read_bytes()[:4] == b"\x7fELF"
    dump = subprocess.run([dwarfdump, "--debug-info", str(dwp)], capture_output=True, text=True)
    assert dump.returncode == 0
    assert "DW_TAG_compile_unit" in dump.stdout
    assert "crash_me" in dump.stdout or "crash-me" in dump.stdout

"""`symtool dumps`: triage rows, store lookups, symbolization, buckets, exit codes."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from builders.minidump import build_minidump, codeview_rsds
from cli_runner import symtool_in_process
from conftest import need_tool
from symtool.cli import app
from symtool.dumps.buckets import Buckets
from symtool.dumps.exceptions import describe_exception
from symtool.dumps.files import collect_dumps, parse_procdump_name
from symtool.dumps.locate import SymbolLocator
from symtool.dumps.symbolize import SymbolizerCache
from symtool.dumps.triage import triage, triage_one
from symtool.errors import FormatError
from symtool.formats.minidump import read_minidump
from symtool.formats.pe import read_pe

CRASH_INDEX = "3249D99D0C4049318610F4E4FB0B69361"
CRASH_GUID = uuid.UUID("3249D99D-0C40-4931-8610-F4E4FB0B6936").bytes_le
# The --json keys, in order: a stable interface (scripts index them), written out here on purpose.
ROW_KEYS = ["path", "error", "time", "time_source", "platform", "os", "cpu", "process_id", "exception_code",
            "exception_name", "exception_detail", "exception_address", "exception_parameters", "thread_id",
            "faulting_module", "faulting_offset", "function", "file", "line", "frames", "symbol", "symbol_offset",
            "bucket", "comments", "notes", "modules", "stack", "stack_note", "signature", "panic", "user_frame",
            "partial"]
MODULE_KEYS = ["name", "path", "base", "size", "timestamp", "code_id", "debug_id", "codeview", "pdb_name",
               "pdb_store_path", "pdb_found", "pdb_path", "image_store_path", "image_found", "image_path", "error",
               "os_module", "codeview_source", "debug_path"]
FRAME_KEYS = ["function", "file", "line"]


def run_cli(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, ["dumps", *args], env=env or {"SYMTOOL_STORE": ""})
    return result


@pytest.fixture()
def crash_store(tmp_path, fixtures_dir) -> Path:
    """crash.pdb laid out as symstore.exe would: <store>/crash.pdb/<INDEX>/crash.pdb."""
    store = tmp_path / "store"
    entry = store / "crash.pdb" / CRASH_INDEX
    entry.mkdir(parents=True)
    shutil.copy(fixtures_dir / "pe-pdb" / "crash.pdb", entry / "crash.pdb")
    return store


def _crash_module(**over) -> dict:
    pe_ts, pe_size = 0x5AB38077, 0x9000  # crash.exe's TimeDateStamp and SizeOfImage
    m = {"name": "C:\\projects\\breakpad-tools\\windows\\Release\\crash.exe", "base": 0x2A0000, "size": pe_size,
         "timestamp": pe_ts, "codeview": codeview_rsds(CRASH_GUID, 1, "C:\\projects\\crash.pdb")}
    m.update(over)
    return m


def _write(path: Path, **kw) -> Path:
    kw.setdefault("arch", 0)
    path.write_bytes(build_minidump(**kw))
    return path


# --- the real dumps -----------------------------------------------------------------------------------------

def test_windows_dump_without_stores(fixtures_dir):
    path = fixtures_dir / "dumps" / "symbolic-windows-mini.dmp"
    row = triage_one(path, SymbolLocator([]), SymbolizerCache()).to_json()
    assert list(row) == ROW_KEYS
    assert row["path"] == str(path) and row["error"] is None
    # Header TimeDateStamp 0x5AB38079 (UTC), pid and thread from the MiscInfo and exception streams.
    assert (row["time"], row["time_source"]) == ("2018-03-22T10:07:53", "header")
    assert row["os"] == "Windows NT 10.0.14393" and row["process_id"] == 1928 and row["thread_id"] == 1636
    assert row["exception_address"] == "0x2a2a3d" and row["exception_parameters"] == ["0x1", "0x45"]
    assert (row["frames"], row["symbol"], row["symbol_offset"]) == ([], None, None)
    assert (row["comments"], row["notes"]) == ([], [])
    assert row["exception_code"] == "C0000005"
    assert row["exception_name"] == "access violation"
    assert row["exception_detail"] == "write to 0x00000045"
    assert row["faulting_module"] == "crash.exe" and row["faulting_offset"] == "0x2a3d"
    assert row["function"] is None
    # The bucket is the signature: the code and the first three frames (module+offset without symbols).
    assert row["bucket"].startswith("C0000005 crash+0x2a3d | ")
    assert row["stack"][0]["offset"] == "0x2a3d" and row["stack"][0]["trust"] == "context"
    assert row["platform"] == "windows" and row["cpu"] == "x86"
    pe = read_pe(fixtures_dir / "pe-pdb" / "crash.exe")
    crash = row["modules"][0]
    assert list(crash) == MODULE_KEYS
    assert crash["name"] == "crash.exe" and crash["path"] == "C:\\projects\\breakpad-tools\\windows\\Release\\crash.exe"
    assert (crash["base"], crash["size"], crash["timestamp"]) == ("0x2a0000", pe.size_of_image, pe.timestamp)
    assert crash["code_id"] == pe.code_id.index() and crash["codeview"] == "RSDS"
    assert crash["debug_id"] == pe.primary_codeview.debug_id.index() and crash["pdb_name"] == "crash.pdb"
    assert (crash["pdb_path"], crash["image_path"], crash["error"]) == (None, None, None)
    assert crash["pdb_store_path"] == f"crash.pdb/{pe.primary_codeview.debug_id.index()}/crash.pdb"
    assert crash["image_store_path"] == f"crash.exe/{pe.code_id.index()}/crash.exe"
    assert crash["pdb_found"] is False and crash["image_found"] is False
    # Keys of the other modules come from their own CodeView records (cross-checked in test_minidump).
    dump = read_minidump(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp")
    assert [m["pdb_store_path"] for m in row["modules"]] == [
        f"{m.pdb_name}/{m.debug_id.index()}/{m.pdb_name}" for m in dump.modules]


def test_windows_dump_symbolized_like_llvm_symbolizer(fixtures_dir, crash_store, tmp_path):
    rows = [r.to_json() for r in triage([fixtures_dir / "dumps" / "symbolic-windows-mini.dmp"], [str(crash_store)])]
    row = rows[0]
    crash = row["modules"][0]
    assert crash["pdb_found"] is True
    assert Path(crash["pdb_path"]) == crash_store / "crash.pdb" / CRASH_INDEX / "crash.pdb"
    # Oracle: llvm-symbolizer on crash.exe + crash.pdb side by side, at ImageBase + RVA.
    tool = need_tool("llvm-symbolizer")
    for name in ("crash.exe", "crash.pdb"):
        shutil.copy(fixtures_dir / "pe-pdb" / name, tmp_path / name)
    import pefile

    base = pefile.PE(str(tmp_path / "crash.exe"), fast_load=True).OPTIONAL_HEADER.ImageBase
    address = base + int(row["faulting_offset"], 16)
    out = subprocess.run([tool, "--output-style=JSON", f"--obj={tmp_path / 'crash.exe'}", hex(address)],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    frames = (data[0] if isinstance(data, list) else data)["Symbol"]
    assert row["function"] == frames[0]["FunctionName"]
    assert (row["file"], row["line"]) == (frames[0]["FileName"], frames[0]["Line"])
    assert all(list(f) == FRAME_KEYS for f in row["frames"])
    assert [(f["function"], f["file"], f["line"]) for f in row["frames"]] == [
        (f["FunctionName"].split("(")[0], f["FileName"], f["Line"]) for f in frames]
    # Signature buckets: code + the first three frames, inline frames counted, WinDBG module names.
    assert row["bucket"] == (f"C0000005 crash!{frames[0]['FunctionName']} | crash!?A0xc3a0617d::start | crash!main")
    assert [f["inline"] for f in row["stack"][:3]] == [True, True, False]


def test_cli_on_the_fixture_dumps(fixtures_dir, crash_store):
    result = run_cli("--json", "--store", str(crash_store), str(fixtures_dir / "dumps"))
    assert result.exit_code == 1  # the system DLLs' PDBs and test_app.pdb are not in the store
    rows = json.loads(result.stdout)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"symbolic-windows-mini.dmp", "rm-test.dmp", "rm-linux-mini.dmp"}
    assert by_name["symbolic-windows-mini.dmp"]["modules"][0]["pdb_found"] is True
    assert by_name["symbolic-windows-mini.dmp"]["function"] == "?A0xc3a0617d::crash"
    xp = by_name["rm-test.dmp"]
    assert xp["exception_code"] == "C0000005" and xp["faulting_module"] == "test_app.exe"
    assert xp["modules"][0]["pdb_name"] == "test_app.pdb" and xp["modules"][0]["pdb_found"] is False
    linux = by_name["rm-linux-mini.dmp"]
    assert linux["platform"] == "linux" and linux["os"].startswith("Linux")
    assert any("Linux minidump" in n for n in linux["notes"])
    assert linux["exception_name"] == "SIGSEGV"


def test_xp_dump_exit_1(fixtures_dir):
    result = run_cli("--store", str(fixtures_dir / "symstore-exe" / "stores" / "pe_store"),
                     str(fixtures_dir / "dumps" / "rm-test.dmp"))
    assert result.exit_code == 1
    assert "test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.pdb" in result.stdout
    assert "MISSING" in result.stdout


def test_linux_dump_is_reported_as_such(fixtures_dir):
    result = run_cli(str(fixtures_dir / "dumps" / "rm-linux-mini.dmp"))
    # Exit 1: the program's own binary (`crash`) is found nowhere by its build id; the system
    # libraries (/lib, /usr/lib) and the vDSO are not the team's to archive and do not count.
    assert result.exit_code == 1, result.stdout
    assert "SIGSEGV" in result.stdout and "Linux minidump" in result.stdout
    rows = json.loads(run_cli("--json", str(fixtures_dir / "dumps" / "rm-linux-mini.dmp")).stdout)
    own = {m["name"]: m["os_module"] for m in rows[0]["modules"]}
    assert own.pop("crash") is False and all(own.values()), own


def test_exit_0_when_everything_is_found(tmp_path, crash_store):
    dump = _write(tmp_path / "one.dmp", modules=[_crash_module()],
                  exception={"code": 0xC0000005, "address": 0x2A2A3D, "parameters": [1, 0x45]})
    result = run_cli("--store", str(crash_store), str(dump))
    assert result.exit_code == 0, result.stdout
    assert "?A0xc3a0617d::crash (main.cpp:24)" in result.stdout


def test_build_dir_lookup(tmp_path, fixtures_dir):
    dump = _write(tmp_path / "one.dmp", modules=[_crash_module()],
                  exception={"code": 0xC0000005, "address": 0x2A2A3D, "parameters": [0, 0]})
    rows = [r.to_json() for r in triage([dump], [], [str(fixtures_dir / "pe-pdb")])]
    m = rows[0]["modules"][0]
    assert m["pdb_found"] and m["image_found"]
    assert Path(m["pdb_path"]) == fixtures_dir / "pe-pdb" / "crash.pdb"
    assert Path(m["image_path"]) == fixtures_dir / "pe-pdb" / "crash.exe"
    assert rows[0]["function"] == "?A0xc3a0617d::crash"
    # A build dir whose crash.pdb is another PDB: not a match.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(fixtures_dir / "pe-pdb" / "dump_syms_regtest64.pdb", other / "crash.pdb")
    rows = [r.to_json() for r in triage([dump], [], [str(other)])]
    assert rows[0]["modules"][0]["pdb_found"] is False and rows[0]["function"] is None


def test_wrong_pdb_in_store_is_not_used(tmp_path, fixtures_dir):
    store = tmp_path / "liar"
    entry = store / "crash.pdb" / CRASH_INDEX
    entry.mkdir(parents=True)
    shutil.copy(fixtures_dir / "pe-pdb" / "dump_syms_regtest64.pdb", entry / "crash.pdb")
    dump = _write(tmp_path / "one.dmp", modules=[_crash_module()],
                  exception={"code": 0xC0000005, "address": 0x2A2A3D, "parameters": [0, 0]})
    row = next(triage([dump], [str(store)])).to_json()
    assert row["modules"][0]["pdb_found"] is True  # the store has something under that key...
    assert row["function"] is None  # ...but it is not that PDB: never symbolize with it
    assert any("does not match" in n for n in row["notes"])


# --- exceptions ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code,params,name,detail", [
    (0xC0000005, [0, 0x10], "access violation", "read from 0x00000010"),
    (0xC0000005, [1, 0x45], "access violation", "write to 0x00000045"),
    (0xC0000005, [8, 0x1234], "access violation", "execute (DEP) at 0x00001234"),
    (0xC0000409, [7], "fail-fast", "FAST_FAIL_FATAL_APP_EXIT (7)"),
    (0xC0000409, [2], "fail-fast", "FAST_FAIL_STACK_COOKIE_CHECK_FAILURE (2)"),
    (0xC00000FD, [], "stack overflow", None),
    (0xE06D7363, [0x19930520, 0, 0], "C++ exception", None),
    (0xC000000D, [], "invalid parameter", None),
    (0xC0000374, [], "heap corruption", None),
    (0x80000003, [], "breakpoint", None),
    (0xC000001D, [], "illegal instruction", None),
    (0xC0000094, [], "integer divide by zero", None),
    (0xE0000001, [], "application-defined exception", None),
])
def test_exception_names(code, params, name, detail):
    got_name, got_detail = describe_exception(code, params)
    assert got_name.startswith(name)
    if detail is None:
        assert got_detail is None
    else:
        assert got_detail.startswith(detail)


def test_rust_abort_row(tmp_path):
    dump = _write(tmp_path / "app.exe_C0000409_240102_030405.dmp", modules=[_crash_module()],
                  exception={"code": 0xC0000409, "address": 0x2A1000, "parameters": [7]})
    row = next(triage([dump], [])).to_json()
    assert row["exception_code"] == "C0000409"
    assert "FAST_FAIL_FATAL_APP_EXIT" in row["exception_detail"] and "panic" in row["exception_detail"]
    # No header time: the ProcDump file name gives it.
    assert row["time"] == "2024-01-02T03:04:05" and row["time_source"] == "file name"


def test_procdump_names():
    assert parse_procdump_name("w3wp.exe_C0000005_230115_101112.dmp")[:2] == ("w3wp.exe", "C0000005")
    assert parse_procdump_name("my_app.exe_e06d7363_231231_235959.dmp")[1] == "E06D7363"
    assert parse_procdump_name("app.exe_230115_101112.dmp")[1] is None
    assert parse_procdump_name("random.dmp") is None
    assert parse_procdump_name("app.exe_C0000005_231399_101112.dmp") is None  # month 13


def test_address_outside_modules_and_comments(tmp_path):
    dump = _write(tmp_path / "x.dmp", modules=[_crash_module()], comments=["ProcDump: -e -ma"],
                  exception={"code": 0xC0000005, "address": 0x1000, "parameters": [8, 0x1000]})
    row = next(triage([dump], [])).to_json()
    assert row["faulting_module"] is None and row["bucket"] == "C0000005 0x1000"
    assert row["comments"] == ["ProcDump: -e -ma"]


# --- unreadable dumps and usage -------------------------------------------------------------------------------

def test_unreadable_dumps_are_rows(tmp_path, fixtures_dir):
    d = tmp_path / "dumps"
    d.mkdir()
    (d / "empty.dmp").write_bytes(b"")
    (d / "random.dmp").write_bytes(random.Random(1).randbytes(5000))
    real = (fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").read_bytes()
    (d / "truncated.dmp").write_bytes(real[:500])
    shutil.copy(fixtures_dir / "dumps" / "rm-linux-mini.dmp", d / "ok.dmp")
    result = run_cli("--json", str(d))
    assert result.exit_code == 2  # one rule: unreadable input is exit 2, and it outranks findings (1)
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert rows["ok.dmp"]["error"] is None
    for bad in ("empty.dmp", "random.dmp", "truncated.dmp"):
        assert rows[bad]["error"], bad
    text = run_cli(str(d))
    assert text.exit_code == 2 and "3 unreadable" in text.stdout and "Traceback" not in text.output


def test_unreadable_dump_is_an_error_line_and_exit_2_as_help_and_readme_say(tmp_path, fixtures_dir):
    """Issue 26, item 11: --help and the README agree (an unreadable dump is exit 2), and in text
    mode an error: line on stderr names each unreadable dump."""
    import re

    d = tmp_path / "dumps"
    d.mkdir()
    (d / "notes.dmp").write_text("not a dump\n")
    (d / "cut.dmp").write_bytes((fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").read_bytes()[:500])
    shutil.copy(fixtures_dir / "dumps" / "rm-linux-mini.dmp", d / "ok.dmp")
    proc = symtool_in_process("dumps", "--offline", d, cwd=tmp_path, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    errors = sorted(line for line in proc.stderr.splitlines() if line.startswith("error: "))
    assert [e.split(": unreadable: ")[0] for e in errors] == [f"error: {d / 'cut.dmp'}", f"error: {d / 'notes.dmp'}"]
    assert "no MDMP signature" in errors[1]
    helped = symtool_in_process("dumps", "--help", timeout=120,
                                env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)})
    text = re.sub(r"[\s│]+", " ", helped.stdout)
    assert "2 a dump is unreadable" in text and "or a dump is unreadable" not in text
    readme = re.sub(r"\s+", " ", (Path(__file__).resolve().parent.parent / "README.md").read_text())
    assert "`2` bad input: nothing to act on" in readme and "an unreadable file" in readme


def test_usage_errors(tmp_path):
    result = run_cli(str(tmp_path / "nope.dmp"))
    assert result.exit_code == 2 and "no such file" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli(str(tmp_path / "empty"))
    assert result.exit_code == 2 and "no minidumps" in result.stderr


def test_collect_dumps_recurses_and_sorts(tmp_path):
    (tmp_path / "b").mkdir()
    for p in ("b/2.dmp", "a.DMP", "c.mdmp", "notes.txt"):
        (tmp_path / p).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in collect_dumps([tmp_path])] == ["a.DMP", "b/2.dmp", "c.mdmp"]


def test_default_stores_from_environment(tmp_path, crash_store):
    dump = _write(tmp_path / "one.dmp", modules=[_crash_module()],
                  exception={"code": 0xC0000005, "address": 0x2A2A3D, "parameters": [0, 0]})
    result = CliRunner().invoke(app, ["dumps", "--json", str(dump)], env={"SYMTOOL_STORE": str(crash_store)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["modules"][0]["pdb_found"] is True


# --- buckets --------------------------------------------------------------------------------------------------

def test_buckets_count_first_last_example(tmp_path, crash_store):
    plan = [  # (file name, code, address, header time)
        ("a.dmp", 0xC0000005, 0x2A2A3D, 1_700_000_300),
        ("b.dmp", 0xC0000005, 0x2A2A3D, 1_700_000_100),
        ("c.dmp", 0xC0000005, 0x2A2A3D, 1_700_000_200),
        ("d.dmp", 0xC0000409, 0x2A2A3D, 1_700_000_000),
        ("e.dmp", 0xC0000005, 0x2A1000, 1_700_000_000),
        ("f.dmp", 0xC0000005, 0x2A1000, 1_700_000_050),
    ]
    for name, code, address, ts in plan:
        _write(tmp_path / name, modules=[_crash_module()], timestamp=ts,
               exception={"code": code, "address": address, "parameters": [1, 0]})
    buckets = Buckets()
    for row in triage(sorted(tmp_path.glob("*.dmp")), [str(crash_store)]):
        buckets.add(row)
    ordered = buckets.ordered()
    assert [b.count for b in ordered] == [3, 2, 1]
    top = ordered[0]
    assert top.key == "C0000005 crash.exe!?A0xc3a0617d::crash"
    assert (top.first, top.last) == ("2023-11-14T22:15:00", "2023-11-14T22:18:20")
    assert Path(top.example).name == "a.dmp"
    assert ordered[1].exception_code == "C0000005" and ordered[1].faulting_offset == "0x1000"
    assert ordered[2].exception_code == "C0000409"
    result = run_cli("--store", str(crash_store), str(tmp_path))
    assert "Buckets (3):" in result.stdout and "6 dumps, 0 unreadable, 3 buckets" in result.stdout


# --- HTTP stores ------------------------------------------------------------------------------------------------

def test_http_store_head_lookup(nginx, tmp_path, monkeypatch):
    # One retry (as the `env` fixture gives subprocesses): the default's backoff made the failing
    # server's lookups take half a minute, and what is checked is what a failure gives, not how often.
    monkeypatch.setenv("SYMTOOL_HTTP_RETRIES", "1")
    index = "F6301B4562FE4B4DB691192733ECE6B71"  # dummyprog.pdb in the pe_store fixture
    guid = uuid.UUID(index[:32]).bytes_le
    dump = _write(tmp_path / "http.dmp", modules=[
        {"name": "C:\\x\\dummyprog.exe", "base": 0x400000, "size": 0x6000, "timestamp": 0x12345678,
         "codeview": codeview_rsds(guid, 1, "dummyprog.pdb")},
        {"name": "C:\\x\\other.dll", "base": 0x500000, "size": 0x6000, "timestamp": 0x12345678,
         "codeview": codeview_rsds(uuid.uuid4().bytes_le, 1, "other.pdb")},
    ], exception={"code": 0xC0000005, "address": 0x401000, "parameters": [0, 0]})
    row = next(triage([dump], [nginx.url("plain")])).to_json()
    assert row["modules"][0]["pdb_found"] is True and "dummyprog.pdb" in row["modules"][0]["pdb_path"]
    assert row["modules"][1]["pdb_found"] is False
    assert any("not as a local plain file" in n for n in row["notes"])
    # A server that fails: not checked (None), said so, and the exit code is 2 (a failing server
    # is bad input under the one rule, as in fetch and publish).
    row = next(triage([dump], [nginx.url("error")])).to_json()
    assert row["modules"][0]["pdb_found"] is None and row["modules"][0]["error"]
    assert run_cli("--store", nginx.url("error"), str(dump)).exit_code == 2


# --- hostile dumps ------------------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(
    ["symbolic-windows-mini.dmp", "rm-test.dmp", "rm-linux-mini.dmp"]), n=st.integers(1, 40))
def test_mutated_dumps_give_rows(fixtures_dir, tmp_path_factory, seed, which, n):
    data = bytearray((fixtures_dir / "dumps" / which).read_bytes())
    rng = random.Random(seed)
    for _ in range(n):
        pos = rng.randrange(len(data)) if rng.random() < 0.5 else rng.randrange(min(len(data), 4096))
        data[pos] = rng.randrange(256)
    path = tmp_path_factory.mktemp("mut") / "m.dmp"
    path.write_bytes(bytes(data))
    row = triage_one(path, SymbolLocator([]), SymbolizerCache()).to_json()
    assert row["path"] == str(path)
    # The one right answer is whatever the reader says about this file: its error, or what it read.
    try:
        dump = read_minidump(path)
    except FormatError as err:
        assert row["error"] == err.message and row["modules"] == []
    else:
        assert row["error"] is None
        assert len(row["modules"]) == len(dump.modules)
        if dump.exception is None:
            assert row["exception_code"] is None and row["bucket"] == "no exception"
            assert "no exception stream (a dump taken without a crash)" in row["notes"]
        else:
            assert row["exception_code"] == dump.exception.code_hex
            assert row["exception_address"] == f"{dump.exception.address:#x}"
    json.dumps(row)  # always serializable


def test_hostile_module_names_are_never_paths(tmp_path, crash_store):
    dump = _write(tmp_path / "evil.dmp", modules=[
        _crash_module(codeview=codeview_rsds(CRASH_GUID, 1, "C:\\x\\CON.pdb")),
        _crash_module(name="C:\\x\\a<b>.exe", base=0x500000, codeview=codeview_rsds(CRASH_GUID, 1, "ok.pdb")),
    ], exception={"code": 0xC0000005, "address": 0x2A2A3D, "parameters": [0, 0]})
    row = next(triage([dump], [str(crash_store)])).to_json()
    con, odd = row["modules"]
    assert con["pdb_found"] is False and "reserved" in con["error"] and con["pdb_store_path"] is None
    assert odd["image_found"] is False and odd["image_store_path"] is None and odd["error"]


# --- macOS: Mach exceptions, not signals ---------------------------------------------------------------------

@pytest.mark.parametrize("code,flags,address,name,detail", [
    (1, 1, 0x10, "EXC_BAD_ACCESS", "KERN_INVALID_ADDRESS at 0x10"),
    (1, 2, 0x7FF0, "EXC_BAD_ACCESS", "KERN_PROTECTION_FAILURE at 0x7ff0"),
    (10, 6 << 24, 0, "EXC_CRASH / SIGABRT", "SIGABRT"),  # crashpad: abort() under EXC_CRASH
    (10, (11 << 24) | (1 << 20), 0, "EXC_CRASH / SIGSEGV", "SIGSEGV after EXC_BAD_ACCESS"),
    (5, 0x10003, 6, "EXC_SOFTWARE", "EXC_SOFT_SIGNAL (SIGABRT)"),
    (6, 1, 0x1000, "EXC_BREAKPOINT", "code 0x1, subcode 0x1000"),
])
def test_macos_dumps_name_mach_exceptions(tmp_path, code, flags, address, name, detail):
    # Breakpad's and crashpad's macOS writers: ExceptionCode is the Mach exception type,
    # ExceptionFlags its code, ExceptionAddress its subcode (<mach/exception_types.h>).
    dump = _write(tmp_path / "mac.dmp", platform_id=0x8101, arch=5,
                  exception={"code": code, "flags": flags, "address": address})
    row = triage_one(dump, SymbolLocator([]), SymbolizerCache()).to_json()
    assert (row["exception_name"], row["exception_detail"]) == (name, detail)
    assert "SIGHUP" not in row["exception_name"]


def test_a_dump_cut_inside_an_optional_stream_is_read_as_partial(fixtures_dir, tmp_path):
    # The MiscInfo stream's directory entry runs past the end of the file, as in a dump whose
    # writer was killed: the module list, threads, exception and memory are still read.
    import struct as _struct

    data = bytearray((fixtures_dir / "dumps" / "symbolic-windows-mini.dmp").read_bytes())
    count, directory = _struct.unpack_from("<II", data, 8)
    for k in range(count):
        stype, size, rva = _struct.unpack_from("<III", data, directory + 12 * k)
        if stype == 15:  # MiscInfoStream
            _struct.pack_into("<III", data, directory + 12 * k, stype, len(data), rva)
    path = tmp_path / "cut.dmp"
    path.write_bytes(bytes(data))
    whole = triage_one(fixtures_dir / "dumps" / "symbolic-windows-mini.dmp", SymbolLocator([]),
                       SymbolizerCache()).to_json()
    row = triage_one(path, SymbolLocator([]), SymbolizerCache()).to_json()
    assert row["error"] is None and row["partial"] is True
    assert any(n.startswith("partial dump:") and "MiscInfo" in n for n in row["notes"])
    assert row["exception_code"] == whole["exception_code"] and len(row["modules"]) == len(whole["modules"])
    assert row["stack"] == whole["stack"] and row["process_id"] is None and whole["process_id"] == 1928

"""Real Rust crashes: genuine std programs for x86_64-pc-windows-msvc (the corpus in
tests/corpus/std-crashers, built with Debian's rustc 1.63 and -Zbuild-std), crashed under
Wine, published to a store, then read back from the store only.

Oracles nobody here wrote:
* each program's own panic line on stderr (std's panic hook printed it) for the panic's
  message, file, line, column and thread;
* ``winedbg``'s ``bt`` at the crash for the frames, function by function, and for the
  user's function the signature must start at (its first frame in the corpus's sources).

The Linux path: a std program built by the machine's rustc (1.95), crashed under gdb, its
core turned into a Breakpad minidump and read through DWARF.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import need_tool
from std_corpus import PROGRAMS, CorpusUnavailable, build_corpus, shared_crashes
from symtool.cli import app
from symtool.demangle import normalize_msvc_name

# Programs whose every argument is a primitive or &str held in the dump: the message must be
# exactly what the program printed.  In the others an argument is shown as {…} (a struct, or a
# value on the heap, which Wine's dumps do not hold) and the rest must match around it.
EXACT_MESSAGES = {"unwrap_none", "unwrap_err", "expect_msg", "index_oob", "slice_range", "divide_zero", "overflow",
                  "assert_msg", "assert_eq", "unreachable", "panic_fmt", "thread_panic", "two_panics"}
PANICS = sorted(n for n, kind in PROGRAMS.items() if kind == "panic")


def cli(*args: str):
    result = CliRunner().invoke(app, list(args), env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    need_tool("wine")
    need_tool("winedbg")
    try:
        shared, crashes = shared_crashes(tmp_path_factory)  # crashed once per run (tests/std_corpus.py)
        build_dir = build_corpus()
    except CorpusUnavailable as err:
        pytest.skip(f"the std toolchain cannot be built here: {err}")
    dumps, other = shared / "dumps", shared / "other"
    relayout = build_dir.parent / "relayout"
    root = tmp_path_factory.mktemp("stdcrashes")
    store = root / "store"
    staged = root / "staged"
    staged.mkdir()
    for d, tag in ((build_dir, ""), (relayout, "relayout-")):
        for f in d.iterdir():
            if f.suffix in (".exe", ".pdb") and f.stem in PROGRAMS:
                (staged / f"{tag}{f.stem}").mkdir(exist_ok=True)
                shutil.copyfile(f, staged / f"{tag}{f.stem}" / f.name)
    for sub in sorted(staged.iterdir()):
        result = cli("publish", str(sub), "--store", str(store))
        assert result.exit_code == 0, result.output
    return {"crashes": crashes, "dumps": dumps, "other": other, "store": store, "root": root}


@pytest.fixture(scope="module")
def triage(corpus):
    """``dumps --json`` over every dump, from the store only."""
    result = cli("dumps", str(corpus["dumps"]), str(corpus["other"]), "--store", str(corpus["store"]), "--json")
    assert result.exit_code == 0, result.output[-3000:]
    rows = json.loads(result.stdout)
    return {Path(r["path"]).stem: r for r in rows}


def _message_matches(ours: str, printed: str) -> bool:
    """Ours equals the printed message where every {…} stands for one formatted argument."""
    pattern = "".join(".+?" if part == "{…}" else re.escape(part) for part in re.split(r"(\{…\})", ours))
    return re.fullmatch(pattern, printed, re.S) is not None


@pytest.mark.parametrize("name", PANICS)
def test_panic_is_what_the_program_printed(corpus, triage, name):
    printed = corpus["crashes"][name].panic
    assert printed is not None, corpus["crashes"][name].stderr
    panic = triage[name]["panic"]
    assert panic is not None, triage[name]["notes"]
    assert (panic["file"], panic["line"], panic["column"]) == (printed["file"], printed["line"], printed["column"])
    if name in EXACT_MESSAGES:
        assert panic["message"] == printed["message"]
    else:
        assert "{…}" in panic["message"] and _message_matches(panic["message"], printed["message"]), panic
    # Wine's dumps name no threads: the main thread is known by std::rt::lang_start on its stack,
    # a spawned thread's name is not in the dump.
    assert panic["thread"] == (printed["thread"] if printed["thread"] == "main" else None)


def _user_function(crash) -> str:
    """winedbg's first frame in the program's own crate: the user's function."""
    for function, _file, _line, _address in crash.backtrace:
        if function.startswith(crash.name + "::"):
            return normalize_msvc_name(function)
    raise AssertionError(crash.backtrace)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_signature_starts_at_the_users_function(corpus, triage, name):
    row = triage[name]
    user = _user_function(corpus["crashes"][name])
    assert row["signature"][0] == f"{name}!{user}", row["signature"]
    assert row["user_frame"]["function"] == user
    assert row["bucket"] == f"{row['exception_code']} " + " | ".join(row["signature"])


def _plain(name: str) -> str:
    """A normalized name without generic arguments, and its last path segment."""
    out, depth = [], 0
    for ch in normalize_msvc_name(name):
        depth += ch == "<"
        if depth == 0:
            out.append(ch)
        depth -= ch == ">" and depth > 0
    return "".join(out)


def _same_function(winedbg: str, ours: str) -> bool:
    # winedbg names an inline frame by its last path segment (`unwrap`, `closure$2`) and keeps
    # generic arguments that our inline names may not carry: compare without them.
    theirs, mine = _plain(winedbg), _plain(ours or "")
    return theirs == mine or mine.endswith("::" + theirs)


def _groups(frames: list[tuple[str, int]]) -> list[tuple[int, list[str]]]:
    """(address, names innermost first) per physical frame: inline rows share its address."""
    out: list[tuple[int, list[str]]] = []
    for name, address in frames:
        if out and out[-1][0] == address:
            out[-1][1].append(name)
        else:
            out.append((address, [name]))
    return out


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_frames_match_winedbgs_backtrace(corpus, triage, name):
    """The same physical frames at the same addresses, in order, each named as winedbg names it
    (one of the names at that address: identical functions folded into one body have several);
    at the crash site, the same inline chain too.  For callers, winedbg looks inline frames up at
    the return address and we at the call (return address - 1), so those may differ."""
    # The program's own frames: winedbg names Wine's DLLs from Wine's own symbols, which no
    # store here holds.
    exe = next(m for m in triage[name]["modules"] if m["name"] == f"{name}.exe")
    base, end = int(exe["base"], 16), int(exe["base"], 16) + exe["size"]
    ours = _groups([(f["function"], int(f["address"], 16)) for f in triage[name]["stack"]
                    if base <= int(f["address"], 16) < end])
    theirs = _groups([(f, a) for f, _file, _line, a in corpus["crashes"][name].backtrace
                      if base <= a < end and not f.endswith("+?")])
    assert len(theirs) >= 3
    assert [a for a, _ in ours[:len(theirs)]] == [a for a, _ in theirs]
    for k, ((_a, their_names), (_b, our_names)) in enumerate(zip(theirs, ours)):
        assert any(_same_function(their_names[-1], n) for n in our_names), (k, their_names, our_names)
    crash_site_theirs, crash_site_ours = theirs[0][1], ours[0][1]
    assert len(crash_site_theirs) == len(crash_site_ours)
    assert all(_same_function(t, o) for t, o in zip(crash_site_theirs, crash_site_ours)), \
        (crash_site_theirs, crash_site_ours)


def test_two_panics_in_one_program_are_two_buckets(triage):
    a, b = triage["two_panics"], triage["two_panics-header"]
    assert a["signature"][0] == "two_panics!two_panics::checked_ratio"
    assert b["signature"][0] == "two_panics!two_panics::parse_header"
    assert a["bucket"] != b["bucket"]


def test_the_same_panic_from_two_builds_is_one_bucket(triage):
    a, b = triage["unwrap_none"], triage["unwrap_none-relayout"]
    assert a["modules"][0]["debug_id"] != b["modules"][0]["debug_id"]  # two builds
    assert a["faulting_offset"] != b["faulting_offset"]  # at other addresses
    assert a["bucket"] == b["bucket"]
    assert a["panic"] == b["panic"]


def test_text_report_buckets_each_panic_apart(corpus):
    result = cli("dumps", str(corpus["dumps"]), str(corpus["other"]), "--store", str(corpus["store"]))
    assert result.exit_code == 0, result.output
    buckets = int(re.search(r"^Buckets \((\d+)\):", result.stdout, re.M).group(1))
    # Every program its own bucket, two for two_panics, one for both unwrap_none builds.
    assert buckets == len(PROGRAMS) + 1


def test_process_abort_has_no_panic_and_is_bucketed_by_its_caller(triage):
    row = triage["process_abort"]
    assert row["panic"] is None
    assert row["signature"][0] == "process_abort!process_abort::give_up"
    assert row["exception_code"] == "C0000409"


def test_access_violation_has_no_panic(triage):
    row = triage["access_violation"]
    assert row["panic"] is None and row["exception_code"] == "C0000005"


def test_headline_names_the_users_frame_and_the_panic(corpus):
    dump = corpus["dumps"] / "unwrap_none.dmp"
    printed = corpus["crashes"]["unwrap_none"].panic
    result = cli("dumps", str(dump), "--store", str(corpus["store"]))
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()[:2]
    assert re.search(r" in unwrap_none::lookup \(unwrap_none\.rs:\d+\)", first), first
    assert "panic_abort" not in first
    assert second.strip() == (f"panicked at {printed['file']}:{printed['line']}:{printed['column']}: "
                              f"{printed['message']} (thread 'main')")


def test_stack_json_carries_the_panic_and_raw_names(corpus):
    dump = corpus["dumps"] / "unwrap_none.dmp"
    printed = corpus["crashes"]["unwrap_none"].panic
    result = cli("stack", str(dump), "--store", str(corpus["store"]), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["panic"] == printed
    frames = data["threads"][0]["frames"]
    unwrap = next(f for f in frames if f["raw_function"] and f["raw_function"].startswith("enum$<"))
    assert unwrap["function"] == "core::option::Option<&u32>::unwrap"
    assert "enum$<" in unwrap["raw_function"]
    text = cli("stack", str(dump), "--store", str(corpus["store"]))
    assert text.stdout.startswith(f"panic: thread 'main' panicked at {printed['file']}:{printed['line']}:"
                                  f"{printed['column']}: {printed['message']}\n")


# --- stack's cdb-like views, against winedbg and an independent minidump reader ----------------------------

WINEDBG_REGISTER = re.compile(r"\b([a-z][a-z0-9]{1,5}):([0-9a-f]{8,16})\b")


def test_stack_registers_are_winedbgs_register_dump(corpus):
    crash = corpus["crashes"]["unwrap_none"]
    dump_text = (corpus["dumps"] / "unwrap_none.winedbg.txt").read_text()
    block = dump_text.split("Register dump:", 1)[1].split("Stack dump:", 1)[0]
    theirs = {name: int(value, 16) for name, value in WINEDBG_REGISTER.findall(block)}
    result = cli("stack", str(crash.dump), "--store", str(corpus["store"]), "--json")
    ours = {k: int(v, 16) for k, v in json.loads(result.stdout)["threads"][0]["registers"].items()}
    compared = [n for n in ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
                            "r12", "r13", "r14", "r15") if n in theirs]
    assert len(compared) == 17
    assert {n: ours[n] for n in compared} == {n: theirs[n] for n in compared}
    text = cli("stack", str(crash.dump), "--store", str(corpus["store"]), "--registers").stdout
    assert f"rip={theirs['rip']:016x} rsp={theirs['rsp']:016x} rbp={theirs['rbp']:016x}" in text


LLDB_IMAGE = re.compile(r"^\[\s*\d+\]\s+(?:\S+\s+)?0x([0-9a-f]+) (.+?)\s*$", re.M)


def test_stack_modules_are_the_dumps_module_list(corpus):
    # lldb reads the minidump's module list on its own (the PyPI minidump reader refuses Wine's
    # extra stream 0xfff0).
    lldb = need_tool("lldb-19")
    crash = corpus["crashes"]["unwrap_none"]
    out = subprocess.run([lldb, "-b", "-c", str(crash.dump), "-o", "image list"], capture_output=True, text=True,
                         timeout=120).stdout
    theirs = sorted((int(base, 16), path.replace("\\", "/").rsplit("/", 1)[-1].lower())
                    for base, path in LLDB_IMAGE.findall(out))
    data = json.loads(cli("stack", str(crash.dump), "--store", str(corpus["store"]), "--json").stdout)
    assert len(theirs) >= 5
    assert sorted((int(m["base"], 16), m["name"].lower()) for m in data["modules"]) == theirs
    exe = next(m for m in data["modules"] if m["name"] == "unwrap_none.exe")
    assert exe["symbols"].startswith("(pdb symbols)") and exe["pdb_path"].startswith(str(corpus["store"]))
    text = cli("stack", str(crash.dump), "--store", str(corpus["store"]), "--modules").stdout
    assert re.search(r"^00000001`40000000 \S+ +unwrap_none\.exe +\(pdb symbols\)", text, re.M)


def test_max_frames_cuts_the_walk(corpus):
    crash = corpus["crashes"]["unwrap_none"]
    data = json.loads(cli("stack", str(crash.dump), "--store", str(corpus["store"]), "--json",
                          "--max-frames", "5").stdout)
    thread = data["threads"][0]
    assert len({f["address"] for f in thread["frames"]}) == 5 and thread["truncated"]


def test_no_stale_frames_past_a_threads_start(triage):
    # A spawned thread: std's thread_start, then Wine's kernel32; what scanning found below was
    # old stack data (three ntdll frames and more) and is left out, with a note.
    row = triage["thread_panic"]
    start = max(k for k, f in enumerate(row["stack"]) if (f["function"] or "").endswith("::thread_start"))
    assert all(f["trust"] != "scan" for f in row["stack"][start:])


# --- Linux: a current-Rust std program, crashed under gdb, read through DWARF -------------------------------

LINUX_PANIC_LINE = re.compile(r"^thread '(?P<thread>[^']*)'(?: \(\d+\))? panicked at (?P<file>[^\n:]+):(?P<line>\d+):"
                              r"(?P<column>\d+):\n(?P<message>.*)$", re.M)


def test_linux_std_panic_location_through_dwarf(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from builders.core_minidump import core_to_minidump

    rustc = need_tool("rustc")
    gdb = need_tool("gdb")
    src = Path(__file__).parent / "corpus" / "linux-panic" / "connect.rs"
    binary = tmp_path / "connect"
    shutil.copyfile(src, tmp_path / "connect.rs")
    subprocess.run([rustc, "-g", "-O", "-C", "panic=abort", "connect.rs", "-o", str(binary)], cwd=tmp_path,
                   check=True, capture_output=True, timeout=300)
    plain = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    printed = LINUX_PANIC_LINE.search(plain.stderr)
    assert printed, plain.stderr
    core = tmp_path / "connect.core"
    subprocess.run([gdb, "-batch", "-nx", "-ex", "run", "-ex", f"gcore {core}", str(binary)], cwd=tmp_path,
                   capture_output=True, timeout=120, check=True)
    dump = tmp_path / "connect.dmp"
    dump.write_bytes(core_to_minidump(core))
    result = cli("stack", str(dump), "--build-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    panic = json.loads(result.stdout)["panic"]
    assert panic is not None
    assert (panic["file"], panic["line"], panic["column"], panic["thread"]) == \
        (printed["file"], int(printed["line"]), int(printed["column"]), printed["thread"])
    # rustc 1.95's fmt::Arguments is the byte-template layout (the compiler version in .comment
    # chooses it); the &str argument's type comes from DWARF's own name of its formatter (fmt<str>).
    assert panic["message"] == printed["message"].strip()
    rows = json.loads(cli("dumps", str(dump), "--build-dir", str(tmp_path), "--json").stdout)
    assert rows[0]["signature"][0] == "connect!connect::connect"
    assert rows[0]["panic"] == panic

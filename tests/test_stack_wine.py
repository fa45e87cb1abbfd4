"""Real crashes, end to end: build the sample crash programs, crash them under Wine
(AeDebug runs ``winedbg --minidump``), publish to a store, then ``symtool stack`` and
``symtool dumps`` from the store only -- compared with Wine's own debugger (``winedbg
DUMP`` + ``bt``) and with ``llvm-readobj --unwind`` and ``llvm-symbolizer``.

Line numbers: symtool names a caller frame's line at ``return address - 1`` (the
call itself, as llvm-symbolizer, Breakpad and rust-minidump do); winedbg looks
the line up at the return address itself.  Where the two differ the test checks
each against llvm-symbolizer at its own address, so both are pinned by an oracle.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import need_tool
from symtool.cli import app
from symtool.formats.pe_unwind import read_pe_unwind

AEDEBUG = r"HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug"
CRASHES = {  # dump name -> (binary, exception code)
    "deep-1.dmp": ("crash-deep", "C0000005"),
    "deep-2.dmp": ("crash-deep", "C0000005"),
    "recurse.dmp": ("crash-recurse", "C0000005"),
    "ill.dmp": ("crash-ill", "C000001D"),
}


def _wine(wine_cmd, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["wine", *args], env=wine_cmd.env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def crashes(sample_build, wine_cmd, tmp_path_factory):
    need_tool("winedbg")
    root = tmp_path_factory.mktemp("crashes")
    dumps = root / "dumps"
    dumps.mkdir()
    _wine(wine_cmd, "reg", "add", AEDEBUG, "/v", "Auto", "/t", "REG_SZ", "/d", "1", "/f")
    for name, (binary, _code) in CRASHES.items():
        target = dumps / name
        # winedbg wants forward slashes in the Z: path it is given.
        debugger = f"winedbg --minidump Z:{target.as_posix()} %ld %ld"
        _wine(wine_cmd, "reg", "add", AEDEBUG, "/v", "Debugger", "/t", "REG_SZ", "/d", debugger, "/f")
        proc = _wine(wine_cmd, str(sample_build.exe(binary)))
        assert proc.returncode != 0
        assert target.is_file(), f"no minidump from {binary}: {proc.stderr[-2000:]}"
    # Source-index copies of the images and PDBs (the session's build stays as cargo left it), the
    # workspace mapped to SOURCE_BASE, then publish them.
    staged = root / "staged"
    staged.mkdir()
    for f in sorted(sample_build.out("release").iterdir()):
        if f.suffix in (".exe", ".pdb") and f.is_file():
            shutil.copyfile(f, staged / f.name)
    pdbs = sorted(str(p) for p in staged.glob("*.pdb"))
    result = CliRunner().invoke(app, ["srcindex", "--map", f"{sample_build.workspace}={SOURCE_BASE}", *pdbs],
                                env={"SYMTOOL_STORE": ""})
    assert result.exit_code in (0, 1), result.output  # 1: files of other crates may be served from nowhere
    store = root / "store"
    result = CliRunner().invoke(app, ["publish", str(staged), "--store", str(store)], env={"SYMTOOL_STORE": ""})
    assert result.exit_code == 0, result.output
    return {"dumps": dumps, "store": store, "build": sample_build, "wine": wine_cmd}


SOURCE_BASE = "https://src.example.com/samples/"
STD = re.compile(r"^[/\\]rustc[/\\]([0-9a-f]{40})[/\\](.*)$")


def expected_source_url(crashes, path: str | None) -> str | None:
    """What indexing with --map WORKSPACE=SOURCE_BASE makes of ``path`` (std files: the std rule)."""
    if path is None:
        return None
    ws = str(crashes["build"].workspace)
    if path.startswith(ws + "/"):
        return SOURCE_BASE + path[len(ws) + 1:]
    m = STD.match(path)
    if m:
        return f"https://raw.githubusercontent.com/rust-lang/rust/{m[1]}/{m[2].replace(chr(92), '/')}"
    return None


def _cli(*args: str, cwd: Path):
    import os

    old = os.getcwd()
    os.chdir(cwd)  # outside any workspace: only the store is searched
    try:
        return CliRunner().invoke(app, list(args), env={"SYMTOOL_STORE": "", "_NT_SYMBOL_PATH": ""})
    finally:
        os.chdir(old)


BT_LINE = re.compile(r"^\s*(?:=>)?\s*(\d+) 0x([0-9a-f]+) (\S+?)(?:\+0x[0-9a-f]+)?\(.*?\)(?: \[(.*):(\d+)\])? in (\S+)")


def winedbg_bt(wine_cmd, dump: Path) -> list[dict]:
    proc = subprocess.run(["winedbg", f"Z:{dump.as_posix()}"], input="bt\nquit\n", env=wine_cmd.env(),
                          capture_output=True, text=True, timeout=180)
    text = proc.stdout
    block = text.rsplit("Backtrace:", 1)[-1]
    frames = []
    for line in block.splitlines():
        m = BT_LINE.match(line)
        if m:
            frames.append({"address": int(m[2], 16), "function": m[3],
                           "file": m[4].replace("\\", "/")[2:] if m[4] else None,
                           "line": int(m[5]) if m[5] else None, "module": m[6]})
    assert frames, f"winedbg printed no backtrace:\n{text[-3000:]}\n{proc.stderr[-2000:]}"
    return frames


def llvm_lines(exe: Path, addresses: list[int]) -> dict[int, list[tuple[str, int]]]:
    tool = need_tool("llvm-symbolizer")
    out = subprocess.run([tool, "--output-style=JSON", "--inlining", f"--obj={exe}", *map(hex, addresses)],
                         capture_output=True, text=True, check=True).stdout
    res = {}
    for item in json.loads(out):
        addr = int(item["Address"], 16)
        res[addr] = [(s["FunctionName"], s["Line"]) for s in item["Symbol"]]
    return res


def _same_function(ours: str, theirs: str) -> bool:
    return ours == theirs or ours.endswith("::" + theirs) or theirs.endswith("::" + ours)


@pytest.mark.parametrize("name", ["deep-1.dmp", "recurse.dmp", "ill.dmp"])
def test_stack_matches_winedbg(crashes, name, tmp_path):
    binary, code = CRASHES[name]
    dump = crashes["dumps"] / name
    result = _cli("stack", "--json", "--store", str(crashes["store"]), str(dump), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (thread,) = data["threads"]
    assert thread["crashed"] and thread["error"] is None
    image = f"{binary}.exe"
    ours = [f for f in thread["frames"] if f["module"] == image]
    theirs = [f for f in winedbg_bt(crashes["wine"], dump) if f["module"] == binary]
    # winedbg sometimes gives up early (after the ud2 in crash-ill it stops at `run`): every frame it
    # lists must be ours, in order; frames past its end are checked against llvm-symbolizer below.
    assert [f["function"] for f in ours] and len(ours) >= len(theirs) >= 2, (ours, theirs)
    for o, t in zip(ours, theirs):
        assert _same_function(o["function"], t["function"]), (o, t)
        assert o["file"] == t["file"], (o, t)
        assert int(o["address"], 16) == t["address"]
    exe = crashes["build"].exe(binary)
    physical = [f for f in ours if not f["inline"]]
    lookups = llvm_lines(exe, [int(f["address"], 16) - (0 if f["trust"] == "context" else 1) for f in physical]
                         + [int(f["address"], 16) for f in physical])
    if len(ours) > len(theirs):
        assert binary == "crash-ill" and ours[-1]["function"] == "crash_ill::mainCRTStartup"
    # Every own frame, inline ones included, is what llvm-symbolizer says at the same address.
    groups, current = [], []  # one physical frame and the inline rows before it
    for f in ours:
        current.append(f)
        if not f["inline"]:
            groups.append(current)
            current = []
    for rows in groups:
        pc = int(rows[0]["address"], 16)
        at = pc - (0 if rows[0]["trust"] == "context" else 1)
        assert len(rows) == len(lookups[at]), (rows, lookups[at])
        # llvm-symbolizer names #[no_mangle] functions by their linkage name (mainCRTStartup).
        assert all(_same_function(r["function"], fn) for r, (fn, _) in zip(rows, lookups[at])), (rows, lookups[at])
        # Lines of inline rows are pinned by winedbg below (llvm-symbolizer's native PDB reader puts the
        # call inside `middle` on line 20; winedbg and the PDB's inline-site annotations say 19).
        assert rows[-1]["line"] == lookups[at][-1][1], (rows, lookups[at])
    for o, t in zip(ours, theirs):
        if o["line"] == t["line"]:
            continue
        assert not o["inline"] and o["trust"] != "context", (o, t)
        pc = int(o["address"], 16)
        assert lookups[pc - 1][-1][1] == o["line"], (o, lookups[pc - 1])
        assert lookups[pc][-1][1] == t["line"], (t, lookups[pc])
    # Every own frame names the URL its file was indexed with (--map of the workspace).
    assert all(f["source_url"] == expected_source_url(crashes, f["file"]) for f in ours), ours
    assert sum(1 for f in ours if f["source_url"] and f["source_url"].startswith(SOURCE_BASE)) >= 2, ours
    # Every frame of the program's own module came from the unwind data (or the context).
    assert {f["trust"] for f in ours} <= {"context", "cfi"}
    assert ours[0]["trust"] == "context"


def test_inline_frame_in_the_middle(crashes, tmp_path):
    result = _cli("stack", "--store", str(crashes["store"]), str(crashes["dumps"] / "deep-1.dmp"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["#", "Child-SP", "RetAddr", "Call", "Site"]
    calls = [re.sub(r"^[0-9a-f]{2} (\(Inline Function\) --------`--------|\S+ \S+) ", "", ln) for ln in lines[2:8]]
    assert [c.split(" [")[0] for c in calls] == [
        "crash_deep!minicore::poke+0x0", "crash_deep!crash_deep::level3+0x17", "crash_deep!crash_deep::middle",
        "crash_deep!crash_deep::level2+0xb", "crash_deep!crash_deep::level1+0x9",
        "crash_deep!crash_deep::mainCRTStartup+0x9"]
    assert "(Inline Function) --------`--------" in lines[4]
    assert "crash-deep.rs @ 19]" in lines[4]


def test_recursion_is_compressed(crashes, tmp_path):
    result = _cli("stack", "--store", str(crashes["store"]), str(crashes["dumps"] / "recurse.dmp"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert re.search(r"frames 0x\w+-0x\w+ repeat crash_recurse!crash_recurse::recurse\+0x\w+ \(\d+ frames\)",
                     result.stdout), result.stdout


def test_unwind_data_matches_llvm_readobj(crashes):
    tool = need_tool("llvm-readobj")
    for binary in ("crash-deep", "crash-recurse", "crash-ill"):
        exe = crashes["build"].exe(binary)
        text = subprocess.run([tool, "--unwind", str(exe)], capture_output=True, text=True, check=True).stdout
        image = read_pe_unwind(exe)
        blocks = text.split("RuntimeFunction {")[1:]
        assert len(blocks) == len(image.functions)
        for block, (begin, end, info_rva) in zip(blocks, image.functions):
            base = image.image_base
            assert f"StartAddress: ({base + begin:#X})".replace("0X", "0x") in block
            assert f"EndAddress: ({base + end:#X})".replace("0X", "0x") in block
            info = image.unwind_info(info_rva)
            assert f"PrologSize: {info.prolog_size}" in block
            codes = re.findall(r"0x([0-9A-F]{2}): (\w+)(?: (?:reg=(\w+)|size=(\d+)))?", block)
            assert len(codes) == len(info.codes)
            for (off, op, reg, size), code in zip(codes, info.codes):
                assert int(off, 16) == code.offset and op == code.name
                if size:
                    assert int(size) == code.operand
                if reg:
                    from symtool.formats.cpu_context import X64_REGISTERS

                    assert reg.lower() == X64_REGISTERS[code.info]


def test_dumps_from_the_store_only(crashes, tmp_path):
    result = _cli("dumps", "--json", "--store", str(crashes["store"]), str(crashes["dumps"]), cwd=tmp_path)
    # The program's own PDBs are all in the store; ntdll & co are OS modules and do not count.
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    for name, (binary, code) in CRASHES.items():
        row = rows[name]
        assert row["exception_code"] == code
        assert row["stack"], row
        for f in row["stack"]:
            assert {"module", "offset", "function", "function_offset", "file", "line", "inline", "trust",
                    "source_url"} <= set(f)
            if f["module"] == f"{binary}.exe":
                assert f["source_url"] == expected_source_url(crashes, f["file"]), f
        assert any(f["source_url"] for f in row["stack"]), row["stack"]
        own = next(m for m in row["modules"] if m["name"] == f"{binary}.exe")
        assert own["codeview"] is None or own["codeview_source"] == "image"  # Wine's dumps have no CodeView
        assert own["pdb_found"] is True and not own["os_module"]
        assert all(m["os_module"] for m in row["modules"] if m["name"] != own["name"])
    assert rows["deep-1.dmp"]["bucket"] == rows["deep-2.dmp"]["bucket"]
    # deep and recurse share the top frame (minicore::poke) but not the signature.
    assert rows["deep-1.dmp"]["stack"][0]["function"] == rows["recurse.dmp"]["stack"][0]["function"]
    assert rows["deep-1.dmp"]["bucket"] != rows["recurse.dmp"]["bucket"]
    assert rows["ill.dmp"]["function"] == "crash_ill::bad_op"
    text = _cli("dumps", "--store", str(crashes["store"]), str(crashes["dumps"]), cwd=tmp_path).stdout
    assert "Buckets (3):" in text and "crash_deep!crash_deep::middle" in text


def test_source_urls_under_frames(crashes, tmp_path):
    dump = str(crashes["dumps"] / "deep-1.dmp")
    plain = _cli("stack", "--store", str(crashes["store"]), dump, cwd=tmp_path)
    result = _cli("stack", "--source-urls", "--store", str(crashes["store"]), dump, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    sources = [ln for ln in lines if ln.startswith("    source: ")]
    assert any(ln.startswith(f"    source: {SOURCE_BASE}") and ln.endswith("crash-deep.rs") for ln in sources), lines
    # Each source line follows the frame it belongs to; without the option the output is cdb's `k`.
    assert [ln for ln in lines if not ln.startswith("    source: ")] == plain.stdout.splitlines()
    assert "source:" not in plain.stdout


def test_fetch_dump_finds_the_pdb_through_the_image(crashes, tmp_path):
    """Issue 26, item 4: Wine's dumps carry no CodeView records; `fetch --dump` fetches the
    image by its TimeDateStamp+SizeOfImage key, then the PDB its CodeView record names, as
    stack and dumps find it."""
    from symtool.formats.minidump import read_minidump
    from symtool.formats.pdb import read_pdb

    dump = crashes["dumps"] / "deep-1.dmp"
    module = next(m for m in read_minidump(dump).modules if m.file_name == "crash-deep.exe")
    assert module.debug_id is None  # what this test is about: no CodeView record in the dump
    cache = tmp_path / "cache"
    result = _cli("fetch", "--dump", str(dump), "--server", str(crashes["store"]), "--cache", str(cache), "--json",
                  cwd=tmp_path)
    out = json.loads(result.stdout)
    own = next(m for m in out["modules"] if m["module"] == "crash-deep.exe")
    assert own["codeview_source"] == "image"
    results = {r["kind"]: r for r in own["results"]}
    want = read_pdb(crashes["build"].pdb("crash-deep")).index  # the PDB the build wrote for it
    assert results["pdb"]["status"] == "fetched" and results["pdb"]["key"] == f"crash_deep.pdb/{want}/crash_deep.pdb"
    assert read_pdb(results["pdb"]["path"]).index == want
    assert results["image"]["status"] == "fetched" and results["image"]["key"].startswith("crash-deep.exe/")
    # Wine's own DLLs are in no store: not found (exit 1), but the program's PDB is in the cache.
    assert result.exit_code == 1, result.output


def _readme_stack_example() -> list[str]:
    """The frame lines of the README's `symtool stack` example (a real crash-deep crash under Wine)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("    $ symtool stack /tmp/crash.dmp --store ./symstore\n", 1)[1].split("\n\n", 1)[0]
    return [line[4:] for line in block.splitlines()[2:]]


def _call_site(line: str) -> str:
    """A `k` line without its index and the Child-SP/RetAddr columns (stack addresses belong to one
    run of one Wine), file paths cut to their name as the README shortens them."""
    call = re.sub(r"^[0-9a-f]{2} (\(Inline Function\) --------`--------|\S+ \S+) ", "", line)
    return re.sub(r"\[[^\]]*[/\\]([^/\\\]]+) @ (\d+)\]", r"[\1 @ \2]", call)


def test_readme_stack_example_is_what_the_sample_gives(crashes, tmp_path):
    """Issue 26, item 14: the README showed a line (minicore's poke at line 40) the sample no longer
    gives.  Its program frames must be the ones `symtool stack` prints for crash-deep now, and its
    OS frames start where ours do."""
    result = _cli("stack", "--store", str(crashes["store"]), str(crashes["dumps"] / "deep-1.dmp"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    ours = [_call_site(line) for line in result.stdout.splitlines()[2:] if re.match(r"^[0-9a-f]{2} ", line)]
    readme = [_call_site(line) for line in _readme_stack_example()]
    own = [c for c in ours if c.startswith("crash_deep!")]
    assert [c for c in readme if c.startswith("crash_deep!")] == own and len(own) == 6
    assert readme[len(own)].split("+")[0] == ours[len(own)].split("+")[0]  # the first OS frame's module


FOUND_BY = re.compile(r"  \(Found by: ([^)]*)\)$")


def test_every_frame_is_labelled_with_how_it_was_found(crashes, tmp_path, fixtures_dir):
    """Issue 26, item 17: the text labels each frame's trust in minidump-stackwalk's words ("Found by:
    call frame info"), the trust --json gives, for all four trusts on real dumps: the Wine crash walked
    with the .pdata of the image in the store (context, call frame info) and a third-party x86 dump
    without its images (rust-minidump's test.dmp: frame pointer, stack scanning)."""
    from symtool.commands.stack import TRUST_LABELS
    from symtool.stackwalk.walk import TRUSTS

    assert set(TRUST_LABELS) == set(TRUSTS)
    seen = set()
    for args in ([str(crashes["dumps"] / "deep-1.dmp"), "--store", str(crashes["store"])],
                 [str(fixtures_dir / "dumps" / "rm-test.dmp"), "--offline"]):
        text = _cli("stack", *args, cwd=tmp_path)
        as_json = _cli("stack", "--json", *args, cwd=tmp_path)
        assert text.exit_code == 0 and as_json.exit_code == 0, text.output + as_json.output
        (thread,) = json.loads(as_json.stdout)["threads"]
        lines = [line for line in text.stdout.splitlines() if re.match(r"^[0-9a-f]{2} ", line)]
        assert len(lines) == len(thread["frames"]) > 3, text.stdout
        for line, frame in zip(lines, thread["frames"]):
            found_by = FOUND_BY.search(line)
            if frame["inline"]:  # the caller's frame: "(Inline Function)" says so, no trust of its own
                assert found_by is None and "(Inline Function)" in line, line
            else:
                assert found_by is not None and found_by.group(1) == TRUST_LABELS[frame["trust"]], line
                seen.add(frame["trust"])
    assert seen == set(TRUSTS)

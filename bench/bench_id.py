"""`symtool id` on a >= 1 GiB PDB and on a ~100 KB one: bytes read and time,
against pdbparse's fast_load (if installed) and `llvm-pdbutil dump --summary`.

The big PDB is real: a generated C program whose structs have very long,
unique member names (a few lines of C expand through the preprocessor into
~2,000-character identifiers), compiled with `clang -g -gcodeview` and linked
by `lld-link /debug`; llvm-pdbutil validates it.  It is generated once into
``$SYMTOOL_BENCH_DIR/symtool-bench-cache`` (default: the temp dir) and reused.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "symtool id: identity of a 1 GiB PDB"

NAME_LEN = 2000  # characters of every member name
FIELDS = 256  # members per struct (fixed by the F256 macro below)
STRUCTS_PER_TU = 100
GEN_VERSION = 1


def _tu_source(first: int, count: int) -> str:
    lines = [
        "#define CAT_(a,b) a##b",
        "#define CAT(a,b) CAT_(a,b)",
        "#define CAT3(a,b,c) CAT(CAT(a,b),c)",
        "#define P " + "p" * NAME_LEN,
        # Names must be unique per struct: lld merges identical type records.
        "#define FIELD(s,f) char CAT3(P, CAT(_s, s), CAT(_f, f));",
        "#define F4(s,f) FIELD(s,f##0) FIELD(s,f##1) FIELD(s,f##2) FIELD(s,f##3)",
        "#define F16(s,f) F4(s,f##0) F4(s,f##1) F4(s,f##2) F4(s,f##3)",
        "#define F64(s,f) F16(s,f##0) F16(s,f##1) F16(s,f##2) F16(s,f##3)",
        "#define F256(s,f) F64(s,f##0) F64(s,f##1) F64(s,f##2) F64(s,f##3)",
        "#define STRUCT(s) struct CAT(S, s) { F256(s, 1) }; struct CAT(S, s) CAT(g, s);",
    ]
    lines += [f"STRUCT({s})" for s in range(first, first + count)]
    return "\n".join(lines) + "\n"


def _say(msg: str) -> None:
    sys.stderr.write(f"[bench id] {msg}\n")
    sys.stderr.flush()


def generate_pdb(dest: Path, target_bytes: int) -> Path:
    """A real PDB of at least ``target_bytes`` (cached in ``dest``)."""
    pdb = dest / "big.pdb"
    if pdb.is_file() and pdb.stat().st_size >= target_bytes:
        return pdb
    clang, lld = shutil.which("clang"), shutil.which("lld-link")
    if not clang or not lld:
        raise RuntimeError("generating the PDB needs clang and lld-link on PATH")
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gen-", dir=dest))
    per_struct = FIELDS * (NAME_LEN + 20)
    # Below one struct's worth: just the debug info of main() (lld's smallest PDB).
    n_structs = -(-target_bytes // per_struct) if target_bytes >= per_struct else 0
    tus = [(s, min(STRUCTS_PER_TU, n_structs - s)) for s in range(0, n_structs, STRUCTS_PER_TU)]
    _say(f"generating a >= {target_bytes / 2**20:.0f} MiB PDB: {n_structs} structs in {len(tus)} C files")
    t0 = time.perf_counter()
    (work / "main.c").write_text("struct point { int x, y; };\n"
                                 "int mainCRTStartup(void) { struct point p = {1, 2}; return p.x + p.y; }\n")
    objs = []

    def compile_one(i: int, first: int, count: int) -> Path:
        src = work / f"t{i}.c"
        src.write_text(_tu_source(first, count))
        obj = work / f"t{i}.obj"
        subprocess.run([clang, "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-gcodeview-ghash",
                        "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
        src.unlink()
        return obj

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futs = [pool.submit(compile_one, i, first, count) for i, (first, count) in enumerate(tus)]
        for k, fut in enumerate(concurrent.futures.as_completed(futs), 1):
            objs.append(fut.result())
            if k % 5 == 0 or k == len(futs):
                _say(f"compiled {k}/{len(futs)} ({time.perf_counter() - t0:.0f} s)")
    main_obj = work / "main.obj"
    subprocess.run([clang, "--target=x86_64-pc-windows-msvc", "-g", "-gcodeview", "-c", str(work / "main.c"),
                    "-o", str(main_obj)],
                   check=True, capture_output=True)
    _say("linking with lld-link /debug:ghash ...")
    subprocess.run([lld, "/nologo", "/debug:ghash", "/entry:mainCRTStartup", "/subsystem:console", "/nodefaultlib",
                    f"/out:{work / 'big.exe'}", f"/pdb:{work / 'big.pdb'}", str(main_obj), *map(str, sorted(objs))],
                   check=True, capture_output=True)
    os.replace(work / "big.pdb", pdb)
    os.replace(work / "big.exe", dest / "big.exe")
    shutil.rmtree(work, ignore_errors=True)
    _say(f"done: {pdb.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t0:.0f} s")
    return pdb


def sparse_big_pdb(small: Path, dest: Path, extra_bytes: int) -> Path:
    """``small`` (a real lld PDB) grown by one stream of ``extra_bytes`` whose pages are a hole
    of a sparse file: a PDB of that size on paper (llvm-pdbutil reads it, the directory lists
    every page) that costs the disk only the small PDB, the directory and its block map.

    The new stream is appended to the directory, so the directory grows by 4 bytes per page
    (1 MiB for 1 GiB), written after the hole with its block map; the superblock is rewritten to
    point at them.  FPM pages (block % block size in 1, 2) are never used."""
    from symtool.formats.binio import BoundedReader
    from symtool.formats.msf_write import _serialize_directory, read_layout
    from symtool.formats.pdb import BLOCK_NUMBER7, MSF7_BLOCK_MAP_AT, MSF7_SUPERBLOCK, MSF7_SUPERBLOCK_AT

    with open(small, "rb") as f:
        layout = read_layout(BoundedReader(f, str(small)))
        original = f.read()
    bs = layout.block_size
    next_block = layout.num_blocks

    def take(n: int) -> list[int]:
        nonlocal next_block
        out = []
        while len(out) < n:
            if next_block % bs not in (1, 2):
                out.append(next_block)
            next_block += 1
        return out

    big_blocks = take(-(-extra_bytes // bs))
    directory = _serialize_directory(layout.sizes + [extra_bytes], layout.blocks + [big_blocks])
    dir_blocks = take(-(-len(directory) // bs))
    block_map = b"".join(BLOCK_NUMBER7.pack(b) for b in dir_blocks)
    map_blocks = take(-(-len(block_map) // bs))
    if MSF7_BLOCK_MAP_AT + BLOCK_NUMBER7.size * len(map_blocks) > bs:
        raise RuntimeError("the directory's block map does not fit the superblock")
    out = dest / "sparse-big.pdb"
    with open(out, "wb") as f:
        f.write(original)
        f.truncate(next_block * bs)  # the hole: never written, never allocated
        for i, b in enumerate(dir_blocks):
            f.seek(b * bs)
            f.write(directory[i * bs:(i + 1) * bs])
        for i, b in enumerate(map_blocks):
            f.seek(b * bs)
            f.write(block_map[i * bs:(i + 1) * bs])
        f.seek(MSF7_SUPERBLOCK_AT)
        f.write(MSF7_SUPERBLOCK.pack(bs, layout.fpm_block, next_block, len(directory), layout.unknown))
        f.write(b"".join(BLOCK_NUMBER7.pack(b) for b in map_blocks))
    return out


def _rchar() -> int:
    try:
        for line in open("/proc/self/io"):
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def _child(cmd: list[str], trace: bool = True) -> tuple[float, int, int]:
    """(seconds, bytes read by read()/pread() syscalls (-1 untraced), peak RSS KiB) of a command."""
    strace = shutil.which("strace") if trace else None
    trace_file = None
    if strace:
        fd, trace_file = tempfile.mkstemp(suffix=".strace")
        os.close(fd)
        cmd = [strace, "-f", "-qq", "-e", "trace=read,pread64,readv,preadv", "-o", trace_file, *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode(errors='replace')[-500:]}")
    nread = -1
    if trace_file:
        nread = 0
        with open(trace_file) as f:
            for line in f:
                tail = line.rstrip().rsplit("=", 1)
                if len(tail) == 2 and tail[1].strip().split(" ")[0].isdigit():
                    nread += int(tail[1].strip().split(" ")[0])
        os.unlink(trace_file)
    return seconds, nread, usage.ru_maxrss


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one untraced run of a command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed")
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def _interleaved(cmds: dict[str, list[str]], runs: int = 21) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each command, the commands taking turns run after run."""
    import statistics

    got: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for _ in range(runs):
        for k, cmd in cmds.items():
            got[k].append(_timed(cmd))
    return {k: (statistics.median(w for w, _c in v) * 1000, statistics.median(c for _w, c in v) * 1000)
            for k, v in got.items()}


def _best(fn, repeat: int = 5):
    best, result = float("inf"), None
    for _ in range(repeat):
        before = _rchar()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        nread = _rchar() - before
    return best, nread, result


def run(ctx) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from symtool.formats.pdb import read_pdb

    cache = Path(os.environ.get("SYMTOOL_BENCH_DIR") or tempfile.gettempdir()) / "symtool-bench-cache"
    big_target = (16 << 20) if ctx.quick else (1 << 30) + (64 << 20)
    small = generate_pdb(cache / f"bigpdb-v{GEN_VERSION}-small", 60_000)
    if os.environ.get("SYMTOOL_BENCH_REAL_BIG_PDB"):
        big = generate_pdb(cache / f"bigpdb-v{GEN_VERSION}-{big_target >> 20}M", big_target)
    else:
        # Sparse: the size is on paper, the disk holds ~1 MiB; in the run's scratch dir, removed after.
        big = sparse_big_pdb(small, ctx.workdir, big_target - small.stat().st_size)
    llvm = shutil.which("llvm-pdbutil")
    try:
        import pdbparse  # noqa: F401
        have_pdbparse = True
    except Exception:
        have_pdbparse = False

    rows: list[dict] = []
    # As installed (pip compiles bytecode): children cache .pyc files, in the scratch dir.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(ctx.workdir / "pycache")
    commands = {"floor": [sys.executable, "-c", "pass"]}
    for label, pdb in (("small", small), ("big", big)):
        commands[f"id {label}"] = [sys.executable, "-m", "symtool", "id", str(pdb)]
        if llvm:
            commands[f"llvm {label}"] = [llvm, "dump", "--summary", str(pdb)]
    for cmd in commands.values():
        _timed(cmd)  # warm-up: page cache, bytecode
    timing = _interleaved(commands)
    rows.append({"case": "start-up floor", "tool": "python -c pass", "ms": timing["floor"][0],
                 "cpu ms": timing["floor"][1], "bytes read": "", "read() bytes": "", "peak RSS MiB": "", "key": ""})
    for label, pdb in (("small", small), ("big", big)):
        size = pdb.stat().st_size
        case = f"{label} PDB ({size / 2**20:.1f} MiB)" if size >= 2**20 else f"{label} PDB ({size / 1024:.0f} KiB)"
        read_pdb(pdb)  # warm the page cache the same way for every tool
        secs, nread, info = _best(lambda: read_pdb(pdb))
        rows.append({"case": case, "tool": "symtool read_pdb (library)", "ms": secs * 1000,
                     "bytes read": info.bytes_read, "read() bytes": nread, "peak RSS MiB": "",
                     "key": info.index})
        cli = commands[f"id {label}"]
        wall, cpu = timing[f"id {label}"]
        _, nread, rss = _child(cli)
        rows.append({"case": case, "tool": "symtool id (CLI, incl. Python start)", "ms": wall, "cpu ms": cpu,
                     "bytes read": "", "read() bytes": nread, "peak RSS MiB": f"{rss / 1024:.1f}", "key": ""})
        if have_pdbparse:
            def with_pdbparse():
                import pdbparse
                import pdbparse.dbi
                import pdbparse.info

                p = pdbparse.parse(str(pdb), fast_load=True)
                root = pdbparse.info.parse(p.streams[1].data)
                dbi = pdbparse.dbi.DBIHeader.parse(p.streams[3].data[:64])
                return root.Age, dbi.age

            secs, nread, _ = _best(with_pdbparse, repeat=3)
            rows.append({"case": case, "tool": "pdbparse 1.5 fast_load + headers", "ms": secs * 1000,
                         "bytes read": "", "read() bytes": nread, "peak RSS MiB": "", "key": ""})
        if llvm:
            cmd = [llvm, "dump", "--summary", str(pdb)]
            summary = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            if info.guid not in summary.upper() or f"Age: {info.info_age}" not in summary:
                raise RuntimeError(f"llvm-pdbutil disagrees about {pdb}:\n{summary}")
            wall, cpu = timing[f"llvm {label}"]
            _, nread, rss = _child(cmd)
            rows.append({"case": case, "tool": "llvm-pdbutil dump --summary", "ms": wall, "cpu ms": cpu,
                         "bytes read": "(mmap)", "read() bytes": nread, "peak RSS MiB": f"{rss / 1024:.1f}",
                         "key": ""})
    if llvm:
        big_id, big_llvm = timing["id big"], timing["llvm big"]
        ctx.notes.append(
            f"Goal (issue 25): `symtool id` of the 1 GiB PDB within 2x of `llvm-pdbutil dump --summary`: "
            f"{big_id[0] / big_llvm[0]:.2f}x wall, {big_id[1] / big_llvm[1]:.2f}x CPU in this run "
            f"({big_id[0]:.0f} ms against {big_llvm[0]:.0f} ms; `python -c pass` alone {timing['floor'][0]:.0f} ms, "
            f"so 2x leaves symtool {2 * big_llvm[0] - timing['floor'][0]:.0f} ms above Python's own start "
            f"and it takes {big_id[0] - timing['floor'][0]:.0f} ms).  Where that goes (`python -X importtime`, "
            "2026-12-06, after issue 25's start-up work): symtool's own modules, a few tenths of a ms each -- the "
            "PDB reader (its record types are namedtuples and plain classes), ids, the store layout, the "
            "identity dispatch, errors and budgets -- plus signal, struct and array; the work itself (superblock, "
            "directory, info and DBI headers, the usable verdict's bounded scans) is under 1 ms. "
            "No longer imported on this path (tests/test_startup_imports.py): dataclasses (with copy and "
            "weakref, and inspect, ast, dis and tokenize when a class has no docstring), uuid (and platform), "
            "the PDB symbolizer (the usable verdict's record kinds are declared in formats.pdb), the "
            "source-index text module, typer, typing, json, tempfile, threading and the Mach-O reader.  Before: "
            "77-83 ms (3.8-4.0x) at the start of 2026-12-06, 54-59 ms (2.7-2.9x) before this round.")
    ctx.notes.append(
        f"1-minute load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other jobs ran too). "
        "The small PDB is lld's for a one-function C program (cached under $SYMTOOL_BENCH_DIR/symtool-bench-cache); "
        "the big one is that PDB grown by a 1 GiB stream whose pages are a hole of a sparse file (sparse_big_pdb: "
        "the directory lists all 262,144 pages, llvm-pdbutil reads it; ~1 MiB on disk, deleted after the run). "
        "SYMTOOL_BENCH_REAL_BIG_PDB=1 generates a real one instead (clang -g -gcodeview + lld-link /debug:ghash "
        "over C files whose structs have ~2,000-character member names). "
        "Command rows: median wall and CPU time of 21 runs, python -c pass, symtool id and llvm-pdbutil taking "
        "turns; `symtool id FILE` is parsed before the CLI framework is imported (symtool.main), so what it "
        "adds to python -c pass is its own imports and reads, the same for both PDB sizes. "
        "`bytes read` counts what symtool's reader asked for; `read() bytes` is what read()/pread() system calls "
        "returned (in-process /proc/self/io rchar for library calls, strace for commands, so the CLI rows include "
        "Python loading its modules: the same for both PDB sizes). Library rows: best of several warm-cache calls; "
        "commands timed without strace. llvm-pdbutil maps the file, "
        "so its reads show only as resident memory.")
    return rows

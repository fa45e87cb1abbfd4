"""symtool publish of many small files against PyPI ``symstore`` with the same durability.

400 PDBs of ~260 KiB (104 MiB): a real lld PDB (a one-function C program, see bench_id)
with its GUID changed per copy and pseudo-random MSF blocks appended (bench_publish.make_pdb),
published into an empty store by:

* ``symtool publish DIR`` (a new process, as a user runs it): every file copied to a temp
  name, fsynced and renamed, then under the store lock a refs.ptr per entry (fsynced, then its
  directory), every other changed directory fsynced once, and the transaction;
* with ``SYMTOOL_BENCH_BASELINE=DIR`` (a directory holding an older ``symtool`` package, e.g.
  ``git archive <commit> symtool | tar -x -C DIR``), that version too, in the same rounds: a
  before/after pair measured under the same load;
* PyPI ``symstore`` with fsync: its CLI in a process whose ``shutil.copy`` (what symstore
  copies with) is followed by fsync of the copy and of the directories it created, and whose
  admin files are fsynced before exit: the durability symtool gives;
* PyPI ``symstore`` as shipped (no fsync) and followed by ``sync -f STORE`` (syncfs: the whole
  filesystem flushed once), for reference.

Runs alternate between the tools, each into a new store (all kept until the end: see the
comment in run), ``sync`` before each; medians of wall and CPU time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TITLE = "publish 400 small files: symtool against PyPI symstore"
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
N_FILES = 400
TOTAL = 104 << 20
ROUNDS = 7

# PyPI symstore with the durability symtool gives: each copy fsynced with the directories it made.
SYMSTORE_FSYNC = r"""
import os, shutil, sys
import symstore.symstore as s
from symstore.command_line import main

copy = shutil.copy

def durable_copy(src, dst):
    out = copy(src, dst)
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd); os.close(fd)
    d = os.path.dirname(out)
    for level in (d, os.path.dirname(d)):  # the entry and name directories makedirs created
        fd = os.open(level, os.O_RDONLY)
        os.fsync(fd); os.close(fd)
    return out

s.shutil.copy = durable_copy
try:
    main()
finally:
    store = sys.argv[1]
    for root, _dirs, files in os.walk(os.path.join(store, "000Admin")):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            os.fsync(fd); os.close(fd)
    for level in (os.path.join(store, "000Admin"), store):
        fd = os.open(level, os.O_RDONLY)
        os.fsync(fd); os.close(fd)
"""
SYMSTORE_PLAIN = "from symstore.command_line import main; main()"


def _run(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {err[-800:]}")
    return wall, usage.ru_utime + usage.ru_stime


def make_files(dest: Path) -> list[str]:
    sys.path.insert(0, str(BENCH_DIR))
    import bench_id
    import bench_publish

    cache = Path(os.environ.get("SYMTOOL_BENCH_DIR") or "/tmp") / "symtool-bench-cache"
    base = bench_id.generate_pdb(cache / f"bigpdb-v{bench_id.GEN_VERSION}-small", 60_000)
    fill = os.urandom(1 << 20)
    dest.mkdir()
    saved = bench_publish.SRC_PDB
    bench_publish.SRC_PDB = base
    try:
        return [str(bench_publish.make_pdb(dest / f"s{i:03d}.pdb", TOTAL // N_FILES, 5000 + i, fill))
                for i in range(N_FILES)]
    finally:
        bench_publish.SRC_PDB = saved


def run(ctx) -> list[dict]:
    work: Path = ctx.workdir
    try:
        import symstore  # noqa: F401
    except ImportError:
        raise RuntimeError("PyPI symstore is needed (pip install -e '.[test]')") from None
    files = make_files(work / "files")
    total = sum(os.path.getsize(f) for f in files)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    def symtool(st):
        return [sys.executable, "-m", "symtool", "publish", str(work / "files"), "--store", str(st), "--product", "bench"]

    baseline = os.environ.get("SYMTOOL_BENCH_BASELINE")
    envs: dict[str, dict] = {}
    tools = {"symtool publish": symtool}
    if baseline:
        name = f"symtool publish, before ({Path(baseline).name})"
        tools[name] = symtool
        envs[name] = dict(env, PYTHONPATH=str(Path(baseline).resolve()),
                          PYTHONPYCACHEPREFIX=str(work / "pycache-baseline"))
    tools.update({
        "PyPI symstore + fsync (each file, its directories, the admin files)":
            lambda st: [sys.executable, "-c", SYMSTORE_FSYNC, str(st), *files],
        "PyPI symstore (no fsync)": lambda st: [sys.executable, "-c", SYMSTORE_PLAIN, str(st), *files],
    })
    # Every store is kept until all rounds are done.  On ext4 without a journal (this machine's
    # root file system) an inode freed in the last 60 s is skipped, one buffer lookup each, by
    # every inode allocation that scans past it: removing the last run's store (1,200-1,600
    # inodes) just before a run made each mkdir and file creation pay for it -- half the samples
    # of `perf record` were in find_inode_bit/recently_deleted -- which measures the rm -rf,
    # not the publish.  A store that is published into does not see thousands of deletions a
    # second before.
    stores: list[Path] = []

    def new_store() -> Path:
        stores.append(work / f"store-{len(stores)}")
        return stores[-1]

    # Warm-up (bytecode compiled, files in the page cache), untimed.
    for name, cmd in tools.items():
        _run(cmd(new_store()), envs.get(name, env), work)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    syncfs: list[float] = []
    loads = []
    for rnd in range(ROUNDS):
        for name, cmd in tools.items():
            st = new_store()
            os.sync()
            loads.append(os.getloadavg()[0])
            # In the work directory: `python -m` puts the current directory first on sys.path, and the
            # repository's own symtool there would shadow the baseline's.
            times[name].append(_run(cmd(st), envs.get(name, env), work))
            if name == "PyPI symstore (no fsync)" and shutil.which("sync"):
                syncfs.append(_run(["sync", "-f", str(st)])[0])
    for st in stores:
        shutil.rmtree(st)
    stored = subprocess.run([sys.executable, "-m", "symtool", "publish", str(work / "files"), "--store",
                             str(work / "check"), "--json"], env=env, capture_output=True, text=True)
    if stored.returncode != 0 or json.loads(stored.stdout)["summary"]["added"] != N_FILES:
        raise RuntimeError(f"symtool did not add the {N_FILES} files: {stored.stderr[-500:]}")
    rows = []
    case = f"{N_FILES} PDBs, {total / 2**20:.0f} MiB"
    peer = statistics.median(w for w, _c in times["PyPI symstore + fsync (each file, its directories, the admin files)"])
    for name, v in times.items():
        wall, cpu = statistics.median(w for w, _c in v), statistics.median(c for _w, c in v)
        rows.append({"case": case, "tool": name, "wall s": wall, "cpu s": cpu, "vs symstore + fsync": wall / peer,
                     "ms per file": 1000 * wall / N_FILES})
    if syncfs:
        plain = statistics.median(w for w, _c in times["PyPI symstore (no fsync)"])
        wall = plain + statistics.median(syncfs)
        rows.append({"case": case, "tool": "PyPI symstore, then sync -f STORE (syncfs)", "wall s": wall,
                     "vs symstore + fsync": wall / peer, "ms per file": 1000 * wall / N_FILES})
    ctx.notes.append(
        f"Medians of {ROUNDS} rounds, the tools alternating, each into a new store (kept until all rounds are "
        "done: on this ext4 without a journal, removing the last run's store just before a run made every inode "
        "allocation skip the thousands of inodes freed in the last 60 s, which measured the removal), `sync` "
        "before each run; "
        f"1-minute load average {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cores (other jobs ran at "
        "the same time: compare rows with each other). symtool additionally writes a refs.ptr per entry (as "
        "symstore.exe does; PyPI symstore does not) and renames every file into place from a temp name. "
        "syncfs flushes the whole filesystem, other processes' writes included: a lower bound, not a "
        "per-store guarantee. What symtool does per new key: mkdir of its two levels, a temp file copied "
        "in-kernel, fsynced and renamed (6 threads), then under the lock a refs.ptr created in place and "
        "fsynced and its directory fsynced (the name directories in the same batch), each changed directory "
        "once: about 1.3x the fsyncs and twice the file creations of PyPI symstore, which writes straight "
        "to the final name.")
    return rows

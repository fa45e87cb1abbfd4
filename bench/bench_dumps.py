"""Triage of 1,000 minidumps: time, peak memory at 100 vs 1,000 dumps, bucket counts.

The dumps are copies and byte-level variants of the real fixture dumps
(tests/fixtures/dumps): exception code, exception address and module
TimeDateStamps are patched in place, in planned groups, so the number of
buckets and each bucket's count are known in advance and checked.
crash.pdb is laid out in a local store, so the crash.exe groups are
symbolized (bucketed by function: different offsets inside one function
share a bucket).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

TITLE = "dumps: triage 1,000 minidumps"

ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = ROOT / "tests" / "fixtures"
CRASH_INDEX = "3249D99D0C4049318610F4E4FB0B69361"

# (group, source dump, exception code or None, address choices or None, share of 1,000)
PLAN = [
    ("crash-av", "symbolic-windows-mini.dmp", 0xC0000005, range(0x2A2A3D, 0x2A2A47), 400),
    ("crash-failfast", "symbolic-windows-mini.dmp", 0xC0000409, [0x2A2A3D], 150),
    ("ntdll-av", "symbolic-windows-mini.dmp", 0xC0000005, [0x77170000 + 0x1234], 100),
    ("xp-av", "rm-test.dmp", None, None, 200),
    ("xp-stack-overflow", "rm-test.dmp", 0xC00000FD, None, 100),
    ("linux-segv", "rm-linux-mini.dmp", None, None, 50),
]


def _offsets(data: bytes) -> tuple[int, list[int]]:
    """RVA of the exception stream and file offsets of every module's TimeDateStamp."""
    n_streams, dir_rva = struct.unpack_from("<II", data, 8)
    exc_rva, ts_offsets = None, []
    for i in range(n_streams):
        stype, size, rva = struct.unpack_from("<III", data, dir_rva + 12 * i)
        if stype == 6:
            exc_rva = rva
        elif stype == 4:
            (count,) = struct.unpack_from("<I", data, rva)
            start = rva + (8 if size == 8 + count * 108 else 4)
            ts_offsets = [start + 108 * k + 16 for k in range(count)]
    assert exc_rva is not None
    return exc_rva, ts_offsets


def generate(out: Path, total: int, seed: int = 7) -> dict[str, list[str]]:
    """Write ``total`` dumps (the PLAN scaled); returns group -> file names."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[str]] = {}
    n = 0
    for gi, (group, source, code, addresses, share) in enumerate(PLAN):
        count = share * total // 1000
        base = (FIXTURES_DIR / "dumps" / source).read_bytes()
        exc_rva, ts_offsets = _offsets(base)
        for k in range(count):
            data = bytearray(base)
            if code is not None:
                struct.pack_into("<I", data, exc_rva + 8, code)
            if addresses is not None:
                struct.pack_into("<Q", data, exc_rva + 24, rng.choice(list(addresses)))
            # Different module builds across the fleet: TimeDateStamps of all but the first module.
            for off in ts_offsets[1:]:
                if rng.random() < 0.3:
                    struct.pack_into("<I", data, off, rng.randrange(1 << 31))
            name = f"app_{gi}_{k:05d}.dmp"
            (out / name).write_bytes(bytes(data))
            groups.setdefault(group, []).append(name)
            n += 1
    return groups


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from symtool.dumps.buckets import Buckets
from symtool.dumps.files import collect_dumps
from symtool.dumps.triage import triage
t0 = time.perf_counter()
buckets = Buckets()
files = list(collect_dumps([sys.argv[2]]))
for row in triage(files, [sys.argv[3]]):
    buckets.add(row)
seconds = time.perf_counter() - t0
print(json.dumps({
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "unreadable": buckets.unreadable,
    "buckets": {b.key: b.count for b in buckets.ordered()},
}))
"""

CHILD_MEMBERS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from symtool.dumps.files import collect_dumps
from symtool.dumps.triage import triage
print(json.dumps({Path(r.path).name: r.bucket for r in triage(list(collect_dumps([sys.argv[2]])), [sys.argv[3]])}))
"""


def _child(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, str(ROOT), *args], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def _check_buckets(groups: dict[str, list[str]], members: dict[str, str], counts: dict[str, int]) -> None:
    """Each planned group is exactly one bucket, with the planned count."""
    group_bucket = {}
    for group, names in groups.items():
        keys = {members[n] for n in names}
        assert len(keys) == 1, f"group {group} split over buckets {keys}"
        group_bucket[group] = keys.pop()
    assert len(set(group_bucket.values())) == len(groups), f"groups merged: {group_bucket}"
    for group, names in groups.items():
        assert counts[group_bucket[group]] == len(names), (group, counts[group_bucket[group]], len(names))
    assert sum(counts.values()) == sum(len(v) for v in groups.values())


def run(ctx) -> list[dict]:
    sizes = [20, 100] if ctx.quick else [100, 1000]
    store = ctx.workdir / "store"
    entry = store / "crash.pdb" / CRASH_INDEX
    entry.mkdir(parents=True)
    shutil.copy(FIXTURES_DIR / "pe-pdb" / "crash.pdb", entry / "crash.pdb")
    rows = []
    for total in sizes:
        dumps = ctx.workdir / f"dumps-{total}"
        groups = generate(dumps, total)
        result = _child(CHILD, str(dumps), str(store))
        members = _child(CHILD_MEMBERS, str(dumps), str(store))
        _check_buckets(groups, members, result["buckets"])
        assert result["unreadable"] == 0
        rows.append({"case": f"{total} dumps, library (triage + buckets)", "tool": "symtool.dumps",
                     "seconds": result["seconds"], "dumps/s": round(total / result["seconds"]),
                     "peak RSS MB": round(result["peak_rss_mb"], 1), "buckets": len(result["buckets"]),
                     "bucket counts ok": "yes"})
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "symtool", "dumps", "--json", "--store", str(store), str(dumps)],
                              cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "SYMTOOL_STORE": ""})
        seconds = time.perf_counter() - t0
        assert proc.returncode == 1, proc.stderr  # system DLL PDBs are not in the store
        assert len(json.loads(proc.stdout)) == total
        rows.append({"case": f"{total} dumps, `symtool dumps --json` (process)", "tool": "symtool",
                     "seconds": seconds, "dumps/s": round(total / seconds)})
        shutil.rmtree(dumps)
    ctx.notes.append(
        "Dumps: copies of the three fixture dumps with patched exception code/address and module "
        "TimeDateStamps in six planned groups (400/150/100/200/100/50 per 1,000); each group must "
        "form exactly one bucket with its planned count (checked). crash.pdb is in a local store, so "
        "the crash.exe groups are bucketed by the symbolized function. Peak RSS is of a fresh "
        "process per size: flat from 100 to 1,000 dumps because rows are streamed and only "
        "buckets, store answers and one parsed PDB are kept.")
    return rows

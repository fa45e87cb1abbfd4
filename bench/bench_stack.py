"""`symtool dumps --json` with full stacks over N copies of a real Wine crash dump.

Usage: python bench/bench_stack.py DUMP BUILD_DIR [N ...]
Prints wall time and peak RSS (of the CLI child process) for each N.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(dump: Path, build_dir: Path, n: int) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one `symtool dumps --json` over ``n`` copies of ``dump``.

    The peak is the child's own VmHWM (tests/hostile_helpers.peak_rss_mib): getrusage's
    RUSAGE_CHILDREN would give the largest of all children so far, and carries a forking
    parent's high-water mark across exec."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from hostile_helpers import peak_rss_mib

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dumps"
        folder.mkdir()
        for i in range(n):
            shutil.copy(dump, folder / f"d{i:05d}.dmp")
        start = time.perf_counter()
        mib, proc = peak_rss_mib("dumps", "--json", "-b", str(build_dir), str(folder), env=dict(os.environ),
                                 cwd=Path(tmp), timeout=3600)
        took = time.perf_counter() - start
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
        return took, mib


def main() -> None:
    dump, build_dir = Path(sys.argv[1]), Path(sys.argv[2])
    for n in [int(a) for a in sys.argv[3:]] or [100, 1000]:
        took, rss = run(dump, build_dir, n)
        print(f"{n:6d} dumps: {took:6.2f} s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()

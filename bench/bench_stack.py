"""`symtool dumps --json` with full stacks over N copies of a real Wine crash dump.

Usage: python bench/bench_stack.py DUMP BUILD_DIR [N ...]
Prints wall time and peak RSS (of the CLI child process) for each N.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(dump: Path, build_dir: Path, n: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dumps"
        folder.mkdir()
        for i in range(n):
            shutil.copy(dump, folder / f"d{i:05d}.dmp")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "symtool", "dumps", "--json", "-b", str(build_dir), str(folder)],
                              capture_output=True, cwd=tmp)
        took = time.perf_counter() - start
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return took, max(rss, before)


def main() -> None:
    dump, build_dir = Path(sys.argv[1]), Path(sys.argv[2])
    for n in [int(a) for a in sys.argv[3:]] or [100, 1000]:
        took, rss = run(dump, build_dir, n)
        print(f"{n:6d} dumps: {took:6.2f} s, peak RSS {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

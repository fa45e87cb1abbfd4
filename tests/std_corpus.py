"""The std crash corpus: genuine Rust std programs for x86_64-pc-windows-msvc
(tests/corpus/std-crashers, built by tests/toolchains/windows-msvc-std/build.sh),
crashed under Wine.

Each program runs twice: once plainly, for the panic line it prints on stderr (the
oracle: std's own panic hook wrote it), and once under ``winedbg``, which stops at
the exception, prints its backtrace (``bt``: a second oracle, for the frames) and
writes the minidump.  A panic with ``panic = "abort"`` ends in ``__fastfail``,
which skips AeDebug (on Windows too), so every program runs under the debugger.

As a script: ``python tests/std_corpus.py OUT_DIR`` builds the corpus, crashes every
program into OUT_DIR and prints what each said.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "tests" / "toolchains" / "windows-msvc-std" / "build.sh"
CORPUS = ROOT / "tests" / "corpus" / "std-crashers"
AEDEBUG = r"HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug"

# program -> how it dies: "panic" (panic = "abort": fastfail 7 after the panic hook), "abort"
# (std::process::abort: fastfail 7, no panic), "exception" (a hardware exception)
PROGRAMS = {
    "unwrap_none": "panic", "unwrap_err": "panic", "parse_err": "panic", "expect_msg": "panic",
    "index_oob": "panic", "slice_range": "panic", "refcell_borrow": "panic", "divide_zero": "panic",
    "overflow": "panic", "assert_msg": "panic", "assert_eq": "panic", "unreachable": "panic",
    "panic_fmt": "panic", "thread_panic": "panic", "trait_object": "panic", "process_abort": "abort",
    "access_violation": "exception", "two_panics": "panic",
}

# std 1.63's panic line: thread 'NAME' panicked at 'MESSAGE', FILE:LINE:COL (the message may span lines)
PANIC_LINE = re.compile(r"^thread '(?P<thread>[^']*)' panicked at '(?P<message>.*?)', (?P<file>[^\n:]+):"
                        r"(?P<line>\d+):(?P<column>\d+)$", re.M | re.S)
# winedbg's bt rows: "=>0 0x000001400155f6 abort+0x5() [Z:\\...\\lib.rs:71] in unwrap_none (0x...)"; a
# function name may hold parentheses itself (`__rust_begin_short_backtrace<void (*)(),tuple$<> >+0x6(f=...)`).
BT_ROW = re.compile(r"^(?:=>|  )\s*(\d+) (0x[0-9a-f]+) (.*)$")
BT_OFFSET = re.compile(r"\+0x[0-9a-f]+\(")
BT_SOURCE = re.compile(r"\) \[(.*):(\d+)\] in \S+")


class CorpusUnavailable(Exception):
    """The toolchain cannot be built here (exit 3 of build.sh): a missing tool or package."""


@dataclass
class Crash:
    name: str
    kind: str
    exe: Path
    pdb: Path
    dump: Path
    stderr: str
    backtrace: list[tuple[str, str | None, int | None, int]]  # winedbg's bt (function, file, line, address)

    @property
    def panic(self) -> dict | None:
        """What the program printed about its panic (None: it did not panic)."""
        m = PANIC_LINE.search(self.stderr)
        if m is None:
            return None
        return {"message": m["message"], "file": m["file"], "line": int(m["line"]),
                "column": int(m["column"]), "thread": m["thread"]}


def build_corpus() -> Path:
    """The directory of the release EXEs and PDBs (built once per machine, then cached)."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=1800)
    if proc.returncode == 3:
        raise CorpusUnavailable(proc.stderr.strip().splitlines()[-1])
    if proc.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT} failed:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def wine_env(prefix: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(prefix.parent), "WINEPREFIX": str(prefix),
            "WINEDEBUG": "-all", "LANG": "C.UTF-8", "WINEDLLOVERRIDES": "mscoree,mshtml="}


def parse_backtrace(text: str) -> list[tuple[str, str | None, int | None, int]]:
    """The frames of winedbg's first ``Backtrace:`` block: (function, file, line, address);
    inline frames share their caller's address."""
    block = text.split("Backtrace:", 1)[-1]
    frames = []
    for line in block.splitlines():
        if line.startswith("Wine-dbg>") and frames:
            break
        m = BT_ROW.match(line)
        if m is None:
            continue
        address, rest = int(m.group(2), 16), m.group(3)
        if rest.startswith("in "):  # no symbol: "in ntdll (+0x5dca8)"
            frames.append((rest.split()[1] + "+?", None, None, address))
            continue
        offset = BT_OFFSET.search(rest)
        function = rest[:offset.start()] if offset else rest.split("(", 1)[0]
        source = BT_SOURCE.search(rest)
        frames.append((function, source.group(1) if source else None, int(source.group(2)) if source else None,
                       address))
    return frames


def crash(name: str, out_dir: Path, build_dir: Path, prefix: Path, *, args: tuple[str, ...] = (),
          dump_name: str | None = None, kind: str | None = None) -> Crash:
    exe = build_dir / f"{name}.exe"
    env = wine_env(prefix)
    plain = subprocess.run(["wine", str(exe), *args], env=env, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, errors="replace")
    dump_name = dump_name or name
    dump = out_dir / f"{dump_name}.dmp"
    dump.unlink(missing_ok=True)
    windows_dump = "Z:" + str(dump).replace("/", "\\\\")
    script = f'cont\nbt\nminidump "{windows_dump}"\nquit\n'
    dbg = subprocess.run(["wine", "winedbg", str(exe), *args], input=script, env=env, capture_output=True, text=True,
                         timeout=180, errors="replace")
    if not dump.is_file():
        raise RuntimeError(f"winedbg wrote no dump for {name}:\n{dbg.stdout[-3000:]}\n{dbg.stderr[-2000:]}")
    (out_dir / f"{dump_name}.winedbg.txt").write_text(dbg.stdout)
    (out_dir / f"{dump_name}.stderr.txt").write_text(plain.stderr)
    return load_crash(name, out_dir, build_dir, dump_name=dump_name, kind=kind)


def load_crash(name: str, out_dir: Path, build_dir: Path, *, dump_name: str | None = None,
               kind: str | None = None) -> Crash:
    """The Crash :func:`crash` left in ``out_dir``: its dump and the two transcripts beside it."""
    dump_name = dump_name or name
    dbg = (out_dir / f"{dump_name}.winedbg.txt").read_text()
    return Crash(name, kind or PROGRAMS[name], build_dir / f"{name}.exe", build_dir / f"{name}.pdb",
                 out_dir / f"{dump_name}.dmp", (out_dir / f"{dump_name}.stderr.txt").read_text(),
                 parse_backtrace(dbg))


# The whole corpus crashed once per test run, shared read-only by the modules that read it
# (tests/run_once.py): every program into dumps/, and into other/ the other panic of two_panics and
# unwrap_none from the relayout build (the same panic at other addresses).
EXTRA_CRASHES = {  # key -> (program, directory, build dir name, arguments)
    "two_panics/header": ("two_panics", "other", "release", ("header",)),
    "unwrap_none/relayout": ("unwrap_none", "other", "relayout", ()),
}


def _crash_jobs(root: Path, build_dir: Path) -> dict[str, tuple[str, Path, Path, tuple[str, ...], str | None]]:
    """key -> (program, out dir, build dir, arguments, dump name)."""
    jobs = {name: (name, root / "dumps", build_dir, (), None) for name in PROGRAMS}
    for key, (name, where, build, args) in EXTRA_CRASHES.items():
        jobs[key] = (name, root / where, build_dir.parent / build if build != "release" else build_dir, args,
                     key.replace("/", "-"))
    return jobs


def shared_crashes(tmp_path_factory) -> tuple[Path, dict[str, Crash]]:
    """(root, key -> Crash) of the corpus crashed under Wine once per run (CorpusUnavailable: it cannot be
    built here).  ``root/dumps`` and ``root/other`` hold the dumps and their transcripts: read-only."""
    from concurrent.futures import ThreadPoolExecutor

    from run_once import run_once

    build_dir = build_corpus()

    def make(root: Path) -> None:
        (root / "dumps").mkdir()
        (root / "other").mkdir()
        prefix = root / "wineprefix"
        start_prefix(prefix)
        # Two at a time: each crash mostly waits on Wine's start-up and winedbg.
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(crash, name, out, build, prefix, args=args, dump_name=dump_name)
                       for name, out, build, args, dump_name in _crash_jobs(root, build_dir).values()]
            for f in futures:
                f.result()

    root = run_once(tmp_path_factory, "std-crashes", make)
    return root, {key: load_crash(name, out, build, dump_name=dump_name)
                  for key, (name, out, build, args, dump_name) in _crash_jobs(root, build_dir).items()}


def start_prefix(prefix: Path) -> None:
    """A private Wine prefix (created on first start)."""
    env = wine_env(prefix)
    proc = subprocess.run(["wine", "cmd", "/c", "exit 0"], env=env, capture_output=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"wine does not start: {proc.stderr.decode(errors='replace')[-2000:]}")


def crash_all(out_dir: Path, names=None) -> dict[str, Crash]:
    if shutil.which("wine") is None or shutil.which("winedbg") is None:
        raise CorpusUnavailable("missing: wine, winedbg")
    build_dir = build_corpus()
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / "wineprefix"
    start_prefix(prefix)
    return {n: crash(n, out_dir, build_dir, prefix) for n in (names or PROGRAMS)}


if __name__ == "__main__":
    results = crash_all(Path(sys.argv[1]), sys.argv[2:] or None)
    for n, c in results.items():
        print(n, c.panic, [f[0] for f in c.backtrace[:12]])

"""Issue 22 item 6: `stack --all` on a dump of many threads sharing one stack range.

The issue's dump: 8 MB, 1,000 threads whose MINIDUMP_THREAD all name one 8 MB stack range full
of what look like return addresses into a module, so every walk scans 1,024 frames.  Before the
fix `stack --all --json` held every thread's frames and the whole JSON text at once: 3.5 GB, and
454 MB of output.  Now all threads together get SYMTOOL_MAX_STACK_FRAMES frames, a thread whose
context and stack are another's reuses that walk, and the JSON is written thread by thread.

The CLI runs under a 1 GiB address-space limit and a CPU-time limit, so a blow-up fails the
test instead of timing it; walks are counted, not timed.
"""

from __future__ import annotations

import io
import json
import resource
import struct
import sys
from pathlib import Path

import pytest

from builders.minidump import build_threads_minidump
from hostile_helpers import clean_env, symtool

BASE, SIZE = 0x140000000, 0x100000  # one module, hostile.exe (no image or PDB anywhere: scanning)
STACK = 0x10000000
RETURN = BASE + 0x2000  # in the module, past its header page: a return address to a scan without the image


def hostile_dump(path: Path, threads: int, *, stack_size: int = 8 << 20, distinct: int = 0) -> Path:
    """``threads`` threads sharing one stack range filled with RETURN; the first ``distinct``
    threads after thread 1 each have their own RSP (different contexts, same memory), the rest
    share thread 1's CONTEXT record.  Thread 1 crashed (access violation)."""
    stack = struct.pack("<Q", RETURN) * (stack_size // 8)
    spec = []
    for k in range(threads):
        if k == 0 or k <= distinct:
            spec.append({"tid": k + 1, "regs": {"rip": BASE + 0x1500, "rsp": STACK + 8 * k}, "stack": 0})
        else:
            spec.append({"tid": k + 1, "context": 0, "stack": 0})
    path.write_bytes(build_threads_minidump(
        modules=[{"name": "hostile.exe", "base": BASE, "size": SIZE, "timestamp": 0x5F000000}], threads=spec,
        memory=[(STACK, stack)], exception={"thread_id": 1, "code": 0xC0000005, "address": BASE + 0x1500}))
    return path


LIMITS = {resource.RLIMIT_AS: 1 << 30, resource.RLIMIT_CPU: 60}


@pytest.fixture(scope="module")
def thousand_threads(tmp_path_factory) -> Path:
    return hostile_dump(tmp_path_factory.mktemp("hostile-stack") / "threads.dmp", 1000)


def test_thousand_threads_sharing_one_stack_json(thousand_threads, tmp_path):
    assert thousand_threads.stat().st_size > 8 << 20
    proc = symtool("stack", "--all", "--json", thousand_threads, env=clean_env(tmp_path), cwd=tmp_path,
                   limits=LIMITS, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert list(doc) == ["dump", "cpu", "threads", "notes", "panic", "modules"]
    threads = doc["threads"]
    assert [t["thread_id"] for t in threads] == list(range(1, 1001))
    assert threads[0]["crashed"] and len(threads[0]["frames"]) == 1024  # the crashing thread: in full
    total = sum(len(t["frames"]) for t in threads)
    assert total == 200_000  # SYMTOOL_MAX_STACK_FRAMES' default, all threads together
    # 195 threads of 1,024 frames, one cut to the 320 left, 804 not walked.
    full = [t for t in threads if len(t["frames"]) == 1024]
    assert len(full) == 195 and all(t["frames"] == threads[0]["frames"] for t in full)
    cut = threads[195]
    assert len(cut["frames"]) == 320 and cut["truncated"]
    assert cut["stop"].startswith("stopped after 320 frames") and "SYMTOOL_MAX_STACK_FRAMES" in cut["stop"]
    rest = threads[196:]
    assert all(t["frames"] == [] and t["truncated"] and t["stop"].startswith("not walked:") for t in rest)
    assert all(t["registers"]["rsp"] == hex(STACK) for t in rest)  # the context is still shown
    assert any("SYMTOOL_MAX_STACK_FRAMES" in n and "1 thread(s) cut short, 804 not walked" in n
               for n in doc["notes"]), doc["notes"]
    assert doc["modules"][0]["name"] == "hostile.exe"


def test_thousand_threads_text_and_lifted_budget(thousand_threads, tmp_path):
    proc = symtool("stack", "--all", thousand_threads, env=clean_env(tmp_path), cwd=tmp_path, limits=LIMITS,
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Thread 0x") == 1000
    assert proc.stdout.count("[stack truncated: not walked:") == 804
    assert proc.stdout.rstrip().splitlines()[-1].startswith("note: stack frames of all threads over the work budget")
    # Lifted, every thread is shown in full: 1,000 copies of one walk (the walk itself done once),
    # still streamed, so it stays within the same limits.
    proc = symtool("stack", "--all", "--json", "--max-frames", "20", thousand_threads,
                   env=clean_env(tmp_path, SYMTOOL_MAX_STACK_FRAMES="1M"), cwd=tmp_path, limits=LIMITS,
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [len(t["frames"]) for t in doc["threads"]] == [20] * 1000
    assert not any("SYMTOOL_MAX_STACK_FRAMES" in n for n in doc["notes"])


def test_bad_budget_variable_is_one_error_line(thousand_threads, tmp_path):
    env = clean_env(tmp_path, SYMTOOL_MAX_STACK_FRAMES="lots")
    proc = symtool("stack", "--all", thousand_threads, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""  # checked before anything is written
    assert proc.stderr.startswith("error:") and "SYMTOOL_MAX_STACK_FRAMES" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = symtool("stack", "--all", "--json", thousand_threads, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["kind"] == "ConfigError"  # one document: the error, no threads


def _stacks(path: Path, **kw):
    from symtool.dumps.locate import SymbolLocator
    from symtool.dumps.stack import StackResolver, all_stacks
    from symtool.dumps.symbolize import SymbolizerCache
    from symtool.formats.minidump import open_minidump

    with open_minidump(path) as md:
        return all_stacks(md, StackResolver(SymbolLocator([], []), SymbolizerCache()), **kw)


@pytest.fixture
def count_walks(monkeypatch):
    """The number of stack walks done (symtool.stackwalk.walk_stack calls)."""
    import symtool.stackwalk

    calls = []
    real = symtool.stackwalk.walk_stack

    def counted(*args, **kwargs):
        calls.append(args[0].regs["rsp"])
        return real(*args, **kwargs)

    monkeypatch.setattr(symtool.stackwalk, "walk_stack", counted)
    return calls


def test_identical_threads_walked_once_different_contexts_each(tmp_path, count_walks):
    # 60 threads on one 64 KiB range: thread 1 and 19 others with their own RSP, 40 sharing
    # thread 1's context.  21 distinct (context, range) pairs: 21 walks, not 60.
    dump = hostile_dump(tmp_path / "mixed.dmp", 60, stack_size=64 << 10, distinct=20)
    stacks = _stacks(dump, max_frames=30)
    assert len(count_walks) == 21 and len(set(count_walks)) == 21
    assert [len(s.frames) for s in stacks] == [30] * 60
    # Each thread's stack is the one it gets walked alone: reuse changes nothing visible.
    from symtool.dumps.locate import SymbolLocator
    from symtool.dumps.stack import StackResolver, thread_json, thread_stack
    from symtool.dumps.symbolize import SymbolizerCache
    from symtool.formats.minidump import open_minidump

    with open_minidump(dump) as md:
        resolver = StackResolver(SymbolLocator([], []), SymbolizerCache())
        alone = [thread_stack(md, t, resolver, crashed=False, max_frames=30) for t in md.dump.threads]
    for got, want in zip(stacks[1:], alone[1:]):
        assert thread_json(got) == thread_json(want)
    assert [f.sp for f in stacks[5].frames][:2] == [hex(STACK + 8 * 5), hex(STACK + 8 * 6)]


def test_budget_cuts_then_skips(tmp_path, count_walks, monkeypatch):
    monkeypatch.setenv("SYMTOOL_MAX_STACK_FRAMES", "70")
    dump = hostile_dump(tmp_path / "mixed.dmp", 10, stack_size=64 << 10, distinct=9)
    from symtool.dumps.stack import FrameBudget

    budget = FrameBudget()
    stacks = _stacks(dump, max_frames=30, budget=budget)
    assert [len(s.frames) for s in stacks] == [30, 30, 10] + [0] * 7
    assert len(count_walks) == 3  # nothing is walked (or read) once the budget is spent
    assert stacks[2].truncated and stacks[2].stop.startswith("stopped after 10 frames: the frame budget")
    assert all(s.truncated and s.stop.startswith("not walked:") and s.registers for s in stacks[3:])
    assert not stacks[1].stop.startswith("stopped after 10")
    assert (budget.used, budget.cut, budget.skipped) == (70, 1, 7)
    assert "1 thread(s) cut short, 7 not walked" in budget.note()


def test_reused_walk_is_cut_by_the_budget_too(tmp_path, count_walks, monkeypatch):
    # Identical threads cost their frames each time they are shown: 1,000 copies of one walk are
    # the 454 MB of JSON.
    monkeypatch.setenv("SYMTOOL_MAX_STACK_FRAMES", "75")
    dump = hostile_dump(tmp_path / "same.dmp", 5, stack_size=64 << 10)
    stacks = _stacks(dump, max_frames=30)
    assert [len(s.frames) for s in stacks] == [30, 30, 15, 0, 0]
    assert len(count_walks) == 2  # thread 1's walk reused once; thread 3 walked again under its smaller cap
    assert stacks[2].frames[:14] == stacks[0].frames[:14]


def test_print_json_stream_is_print_json(capsys):
    from symtool.commands.common import print_json, print_json_stream

    threads = [{"a": 1, "s": "line\nbreak \u2028 é \x1b", "l": [], "d": {}, "n": None, "x": [{"k": [1, {"z": True}]}]},
               {"b": 2.5}]
    doc = {"dump": "C:\\x.dmp", "cpu": "x64", "threads": threads, "notes": ["n"], "panic": None,
           "modules": [{"m": "é"}]}
    print_json(doc)
    want = capsys.readouterr().out
    print_json_stream([("dump", doc["dump"]), ("cpu", "x64"), ("threads", iter(threads)),
                       ("notes", lambda: ["n"]), ("panic", None), ("modules", doc["modules"])])
    assert capsys.readouterr().out == want
    print_json({"threads": []})
    want = capsys.readouterr().out
    print_json_stream([("threads", iter([]))])
    assert capsys.readouterr().out == want

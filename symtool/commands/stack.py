"""``symtool stack DUMP``: the crashing thread's call stack, as cdb's ``.ecxr; k`` prints it."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from symtool.commands.common import apply_symbol_cache_option, no_symbol_cache_option
from symtool.commands.workspace_opts import (manifest_path_option, package_option, profile_option, symbol_dirs,
                                             target_option)

EXAMPLES = """Examples:

  symtool stack crash.dmp --store ./symstore

  symtool stack crash.dmp --all          (every thread, like ~*k)

  symtool stack crash.dmp --json

  symtool stack crash.dmp --source-urls   (each frame's source URL on a line below it)

  symtool stack crash.dmp -r --modules --max-frames 20   (registers, stack, module list)

Replaces, on any machine:  cdb -z crash.dmp -c ".ecxr; r; k; lm; q"

For a Rust panic, the first line is the panic's message and location, read back
out of the dump ("panic" in --json).

Images and PDBs are found as a debugger finds them: the image by its
TimeDateStamp+SizeOfImage key, the PDB by the CodeView record of the dump's
module list or, when the dump has none (Wine), of the image.  Stores default
to SYMTOOL_STORE, the stores in Cargo.toml, else _NT_SYMBOL_PATH; the
workspace's build output directories are searched too.  Files found only on
an http(s) store are fetched into the cache (verified by identity) unless
--offline.

Linux (Breakpad/crashpad) dumps: each ELF module's binary is found by its
build id (SSQP keys and the debuginfod view of the stores, the build
directories), walked with its .eh_frame/.debug_frame CFI and symbolized from
its DWARF (the .dwp beside it, or the debug file), inline frames included.

Each frame records how it was found, labelled in text as minidump-stackwalk
does ("Found by: call frame info"): context (the CPU context), cfi (the
image's .pdata or DWARF CFI unwind data), frame-pointer (the EBP/RBP chain)
or scan (a return address found by scanning the stack: may be stale).

Source URLs come from the PDB's source index (symtool srcindex, pdbstr): the
srcsrv stream's expanded SRCSRVTRG, else the sourcelink stream; the text
output stays cdb's `k` unless --source-urls is given.

Exit code: 0 a stack was printed, 2 the dump is unreadable or bad usage (a --store or
--build-dir that does not exist included).
"""

REPEAT_MIN = 4  # a run of this many identical frames (recursion) is shown compressed

# How each frame was found (symtool.stackwalk.walk.TRUSTS), in minidump-stackwalk's words.
TRUST_LABELS = {
    "context": "given as instruction pointer in context",
    "cfi": "call frame info",
    "frame-pointer": "previous frame's frame pointer",
    "scan": "stack scanning",
}


def _addr(value: str | None, wide: bool) -> str:
    if value is None:
        return "--------`--------" if wide else "--------"
    v = int(value, 16)
    return f"{v >> 32:08x}`{v & 0xFFFFFFFF:08x}" if wide else f"{v:08x}"


def _frame_line(f, wide: bool) -> str:
    call = f.call_site
    if f.file and f.line:
        call += f" [{f.file} @ {f.line}]"
    if not f.inline:  # an inline frame is its caller's: the "(Inline Function)" column says so
        call += f"  (Found by: {TRUST_LABELS[f.trust]})"
    if f.inline:
        return f"{f.index:02x} (Inline Function) {_addr(None, wide)} {call}"
    # x64: Child-SP, as cdb's `k`.  x86: ChildEBP, the frame's EBP (dashes where the walk does not
    # know it, e.g. a frame found by scanning).
    first = f.sp if wide else f.frame_pointer
    return f"{f.index:02x} {_addr(first, wide)} {_addr(f.return_address, wide)} {call}"


def _compressed(frames) -> list:
    """Frames, with runs of REPEAT_MIN or more identical physical frames (recursion) folded into one line."""
    out: list = []
    i = 0
    while i < len(frames):
        f = frames[i]
        j = i
        while (j + 1 < len(frames) and not f.inline and not frames[j + 1].inline
               and frames[j + 1].address == f.address and frames[j + 1].module == f.module):
            j += 1
        if j - i + 1 >= REPEAT_MIN:
            out.append(f)
            out.append(("repeat", frames[i + 1].index, frames[j].index, f.call_site))
            i = j + 1
        else:
            out.append(f)
            i += 1
    return out


def print_thread(stack, wide: bool, w=None, sources: bool = False) -> None:
    from symtool.commands.common import terminal_safe

    write = w or sys.stdout.write

    def w(text: str) -> None:  # names come from the dump and its PDBs: escaped, newlines kept
        write("\n".join(terminal_safe(part) for part in text.split("\n")))
    label = f"Thread {stack.thread_id:#x}"
    if stack.name:
        label += f" \"{stack.name}\""
    if stack.crashed:
        label += " (exception context, .ecxr)"
    w(label + "\n")
    if stack.error:
        w(f"  {stack.error}\n")
        return
    if stack.frames:  # a thread not walked (the frame budget was spent) has no rows to head
        w(" # Child-SP          RetAddr               Call Site\n" if wide else
          " # ChildEBP RetAddr  Call Site\n")
    for item in _compressed(stack.frames):
        if isinstance(item, tuple):
            _tag, first, last, call = item
            w(f"   frames {first:#x}-{last:#x} repeat {call} ({last - first + 1} frames)\n")
        else:
            w(_frame_line(item, wide) + "\n")
            if sources and item.source_url:
                w(f"    source: {item.source_url}\n")
    if stack.truncated:
        w(f"  [stack truncated: {stack.stop}]\n")
    for note in stack.notes:
        w(f"  note: {note}\n")


# cdb's `r` order and layout: general registers three to a line, then the instruction pointer
# and flags.
REGISTER_LINES = {
    "x64": (("rax", "rbx", "rcx"), ("rdx", "rsi", "rdi"), ("rip", "rsp", "rbp"), ("r8", "r9", "r10"),
            ("r11", "r12", "r13"), ("r14", "r15")),
    "x86": (("eax", "ebx", "ecx", "edx", "esi", "edi"), ("eip", "esp", "ebp")),
    # cdb's arm64 `r`: x0..x28 four to a line, then fp, lr, sp, pc.
    "arm64": tuple(tuple(f"x{i}" for i in range(k, min(k + 4, 29))) for k in range(0, 29, 4))
    + (("fp", "lr", "sp", "pc"),),
}


def _registers_text(regs: dict[str, str], cpu: str) -> str:
    width = 16 if cpu in ("x64", "arm64") else 8
    lines = []
    layout = REGISTER_LINES.get(cpu, REGISTER_LINES["x86"])  # x86-on-win64: an x86 context
    for names in layout:
        cells = [f"{n}={int(regs[n], 16):0{width}x}" for n in names if n in regs]
        if cells:
            lines.append(" ".join(cells))
    known = {n for group in layout for n in group}
    extra = [f"{n}={int(v, 16):x}" for n, v in regs.items() if n not in known]
    if extra:
        lines.append(" ".join(extra))
    return "\n".join(lines) + "\n"


def _module_row(module, resolver) -> dict:
    """One `lm` row: start, end, name and which symbols were found (stable keys)."""
    syms = resolver.module(module)
    if syms.pdb_path is not None:
        symbols = f"(pdb symbols)          {syms.pdb_path}"
    elif syms.dwp_path is not None or syms.debug_path is not None:
        symbols = f"(dwarf symbols)        {syms.dwp_path or syms.debug_path}"
    elif syms.elf_path is not None:
        symbols = f"(dwarf symbols)        {syms.elf_path}"
    elif syms.macho_path is not None:
        symbols = f"(image only)           {syms.macho_path}"  # a Mach-O binary without its dSYM
    elif syms.image is not None:
        symbols = "(image only)"
    else:
        symbols = "(no symbols)"
    return {"base": f"{module.base:#x}", "end": f"{module.base + module.size:#x}", "name": module.file_name,
            "symbols": symbols, "pdb_path": str(syms.pdb_path) if syms.pdb_path else None,
            "image_path": str(syms.image_path or syms.elf_path or syms.macho_path)
            if (syms.image_path or syms.elf_path or syms.macho_path) else None}


def stack(
    dump: str = typer.Argument(..., metavar="DUMP", help="A minidump (.dmp, .mdmp)."),
    store: Optional[List[str]] = typer.Option(None, "--store", "-s", metavar="S",
                                              help="Symbol store (directory or http(s) URL); repeatable."),
    build_dir: Optional[List[str]] = typer.Option(None, "--build-dir", "-b", metavar="DIR",
                                                  help="Directory holding PDBs/images directly; repeatable."),
    all_threads: bool = typer.Option(False, "--all", help="Every thread (like ~*k), crashing thread first."),
    offline: bool = typer.Option(False, "--offline", help="Do not download from http(s) stores."),
    json_out: bool = typer.Option(False, "--json", help="Threads and frames as JSON (stable keys)."),
    source_urls: bool = typer.Option(False, "--source-urls",
                                     help="Under each frame, the URL its source is fetched from (the PDB's "
                                          "srcsrv or Source Link); always in --json as source_url."),
    registers: bool = typer.Option(False, "--registers", "-r",
                                   help="The crashing context's registers first, as cdb's `r`."),
    modules: bool = typer.Option(False, "--modules",
                                 help="The loaded modules after the stack, as cdb's `lm`: start, end, name, "
                                      "symbols (always in --json)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, max=100000, metavar="N",
                                             help="Stop each walk after N frames (default 1,024)."),
    no_symbol_cache: bool = no_symbol_cache_option(),
    manifest_path: Optional[str] = manifest_path_option(),
    package: Optional[List[str]] = package_option(),
    profile: Optional[str] = profile_option("every profile built"),
    target: Optional[List[str]] = target_option(),
) -> None:
    """Print a minidump's call stack: Child-SP, RetAddr and Call Site (module!function+0xoff
    [file @ line]) with (Inline Function) rows, as cdb's `.ecxr; k` does."""
    import itertools
    from pathlib import Path

    from symtool.commands.common import print_json_stream, terminal_safe
    from symtool.dumps.locate import SymbolLocator, check_build_dirs, check_stores, make_fetch
    from symtool.dumps.stack import (FrameBudget, StackResolver, crash_stack, elf_module_notes, iter_stacks,
                                     macho_module_notes, thread_json)
    from symtool.dumps.symbolize import SymbolizerCache
    from symtool.errors import UsageError
    from symtool.formats.minidump import open_minidump
    from symtool.settings import resolve_cache, resolve_stores

    apply_symbol_cache_option(no_symbol_cache)
    path = Path(dump)
    if path.is_dir():
        raise UsageError("is a directory, not a minidump (symtool dumps triages a directory of them)", path)
    if not path.exists():
        raise UsageError("no such file", path)
    resolved = resolve_stores(store, use_nt_symbol_path=True)
    stores = resolved.stores
    check_stores(stores)
    check_build_dirs(list(build_dir or []))
    cache, _cache_source = resolve_cache(None, resolved)  # the same cache as fetch uses
    fetch, fetcher = make_fetch(stores, cache, offline)
    locals_ = ([cache] if fetch is not None and Path(cache).is_dir() else []) + stores
    build_dirs = list(build_dir or []) + symbol_dirs(manifest_path, package, profile, target)
    locator = SymbolLocator(locals_, build_dirs)
    symbolizers = SymbolizerCache()
    budget = FrameBudget() if all_threads else None  # SYMTOOL_MAX_STACK_FRAMES read (and checked) before any output
    resolver = None
    notes: list[str] = []
    panic = None
    try:
        resolver = StackResolver(locator, symbolizers, fetch=fetch)
        with open_minidump(path) as md:
            cpu = md.dump.system.cpu if md.dump.system else "unknown"
            platform = md.dump.platform
            if platform in ("linux", "android"):
                notes = elf_module_notes(md, resolver)
            elif platform in ("macos", "ios"):
                notes = macho_module_notes(md, resolver)
            if all_threads:
                stacks = iter_stacks(md, resolver, max_frames, budget)
            else:
                one = crash_stack(md, resolver, max_frames)
                if one is None:
                    if not md.dump.threads:
                        raise UsageError("the dump has no exception and no threads", path)
                    from symtool.dumps.stack import thread_stack

                    one = thread_stack(md, md.dump.threads[0], resolver, crashed=False, max_frames=max_frames)
                stacks = iter([one])
            module_rows = [_module_row(m, resolver) for m in md.dump.modules]
            # The threads are written out as they are walked and then let go (a dump of 1,000
            # threads held them all, and their JSON, at once): the dump and resolver stay open
            # while they are.  The panic is read from the first stack, so it can lead the text.
            first = next(stacks, None)
            if first is not None and first.crashed:
                from symtool.dumps.panic import crash_panic

                panic = crash_panic(md, first, resolver)
            ordered = itertools.chain([first] if first is not None else [], stacks)

            def all_notes() -> list[str]:
                budget_note = budget.note() if budget is not None else None
                return notes + ([budget_note] if budget_note else [])

            if json_out:
                print_json_stream([("dump", str(path)), ("cpu", cpu),
                                   ("threads", (thread_json(s) for s in ordered)), ("notes", all_notes),
                                   ("panic", panic.to_json() if panic is not None else None),
                                   ("modules", module_rows)])
                return
            if panic is not None:  # the message and file come from the dump: escaped
                sys.stdout.write(terminal_safe(f"panic: {panic.headline()}") + "\n\n")
            wide = cpu in ("x64", "arm64")
            if registers and first is not None and first.registers:
                sys.stdout.write(_registers_text(first.registers, cpu) + "\n")
            for k, s in enumerate(ordered):
                if k:
                    sys.stdout.write("\n")
                print_thread(s, wide, sources=source_urls)
            notes = all_notes()
    finally:
        if resolver is not None:
            resolver.close()
        symbolizers.close()
        locator.close()
        if fetcher is not None:
            fetcher.close()
    if modules:
        sys.stdout.write("\nstart             end                 module name\n" if wide else
                         "\nstart    end        module name\n")
        for m in module_rows:
            line = f"{_addr(m['base'], wide)} {_addr(m['end'], wide)}   {m['name']:<20} {m['symbols']}"
            sys.stdout.write(terminal_safe(line.rstrip()) + "\n")
    for note in notes:  # module names and paths come from the dump: escaped
        sys.stdout.write(terminal_safe(f"note: {note}") + "\n")


def register(app: typer.Typer) -> None:
    from symtool.commands.common import handle_errors

    app.command(name="stack", help=stack.__doc__, epilog=EXAMPLES)(handle_errors(stack))


__all__ = ["register", "stack", "print_thread"]

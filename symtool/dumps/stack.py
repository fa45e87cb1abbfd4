"""Call stacks of minidump threads: walk (symtool.stackwalk) with the images and
PDBs found the way a debugger finds them, then symbolize every frame.

* A module's image is looked up by its ``TimeDateStamp+SizeOfImage`` key in
  the stores and build directories; its ``.pdata`` drives x64 unwinding.
* Its PDB is named by the CodeView record in the dump's module list or, when
  the dump has none (Wine's writer, some older ones), by the CodeView record
  in the found image's debug directory, as WinDBG does.
* Caller frames are symbolized at ``return address - 1`` (the call itself);
  inlined calls become their own frames, innermost first, each with file:line.
* Each frame's file is looked up in the PDB's source index (``srcsrv``, then
  ``sourcelink``: symtool.srcindex.lookup): its ``source_url``.

macOS (Mach-O) modules are found by LC_UUID (SymbolLocator.lookup_macho): the binary's
compact unwind and ``__eh_frame`` drive the walk (symtool.stackwalk.macos) and the DWARF of
its dSYM (or its own) names the frames, the slice of that UUID in a universal file.

Linux (ELF) modules are found by GNU build id (SymbolLocator.lookup_elf): the
binary's ``.eh_frame``/``.debug_frame`` drive the walk (symtool.stackwalk.cfi)
and its DWARF, with the ``.dwp`` beside it or a separate debug file, names the
frames (symtool.formats.dwarf_symbols).  A file is used only if its build id is
the module's.

Images, PDBs and their source indexes are parsed once per run (:class:`StackResolver` caches them),
so thousands of dumps cost one parse per distinct module.
"""

from __future__ import annotations

import os
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from symtool.demangle import normalize_msvc_name
from symtool.dumps.locate import DebugFiles, SymbolLocator
from symtool.dumps.symbolize import SymbolizerCache
from symtool.errors import FormatError, SymtoolError
from symtool.formats.minidump import MinidumpFile, Module, Thread
from symtool.ids import BuildId, DebugId
from symtool.srcindex.lookup import SourceIndexCache

MAX_STACK_BYTES = 8 << 20  # bytes of one thread's saved stack read for walking
SUPPORTED_CPUS = ("x64", "x86", "x86-on-win64", "arm64")


def windbg_module_name(file_name: str | None) -> str:
    """The name WinDBG gives a module: the image name without extension, non-alphanumerics as ``_``."""
    if not file_name:
        return "?"
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    return re.sub(r"[^0-9A-Za-z]", "_", stem)


@dataclass
class FrameRow:
    """One frame of a call stack (``--json`` shape: the fields, in this order)."""

    index: int
    module: str | None  # file name of the module, e.g. crash-deep.exe
    offset: str | None  # hex: address - module base
    function: str | None
    function_offset: str | None  # hex: address - function start (None for inline frames)
    file: str | None
    line: int | None
    inline: bool
    trust: str  # context, cfi, frame-pointer, scan
    address: str  # hex instruction pointer (a return address for callers)
    sp: str | None  # hex Child-SP (None for inline frames)
    return_address: str | None  # hex RetAddr: the caller's instruction pointer
    source_url: str | None = None  # where a debugger fetches ``file`` from (the PDB's srcsrv / Source Link)
    frame_pointer: str | None = None  # hex EBP (x86) / RBP (x64) in this frame, when the walk knows it
    raw_function: str | None = None  # the name as the debug info spells it (rustc's MSVC form: enum$<…>, closure$0)

    @property
    def call_site(self) -> str:
        name = windbg_module_name(self.module) if self.module else None
        if name is None:
            return self.address
        if self.function is None:
            return f"{name}+{self.offset}"
        text = f"{name}!{self.function}"
        if self.function_offset is not None and not self.inline:
            text += f"+{self.function_offset}"
        return text


@dataclass
class ThreadStack:
    thread_id: int
    name: str | None
    crashed: bool
    frames: list[FrameRow] = field(default_factory=list)
    stop: str | None = None  # why the walk ended
    truncated: bool = False  # the walk ended on a problem: frames may be missing
    error: str | None = None  # no walk at all (no context, unsupported CPU...)
    notes: list[str] = field(default_factory=list)
    registers: dict[str, str] | None = None  # the thread's context (hex), as cdb's `r` shows it


_FRAME_FIELDS = tuple(FrameRow.__dataclass_fields__)
_THREAD_FIELDS = tuple(ThreadStack.__dataclass_fields__)


def thread_json(stack: ThreadStack) -> dict:
    """``dataclasses.asdict(stack)`` (the ``--json`` shape), built directly: asdict deep-copies
    every value of every frame, which was most of the time `stack --all --json` took on a dump
    of many threads (frame values are str, int, bool or None: nothing to copy)."""
    out = {name: getattr(stack, name) for name in _THREAD_FIELDS}
    out["frames"] = [{name: getattr(row, name) for name in _FRAME_FIELDS} for row in stack.frames]
    out["notes"] = list(stack.notes)
    out["registers"] = dict(stack.registers) if stack.registers is not None else None
    return out


@dataclass
class _ModuleSymbols:
    image: object | None = None  # PeUnwindImage
    image_path: Path | None = None
    pdb_path: Path | None = None
    debug_id: DebugId | None = None
    pdb_name: str | None = None
    codeview_source: str | None = None  # "dump", "image" or None
    note: str | None = None
    # ELF modules: the files found by build id (identity checked) and the DWARF file to symbolize with.
    build_id: str | None = None
    elf_path: Path | None = None
    dwp_path: Path | None = None
    debug_path: Path | None = None
    # Mach-O modules (macOS/iOS dumps): the binary and the DWARF file (a dSYM's, or the binary's
    # own) found by LC_UUID; debug_path above is the DWARF file.
    mach_uuid: str | None = None
    macho_path: Path | None = None


class StackResolver(DebugFiles):
    """Finds and caches each module's image and PDB for the run (the files themselves through
    :class:`~symtool.dumps.locate.DebugFiles`)."""

    def __init__(self, locator: SymbolLocator, symbolizers: SymbolizerCache, max_images: int = 64,
                 fetch=None, sources: SourceIndexCache | None = None):
        # fetch(name, index) -> local Path | None: brings a file found only on an HTTP store into
        # the verified cache (symtool.store.fetch.Fetcher); None: --offline, nothing downloads.
        super().__init__(locator, fetch)
        self.sources = sources if sources is not None else SourceIndexCache()
        self.symbolizers = symbolizers
        self._images: OrderedDict[str, object] = OrderedDict()
        self._failed: dict[str, str] = {}
        self._max_images = max_images
        self._codeviews: dict[str, object] = {}
        self._modules: dict[tuple, _ModuleSymbols] = {}
        self._frame_tables: dict[str, object] = {}  # PDB path -> FrameTable (None: unreadable)
        self._elf_ids: dict[str, object] = {}  # path -> ElfInfo (None: unreadable)
        self._dwarf: OrderedDict[tuple, object] = OrderedDict()  # (binary, dwp) -> DwarfSymbolizer (None: failed)

    def image(self, path: Path):
        from symtool.formats.pe_unwind_arm64 import read_pe_unwind_any

        key = os.fspath(path)
        if key in self._failed:
            return None
        img = self._images.get(key)
        if img is None:
            try:
                img = read_pe_unwind_any(key)
            except (FormatError, OSError, ValueError, struct.error) as err:
                self._failed[key] = getattr(err, "message", None) or str(err)
                return None
            self._images[key] = img
            while len(self._images) > self._max_images:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(key)
        return img

    def image_codeview(self, path: Path):
        key = os.fspath(path)
        if key not in self._codeviews:
            from symtool.formats.pe import read_pe

            try:
                self._codeviews[key] = read_pe(path).primary_codeview
            except (FormatError, OSError):
                self._codeviews[key] = None
        return self._codeviews[key]

    def frame_table(self, module: Module):
        """The x86 frame data (FPO / FrameData) of the module's matching PDB, or None."""
        from symtool.formats.pdb import read_pdb
        from symtool.formats.pdb_frames import read_frame_table_path

        syms = self.module(module)
        if syms.pdb_path is None:
            return None
        key = os.fspath(syms.pdb_path)
        if key not in self._frame_tables:
            try:
                ok = syms.debug_id is None or read_pdb(key).debug_id.matches(syms.debug_id)
                self._frame_tables[key] = read_frame_table_path(key) if ok else None
            except (FormatError, OSError):
                self._frame_tables[key] = None
        return self._frame_tables[key]

    def module(self, module: Module) -> _ModuleSymbols:
        key = (module.file_name.lower(), module.code_id, module.debug_id.index() if module.debug_id else None)
        found = self._modules.get(key)
        if found is None:
            found = self._modules[key] = self._resolve(module)
        return found

    def _elf_info(self, path: Path, dwo_ids: bool = False):
        key = (os.fspath(path), dwo_ids)
        if key not in self._elf_ids:
            from symtool.formats.elf import read_elf

            try:
                self._elf_ids[key] = read_elf(path, dwo_ids=dwo_ids)
            except (FormatError, OSError, ValueError, struct.error):
                self._elf_ids[key] = None
        return self._elf_ids[key]

    def _resolve_elf(self, module: Module) -> _ModuleSymbols:
        """The binary (CFI, code), .dwp and debug file of an ELF module, each used only if it is
        the module's: the binary and debug file by build id, the .dwp by the binary's split-unit IDs."""
        from symtool.formats.dwarf_cfi import read_elf_cfi

        build_id = module.build_id.hex()
        out = _ModuleSymbols(build_id=build_id)
        try:
            found = self.locator.lookup_elf(module.file_name, build_id)
        except SymtoolError as err:
            out.note = err.message
            return out
        notes = []
        for role in ("executable", "debuginfo"):
            if role not in found:
                continue
            name, index, hit = found[role]
            local = self._local(hit, name, index)
            info = self._elf_info(local) if local is not None else None
            if local is None:
                notes.append(f"{role} {hit.where} is not a local file")
            elif info is None or info.index != build_id:
                notes.append(f"{local}: build id {info.index if info else 'unreadable'} is not {build_id}: not used")
            elif role == "executable":
                out.elf_path = local
            else:
                out.debug_path = local
        if "dwp" in found and out.elf_path is not None:
            name, index, hit = found["dwp"]
            local = self._local(hit, name, index)
            binary = self._elf_info(out.elf_path, dwo_ids=True)
            package = self._elf_info(local, dwo_ids=True) if local is not None else None
            if package is not None and binary is not None and package.split == "dwp" \
                    and set(binary.dwo_ids or []) <= set(package.dwo_ids or []):
                out.dwp_path = local
            elif local is not None:
                notes.append(f"{local}: does not hold {module.file_name}'s split units: not used")
        if out.elf_path is not None:
            try:
                out.image = read_elf_cfi(out.elf_path)
            except (FormatError, OSError) as err:
                notes.append(f"{out.elf_path}: unwind tables unreadable: {getattr(err, 'message', None) or err}")
        out.note = "; ".join(notes) or None
        return out

    def _macho_uuids(self, path: Path) -> dict[str, bool]:
        """UUID key -> has __DWARF, for each slice of a Mach-O file ({} when unreadable)."""
        key = ("macho", os.fspath(path))
        if key not in self._elf_ids:
            from symtool.formats.macho import read_macho

            try:
                self._elf_ids[key] = {s.index: s.has_dwarf for s in read_macho(path).slices if s.index}
            except (FormatError, OSError, ValueError, struct.error):
                self._elf_ids[key] = {}
        return self._elf_ids[key]

    def _resolve_macho(self, module: Module) -> _ModuleSymbols:
        """The binary (compact unwind, __eh_frame, code) and the DWARF file (dSYM, else the
        binary's own __DWARF) of a Mach-O module, each used only if a slice has the module's UUID."""
        from symtool.stackwalk.macos import read_macho_unwind

        uuid = module.mach_uuid.index()
        out = _ModuleSymbols(mach_uuid=uuid)
        try:
            found = self.locator.lookup_macho(module.file_name, uuid)
        except SymtoolError as err:
            out.note = err.message
            return out
        notes = []
        for role in ("executable", "dsym"):
            if role not in found:
                continue
            name, index, hit = found[role]
            local = self._local(hit, name, index)
            slices = self._macho_uuids(local) if local is not None else {}
            if local is None:
                notes.append(f"{'binary' if role == 'executable' else 'dSYM'} {hit.where} is not a local file")
            elif uuid not in slices:
                notes.append(f"{local}: no slice with UUID {uuid}: not used")
            elif role == "executable":
                out.macho_path = local
            else:
                out.debug_path = local
        if out.debug_path is None and out.macho_path is not None and self._macho_uuids(out.macho_path).get(uuid):
            out.debug_path = out.macho_path  # a binary that carries its own DWARF
        if out.macho_path is not None:
            try:
                out.image = read_macho_unwind(out.macho_path, uuid)
            except (FormatError, OSError, ValueError, struct.error) as err:
                notes.append(f"{out.macho_path}: unwind tables unreadable: {getattr(err, 'message', None) or err}")
        out.note = "; ".join(notes) or None
        return out

    def dwarf_symbolizer(self, syms: _ModuleSymbols):
        """The DWARF symbolizer of an ELF module (binary + .dwp, or the debug file), None when
        there is none or the DWARF symbolizer is not available."""
        source = syms.debug_path or syms.elf_path
        if source is None:
            return None
        if syms.mach_uuid is not None:
            return self._macho_symbolizer(source, syms.mach_uuid)
        # The .dwp holds the split units of the skeletons in the binary, which a debug file
        # (objcopy --only-keep-debug) keeps too: it goes with either.
        key = (os.fspath(source), os.fspath(syms.dwp_path) if syms.dwp_path else None)
        if key in self._dwarf:
            self._dwarf.move_to_end(key)
            return self._dwarf[key]
        sym = None
        try:
            from symtool.symbolize import open_dwarf_symbolizer

            # Unpacked .dwo files are read from the binary's directory tree and the build directories.
            sym = open_dwarf_symbolizer(key[0], key[1], [os.fspath(d) for d in self.locator.build_dirs])
            if sym.build_id is not None and _build_id_hex(sym.build_id) != syms.build_id:
                sym.close()
                sym = None
        except ImportError:
            sym = None  # symtool.formats.dwarf_symbols not in this build: frames stay unsymbolized
        except (FormatError, OSError, ValueError, struct.error):
            sym = None
        return self._keep_dwarf(key, sym)

    def _keep_dwarf(self, key: tuple, sym):
        """Cache ``sym`` (None: failed) under ``key``, closing the least recently used past the bound."""
        self._dwarf[key] = sym
        while len(self._dwarf) > self._max_images:
            _k, old = self._dwarf.popitem(last=False)
            if old is not None:
                old.close()
        return sym

    def _macho_symbolizer(self, path: Path, uuid: str):
        """The DWARF symbolizer of one Mach-O slice (by UUID) of ``path``, cached like the ELF ones."""
        key = (os.fspath(path), "uuid:" + uuid)
        if key in self._dwarf:
            self._dwarf.move_to_end(key)
            return self._dwarf[key]
        try:
            from symtool.symbolize import open_macho_symbolizer

            sym = open_macho_symbolizer(path, uuid)
            if sym.uuid != uuid:
                sym.close()
                sym = None
        except (FormatError, OSError, ValueError, struct.error):
            sym = None
        return self._keep_dwarf(key, sym)

    def close(self) -> None:
        for sym in self._dwarf.values():
            if sym is not None:
                sym.close()
        self._dwarf.clear()
        for syms in self._modules.values():
            if syms.image is not None and hasattr(syms.image, "close"):
                syms.image.close()

    def _resolve(self, module: Module) -> _ModuleSymbols:
        if module.build_id is not None:
            return self._resolve_elf(module)
        if module.mach_uuid is not None:
            return self._resolve_macho(module)
        out = _ModuleSymbols()
        code_id = module.code_id
        if module.file_name and code_id:
            try:
                hit = self.locator.lookup(module.file_name, code_id, "pe")
            except SymtoolError:
                hit = None
            local = self._local(hit, module.file_name, code_id)
            if local is not None:
                out.image_path = local
                out.image = self.image(local)
        if module.debug_id is not None and module.pdb_name:
            out.debug_id, out.pdb_name, out.codeview_source = module.debug_id, module.pdb_name, "dump"
        elif out.image_path is not None:
            cv = self.image_codeview(out.image_path)
            if cv is not None and cv.pdb_name:
                out.debug_id, out.pdb_name, out.codeview_source = cv.debug_id, cv.pdb_name, "image"
        if out.pdb_name and out.debug_id is not None:
            out.pdb_path = self.pdb_path(out.pdb_name, out.debug_id)
        return out


def _build_id_hex(value) -> str:
    """A build id as lower-case hex, from bytes, a BuildId or a hex string."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, BuildId):
        return str(value.index()).lower()
    return str(value).lower()


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _symbolize_frames(index: int, frame, module: Module | None, syms: _ModuleSymbols | None,
                      resolver: StackResolver, return_address: int | None) -> list[FrameRow]:
    fp = _hex(frame.context.regs.get(frame.context.fp_name))
    base = FrameRow(index, module.file_name if module else None,
                    _hex(frame.pc - module.base) if module else None, None, None, None, None, False, frame.trust,
                    _hex(frame.pc), _hex(frame.sp), _hex(return_address), frame_pointer=fp)
    if module is None or syms is None or (syms.pdb_path is None and syms.build_id is None
                                          and syms.mach_uuid is None):
        return [base]
    rva = frame.pc - module.base
    lookup = frame.lookup_address - module.base
    try:
        if syms.build_id is not None or syms.mach_uuid is not None:
            sym = resolver.dwarf_symbolizer(syms)  # identity checked when it was opened
            if sym is None:
                return [base]
        else:
            sym = resolver.symbolizers.get(syms.pdb_path)
            if syms.debug_id is not None and not sym.debug_id.matches(syms.debug_id):
                return [base]
        res = sym.symbolize(lookup)
    except (FormatError, OSError, ValueError, IndexError, KeyError, struct.error):
        return [base]
    if res is None or not res.frames:
        return [base]
    start = lookup - (res.symbol_offset or 0)
    rows = []
    for k, f in enumerate(res.frames):
        inline = k < len(res.frames) - 1
        row = FrameRow(index, base.module, base.offset, normalize_msvc_name(f.function),
                       None if inline else _hex(rva - start), f.file, f.line, inline, frame.trust, base.address,
                       None if inline else base.sp, None if inline else base.return_address,
                       resolver.sources.url_for(syms.pdb_path, f.file) if syms.pdb_path else None,
                       None if inline else fp, f.function)
        rows.append(row)
    return rows


class FrameBudget:
    """The frames all threads of one ``stack --all`` may have together (SYMTOOL_MAX_STACK_FRAMES).

    Every frame a thread's stack shows counts, walked or reused from an identical thread's walk:
    what is bounded is the work *and* the output, and 1,000 threads sharing one hostile stack
    would otherwise print a million frames from a single walk.  A thread is walked up to what is
    left; one cut short says so in ``stop`` (``truncated``), one reached after the budget is spent
    is not walked at all (no frames, ``truncated``, ``stop`` says why), and :meth:`note` sums it
    up for the run's notes.  The crashing thread comes first, so it is always walked in full.
    """

    def __init__(self, cap: int | None = None):
        from symtool.budgets import limit

        self.cap = limit("STACK_FRAMES") if cap is None else cap
        self.used = 0
        self.cut = 0  # threads whose walk the budget ended early
        self.skipped = 0  # threads not walked: the budget was spent
        self.reused = 0  # threads given an identical thread's walk (no second walk)
        self.walks = 0  # walks actually done (tests count them)

    @property
    def remaining(self) -> int:
        return max(self.cap - self.used, 0)

    @property
    def why(self) -> str:
        return f"the frame budget for all threads ({self.cap} frames, SYMTOOL_MAX_STACK_FRAMES) is spent"

    def note(self) -> str | None:
        if not self.cut and not self.skipped:
            return None
        return (f"stack frames of all threads over the work budget of {self.cap} frames "
                f"(SYMTOOL_MAX_STACK_FRAMES; a hostile or corrupt dump?): {self.cut} thread(s) cut short, "
                f"{self.skipped} not walked")


class _WalkCache:
    """Walks already done in this run, by (stack memory range, CPU context): a thread whose
    context and saved stack are another's has the same walk, so it is not walked again.

    Bounded by the frame rows it holds (the least recently used go first); the saved stack of the
    last range read is kept too, so threads sharing one range read it once, not once each."""

    MAX_ROWS = 32_768

    def __init__(self):
        self.walks: OrderedDict[tuple, tuple] = OrderedDict()  # key -> (template ThreadStack, walked, cap)
        self.rows = 0
        self.memory: tuple[tuple, object] | None = None  # (range, StackMemory)

    def get(self, key: tuple, cap: int):
        entry = self.walks.get(key)
        if entry is None:
            return None
        _template, walked, used_cap = entry
        # A walk that ended on its own (before its cap) is the walk under any larger cap; one that
        # stopped at its cap is only the walk under that same cap.
        if used_cap != cap and not (walked < used_cap and walked < cap):
            return None
        self.walks.move_to_end(key)
        return entry

    def put(self, key: tuple, template: "ThreadStack", walked: int, cap: int) -> None:
        old = self.walks.pop(key, None)
        if old is not None:
            self.rows -= len(old[0].frames)
        self.walks[key] = (template, walked, cap)
        self.rows += len(template.frames)
        while self.rows > self.MAX_ROWS and len(self.walks) > 1:
            _k, (dropped, _w, _c) = self.walks.popitem(last=False)
            self.rows -= len(dropped.frames)


def thread_stack(md: MinidumpFile, thread: Thread | None, resolver: StackResolver, *, crashed: bool,
                 context_location=None, max_frames: int | None = None, budget: FrameBudget | None = None,
                 cache: _WalkCache | None = None) -> ThreadStack:
    """The symbolized stack of ``thread`` (its own context, or ``context_location`` for the
    crashing thread's exception context).

    ``budget``: the frames left for all threads (:class:`FrameBudget`); ``cache``: walks of this
    run to reuse for a thread with the same context and stack memory."""
    from symtool.formats.cpu_context import parse_context
    from symtool.stackwalk import MAX_FRAMES

    dump = md.dump
    tid = thread.thread_id if thread is not None else (dump.exception.thread_id if dump.exception else 0)
    out = ThreadStack(tid, thread.name if thread else None, crashed)
    cpu = dump.system.cpu if dump.system else "unknown"
    if cpu not in SUPPORTED_CPUS:
        out.error = f"stack walking not supported for {cpu}"
        return out
    loc = context_location or (thread.context if thread is not None else None)
    if loc is None:
        out.error = "no CPU context for this thread"
        return out
    try:
        ctx = parse_context(md.read_location(loc), cpu)
    except FormatError as err:
        out.error = f"unreadable CPU context: {err.message}"
        return out
    out.registers = {name: f"{value:#x}" for name, value in ctx.regs.items()}
    per_walk = max_frames or MAX_FRAMES
    cap = per_walk if budget is None else min(per_walk, budget.remaining)
    if cap <= 0:  # checked before the stack is read: a spent budget costs nothing more per thread
        budget.skipped += 1
        out.stop, out.truncated = f"not walked: {budget.why}", True
        return out
    stack = thread.stack if thread is not None else None
    if stack is None and ctx.sp is not None:
        stack = md.range_at(ctx.sp)
    key = (cpu, tuple(stack) if stack is not None else None, tuple(sorted(ctx.regs.items())))
    entry = cache.get(key, cap) if cache is not None else None
    if entry is not None:
        template, walked, _cap = entry
        out.frames, out.stop, out.truncated = template.frames, template.stop, template.truncated
        out.notes = list(template.notes)
        budget_reused = True
    else:
        walked = _walk_and_symbolize(md, out, ctx, stack, resolver, cap, cache)
        if cache is not None:
            template = ThreadStack(0, None, False, out.frames, out.stop, out.truncated, None, list(out.notes))
            cache.put(key, template, walked, cap)
        budget_reused = False
    if budget is not None:
        budget.used += walked
        budget.reused += budget_reused
        budget.walks += not budget_reused
        if cap < per_walk and walked >= cap:
            budget.cut += 1
            out.stop, out.truncated = f"stopped after {walked} frames: {budget.why}", True
    return out


def _walk_and_symbolize(md: MinidumpFile, out: ThreadStack, ctx, stack, resolver: StackResolver, cap: int,
                        cache: _WalkCache | None) -> int:
    """Walk one thread from ``ctx`` over its saved ``stack`` (at most ``cap`` frames) into
    ``out``'s frames, stop and notes; the number of frames walked."""
    from symtool.stackwalk import StackMemory, WalkModule, walk_stack

    dump = md.dump
    mem = None
    stack_end = None
    if stack is not None:
        try:
            if cache is not None and cache.memory is not None and cache.memory[0] == tuple(stack):
                mem = cache.memory[1]
            else:
                mem = StackMemory([(stack.start, md.read_range(stack, MAX_STACK_BYTES))])
                if cache is not None:
                    cache.memory = (tuple(stack), mem)
            stack_end = stack.start + min(stack.size, MAX_STACK_BYTES)
        except FormatError as err:
            out.notes.append(f"stack memory unreadable: {err.message}")
    else:
        out.notes.append("the dump holds no stack memory for this thread")
    modules = [WalkModule(m.base, m.size, m.file_name, i) for i, m in enumerate(dump.modules)]
    by_index = dict(enumerate(dump.modules))

    def image_for(wm):
        return resolver.module(by_index[wm.index]).image

    result = walk_stack(ctx, mem if mem is not None else StackMemory([]), modules, image_for, stack_end,
                        cap, lambda wm: resolver.frame_table(by_index[wm.index]),
                        rbp_chain=dump.platform not in ("windows", "unknown"))
    out.stop, out.truncated = result.stop, result.truncated
    out.notes += result.problems
    frames = result.frames
    for i, frame in enumerate(frames):
        module = by_index[frame.module.index] if frame.module is not None else None
        syms = resolver.module(module) if module is not None else None
        ret = frames[i + 1].pc if i + 1 < len(frames) else None
        out.frames += _symbolize_frames(i, frame, module, syms, resolver, ret)
    _drop_stale_frames_past_thread_start(out)
    for k, row in enumerate(out.frames):
        row.index = k  # numbered like cdb's `k`: inline rows count
    return len(frames)


# Where a thread begins: the CRT's entry, std's thread start, the OS's thread thunks.  Below
# them nothing of the thread's own remains, so a frame found by scanning there is stale data.
THREAD_START_FUNCTIONS = ("mainCRTStartup", "wmainCRTStartup", "WinMainCRTStartup", "wWinMainCRTStartup",
                          "BaseThreadInitThunk", "RtlUserThreadStart", "_start", "start_thread", "__clone",
                          "__clone3")
THREAD_START_SUFFIXES = ("::thread_start", "::mainCRTStartup")


def _drop_stale_frames_past_thread_start(stack: ThreadStack) -> None:
    """Cut the frames found by scanning past the thread's start: without the OS's images a scan
    there finds old return addresses (Wine's stacks ended in three stale ntdll frames)."""
    start = next((k for k, f in enumerate(stack.frames)
                  if f.function and (f.function in THREAD_START_FUNCTIONS or f.function.endswith(THREAD_START_SUFFIXES))),
                 None)
    if start is None:
        return
    for k in range(start + 1, len(stack.frames)):
        if stack.frames[k].trust == "scan" and not stack.frames[k].inline:
            dropped = len(stack.frames) - k
            del stack.frames[k:]
            stack.notes.append(f"{dropped} frame{'s' if dropped != 1 else ''} found by scanning past the thread's "
                               "start left out (stale stack data)")
            return


def crash_stack(md: MinidumpFile, resolver: StackResolver, max_frames: int | None = None) -> ThreadStack | None:
    """The crashing thread's stack from the exception context (None: the dump has no exception)."""
    exc = md.dump.exception
    if exc is None:
        return None
    thread = md.dump.thread(exc.thread_id)
    return thread_stack(md, thread, resolver, crashed=True, context_location=exc.context, max_frames=max_frames)


def iter_stacks(md: MinidumpFile, resolver: StackResolver, max_frames: int | None = None,
                budget: FrameBudget | None = None) -> Iterator[ThreadStack]:
    """Every thread's stack, one at a time (the caller writes each out and lets it go); the
    crashing thread's from its exception context, first.

    All threads together get ``budget`` frames (:class:`FrameBudget`, SYMTOOL_MAX_STACK_FRAMES
    by default); a thread with the same context and stack memory as one before it gets that
    thread's walk again instead of a second walk."""
    budget = budget if budget is not None else FrameBudget()
    cache = _WalkCache()
    exc = md.dump.exception
    if exc is not None:
        thread = md.dump.thread(exc.thread_id)
        yield thread_stack(md, thread, resolver, crashed=True, context_location=exc.context, max_frames=max_frames,
                           budget=budget, cache=cache)
    for t in md.dump.threads:
        if exc is not None and t.thread_id == exc.thread_id:
            continue
        yield thread_stack(md, t, resolver, crashed=False, max_frames=max_frames, budget=budget, cache=cache)


def all_stacks(md: MinidumpFile, resolver: StackResolver, max_frames: int | None = None,
               budget: FrameBudget | None = None) -> list[ThreadStack]:
    """Every thread's stack (:func:`iter_stacks`), as a list."""
    return list(iter_stacks(md, resolver, max_frames, budget))


def elf_module_notes(md: MinidumpFile, resolver: StackResolver) -> list[str]:
    """What was found for a Linux dump's ELF modules, by build id: one line for those found,
    one for those not (and why a file found was not used)."""
    found, missing, other = [], [], []
    for module in md.dump.modules:
        if module.build_id is None:
            if module.codeview_kind is None and module.error is None:
                missing.append(f"{module.file_name} (no build id in the dump)")
            continue
        syms = resolver.module(module)
        if syms.elf_path is not None:
            parts = [p for p, have in (("binary", True), (".dwp", syms.dwp_path is not None),
                                       ("debug file", syms.debug_path is not None)) if have]
            found.append(f"{module.file_name} ({', '.join(parts)})")
        elif syms.debug_path is not None:
            found.append(f"{module.file_name} (debug file only: no unwind tables)")
        else:
            missing.append(f"{module.file_name} {syms.build_id}")
        if syms.note:
            other.append(f"{module.file_name}: {syms.note}")
    out = []
    if found:
        out.append(f"found by build id: {', '.join(found)}")
    if missing:
        out.append(f"not found by build id (walked by scanning, not symbolized): {', '.join(missing)}")
    return out + other


def macho_module_notes(md: MinidumpFile, resolver: StackResolver) -> list[str]:
    """What was found for a macOS dump's Mach-O modules, by LC_UUID: one line for those found,
    one for those not (and why a file found was not used)."""
    found, missing, other = [], [], []
    for module in md.dump.modules:
        if module.mach_uuid is None:
            continue
        syms = resolver.module(module)
        parts = [p for p, have in (("binary", syms.macho_path is not None),
                                   ("dSYM", syms.debug_path is not None and syms.debug_path != syms.macho_path),
                                   ("its own DWARF", syms.debug_path is not None and syms.debug_path == syms.macho_path))
                 if have]
        if parts:
            found.append(f"{module.file_name} ({', '.join(parts)})")
        else:
            missing.append(f"{module.file_name} {module.mach_uuid.uuid_str}")
        if syms.note:
            other.append(f"{module.file_name}: {syms.note}")
    out = []
    if found:
        out.append(f"found by UUID: {', '.join(found)}")
    if missing:
        out.append(f"not found by UUID (walked by frame pointers and scanning, not symbolized): {', '.join(missing)}")
    return out + other


__all__ = ["FrameRow", "ThreadStack", "StackResolver", "FrameBudget", "elf_module_notes", "macho_module_notes", "thread_stack", "crash_stack",
           "all_stacks", "iter_stacks", "thread_json", "windbg_module_name"]

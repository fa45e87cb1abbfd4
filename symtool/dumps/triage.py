"""One row per dump: the exception, the faulting module and function, and every
module's store keys and whether they were found.

Rows are dataclasses; :meth:`TriageRow.to_json` is the ``--json`` object.  Its
keys and their order are a stable interface: they are the dataclass fields,
in declaration order, so adding a field is the only way to change them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from symtool.dumps.exceptions import describe_exception
from symtool.dumps.files import dump_time
from symtool.dumps.locate import SymbolLocator
from symtool.dumps.stack import FrameRow as StackFrameRow
from symtool.dumps.stack import StackResolver, crash_stack
from symtool.dumps.symbolize import SymbolizerCache, symbolize_fault
from symtool.errors import FormatError, SymtoolError
from symtool.formats.minidump import MACH_PLATFORMS, Minidump, MinidumpFile, Module, open_minidump
from symtool.ids import check_file_name
from symtool.store.layout import key_path


@dataclass
class FrameRow:
    """One frame at the exception address, innermost (inlined callee) first."""

    function: str
    file: str | None
    line: int | None


@dataclass
class ModuleRow:
    """A loaded module, the store keys of its PDB and image, and whether they were found."""

    name: str  # file name of the module
    path: str  # as the dump records it
    base: str  # hex
    size: int
    timestamp: int
    code_id: str | None
    debug_id: str | None
    codeview: str | None  # "RSDS", "NB10", "ELF" or None (Mach-O modules: "RSDS" holding the LC_UUID)
    pdb_name: str | None
    pdb_store_path: str | None = None  # name/INDEX/name
    pdb_found: bool | None = None  # None: not looked up or not checked
    pdb_path: str | None = None  # where it was found
    image_store_path: str | None = None
    image_found: bool | None = None
    image_path: str | None = None
    error: str | None = None
    os_module: bool = False  # an operating-system module (its symbols come from Microsoft's / the distribution's server)
    codeview_source: str | None = None  # "dump" (module list) or "image" (debug directory of the found image)
    debug_path: str | None = None  # ELF modules: the .dwp or separate debug file found by build id (identity checked)


# Operating-system modules: their PDBs are on Microsoft's symbol server, not in the team's store.
OS_NAMES = frozenset({"ntdll.dll", "kernel32.dll", "kernelbase.dll", "user32.dll", "gdi32.dll", "win32u.dll",
                      "advapi32.dll", "ucrtbase.dll", "msvcrt.dll", "ws2_32.dll", "rpcrt4.dll", "sechost.dll",
                      "combase.dll", "ole32.dll", "shell32.dll", "bcrypt.dll", "bcryptprimitives.dll",
                      "dbghelp.dll", "dbgcore.dll", "vcruntime140.dll", "vcruntime140_1.dll", "msvcp140.dll"})


# Linux/Android system libraries: their debug files come from the distribution (its debuginfod).
UNIX_SYSTEM_DIRS = ("/lib/", "/lib32/", "/lib64/", "/usr/lib/", "/usr/lib32/", "/usr/lib64/", "/usr/libexec/",
                    "/system/", "/apex/", "/vendor/")
UNIX_KERNEL_MODULES = ("linux-gate.so", "linux-vdso.so", "[vdso]")


def is_os_module(path: str) -> bool:
    """A module of the operating system, not the team's own: loaded from the Windows directory
    (or a well-known system DLL); on Linux from the system library directories, or the
    kernel's vDSO."""
    if path.startswith(UNIX_SYSTEM_DIRS) or path.rsplit("/", 1)[-1].startswith(UNIX_KERNEL_MODULES):
        return True
    low = path.lower().replace("/", "\\")
    if re.match(r"^(?:[a-z]:|\\systemroot)\\windows\\", low) or low.startswith("\\systemroot\\"):
        return True
    return low.rsplit("\\", 1)[-1] in OS_NAMES


@dataclass
class TriageRow:
    """What one dump needs and says.  ``error``: the dump could not be read."""

    path: str
    error: str | None = None
    time: str | None = None  # ISO 8601
    time_source: str | None = None  # "header" or "file name"
    platform: str | None = None
    os: str | None = None
    cpu: str | None = None
    process_id: int | None = None
    exception_code: str | None = None  # as ProcDump writes it, e.g. C0000005
    exception_name: str | None = None
    exception_detail: str | None = None
    exception_address: str | None = None  # hex
    exception_parameters: list[str] | None = None  # hex
    thread_id: int | None = None
    faulting_module: str | None = None
    faulting_offset: str | None = None  # hex RVA
    function: str | None = None
    file: str | None = None
    line: int | None = None
    frames: list[FrameRow] = field(default_factory=list)
    symbol: str | None = None  # public (linkage) name covering the address
    symbol_offset: int | None = None
    bucket: str | None = None
    comments: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    modules: list[ModuleRow] = field(default_factory=list)
    stack: list[StackFrameRow] = field(default_factory=list)  # crashing thread, innermost first, inline frames too
    stack_note: str | None = None  # why the stack is missing or shorter than it should be
    signature: list[str] = field(default_factory=list)  # the meaningful frames the bucket is made of
    panic: dict | None = None  # a Rust panic's message, file, line, column and thread (symtool.dumps.panic)
    user_frame: FrameRow | None = None  # the first frame past the panic/abort path: the user's code
    partial: bool = False  # an optional stream was cut off or broken; the rest was read (see notes)

    def to_json(self) -> dict:
        # dataclasses.asdict deep-copies every value: a third of the time of a dump with a long
        # stack.  The nested rows hold plain values only, so one level of copying is the same.
        out = dict(self.__dict__)
        for key in ("frames", "modules", "stack"):
            out[key] = [dict(item.__dict__) for item in out[key]]
        for key in ("comments", "notes", "signature", "exception_parameters"):
            if out[key] is not None:
                out[key] = list(out[key])
        if self.user_frame is not None:
            out["user_frame"] = dict(self.user_frame.__dict__)
        if self.panic is not None:
            out["panic"] = dict(self.panic)
        return out


# Platforms whose minidumps (Breakpad/crashpad) list ELF modules by build id.
ELF_PLATFORMS = ("linux", "android")
# Platforms whose exception address is the data address touched (a signal's si_addr, a Mach
# EXC_BAD_ACCESS subcode), not an instruction: the faulting module comes from the stack.
DATA_ADDRESS_PLATFORMS = ELF_PLATFORMS + MACH_PLATFORMS

ROW_KEYS = tuple(f.name for f in dataclasses.fields(TriageRow))


def _module_row(module: Module, locator: SymbolLocator, platform: str,
                resolver: StackResolver | None = None) -> ModuleRow:
    entry = ModuleRow(
        name=module.file_name,
        path=module.name,
        base=f"{module.base:#x}",
        size=module.size,
        timestamp=module.timestamp,
        code_id=module.code_id,
        debug_id=module.debug_id.index() if module.debug_id is not None else None,
        codeview=module.codeview_kind,
        pdb_name=module.pdb_name,
        error=module.error,
        os_module=is_os_module(module.name),
        codeview_source="dump" if module.debug_id is not None else None,
    )
    if module.build_id is not None and resolver is not None and module.error is None:
        # ELF modules: no PDB; the binary by its SSQP key (build id), found where the stack walk finds it.
        from symtool.store.layout import ssqp_elf_key

        syms = resolver.module(module)
        try:
            entry.image_store_path = ssqp_elf_key(module.file_name, syms.build_id)
        except SymtoolError:
            entry.image_store_path = None
        entry.image_found = syms.elf_path is not None
        entry.image_path = str(syms.elf_path) if syms.elf_path else None
        debug = syms.dwp_path or syms.debug_path
        entry.debug_path = str(debug) if debug else None
        return entry
    if module.mach_uuid is not None and resolver is not None and module.error is None:
        # Mach-O modules: no PDB; the binary by its SSQP key (LC_UUID), the dSYM's DWARF beside it.
        from symtool.store.layout import ssqp_macho_key

        syms = resolver.module(module)
        try:
            entry.image_store_path = ssqp_macho_key(module.file_name, syms.mach_uuid)
        except SymtoolError:
            entry.image_store_path = None
        entry.pdb_name = None  # crashpad's RSDS record names the module itself, not a PDB
        entry.image_found = syms.macho_path is not None
        entry.image_path = str(syms.macho_path) if syms.macho_path else None
        entry.debug_path = str(syms.debug_path) if syms.debug_path else None
        return entry
    if module.codeview_kind == "ELF" or platform not in ("windows", "unknown"):
        return entry  # ELF/Mach-O modules: no PDB, no PE store key
    pdb_name = module.pdb_name
    debug_id = module.debug_id
    if debug_id is None and resolver is not None and module.error is None:
        # No CodeView record in the dump (Wine, older writers): read it from the image, as WinDBG does.
        syms = resolver.module(module)
        if syms.codeview_source == "image":
            pdb_name, debug_id = syms.pdb_name, syms.debug_id
            entry.pdb_name, entry.debug_id = pdb_name, debug_id.index()
            entry.codeview, entry.codeview_source = "RSDS", "image"
    if pdb_name and debug_id is not None:
        index = debug_id.index()
        try:
            check_file_name(pdb_name)
            entry.pdb_store_path = key_path(pdb_name, index)
            hit = locator.lookup(pdb_name, index, "pdb")
            entry.pdb_found = hit.found
            entry.pdb_path = hit.where
            if hit.note:
                entry.error = hit.note
        except SymtoolError as err:
            entry.pdb_found = False
            entry.error = err.message
    elif module.error is None:
        entry.error = ("no CodeView record in the dump, and the image was not found to read it from"
                       if module.code_id else "no CodeView record (the module names no PDB)")
        entry.pdb_found = False
    code_id = module.code_id
    if entry.name and code_id:
        try:
            entry.image_store_path = key_path(entry.name, code_id)
            hit = locator.lookup(entry.name, code_id, "pe")
            entry.image_found = hit.found
            entry.image_path = hit.where
        except SymtoolError as err:
            entry.image_found = False
            entry.error = entry.error or err.message
    return entry


def triage_one(path: Path, locator: SymbolLocator, symbolizers: SymbolizerCache,
               resolver: StackResolver | None = None, stacks: bool = True) -> TriageRow:
    """The row for one dump; a dump that cannot be read gives a row with ``error``."""
    row = TriageRow(str(path))
    resolver = resolver or StackResolver(locator, symbolizers)
    try:
        md = open_minidump(path)
    except FormatError as err:
        row.error = err.message
        row.time, row.time_source = dump_time(path, None)
        return row
    except OSError as err:
        row.error = err.strerror or str(err)
        return row
    with md:
        _fill_row(row, md.dump, path, locator, symbolizers, resolver)
        if stacks and row.exception_code is not None and \
                row.platform in ("windows", "unknown") + DATA_ADDRESS_PLATFORMS:
            _fill_stack(row, md, resolver)
        if row.platform in ELF_PLATFORMS:
            from symtool.dumps.stack import elf_module_notes

            row.notes += elf_module_notes(md, resolver)
        elif row.platform in MACH_PLATFORMS:
            from symtool.dumps.stack import macho_module_notes

            row.notes += macho_module_notes(md, resolver)
    return row


def _fill_stack(row: TriageRow, md: MinidumpFile, resolver: StackResolver) -> None:
    from symtool.dumps.panic import crash_panic
    from symtool.dumps.signature import runtime_prefix, signature

    try:
        st = crash_stack(md, resolver)
    except (FormatError, OSError, ValueError) as err:  # defensive: a broken dump gives a note, never a traceback
        row.stack_note = f"stack not walked: {getattr(err, 'message', None) or err}"
        return
    if st is None:
        return
    row.stack = st.frames
    if st.error:
        row.stack_note = st.error
    elif st.truncated:
        row.stack_note = f"stack truncated: {st.stop}"
    os_modules = {m.name.lower() for m in row.modules if m.os_module}
    row.signature = signature(st.frames, os_modules)
    first = runtime_prefix(st.frames, os_modules)
    user = next((f for f in st.frames[first:] if f.function), None)
    if user is not None:
        row.user_frame = FrameRow(user.function, user.file, user.line)
    try:
        panic = crash_panic(md, st, resolver)
    except (FormatError, OSError, ValueError) as err:  # defensive: a broken dump gives a note, never a traceback
        row.notes.append(f"panic not read: {getattr(err, 'message', None) or err}")
        panic = None
    if panic is not None:
        row.panic = panic.to_json()
    top = next((f for f in st.frames if f.function), None)
    if row.faulting_module is None and row.platform in DATA_ADDRESS_PLATFORMS and st.frames and st.frames[0].module:
        # A signal's address is the data address (si_addr); the faulting instruction is the context's.
        row.faulting_module, row.faulting_offset = st.frames[0].module, st.frames[0].offset
        row.bucket = f"{row.exception_code} {row.faulting_module}+{row.faulting_offset}"
    if row.function is None and top is not None and st.frames and st.frames[0].module == top.module \
            and st.frames[0].address == top.address:
        # The exception address symbolized through the stack (PDB named by the image's CodeView).
        physical = [f for f in st.frames if f.address == top.address]
        row.function, row.file, row.line = top.function, top.file, top.line
        row.frames = [FrameRow(f.function, f.file, f.line) for f in physical]
    if row.signature:
        row.bucket = f"{row.exception_code} " + " | ".join(row.signature)


def _fill_row(row: TriageRow, dump: Minidump, path: Path, locator: SymbolLocator,
              symbolizers: SymbolizerCache, resolver: StackResolver | None = None) -> None:
    platform = dump.platform
    row.time, row.time_source = dump_time(path, dump.timestamp)
    row.platform = platform
    if dump.system is not None:
        row.os = dump.system.os
        row.cpu = dump.system.cpu
    if platform in ELF_PLATFORMS:
        row.notes.append(
            f"{dump.system.os.split(' ')[0] if dump.system else platform} minidump (Breakpad/crashpad): "
            "modules are identified by build id; found binaries are walked with their DWARF CFI and "
            "symbolized from their DWARF")
    elif platform in MACH_PLATFORMS:
        row.notes.append(
            f"{dump.system.os.split(' ')[0] if dump.system else platform} minidump (Breakpad/crashpad): "
            "modules are identified by LC_UUID; found binaries are walked with their compact unwind "
            "and symbolized from their dSYM's DWARF")
    elif platform not in ("windows", "unknown"):
        row.notes.append(f"{dump.system.os.split(' ')[0] if dump.system else platform} minidump: "
                         "stacks are not walked and modules not symbolized for this platform")
    row.comments = dump.comments
    row.process_id = dump.process_id
    if dump.problems:
        row.partial = True
        row.notes += [f"partial dump: {problem}" for problem in dump.problems]
    row.modules = [_module_row(m, locator, platform, resolver) for m in dump.modules]
    exc = dump.exception
    if exc is None:
        row.notes.append("no exception stream (a dump taken without a crash)")
        row.bucket = "no exception"
        return
    name, detail = describe_exception(exc.code, exc.parameters, platform, exc.flags, exc.address)
    row.exception_code = exc.code_hex
    row.exception_name = name
    row.exception_detail = detail
    row.exception_address = f"{exc.address:#x}"
    row.exception_parameters = [f"{p:#x}" for p in exc.parameters]
    row.thread_id = exc.thread_id
    if platform in DATA_ADDRESS_PLATFORMS:
        # ExceptionAddress is the signal's si_addr (the address touched, for SIGSEGV), or the
        # Mach exception's subcode (the address touched, for EXC_BAD_ACCESS), not an
        # instruction: the faulting module and function come from the stack's first frame.
        row.bucket = f"{exc.code_hex} {exc.address:#x}"
        return
    module = dump.module_at(exc.address)
    if module is None:
        row.bucket = f"{exc.code_hex} {exc.address:#x}"
        row.notes.append("the exception address is in no loaded module")
        return
    rva = exc.address - module.base
    row.faulting_module = module.file_name
    row.faulting_offset = f"{rva:#x}"
    mrow = next((m for m in row.modules if m.base == f"{module.base:#x}"), None)
    pdb_hit = None
    if mrow is not None and mrow.pdb_found and mrow.codeview_source == "dump" and module.pdb_name \
            and module.debug_id is not None:
        pdb_hit = locator.lookup(module.pdb_name, module.debug_id.index(), "pdb")
    if pdb_hit is not None and pdb_hit.local_file is not None:
        res, note = symbolize_fault(symbolizers, pdb_hit.local_file, module, rva)
        if res is not None:
            row.function, row.file, row.line = res.function, res.file, res.line
            row.frames = [FrameRow(f.function, f.file, f.line) for f in res.frames]
            row.symbol, row.symbol_offset = res.symbol, res.symbol_offset
        if note:
            row.notes.append(note)
    elif pdb_hit is not None and pdb_hit.found:
        row.notes.append(f"PDB found ({pdb_hit.form}: {pdb_hit.where}) but not as a local plain file: "
                         "not symbolized (run `symtool fetch --dump <file>` first)")
    if row.function:
        row.bucket = f"{exc.code_hex} {module.file_name}!{row.function}"
    else:
        row.bucket = f"{exc.code_hex} {module.file_name}+{rva:#x}"


def triage(paths: Iterable[Path], stores: list[str], build_dirs: list[str] | None = None,
           http_client=None, fetch=None, stacks: bool = True) -> Iterator[TriageRow]:
    """Rows for the dumps in ``paths``, one at a time (images and PDBs parsed once per run)."""
    locator = SymbolLocator(stores, build_dirs, http_client)
    symbolizers = SymbolizerCache()
    resolver = StackResolver(locator, symbolizers, fetch=fetch)
    try:
        for path in paths:
            yield triage_one(Path(path), locator, symbolizers, resolver, stacks)
    finally:
        resolver.close()
        symbolizers.close()
        locator.close()


def row_missing(row: TriageRow) -> bool:
    """Something is missing or unreadable: the dump, or a PDB a module names (on Linux: the
    binary of a module that is not the system's, looked up by build id)."""
    if row.error:
        return True
    if row.platform in ELF_PLATFORMS:
        return any(m.image_found is False and not m.os_module for m in row.modules if m.codeview == "ELF")
    if row.platform in MACH_PLATFORMS:
        return any((m.image_found is False or m.debug_path is None) and not m.os_module
                   for m in row.modules if m.image_store_path)
    if row.platform not in ("windows", "unknown", None):
        return False
    # OS modules' PDBs come from Microsoft's server: their absence from the team's store is not a finding.
    return any(m.pdb_found is not True for m in row.modules if m.codeview != "ELF" and not m.os_module)


def row_failed(row: TriageRow) -> bool:
    """The dump could not be read, or a store could not be asked (a server that failed):
    bad input under the one exit-code rule (2), not a finding."""
    return bool(row.error) or any(m.pdb_found is None and m.error for m in row.modules)


__all__ = ["TriageRow", "ModuleRow", "FrameRow", "ROW_KEYS", "triage", "triage_one", "row_failed", "row_missing",
           "is_os_module"]

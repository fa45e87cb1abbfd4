"""A Breakpad-format minidump of a Linux x86_64 or aarch64 process, made from its ELF core file.

No Breakpad or crashpad writer is available here, so the dump is written from
what the kernel (or gdb's ``gcore``) saved, the way Breakpad's
``minidump_writer.cc`` lays out the same facts:

* SystemInfo: ProcessorArchitecture AMD64 (9), or for aarch64 Breakpad's
  ARM64_OLD (0x8003, with its ``MDRawContextARM64_Old``) or, crashpad's way,
  ARM64 (12, with ``MDRawContextARM64`` = Windows' CONTEXT_ARM64);
  PlatformId Linux (0x8201);
* ThreadList: each ``NT_PRSTATUS`` note as a MINIDUMP_THREAD whose context is
  a MINIDUMP_CONTEXT_AMD64 (Breakpad's ``amd64`` context, the same layout as
  Windows' CONTEXT) or an arm64 context (x0..x30, sp, pc, pstate of the
  aarch64 ``user_pt_regs``), and whose stack is the core's memory from the
  page of the stack pointer to the end of its mapping;
* MemoryList: those stacks;
* ModuleList: every file of ``NT_FILE`` mapped from offset 0, its base the
  start of that mapping and its size up to the end of the file's last
  consecutive mapping, with a CodeView ``BpEL`` record carrying the GNU
  build id read from the mapped file itself.  qemu-user's cores have no
  ``NT_FILE``: then the modules are the dynamic linker's list, read from the
  core's memory as Breakpad's LinuxDsoDebug does (the executable's
  ``DT_DEBUG`` -> ``r_debug.r_map`` -> each ``link_map``'s load bias and
  name), spanning each file's ``PT_LOAD`` segments; a static executable is
  the only module, relocated by ``AT_ENTRY`` (``NT_AUXV``);
* Exception: the signal of ``NT_SIGINFO`` (ExceptionCode = signal number,
  ExceptionFlags = si_code, ExceptionAddress = si_addr), or without it
  (qemu-user) ``pr_cursig`` of the first thread; the crashing thread's
  context;
* LinuxMaps: a ``/proc/self/maps``-like text of the mappings.

Layouts are declared here from the specs (minidumpapiset.h, Breakpad's
minidump_format.h, Linux's elf.h / elfcore.h), independently of symtool's
readers (see tests/builders/__init__.py).
"""

from __future__ import annotations

import struct
from pathlib import Path

from builders.minidump import (ARCH_ARM64, ARCH_ARM64_OLD, DIRECTORY, HEADER, MODULE, SIGNATURE, SYSTEM_INFO,
                               VERSION, context_arm64)

THREAD_LIST_STREAM = 3
MODULE_LIST_STREAM = 4
MEMORY_LIST_STREAM = 5
EXCEPTION_STREAM = 6
SYSTEM_INFO_STREAM = 7
LINUX_MAPS_STREAM = 0x47670009  # MD_LINUX_MAPS
ARCH_AMD64 = 9
PLATFORM_LINUX = 0x8201
MD_CVINFOELF_SIGNATURE = 0x4270454C  # "BpEL"
MD_CONTEXT_AMD64_FULL = 0x0010000B  # CONTEXT_AMD64 | CONTROL | INTEGER | FLOATING_POINT

# ELF64 (little-endian) header after e_ident .. and program header.
ELF64_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
ELF64_PHDR = struct.Struct("<IIQQQQQQ")
ELF64_SHDR = struct.Struct("<IIQQQQIIQQ")
NHDR = struct.Struct("<III")
PT_LOAD, PT_NOTE = 1, 4
SHT_NOTE = 7
NT_PRSTATUS, NT_AUXV, NT_SIGINFO, NT_FILE = 1, 6, 0x53494749, 0x46494C45
NT_GNU_BUILD_ID = 3
EM_X86_64, EM_AARCH64 = 0x3E, 0xB7
PT_DYNAMIC = 2
DT_NULL, DT_DEBUG = 0, 21
AT_ENTRY = 9
# aarch64 user_pt_regs (pr_reg of its elf_prstatus): regs[31] (x0..x30), sp, pc, pstate.
AARCH64_USER_REGS = struct.Struct("<34Q")
AARCH64_REG_NAMES = tuple(f"x{i}" for i in range(29)) + ("fp", "lr", "sp", "pc", "pstate")
# ContextFlags of the arm64 contexts written: integer and control registers, no floating point (a
# qemu-user core has no NT_FPREGSET).  MD_CONTEXT_ARM64_OLD | INTEGER_OLD; CONTEXT_ARM64 | CONTROL | INTEGER.
ARM64_OLD_INTEGER = 0x80000002
ARM64_CONTROL_INTEGER = 0x00400003
# r_debug (glibc link.h): int r_version; (pad); struct link_map *r_map; r_brk; r_state; r_ldbase.
R_DEBUG = struct.Struct("<iiQ")
# struct link_map's public head: l_addr (load bias), l_name, l_ld, l_next, l_prev.
LINK_MAP = struct.Struct("<QQQQQ")
MAX_LINK_MAPS = 512
# elf_prstatus (x86_64): si_signo, si_code, si_errno, pr_cursig, pad, pr_sigpend, pr_sighold,
# pr_pid, pr_ppid, pr_pgrp, pr_sid, 4 timevals (64 bytes), then pr_reg (user_regs_struct, 27 u64).
PRSTATUS_HEAD = struct.Struct("<iiihHQQiiii64s")
USER_REGS = struct.Struct("<27Q")
USER_REG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
                  "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
                  "gs")
# siginfo_t: si_signo, si_errno, si_code, padding, then the union (si_addr first for SIGSEGV/SIGILL/SIGBUS).
SIGINFO_HEAD = struct.Struct("<iiiiQ")
NT_FILE_HEAD = struct.Struct("<QQ")
NT_FILE_ENTRY = struct.Struct("<QQQ")
# MINIDUMP_CONTEXT_AMD64 up to Rip (the rest, 0x4D0 bytes in all, is zero): P1Home..P6Home,
# ContextFlags, MxCsr, SegCs, SegDs, SegEs, SegFs, SegGs, SegSs, EFlags, Dr0, Dr1, Dr2, Dr3, Dr6, Dr7,
# Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8..R15, Rip.
CONTEXT_AMD64_HEAD = struct.Struct("<6QII6HI6Q16QQ")
CONTEXT_AMD64_SIZE = 0x4D0
# MINIDUMP_THREAD: ThreadId, SuspendCount, PriorityClass, Priority, Teb, Stack (MINIDUMP_MEMORY_DESCRIPTOR:
# StartOfMemoryRange, DataSize, Rva), ThreadContext (DataSize, Rva).
THREAD = struct.Struct("<IIIIQQIIII")
MEMORY_DESCRIPTOR = struct.Struct("<QII")
# MINIDUMP_EXCEPTION_STREAM: ThreadId, __alignment, ExceptionCode, ExceptionFlags, ExceptionRecord,
# ExceptionAddress, NumberParameters, __unusedAlignment, ExceptionInformation[15], ThreadContext.
EXCEPTION = struct.Struct("<IIIIQQII15QII")
U32 = struct.Struct("<I")
PAGE = 0x1000
MAX_STACK = 8 << 20


class Core:
    """The facts of an x86_64 or aarch64 ELF core file that a minidump carries."""

    def __init__(self, path: Path):
        self.data = Path(path).read_bytes()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
        (_ident, etype, machine, _v, _entry, phoff, _shoff, _f, _eh, phentsize, phnum, *_rest) = \
            ELF64_EHDR.unpack_from(d, 0)
        if etype != 4 or machine not in (EM_X86_64, EM_AARCH64):
            raise ValueError(f"{path}: not an x86_64 or aarch64 core file (type {etype}, machine {machine:#x})")
        self.machine = machine
        self.auxv: dict[int, int] = {}
        self.loads: list[tuple[int, int, int, int, int]] = []  # vaddr, memsz, offset, filesz, flags
        self.threads: list[tuple[int, dict[str, int]]] = []  # (tid, registers)
        self.signal: tuple[int, int, int] | None = None  # signo, code, address
        self.files: list[tuple[int, int, int, str]] = []  # start, end, file offset (bytes), path
        for k in range(phnum):
            ptype, flags, offset, vaddr, _p, filesz, memsz, _a = ELF64_PHDR.unpack_from(d, phoff + k * phentsize)
            if ptype == PT_LOAD:
                self.loads.append((vaddr, memsz, offset, filesz, flags))
            elif ptype == PT_NOTE:
                self._notes(d[offset:offset + filesz])

    def _notes(self, data: bytes) -> None:
        for name, ntype, desc in _iter_notes(data, 0, len(data)):
            if name != b"CORE":
                continue
            if ntype == NT_PRSTATUS:
                head = PRSTATUS_HEAD.unpack_from(desc, 0)
                layout, names = ((USER_REGS, USER_REG_NAMES) if self.machine == EM_X86_64
                                 else (AARCH64_USER_REGS, AARCH64_REG_NAMES))
                regs = dict(zip(names, layout.unpack_from(desc, PRSTATUS_HEAD.size)))
                self.threads.append((head[7], regs))  # pr_pid: the thread id
                if self.signal is None and head[3]:
                    self.signal = (head[3], 0, 0)  # pr_cursig (NT_SIGINFO, when there, says more)
            elif ntype == NT_AUXV:
                words = struct.unpack_from(f"<{len(desc) // 8}Q", desc)
                self.auxv = dict(zip(words[0::2], words[1::2]))
            elif ntype == NT_SIGINFO:
                signo, _errno, code, _pad, addr = SIGINFO_HEAD.unpack_from(desc, 0)
                self.signal = (signo, code, addr)
            elif ntype == NT_FILE:
                count, page_size = NT_FILE_HEAD.unpack_from(desc, 0)
                entries = [NT_FILE_ENTRY.unpack_from(desc, NT_FILE_HEAD.size + k * NT_FILE_ENTRY.size)
                           for k in range(count)]
                names = desc[NT_FILE_HEAD.size + count * NT_FILE_ENTRY.size:].split(b"\0")
                for (start, end, page_offset), name in zip(entries, names):
                    self.files.append((start, end, page_offset * page_size, name.decode("utf-8", "replace")))

    def memory(self, start: int, end: int) -> bytes:
        """Saved bytes of [start, end) (zeros where the core holds none)."""
        out = bytearray(end - start)
        for vaddr, memsz, offset, filesz, _flags in self.loads:
            lo, hi = max(start, vaddr), min(end, vaddr + filesz)
            if lo < hi:
                out[lo - start:hi - start] = self.data[offset + lo - vaddr:offset + hi - vaddr]
        return bytes(out)

    def u64(self, address: int) -> int:
        return struct.unpack("<Q", self.memory(address, address + 8))[0]

    def c_string(self, address: int, limit: int = 4096) -> str:
        return self.memory(address, address + limit).split(b"\0", 1)[0].decode("utf-8", "replace")

    def mapping_of(self, address: int) -> tuple[int, int] | None:
        for vaddr, memsz, _o, _f, _flags in self.loads:
            if vaddr <= address < vaddr + memsz:
                return vaddr, vaddr + memsz
        return None


def elf_build_id(path: Path) -> bytes | None:
    """The GNU build id of an ELF file (from its SHT_NOTE sections), read independently of symtool."""
    d = Path(path).read_bytes()
    if d[:4] != b"\x7fELF" or d[4] != 2:
        return None
    (_i, _t, _m, _v, _e, _phoff, shoff, _f, _eh, _pe, _pn, shentsize, shnum, _x) = ELF64_EHDR.unpack_from(d, 0)
    for k in range(shnum):
        _n, stype, _fl, _a, offset, size, *_r = ELF64_SHDR.unpack_from(d, shoff + k * shentsize)
        if stype != SHT_NOTE:
            continue
        for name, ntype, desc in _iter_notes(d, offset, offset + size):
            if name == b"GNU" and ntype == NT_GNU_BUILD_ID:
                return desc
    return None


def _iter_notes(data: bytes, pos: int, end: int):
    """(name, type, desc) of each ELF note in ``data[pos:end]`` (4-byte aligned fields)."""
    while pos + NHDR.size <= end:
        namesz, descsz, ntype = NHDR.unpack_from(data, pos)
        pos += NHDR.size
        name = data[pos:pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        desc = data[pos:pos + descsz]
        pos += (descsz + 3) & ~3
        yield name, ntype, desc


def _context(regs: dict[str, int]) -> bytes:
    ints = [regs[r] for r in ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")]
    head = CONTEXT_AMD64_HEAD.pack(0, 0, 0, 0, 0, 0, MD_CONTEXT_AMD64_FULL, 0x1F80, regs["cs"] & 0xFFFF,
                                   regs["ds"] & 0xFFFF, regs["es"] & 0xFFFF, regs["fs"] & 0xFFFF,
                                   regs["gs"] & 0xFFFF, regs["ss"] & 0xFFFF, regs["eflags"] & 0xFFFFFFFF,
                                   0, 0, 0, 0, 0, 0, *ints, regs["rip"])
    return head + b"\0" * (CONTEXT_AMD64_SIZE - len(head))


def _elf_loads(path: Path) -> tuple[int, list[tuple[int, int, int, int]], int]:
    """e_entry, the (type, vaddr, memsz, offset) program headers and e_type of an ELF file."""
    d = Path(path).read_bytes()
    (_i, etype, _m, _v, entry, phoff, _s, _f, _eh, phentsize, phnum, *_r) = ELF64_EHDR.unpack_from(d, 0)
    headers = []
    for k in range(phnum):
        ptype, _flags, offset, vaddr, _p, _filesz, memsz, _a = ELF64_PHDR.unpack_from(d, phoff + k * phentsize)
        headers.append((ptype, vaddr, memsz, offset))
    return entry, headers, etype


def _span(headers) -> tuple[int, int]:
    loads = [(vaddr, memsz) for ptype, vaddr, memsz, _o in headers if ptype == PT_LOAD]
    low = min(v for v, _m in loads) & ~(PAGE - 1)
    high = (max(v + m for v, m in loads) + PAGE - 1) & ~(PAGE - 1)
    return low, high


def _link_map_modules(core: Core, executable: Path, executable_name: str,
                      local_file) -> list[tuple[int, int, str, Path | None]]:
    """(base, size, name, local file) of the executable and each shared object the dynamic linker
    had loaded: ``DT_DEBUG`` in the executable's dynamic section (in the core's memory) points to
    ``r_debug``, whose ``r_map`` list gives each object's load bias and path."""
    entry, headers, _etype = _elf_loads(executable)
    bias = core.auxv.get(AT_ENTRY, entry) - entry  # a PIE's load address; 0 for a fixed executable
    low, high = _span(headers)
    modules = [(bias + low, high - low, executable_name, executable)]
    dynamic = next((vaddr for ptype, vaddr, _m, _o in headers if ptype == PT_DYNAMIC), None)
    if dynamic is None:
        return modules  # static: no dynamic linker, no other object
    r_debug = 0
    for k in range(1024):
        tag, value = core.u64(bias + dynamic + 16 * k), core.u64(bias + dynamic + 16 * k + 8)
        if tag == DT_DEBUG:
            r_debug = value
        if tag == DT_NULL:
            break
    if not r_debug:
        return modules
    _version, _pad, link = R_DEBUG.unpack(core.memory(r_debug, r_debug + R_DEBUG.size))
    for _ in range(MAX_LINK_MAPS):
        if not link:
            break
        l_addr, l_name, _l_ld, l_next, _l_prev = LINK_MAP.unpack(core.memory(link, link + LINK_MAP.size))
        name = core.c_string(l_name) if l_name else ""
        local = local_file(name) if name else None
        if local is not None:
            _entry, lib_headers, _t = _elf_loads(local)
            lib_low, lib_high = _span(lib_headers)
            modules.append((l_addr + lib_low, lib_high - lib_low, name, local))
        link = l_next
    return modules


def _minidump_string(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return U32.pack(len(raw)) + raw + b"\0\0"


def core_to_minidump(core_path: Path, *, module_files: dict[str, Path] | None = None, timestamp: int = 0,
                     maps: bool = True, executable: Path | None = None, sysroot: Path | None = None,
                     arm64_context: str = "old") -> bytes:
    """The minidump bytes for the core at ``core_path``.

    ``module_files``: the path a mapping names -> where that file is now (the mapped files are read
    for their build id; by default the path itself).  Without ``NT_FILE`` (qemu-user) the modules
    come from the dynamic linker's list, starting at ``executable`` (the program's file); a name
    is looked up in ``module_files``, then under ``sysroot`` (qemu's ``-L``), then as it is.
    ``arm64_context``: "old" (Breakpad's layout) or "new" (crashpad's, = CONTEXT_ARM64)."""
    core = Core(core_path)
    module_files = module_files or {}

    def local_file(name: str) -> Path | None:
        for candidate in (module_files.get(name), sysroot / name.lstrip("/") if sysroot else None, Path(name)):
            if candidate is not None and Path(candidate).is_file():
                return Path(candidate)
        return None

    streams: list[tuple[int, bytes | None]] = []
    out = bytearray(HEADER.size)

    def place(data: bytes) -> int:
        while len(out) % 16:
            out.append(0)
        at = len(out)
        out.extend(data)
        return at

    # Threads: context and stack memory.
    thread_records = []
    memory_records = []
    contexts: dict[int, tuple[int, int]] = {}
    arm = core.machine == EM_AARCH64
    old = arm64_context == "old"
    for tid, regs in core.threads:
        if arm:
            ctx = context_arm64({**regs, "cpsr": regs["pstate"] & 0xFFFFFFFF}, old=old,
                                flags=ARM64_OLD_INTEGER if old else ARM64_CONTROL_INTEGER)
        else:
            ctx = _context(regs)
        ctx_rva = place(ctx)
        contexts[tid] = (len(ctx), ctx_rva)
        sp = regs["sp" if arm else "rsp"]
        mapping = core.mapping_of(sp)
        start = sp & ~(PAGE - 1)
        end = min(mapping[1], start + MAX_STACK) if mapping else start
        stack = core.memory(start, end)
        stack_rva = place(stack)
        memory_records.append(MEMORY_DESCRIPTOR.pack(start, len(stack), stack_rva))
        thread_records.append(THREAD.pack(tid, 0, 0, 0, 0, start, len(stack), stack_rva, len(ctx), ctx_rva))
    streams.append((THREAD_LIST_STREAM, U32.pack(len(thread_records)) + b"".join(thread_records)))
    streams.append((MEMORY_LIST_STREAM, U32.pack(len(memory_records)) + b"".join(memory_records)))

    # Modules: files mapped from offset 0; the module spans the file's consecutive mappings.
    modules = []
    files = sorted(core.files)
    groups: list[list] = []  # runs of contiguous mappings of one file
    for start, end, offset, name in files:
        if groups and groups[-1][3] == name and groups[-1][1] == start:
            groups[-1][1] = end
        else:
            groups.append([start, end, offset, name])
    spans = [(start, stop - start, name, local_file(name)) for start, stop, offset, name in groups
             if offset == 0]  # not mapped from the file's start: no ELF header there, not a module base
    if not core.files and executable is not None:
        spans = _link_map_modules(core, Path(executable), str(executable), local_file)
    for base, size, name, local in spans:
        build_id = elf_build_id(local) if local is not None else None
        cv = U32.pack(MD_CVINFOELF_SIGNATURE) + build_id if build_id else b""
        modules.append((base, size, name, cv))
    records = []
    for base, size, name, cv in modules:
        name_rva = place(_minidump_string(name))
        cv_rva = place(cv) if cv else 0
        records.append(MODULE.pack(base, size, 0, 0, name_rva, b"\0" * 52, len(cv), cv_rva, 0, 0, 0, 0))
    streams.append((MODULE_LIST_STREAM, U32.pack(len(records)) + b"".join(records)))

    csd_rva = place(_minidump_string(""))
    arch = (ARCH_ARM64_OLD if old else ARCH_ARM64) if arm else ARCH_AMD64
    streams.append((SYSTEM_INFO_STREAM, SYSTEM_INFO.pack(arch, 6, 0, 1, 0, 0, 0, 0, PLATFORM_LINUX,
                                                         csd_rva, 0, 0, b"\0" * 24)))
    if core.signal is not None and core.threads:
        signo, code, addr = core.signal
        tid = core.threads[0][0]  # the kernel and gdb write the signalled thread first
        ctx_size, ctx_rva = contexts[tid]
        streams.append((EXCEPTION_STREAM, EXCEPTION.pack(tid, 0, signo, code & 0xFFFFFFFF, 0, addr, 0, 0,
                                                         *([0] * 15), ctx_size, ctx_rva)))
    if maps:
        lines = []
        for start, end, offset, name in files:
            perms = next(("r" + ("w" if f & 2 else "-") + ("x" if f & 1 else "-") + "p"
                          for v, m, _o, _fs, f in core.loads if v <= start < v + m), "r--p")
            lines.append(f"{start:x}-{end:x} {perms} {offset:08x} 00:00 0 {name}\n")
        streams.append((LINUX_MAPS_STREAM, "".join(lines).encode()))

    bodies = [(stype, place(body), len(body)) for stype, body in streams]
    directory_rva = place(b"".join(DIRECTORY.pack(stype, size, rva) for stype, rva, size in bodies))
    out[:HEADER.size] = HEADER.pack(SIGNATURE, VERSION, len(bodies), directory_rva, 0, timestamp, 0)
    return bytes(out)


__all__ = ["core_to_minidump", "Core", "elf_build_id"]

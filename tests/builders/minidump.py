"""A small, well-formed minidump writer (tests and benchmarks).

Layouts from Microsoft's minidumpapiset.h, declared here independently of
symtool.formats.minidump (see tests/builders/__init__.py).
"""

from __future__ import annotations

import struct

SIGNATURE = b"MDMP"
VERSION = 0xA793  # MINIDUMP_VERSION
MODULE_LIST_STREAM = 4
EXCEPTION_STREAM = 6
SYSTEM_INFO_STREAM = 7
COMMENT_STREAM_W = 11
MAXIMUM_PARAMETERS = 15  # EXCEPTION_MAXIMUM_PARAMETERS

# ULONG32 Signature, Version, NumberOfStreams; RVA StreamDirectoryRva; ULONG32 CheckSum,
# TimeDateStamp; ULONG64 Flags.
HEADER = struct.Struct("<4sIIIIIQ")
# ULONG32 StreamType; MINIDUMP_LOCATION_DESCRIPTOR { ULONG32 DataSize; RVA Rva; }
DIRECTORY = struct.Struct("<III")
# USHORT ProcessorArchitecture, ProcessorLevel, ProcessorRevision; UCHAR NumberOfProcessors,
# ProductType; ULONG32 MajorVersion, MinorVersion, BuildNumber, PlatformId; RVA CSDVersionRva;
# USHORT SuiteMask, Reserved2; CPU_INFORMATION Cpu (24 bytes).
SYSTEM_INFO = struct.Struct("<HHHBBIIIIIHH24s")
# ULONG32 ThreadId, __alignment; MINIDUMP_EXCEPTION { ULONG32 ExceptionCode, ExceptionFlags;
# ULONG64 ExceptionRecord, ExceptionAddress; ULONG32 NumberParameters, __unusedAlignment;
# ULONG64 ExceptionInformation[15]; } MINIDUMP_LOCATION_DESCRIPTOR ThreadContext.
EXCEPTION = struct.Struct(f"<IIIIQQII{MAXIMUM_PARAMETERS}QII")
# ULONG64 BaseOfImage; ULONG32 SizeOfImage, CheckSum, TimeDateStamp; RVA ModuleNameRva;
# VS_FIXEDFILEINFO VersionInfo (52 bytes); MINIDUMP_LOCATION_DESCRIPTOR CvRecord, MiscRecord;
# ULONG64 Reserved0, Reserved1.
MODULE = struct.Struct("<QIIII52sIIIIQQ")
U32 = struct.Struct("<I")


def _minidump_string(text: str) -> bytes:
    """MINIDUMP_STRING: ULONG32 Length (bytes, no terminator), WCHAR Buffer[] + NUL."""
    raw = text.encode("utf-16-le")
    return U32.pack(len(raw)) + raw + b"\0\0"


def _module_records(modules: list[dict], place) -> list[bytes]:
    """MINIDUMP_MODULE records, their names and CodeView records laid out with ``place``."""
    records = []
    for m in modules:
        name_rva = place(_minidump_string(m["name"]))
        cv = m.get("codeview") or b""
        cv_rva = place(cv) if cv else 0
        records.append(MODULE.pack(m["base"], m["size"], 0, m.get("timestamp", 0), name_rva, b"\0" * 52,
                                   len(cv), cv_rva, 0, 0, 0, 0))
    return records


def build_minidump(*, modules: list[dict] | None = None, exception: dict | None = None,
                   arch: int = 9, platform_id: int = 2, version: tuple[int, int, int] = (10, 0, 19045),
                   csd_version: str = "", comments: list[str] | None = None, timestamp: int = 0) -> bytes:
    """A minidump with a module list, SystemInfo, optionally an exception stream and comments.

    ``modules``: dicts with ``name``, ``base``, ``size``, ``timestamp`` and an
    optional raw ``codeview`` record (bytes).  ``exception``: ``code``,
    ``address``, optional ``parameters``, ``thread_id``, ``flags``.
    ``comments``: written as CommentStreamW.
    """
    modules = modules or []
    stream_types = [MODULE_LIST_STREAM, SYSTEM_INFO_STREAM]
    if exception is not None:
        stream_types.append(EXCEPTION_STREAM)
    stream_types += [COMMENT_STREAM_W] * len(comments or [])
    # Layout: header, directory, then every blob 4-byte aligned; RVAs are file offsets.
    out = bytearray(HEADER.size + DIRECTORY.size * len(stream_types))

    def place(data: bytes) -> int:
        while len(out) % 4:
            out.append(0)
        at = len(out)
        out.extend(data)
        return at

    csd_rva = place(_minidump_string(csd_version))
    records = _module_records(modules, place)
    bodies = [U32.pack(len(records)) + b"".join(records),
              SYSTEM_INFO.pack(arch, 6, 0, 4, 1, *version, platform_id, csd_rva, 0, 0, b"\0" * 24)]
    if exception is not None:
        params = list(exception.get("parameters", []))[:MAXIMUM_PARAMETERS]
        bodies.append(EXCEPTION.pack(exception.get("thread_id", 1), 0, exception["code"], exception.get("flags", 0),
                                     0, exception["address"], len(params), 0,
                                     *(params + [0] * (MAXIMUM_PARAMETERS - len(params))), 0, 0))
    bodies += [text.encode("utf-16-le") + b"\0\0" for text in comments or []]
    directory = b"".join(DIRECTORY.pack(stype, len(body), place(body)) for stype, body in zip(stream_types, bodies))
    out[:HEADER.size + len(directory)] = HEADER.pack(SIGNATURE, VERSION, len(stream_types), HEADER.size, 0,
                                                     timestamp, 0) + directory
    return bytes(out)


def codeview_rsds(guid: bytes, age: int, pdb_path: str) -> bytes:
    """A CV_INFO_PDB70 record: "RSDS", GUID (16 bytes, as stored), ULONG Age, UTF-8 path + NUL."""
    return struct.pack("<4s16sI", b"RSDS", guid, age) + pdb_path.encode("utf-8") + b"\0"


THREAD_LIST_STREAM = 3
MEMORY_LIST_STREAM = 5
# MINIDUMP_THREAD: ULONG32 ThreadId, SuspendCount, PriorityClass, Priority; ULONG64 Teb;
# MINIDUMP_MEMORY_DESCRIPTOR Stack { ULONG64 StartOfMemoryRange; LOCATION Memory { DataSize, Rva } };
# MINIDUMP_LOCATION_DESCRIPTOR ThreadContext.
THREAD = struct.Struct("<IIIIQQIIII")
# MINIDUMP_MEMORY_DESCRIPTOR (MemoryListStream entries).
MEMORY_DESCRIPTOR = struct.Struct("<QII")
# CONTEXT (AMD64, winnt.h) up to Rip: P1Home..P6Home, ContextFlags, MxCsr, SegCs, SegDs, SegEs, SegFs,
# SegGs, SegSs, EFlags, Dr0, Dr1, Dr2, Dr3, Dr6, Dr7, Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8..R15, Rip.
# The whole record (FltSave, vector registers) is 0x4D0 bytes; the rest stays zero.
CONTEXT_AMD64_HEAD = struct.Struct("<6QII6HI6Q16QQ")
CONTEXT_AMD64_SIZE = 0x4D0
CONTEXT_AMD64_FULL = 0x0010000B  # CONTEXT_AMD64 | CONTROL | INTEGER | FLOATING_POINT
AMD64_GPRS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")


def context_amd64(regs: dict[str, int]) -> bytes:
    """An x64 CONTEXT record with the given integer registers (``rip``, ``rsp``, ...)."""
    head = CONTEXT_AMD64_HEAD.pack(0, 0, 0, 0, 0, 0, CONTEXT_AMD64_FULL, 0, 0x33, 0x2B, 0x2B, 0x53, 0x2B, 0x2B,
                                   0x246, 0, 0, 0, 0, 0, 0, *(regs.get(r, 0) for r in AMD64_GPRS), regs["rip"])
    return head + b"\0" * (CONTEXT_AMD64_SIZE - len(head))


# CONTEXT (ARM64, winnt.h), the same record as Breakpad's/crashpad's MDRawContextARM64: ULONG ContextFlags,
# Cpsr; ULONG64 X0..X28, Fp, Lr, Sp, Pc; ARM64_NT_NEON128 V[32] (each as Low, High ULONG64); ULONG Fpcr,
# Fpsr; ULONG Bcr[8]; ULONG64 Bvr[8]; ULONG Wcr[2]; ULONG64 Wvr[2].  0x390 bytes.
CONTEXT_ARM64_RECORD = struct.Struct("<II31QQQ64QII8I8Q2I2Q")
CONTEXT_ARM64_FULL = 0x00400007  # CONTEXT_ARM64 | CONTROL | INTEGER | FLOATING_POINT
# Breakpad's MDRawContextARM64_Old (#pragma pack(4)): uint64 context_flags; uint64 iregs[33] (x0..x28, fp,
# lr, sp, pc); uint32 cpsr; MDFloatingSaveAreaARM64_Old { uint32 fpsr, fpcr; uint128 regs[32]; }.  796 bytes.
CONTEXT_ARM64_OLD_RECORD = struct.Struct("<Q33QIII64Q")
CONTEXT_ARM64_OLD_FULL = 0x80000006  # MD_CONTEXT_ARM64_OLD | INTEGER_OLD | FLOATING_POINT_OLD
ARM64_GPRS = tuple(f"x{i}" for i in range(29)) + ("fp", "lr")
# ProcessorArchitecture: ARM64 (winnt.h) and Breakpad's ARM64_OLD, which its Linux writer pairs with the
# old context.
ARCH_ARM64 = 12
ARCH_ARM64_OLD = 0x8003


def _arm64_vectors(regs: dict[str, int]) -> list[int]:
    """V0..V31 as (low, high) u64 halves: ``v<i>`` is a 128-bit value, ``d<i>`` its low half."""
    halves = [0] * 64
    for i in range(32):
        value = regs.get(f"v{i}", regs.get(f"d{i}", 0))
        halves[2 * i], halves[2 * i + 1] = value & (2 ** 64 - 1), value >> 64
    return halves


def context_arm64(regs: dict[str, int], *, old: bool = False, flags: int | None = None) -> bytes:
    """An ARM64 context record with the given registers (``x0``..``x28``, ``fp``, ``lr``, ``sp``, ``pc``,
    ``cpsr``, ``v<i>``/``d<i>``): Windows' CONTEXT_ARM64 or, with ``old``, Breakpad's old layout.
    ``flags`` overrides ContextFlags (hostile-input tests)."""
    aliases = {"fp": "x29", "lr": "x30"}
    gprs = [regs.get(r, regs.get(aliases.get(r, r), 0)) for r in ARM64_GPRS]
    vectors = _arm64_vectors(regs)
    if old:
        return CONTEXT_ARM64_OLD_RECORD.pack(CONTEXT_ARM64_OLD_FULL if flags is None else flags, *gprs,
                                             regs.get("sp", 0), regs.get("pc", 0), regs.get("cpsr", 0), 0, 0,
                                             *vectors)
    return CONTEXT_ARM64_RECORD.pack(CONTEXT_ARM64_FULL if flags is None else flags, regs.get("cpsr", 0), *gprs,
                                     regs.get("sp", 0), regs.get("pc", 0), *vectors, 0, 0, *([0] * 8),
                                     *([0] * 8), 0, 0, 0, 0)


# cpu -> (ProcessorArchitecture, context writer)
CONTEXT_WRITERS = {
    "x64": (9, context_amd64),
    "arm64": (ARCH_ARM64, context_arm64),
    "arm64-old": (ARCH_ARM64_OLD, lambda regs: context_arm64(regs, old=True)),
}


def build_threads_minidump(*, modules: list[dict], threads: list[dict], memory: list[tuple[int, bytes]],
                           exception: dict | None = None, platform_id: int = 2, cpu: str = "x64") -> bytes:
    """A minidump with SystemInfo, ModuleList, ThreadList, MemoryList and optionally an exception.

    ``cpu``: "x64" (CONTEXT_AMD64), "arm64" (CONTEXT_ARM64, ProcessorArchitecture 12) or "arm64-old"
    (Breakpad's MDRawContextARM64_Old, ProcessorArchitecture 0x8003).  ``memory``: (start address,
    bytes) ranges, each stored once.  ``threads``: dicts with ``tid``, ``regs`` (a register dict for
    :func:`context_amd64` / :func:`context_arm64`, or ``context``: the index of another thread whose
    context record is shared, or ``raw_context``: the record's bytes as they are) and ``stack``: the
    index of its range in ``memory`` (threads may share one).  ``exception``: ``thread_id``, ``code``,
    ``address``, optionally ``flags`` (ExceptionFlags: a Mach exception's code) and ``regs`` (its own
    context, as Windows records the faulting state apart from the thread's); without ``regs`` its
    context is the thread's.  ``modules``: as
    :func:`build_minidump`.
    """
    arch, write_context = CONTEXT_WRITERS[cpu]
    stream_types = [SYSTEM_INFO_STREAM, MODULE_LIST_STREAM, THREAD_LIST_STREAM, MEMORY_LIST_STREAM]
    if exception is not None:
        stream_types.append(EXCEPTION_STREAM)
    out = bytearray(HEADER.size + DIRECTORY.size * len(stream_types))

    def place(data: bytes) -> int:
        while len(out) % 16:
            out.append(0)
        at = len(out)
        out.extend(data)
        return at

    csd_rva = place(_minidump_string(""))
    records = _module_records(modules, place)
    ranges = [(start, len(data), place(data)) for start, data in memory]
    contexts: list[tuple[int, int]] = []  # (size, rva) of each thread's context record
    for t in threads:
        if "regs" in t or "raw_context" in t:
            record = t["raw_context"] if "raw_context" in t else write_context(t["regs"])
            contexts.append((len(record), place(record)))
        else:
            contexts.append(contexts[t["context"]])
    thread_records = []
    for t, (ctx_size, ctx_rva) in zip(threads, contexts):
        start, size, rva = ranges[t["stack"]]
        thread_records.append(THREAD.pack(t["tid"], 0, 0, 0, 0, start, size, rva, ctx_size, ctx_rva))
    bodies = [SYSTEM_INFO.pack(arch, 6, 0, 4, 1, 10, 0, 19045, platform_id, csd_rva, 0, 0, b"\0" * 24),
              U32.pack(len(records)) + b"".join(records),
              U32.pack(len(thread_records)) + b"".join(thread_records),
              U32.pack(len(ranges)) + b"".join(MEMORY_DESCRIPTOR.pack(*r) for r in ranges)]
    if exception is not None:
        if "regs" in exception:
            record = write_context(exception["regs"])
            exc_context = (len(record), place(record))
        else:
            exc_context = contexts[next(i for i, t in enumerate(threads) if t["tid"] == exception["thread_id"])]
        bodies.append(EXCEPTION.pack(exception["thread_id"], 0, exception["code"], exception.get("flags", 0), 0,
                                     exception["address"], 0, 0,
                                     *([0] * MAXIMUM_PARAMETERS), *exc_context))
    directory = b"".join(DIRECTORY.pack(stype, len(body), place(body)) for stype, body in zip(stream_types, bodies))
    out[:HEADER.size + len(directory)] = HEADER.pack(SIGNATURE, VERSION, len(stream_types), HEADER.size, 0, 0, 0) \
        + directory
    return bytes(out)

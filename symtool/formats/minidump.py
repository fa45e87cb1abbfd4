"""Minidump (MDMP) reader: what triage needs from a crash dump.

Reads the header, the stream directory, SystemInfo, the exception stream,
the module list (with each module's CodeView record), ProcDump's comment
streams, the misc-info stream, the thread list, ThreadNamesStream, and the
memory list and Memory64 list (where each range's bytes are, not the bytes).
Thread contexts and stack bytes are read on demand through
:class:`MinidumpFile` (``open_minidump``), so triage reads only what it uses.

Every RVA and size is checked against the file size (``BoundedReader``) and
every count is checked against the size of the stream that holds it before
anything loops over it, so truncated, random or hostile files raise
:class:`~symtool.errors.FormatError` and never allocate or loop by a size
field from the file.

The layouts are declared once below as ``struct.Struct`` records named
after the structures of minidumpapiset.h (and Breakpad's minidump_format.h);
CodeView records are parsed by :mod:`symtool.formats.codeview`.

Breakpad and crashpad write the same container for Linux, macOS and Android
processes; their SystemInfo PlatformId is 0x8000 and up (0x8201 Linux), and
their ELF modules carry a ``BpEL`` CodeView record holding the GNU build id.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

from symtool.errors import FormatError
from symtool.fsutil import open_regular  # a FIFO or device among inputs never blocks a read
from symtool.formats.binio import BoundedReader
from symtool.formats.codeview import MAX_CODEVIEW, parse_codeview
from symtool.ids import CodeId, DebugId, MachUuid, basename_any

MDMP_SIGNATURE = b"MDMP"
MDMP_VERSION = 0xA793  # low word of MINIDUMP_HEADER.Version (MINIDUMP_VERSION)

# MINIDUMP_HEADER: Signature, Version, NumberOfStreams, StreamDirectoryRva, CheckSum, TimeDateStamp, Flags.
MINIDUMP_HEADER = struct.Struct("<4sIIIIIQ")
# MINIDUMP_DIRECTORY: StreamType, Location (MINIDUMP_LOCATION_DESCRIPTOR: DataSize, Rva).
MINIDUMP_DIRECTORY = struct.Struct("<III")
# MINIDUMP_STRING: Length (bytes, without the terminator), then UTF-16LE Buffer.
MINIDUMP_STRING_LENGTH = struct.Struct("<I")
# The count that opens MINIDUMP_MODULE_LIST (NumberOfModules) and the other list streams.
MINIDUMP_LIST_COUNT = struct.Struct("<I")
# MINIDUMP_SYSTEM_INFO up to Cpu: ProcessorArchitecture, ProcessorLevel, ProcessorRevision,
# NumberOfProcessors, ProductType, MajorVersion, MinorVersion, BuildNumber, PlatformId,
# CSDVersionRva, SuiteMask, Reserved2.
MINIDUMP_SYSTEM_INFO = struct.Struct("<HHHBBIIIIIHH")
# CPU_INFORMATION.X86CpuInfo (the Cpu member for x86 and x64): VendorId[3], VersionInformation,
# FeatureInformation, AMDExtendedCpuFeatures.
X86_CPU_INFO = struct.Struct("<12sIII")
# MINIDUMP_EXCEPTION_STREAM up to ExceptionInformation: ThreadId, __alignment, then
# MINIDUMP_EXCEPTION's ExceptionCode, ExceptionFlags, ExceptionRecord, ExceptionAddress,
# NumberParameters, __unusedAlignment.
MINIDUMP_EXCEPTION_STREAM = struct.Struct("<IIIIQQII")
# One MINIDUMP_EXCEPTION.ExceptionInformation[] entry (ULONG64).
EXCEPTION_PARAMETER = struct.Struct("<Q")
EXCEPTION_MAXIMUM_PARAMETERS = 15
# MINIDUMP_MODULE: BaseOfImage, SizeOfImage, CheckSum, TimeDateStamp, ModuleNameRva,
# VersionInfo (VS_FIXEDFILEINFO, 52 bytes), CvRecord (DataSize, Rva), MiscRecord (DataSize, Rva),
# Reserved0, Reserved1.
MINIDUMP_MODULE = struct.Struct("<QIIII52sIIIIQQ")
# MINIDUMP_EXCEPTION_STREAM.ThreadContext (MINIDUMP_LOCATION_DESCRIPTOR: DataSize, Rva), after
# the 15 ExceptionInformation slots.
MINIDUMP_LOCATION = struct.Struct("<II")
EXCEPTION_CONTEXT_OFFSET = MINIDUMP_EXCEPTION_STREAM.size + EXCEPTION_MAXIMUM_PARAMETERS * EXCEPTION_PARAMETER.size
# MINIDUMP_THREAD: ThreadId, SuspendCount, PriorityClass, Priority, Teb, Stack (MINIDUMP_MEMORY_DESCRIPTOR:
# StartOfMemoryRange, Memory.DataSize, Memory.Rva), ThreadContext (DataSize, Rva).
MINIDUMP_THREAD = struct.Struct("<IIIIQQIIII")
# MINIDUMP_MEMORY_DESCRIPTOR: StartOfMemoryRange, Memory (DataSize, Rva).
MINIDUMP_MEMORY_DESCRIPTOR = struct.Struct("<QII")
# MINIDUMP_MEMORY64_LIST head: NumberOfMemoryRanges, BaseRva; then MINIDUMP_MEMORY_DESCRIPTOR64
# (StartOfMemoryRange, DataSize): the ranges' bytes follow each other from BaseRva.
MINIDUMP_MEMORY64_LIST = struct.Struct("<QQ")
MINIDUMP_MEMORY_DESCRIPTOR64 = struct.Struct("<QQ")
# MINIDUMP_THREAD_NAME (pack(4)): ThreadId, RvaOfThreadName (RVA64 of a MINIDUMP_STRING).
MINIDUMP_THREAD_NAME = struct.Struct("<IQ")
# MINIDUMP_MISC_INFO: SizeOfInfo, Flags1, ProcessId, ProcessCreateTime, ProcessUserTime, ProcessKernelTime.
MINIDUMP_MISC_INFO = struct.Struct("<IIIIII")
MISC1_PROCESS_ID = 0x1
MISC1_PROCESS_TIMES = 0x2

# Stream types (MINIDUMP_STREAM_TYPE and Breakpad's extensions).
STREAM_THREAD_LIST = 3
STREAM_MODULE_LIST = 4
STREAM_MEMORY_LIST = 5
STREAM_EXCEPTION = 6
STREAM_SYSTEM_INFO = 7
STREAM_COMMENT_A = 10
STREAM_COMMENT_W = 11
STREAM_MEMORY64_LIST = 9
STREAM_MISC_INFO = 15
STREAM_THREAD_NAMES = 24
STREAM_NAMES = {
    0: "Unused", 3: "ThreadList", 4: "ModuleList", 5: "MemoryList", 6: "Exception",
    7: "SystemInfo", 8: "ThreadExList", 9: "Memory64List", 10: "CommentStreamA",
    11: "CommentStreamW", 12: "HandleData", 13: "FunctionTable", 14: "UnloadedModuleList",
    15: "MiscInfo", 16: "MemoryInfoList", 17: "ThreadInfoList", 18: "HandleOperationList",
    19: "Token", 20: "JavaScriptData", 21: "SystemMemoryInfo", 22: "ProcessVmCounters",
    23: "IptTrace", 24: "ThreadNames",
    0x47670001: "BreakpadInfo", 0x47670002: "AssertionInfo", 0x47670003: "LinuxCpuInfo",
    0x47670004: "LinuxProcStatus", 0x47670005: "LinuxLsbRelease", 0x47670006: "LinuxCmdLine",
    0x47670007: "LinuxEnviron", 0x47670008: "LinuxAuxv", 0x47670009: "LinuxMaps",
    0x4767000A: "LinuxDsoDebug", 0x43500001: "CrashpadInfo",
}

# Limits: real dumps have a few dozen streams and a few hundred modules.
MAX_STREAMS = 4096
MAX_MODULES = 65536
MAX_STRING = 64 * 1024  # bytes of one MINIDUMP_STRING (module names, CSD version)
MAX_COMMENT = 1 << 20
MAX_THREADS = 1 << 20  # also bounded by the stream size (48 bytes a thread)
MAX_MEMORY_RANGES = 1 << 22
MAX_CONTEXT = 64 * 1024  # an x64 CONTEXT is 1,232 bytes; with XSAVE state a few KB

ARCHITECTURES = {
    0: "x86", 1: "mips", 2: "alpha", 3: "ppc", 4: "shx", 5: "arm", 6: "ia64", 7: "alpha64",
    8: "msil", 9: "x64", 10: "x86-on-win64", 12: "arm64",
    0x8001: "sparc", 0x8002: "ppc64", 0x8003: "arm64", 0x8004: "mips64", 0xFFFF: "unknown",
}

# PlatformId: Windows values, then Breakpad's (MD_OS_*).
PLATFORMS = {
    0: ("windows", "Win32s"), 1: ("windows", "Windows 9x"), 2: ("windows", "Windows NT"),
    3: ("windows", "Windows CE"),
    0x8000: ("unix", "Unix"), 0x8101: ("macos", "macOS"), 0x8102: ("ios", "iOS"),
    0x8201: ("linux", "Linux"), 0x8202: ("solaris", "Solaris"), 0x8203: ("android", "Android"),
    0x8204: ("ps3", "PS3"), 0x8205: ("nacl", "Native Client"), 0x8206: ("fuchsia", "Fuchsia"),
}

MACH_PLATFORMS = ("macos", "ios")  # dumps whose modules are Mach-O images named by LC_UUID


@dataclass
class SystemInfo:
    arch: int
    cpu: str
    processor_level: int
    processor_revision: int
    cpus: int
    product_type: int
    major: int
    minor: int
    build: int
    platform_id: int
    platform: str  # "windows", "linux", "macos", "android", ... or "unknown"
    csd_version: str
    vendor: str | None = None

    @property
    def os(self) -> str:
        """Human-readable OS, e.g. ``Windows NT 10.0.14393`` or ``Linux 4.9.60 ...``."""
        name = PLATFORMS.get(self.platform_id, ("unknown", f"platform {self.platform_id:#x}"))[1]
        if self.platform == "windows":
            text = f"{name} {self.major}.{self.minor}.{self.build}"
            return f"{text} {self.csd_version}".rstrip() if self.csd_version else text
        # Breakpad puts `uname -srvm` into the CSD version string of non-Windows dumps.
        if not self.csd_version:
            return name
        if self.csd_version.split(" ", 1)[0].lower() == name.split(" ", 1)[0].lower():
            return self.csd_version
        return f"{name} {self.csd_version}"


@dataclass
class ExceptionInfo:
    thread_id: int
    code: int
    flags: int
    record: int
    address: int
    parameters: list[int]
    context: Location | None = None  # the CPU context at the exception (for the faulting thread)

    @property
    def code_hex(self) -> str:
        return f"{self.code:08X}"


@dataclass
class Location:
    """A MINIDUMP_LOCATION_DESCRIPTOR: ``size`` bytes at file offset ``rva`` (checked against the file)."""

    size: int
    rva: int


class MemoryRange(NamedTuple):
    """Process memory saved in the dump: ``size`` bytes from ``start``, stored at file offset ``rva``.

    Built on demand from :attr:`Minidump.memory`'s tuples."""

    start: int
    size: int
    rva: int

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass
class Thread:
    thread_id: int
    suspend_count: int
    teb: int
    stack: MemoryRange | None  # None: the descriptor points outside the file or is empty
    context: Location | None
    name: str | None = None


@dataclass
class Module:
    base: int
    size: int
    checksum: int
    timestamp: int
    name: str
    codeview_kind: str | None = None  # "RSDS", "NB10", "ELF" or None
    debug_id: DebugId | None = None
    pdb_path: str | None = None  # as recorded in the CodeView record
    build_id: bytes | None = None  # ELF (BpEL) modules
    error: str | None = None  # a problem with this module's name or CodeView record
    # Mach-O modules of macOS/iOS dumps: the LC_UUID, which Breakpad and crashpad write as the
    # RSDS record's GUID (age 0; the "PDB name" is the module's file name).
    mach_uuid: MachUuid | None = None

    @property
    def file_name(self) -> str:
        return basename_any(self.name)

    @property
    def pdb_name(self) -> str | None:
        return basename_any(self.pdb_path) if self.pdb_path else None

    @property
    def code_id(self) -> str | None:
        """The image's store key: ``%08X`` TimeDateStamp + ``%x`` SizeOfImage (PE),
        the build id in hex (ELF)."""
        if self.build_id is not None:
            return self.build_id.hex()
        if self.mach_uuid is not None:
            return self.mach_uuid.index()
        if self.codeview_kind == "ELF" or self.timestamp == 0:
            return None
        return CodeId(self.timestamp, self.size).index()

    def contains(self, address: int) -> bool:
        return self.base <= address < self.base + self.size


@dataclass
class Minidump:
    path: str
    version: int
    timestamp: int
    flags: int
    streams: list[tuple[int, int, int]]  # (type, size, rva)
    system: SystemInfo | None = None
    exception: ExceptionInfo | None = None
    modules: list[Module] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    process_id: int | None = None
    process_create_time: int | None = None
    threads: list[Thread] = field(default_factory=list)
    # Saved memory as (start, size, rva) tuples sorted by start; MinidumpFile.range_at gives a
    # MemoryRange.
    memory: list[tuple[int, int, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # streams that could not be read (the rest is usable)
    bytes_read: int = 0

    @property
    def platform(self) -> str:
        return self.system.platform if self.system else "unknown"

    def module_at(self, address: int) -> Module | None:
        for module in self.modules:
            if module.contains(address):
                return module
        return None

    def thread(self, thread_id: int) -> Thread | None:
        for t in self.threads:
            if t.thread_id == thread_id:
                return t
        return None

    def stream_names(self) -> list[str]:
        return [STREAM_NAMES.get(t, f"{t:#x}") for t, _s, _r in self.streams if t != 0]


def _minidump_string(r: BoundedReader, rva: int, what: str) -> str:
    (length,) = r.unpack(MINIDUMP_STRING_LENGTH, rva, what)
    if length > MAX_STRING or length % 2:
        raise FormatError(f"{what}: implausible string length {length}", r.path)
    return r.read(rva + 4, length, what).decode("utf-16-le", "replace")


def _set_codeview(module: Module, data: bytes) -> None:
    cv = parse_codeview(data)
    if cv is None:
        raise FormatError(f"unknown CodeView signature {bytes(data[:4])!r}")
    module.codeview_kind = cv.kind
    module.debug_id = cv.debug_id
    module.pdb_path = cv.pdb_path
    module.build_id = cv.build_id


def _list_count(r: BoundedReader, size: int, rva: int, entry: int, what: str, limit: int) -> tuple[int, int]:
    """Count of a ``u32 count; entries[count]`` list and where its entries start.

    Some writers (Breakpad on 64-bit hosts) pad the count to 8 bytes: accept a
    stream that is exactly 4 bytes longer than ``4 + count * entry``.
    """
    head = MINIDUMP_LIST_COUNT.size
    if size < head:
        raise FormatError(f"{what} stream is too small ({size} bytes)", r.path)
    (count,) = r.unpack(MINIDUMP_LIST_COUNT, rva, what)
    if count > limit or head + count * entry > size:
        raise FormatError(f"{what}: count {count} does not fit the {size}-byte stream", r.path)
    if size == 2 * head + count * entry:
        return count, rva + 2 * head
    return count, rva + head


class _Parser:
    def __init__(self, r: BoundedReader):
        self.r = r

    def header(self) -> Minidump:
        r = self.r
        if r.size < 4:
            raise FormatError("not a minidump (file too small)", r.path)
        # The signature first: a short text file is not a minidump, not a truncated one.
        if r.read(0, 4, "minidump signature") != MDMP_SIGNATURE:
            raise FormatError("not a minidump (no MDMP signature)", r.path)
        if r.size < MINIDUMP_HEADER.size:
            raise FormatError("truncated minidump header", r.path)
        sig, version, n_streams, dir_rva, _checksum, timestamp, flags = r.unpack(MINIDUMP_HEADER, 0, "minidump header")
        if sig != MDMP_SIGNATURE:
            raise FormatError("not a minidump (no MDMP signature)", r.path)
        if version & 0xFFFF != MDMP_VERSION:
            raise FormatError(f"unsupported minidump version {version & 0xFFFF:#x}", r.path)
        if n_streams > MAX_STREAMS:
            raise FormatError(f"implausible stream count {n_streams}", r.path)
        raw = r.read(dir_rva, n_streams * MINIDUMP_DIRECTORY.size, "stream directory")
        streams = []
        problems = []
        for stype, size, rva in MINIDUMP_DIRECTORY.iter_unpack(raw):
            if stype == 0:
                continue  # unused slot (dbghelp reserves a few)
            if rva + size > r.size:
                message = (f"stream {STREAM_NAMES.get(stype, hex(stype))} at {rva:#x} (+{size}) runs past the end "
                           f"of the file ({r.size} bytes)")
                if stype in ESSENTIAL_STREAMS:
                    raise FormatError(message, r.path)
                # A dump cut inside an optional stream (its writer killed): the rest is read, and the
                # dump is partial, as minidump-stackwalk reads it.
                problems.append(message)
                continue
            streams.append((stype, size, rva))
        return Minidump(r.path, version, timestamp, flags, streams, problems=problems)

    def system_info(self, size: int, rva: int) -> SystemInfo:
        r = self.r
        if size < MINIDUMP_SYSTEM_INFO.size:
            raise FormatError(f"SystemInfo stream is too small ({size} bytes)", r.path)
        (arch, level, revision, cpus, product, major, minor, build, platform_id, csd_rva,
         _suite, _res) = r.unpack(MINIDUMP_SYSTEM_INFO, rva, "SystemInfo")
        csd = ""
        if csd_rva:
            try:
                csd = _minidump_string(r, csd_rva, "CSD version string")
            except FormatError:
                csd = ""  # a broken service-pack string does not make the dump unreadable
        vendor = None
        if size >= MINIDUMP_SYSTEM_INFO.size + X86_CPU_INFO.size and arch in (0, 9, 10):
            raw, _version, _features, _amd = r.unpack(X86_CPU_INFO, rva + MINIDUMP_SYSTEM_INFO.size, "CPU vendor")
            if all(32 <= b < 127 for b in raw):
                vendor = raw.decode("ascii")
        platform = PLATFORMS.get(platform_id, ("unknown", ""))[0]
        return SystemInfo(arch, ARCHITECTURES.get(arch, f"arch {arch:#x}"), level, revision, cpus, product,
                          major, minor, build, platform_id, platform, csd, vendor)

    def exception(self, size: int, rva: int) -> ExceptionInfo:
        r = self.r
        head = MINIDUMP_EXCEPTION_STREAM.size
        if size < head:
            raise FormatError(f"exception stream is too small ({size} bytes)", r.path)
        thread_id, _pad, code, flags, record, address, n_params, _pad2 = r.unpack(
            MINIDUMP_EXCEPTION_STREAM, rva, "exception stream")
        # NumberParameters is not trusted: at most the array's 15 slots, and only those the stream holds.
        n = min(n_params, EXCEPTION_MAXIMUM_PARAMETERS, (size - head) // EXCEPTION_PARAMETER.size)
        raw = r.read(rva + head, n * EXCEPTION_PARAMETER.size, "exception parameters")
        params = [p for (p,) in EXCEPTION_PARAMETER.iter_unpack(raw)]
        context = None
        if size >= EXCEPTION_CONTEXT_OFFSET + MINIDUMP_LOCATION.size:
            csize, crva = r.unpack(MINIDUMP_LOCATION, rva + EXCEPTION_CONTEXT_OFFSET, "exception context location")
            context = self.location(csize, crva)
        return ExceptionInfo(thread_id, code, flags, record, address, params, context)

    def location(self, size: int, rva: int) -> Location | None:
        """A context location, or None when it is empty, implausible or outside the file."""
        if size == 0 or size > MAX_CONTEXT or rva + size > self.r.size:
            return None
        return Location(size, rva)

    def threads(self, size: int, rva: int) -> list[Thread]:
        r = self.r
        count, start = _list_count(r, size, rva, MINIDUMP_THREAD.size, "thread list", MAX_THREADS)
        raw = r.read(start, count * MINIDUMP_THREAD.size, "thread list")
        threads = []
        for (tid, suspend, _pclass, _prio, teb, stack_start, stack_size, stack_rva, ctx_size,
             ctx_rva) in MINIDUMP_THREAD.iter_unpack(raw):
            stack = None
            if stack_size and stack_rva + stack_size <= r.size:
                stack = MemoryRange(stack_start, stack_size, stack_rva)
            threads.append(Thread(tid, suspend, teb, stack, self.location(ctx_size, ctx_rva)))
        return threads

    def thread_names(self, size: int, rva: int) -> dict[int, str]:
        r = self.r
        count, start = _list_count(r, size, rva, MINIDUMP_THREAD_NAME.size, "thread names", MAX_THREADS)
        raw = r.read(start, count * MINIDUMP_THREAD_NAME.size, "thread names")
        names = {}
        for tid, name_rva in MINIDUMP_THREAD_NAME.iter_unpack(raw):
            try:
                name = _minidump_string(r, name_rva, "thread name")
            except FormatError:
                continue  # one broken name: the others still count
            if name:
                names[tid] = name
        return names

    def memory_list(self, size: int, rva: int) -> list[tuple[int, int, int]]:
        r = self.r
        count, start = _list_count(r, size, rva, MINIDUMP_MEMORY_DESCRIPTOR.size, "memory list", MAX_MEMORY_RANGES)
        raw = r.read(start, count * MINIDUMP_MEMORY_DESCRIPTOR.size, "memory list")
        file_size = r.size
        # Plain (start, size, rva) tuples: Wine's writer saves thousands of small ranges per dump,
        # and building an object for each was most of the time a dump took to open.  A range
        # whose bytes are not in the file is left out.
        return [t for t in MINIDUMP_MEMORY_DESCRIPTOR.iter_unpack(raw) if t[1] and t[2] + t[1] <= file_size]

    def memory64_list(self, size: int, rva: int) -> list[tuple[int, int, int]]:
        r = self.r
        head = MINIDUMP_MEMORY64_LIST.size
        if size < head:
            raise FormatError(f"Memory64 list stream is too small ({size} bytes)", r.path)
        count, base_rva = r.unpack(MINIDUMP_MEMORY64_LIST, rva, "Memory64 list")
        entry = MINIDUMP_MEMORY_DESCRIPTOR64.size
        if count > MAX_MEMORY_RANGES or head + count * entry > size:
            raise FormatError(f"Memory64 list: count {count} does not fit the {size}-byte stream", r.path)
        raw = r.read(rva + head, count * entry, "Memory64 list")
        out = []
        at = base_rva
        for base, msize in MINIDUMP_MEMORY_DESCRIPTOR64.iter_unpack(raw):
            if at + msize > r.size:
                break  # the rest of the ranges' bytes are not in the file (a truncated full dump)
            if msize:
                out.append((base, msize, at))
            at += msize
        return out

    def modules(self, size: int, rva: int) -> list[Module]:
        r = self.r
        count, start = _list_count(r, size, rva, MINIDUMP_MODULE.size, "module list", MAX_MODULES)
        raw = r.read(start, count * MINIDUMP_MODULE.size, "module list")
        modules = []
        for i, fields in enumerate(MINIDUMP_MODULE.iter_unpack(raw)):
            base, msize, checksum, ts, name_rva, _version_info, cv_size, cv_rva = fields[:8]
            module = Module(base, msize, checksum, ts, "")
            try:
                module.name = _minidump_string(r, name_rva, f"module {i} name")
                if cv_size:
                    if cv_size > MAX_CODEVIEW:
                        raise FormatError(f"CodeView record of {cv_size} bytes")
                    _set_codeview(module, r.read(cv_rva, cv_size, f"module {i} CodeView record"))
            except FormatError as err:
                # One broken module record: keep the others, say what is wrong with this one.
                module.error = err.message
            modules.append(module)
        return modules

    def comment(self, stype: int, size: int, rva: int) -> str:
        data = self.r.read(rva, min(size, MAX_COMMENT), "comment stream")
        if stype == STREAM_COMMENT_W:
            text = data[: len(data) // 2 * 2].decode("utf-16-le", "replace")
        else:
            text = data.decode("latin-1")
        return text.split("\0", 1)[0].strip()

    def misc_info(self, dump: Minidump, size: int, rva: int) -> None:
        if size < MINIDUMP_MISC_INFO.size:
            return
        _size_of_info, flags1, pid, create_time, _user, _kernel = self.r.unpack(MINIDUMP_MISC_INFO, rva, "misc info")
        if flags1 & MISC1_PROCESS_ID:
            dump.process_id = pid
        if flags1 & MISC1_PROCESS_TIMES:
            dump.process_create_time = create_time


# Without these a dump says nothing about its crash: cut off, the dump is unreadable.
ESSENTIAL_STREAMS = frozenset({STREAM_SYSTEM_INFO, STREAM_EXCEPTION, STREAM_MODULE_LIST})


def read_minidump_file(f: BinaryIO, path: str = "<stream>", size: int | None = None) -> Minidump:
    r = BoundedReader(f, path, size)
    p = _Parser(r)
    dump = p.header()
    try:
        for stype, ssize, rva in dump.streams:
            if stype == STREAM_SYSTEM_INFO and dump.system is None:
                dump.system = p.system_info(ssize, rva)
            elif stype == STREAM_EXCEPTION and dump.exception is None:
                dump.exception = p.exception(ssize, rva)
            elif stype == STREAM_MODULE_LIST and not dump.modules:
                dump.modules = p.modules(ssize, rva)
        # Comments and MiscInfo are optional: one cut off or broken is a problem noted on the dump
        # (a partial dump, as minidump-stackwalk reads it), not an unreadable dump.
        for stype, ssize, rva in dump.streams:
            try:
                if stype in (STREAM_COMMENT_A, STREAM_COMMENT_W):
                    text = p.comment(stype, ssize, rva)
                    if text:
                        dump.comments.append(text)
                elif stype == STREAM_MISC_INFO:
                    p.misc_info(dump, ssize, rva)
            except FormatError as err:
                dump.problems.append(f"{STREAM_NAMES.get(stype, hex(stype))}: {err.message}")
        # Threads, names and memory are needed for stacks only: a broken one is a problem noted
        # on the dump, not an unreadable dump (triage still has the exception and modules).
        names: dict[int, str] = {}
        for stype, ssize, rva in dump.streams:
            try:
                if stype == STREAM_THREAD_LIST and not dump.threads:
                    dump.threads = p.threads(ssize, rva)
                elif stype == STREAM_THREAD_NAMES and not names:
                    names = p.thread_names(ssize, rva)
                elif stype == STREAM_MEMORY_LIST:
                    dump.memory += p.memory_list(ssize, rva)
                elif stype == STREAM_MEMORY64_LIST:
                    dump.memory += p.memory64_list(ssize, rva)
            except FormatError as err:
                dump.problems.append(f"{STREAM_NAMES.get(stype, hex(stype))}: {err.message}")
        for t in dump.threads:
            t.name = names.get(t.thread_id)
        if dump.platform in MACH_PLATFORMS:
            for module in dump.modules:
                if module.codeview_kind == "RSDS" and module.debug_id is not None and module.debug_id.guid is not None:
                    module.mach_uuid = MachUuid(module.debug_id.guid.bytes)
        dump.memory.sort()  # by start (the tuple's first field)
    except FormatError as err:
        if err.path is None:
            err.path = path
        raise
    except (struct.error, ValueError) as err:  # defensive: never a traceback on hostile input
        raise FormatError(f"malformed minidump: {err}", path) from None
    dump.bytes_read = r.bytes_read
    return dump


def read_minidump(path: str | os.PathLike[str]) -> Minidump:
    """Parse the minidump at ``path``: raises FormatError (malformed) or OSError."""
    p = os.fspath(path)
    with open_regular(p) as f:
        return read_minidump_file(f, p)


class MinidumpFile:
    """An open minidump: the parsed streams plus on-demand reads of contexts and memory.

    Every read is bounded by the file size and by the limits passed in; the
    caller closes it (it is a context manager).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._starts: list[int] | None = None  # the saved ranges' starts, for bisecting
        self._f = open_regular(self.path)
        try:
            self.dump = read_minidump_file(self._f, self.path)
            self._r = BoundedReader(self._f, self.path)
        except BaseException:
            self._f.close()
            raise

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "MinidumpFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_location(self, loc: Location, what: str = "context") -> bytes:
        return self._r.read(loc.rva, min(loc.size, MAX_CONTEXT), what)

    def read_range(self, mem: MemoryRange, limit: int) -> bytes:
        """The first ``limit`` bytes (at most) of a saved memory range."""
        return self._r.read(mem.rva, min(mem.size, limit), "memory range")

    def read_memory(self, address: int, size: int) -> bytes | None:
        """``size`` bytes of the process's memory at ``address`` when one saved range holds
        them all (None otherwise)."""
        mem = self.range_at(address)
        if mem is None or size < 0 or address + size > mem.end:
            return None
        return self._r.read(mem.rva + (address - mem.start), size, "memory range")

    def range_at(self, address: int) -> MemoryRange | None:
        import bisect

        ranges = self.dump.memory
        if self._starts is None:
            self._starts = [m[0] for m in ranges]
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and ranges[i][0] <= address < ranges[i][0] + ranges[i][1]:
            return MemoryRange(*ranges[i])
        return None


def open_minidump(path: str | os.PathLike[str]) -> MinidumpFile:
    """Open a minidump for stack walking: raises FormatError (malformed) or OSError."""
    return MinidumpFile(path)


__all__ = ["Minidump", "MinidumpFile", "Module", "SystemInfo", "ExceptionInfo", "Thread", "MemoryRange", "Location",
           "open_minidump", "read_minidump", "read_minidump_file"]

"""Minidump (MDMP) reader: what triage needs from a crash dump.

Reads the header, the stream directory, SystemInfo, the exception stream,
the module list (with each module's CodeView record), ProcDump's comment
streams and the misc-info stream.  Memory and thread contexts are not read.

Every RVA and size is checked against the file size (``BoundedReader``) and
every count is checked against the size of the stream that holds it before
anything loops over it, so truncated, random or hostile files raise
:class:`~symtool.errors.FormatError` and never allocate or loop by a size
field from the file.

Layout facts (minidumpapiset.h, Breakpad's minidump_format.h)::

    MINIDUMP_HEADER (32): u32 'MDMP', u32 version (low word 0xA793),
        u32 stream count, u32 directory RVA, u32 checksum, u32 TimeDateStamp, u64 flags
    MINIDUMP_DIRECTORY (12): u32 stream type, u32 data size, u32 RVA
    MINIDUMP_SYSTEM_INFO (56): u16 arch, u16 level, u16 revision, u8 cpus,
        u8 product type, u32 major, u32 minor, u32 build, u32 platform id,
        u32 CSD version RVA (MINIDUMP_STRING), u16 suite mask, u16 reserved, 24 bytes CPU info
    MINIDUMP_EXCEPTION_STREAM (168): u32 thread id, u32 pad, u32 code,
        u32 flags, u64 record, u64 address, u32 parameter count, u32 pad,
        u64 parameters[15], location of the thread context
    MINIDUMP_MODULE (108): u64 base, u32 size, u32 checksum, u32 TimeDateStamp,
        u32 name RVA, VS_FIXEDFILEINFO (52), CvRecord (size, RVA), MiscRecord, u64 x2
    MINIDUMP_STRING: u32 length in bytes, UTF-16LE characters

Breakpad and crashpad write the same container for Linux, macOS and Android
processes; their SystemInfo PlatformId is 0x8000 and up (0x8201 Linux), and
their ELF modules carry a ``BpEL`` CodeView record holding the GNU build id.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from symtool.errors import FormatError
from symtool.formats.binio import BoundedReader, cstring
from symtool.ids import CodeId, DebugId, basename_any

MDMP_SIGNATURE = 0x504D444D  # "MDMP"
MDMP_VERSION = 0xA793
HEADER_SIZE = 32
DIRECTORY_ENTRY_SIZE = 12
MODULE_SIZE = 108
SYSTEM_INFO_SIZE = 56
EXCEPTION_STREAM_SIZE = 168
EXCEPTION_MAXIMUM_PARAMETERS = 15

# Stream types (MINIDUMP_STREAM_TYPE and Breakpad's extensions).
STREAM_THREAD_LIST = 3
STREAM_MODULE_LIST = 4
STREAM_MEMORY_LIST = 5
STREAM_EXCEPTION = 6
STREAM_SYSTEM_INFO = 7
STREAM_COMMENT_A = 10
STREAM_COMMENT_W = 11
STREAM_MISC_INFO = 15
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
MAX_CODEVIEW = 64 * 1024
MAX_COMMENT = 1 << 20

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

CV_RSDS = b"RSDS"
CV_NB10 = b"NB10"
CV_ELF = b"LEpB"  # MD_CVINFOELF_SIGNATURE 0x4270454C ("BpEL") as stored, little-endian


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

    @property
    def code_hex(self) -> str:
        return f"{self.code:08X}"


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
    bytes_read: int = 0

    @property
    def platform(self) -> str:
        return self.system.platform if self.system else "unknown"

    def module_at(self, address: int) -> Module | None:
        for module in self.modules:
            if module.contains(address):
                return module
        return None

    def stream_names(self) -> list[str]:
        return [STREAM_NAMES.get(t, f"{t:#x}") for t, _s, _r in self.streams if t != 0]


def _minidump_string(r: BoundedReader, rva: int, what: str) -> str:
    (length,) = r.unpack("<I", rva, what)
    if length > MAX_STRING or length % 2:
        raise FormatError(f"{what}: implausible string length {length}", r.path)
    return r.read(rva + 4, length, what).decode("utf-16-le", "replace")


def _parse_codeview(module: Module, data: bytes) -> None:
    sig = data[:4]
    if sig == CV_RSDS:
        if len(data) < 24:
            raise FormatError("truncated RSDS CodeView record")
        (age,) = struct.unpack_from("<I", data, 20)
        module.codeview_kind = "RSDS"
        module.debug_id = DebugId.from_guid_bytes(data[4:20], age)
        module.pdb_path = cstring(data, 24).decode("utf-8", "replace")
    elif sig == CV_NB10:
        if len(data) < 16:
            raise FormatError("truncated NB10 CodeView record")
        _off, signature, age = struct.unpack_from("<III", data, 4)
        module.codeview_kind = "NB10"
        module.debug_id = DebugId.nb10(signature, age)
        module.pdb_path = cstring(data, 16).decode("latin-1")
    elif sig == CV_ELF:
        build_id = bytes(data[4:])
        if not build_id:
            raise FormatError("empty ELF build-id CodeView record")
        module.codeview_kind = "ELF"
        module.build_id = build_id
        # Breakpad's debug identifier: the first 16 bytes of the build id as a GUID, age 0.
        module.debug_id = DebugId.from_guid_bytes(build_id[:16].ljust(16, b"\0"), 0)
    elif data:
        raise FormatError(f"unknown CodeView signature {bytes(sig)!r}")


def _list_count(r: BoundedReader, size: int, rva: int, entry: int, what: str, limit: int) -> tuple[int, int]:
    """Count of a ``u32 count; entries[count]`` list and where its entries start.

    Some writers (Breakpad on 64-bit hosts) pad the count to 8 bytes: accept a
    stream that is exactly 4 bytes longer than ``4 + count * entry``.
    """
    if size < 4:
        raise FormatError(f"{what} stream is too small ({size} bytes)", r.path)
    (count,) = r.unpack("<I", rva, what)
    if count > limit or 4 + count * entry > size:
        raise FormatError(f"{what}: count {count} does not fit the {size}-byte stream", r.path)
    start = rva + 4
    if size == 8 + count * entry:
        start = rva + 8
    return count, start


class _Parser:
    def __init__(self, r: BoundedReader):
        self.r = r

    def header(self) -> Minidump:
        r = self.r
        if r.size < HEADER_SIZE:
            raise FormatError("not a minidump (file too small)" if r.size < 4 else "truncated minidump header", r.path)
        sig, version, n_streams, dir_rva, _checksum, timestamp, flags = r.unpack("<6IQ", 0, "minidump header")
        if sig != MDMP_SIGNATURE:
            raise FormatError("not a minidump (no MDMP signature)", r.path)
        if version & 0xFFFF != MDMP_VERSION:
            raise FormatError(f"unsupported minidump version {version & 0xFFFF:#x}", r.path)
        if n_streams > MAX_STREAMS:
            raise FormatError(f"implausible stream count {n_streams}", r.path)
        raw = r.read(dir_rva, n_streams * DIRECTORY_ENTRY_SIZE, "stream directory")
        streams = []
        for i in range(n_streams):
            stype, size, rva = struct.unpack_from("<III", raw, i * DIRECTORY_ENTRY_SIZE)
            if stype == 0:
                continue  # unused slot (dbghelp reserves a few)
            if rva + size > r.size:
                raise FormatError(
                    f"stream {STREAM_NAMES.get(stype, hex(stype))} at {rva:#x} (+{size}) runs past the end of the file "
                    f"({r.size} bytes)", r.path)
            streams.append((stype, size, rva))
        return Minidump(r.path, version, timestamp, flags, streams)

    def system_info(self, size: int, rva: int) -> SystemInfo:
        r = self.r
        if size < SYSTEM_INFO_SIZE - 24:
            raise FormatError(f"SystemInfo stream is too small ({size} bytes)", r.path)
        (arch, level, revision, cpus, product, major, minor, build, platform_id, csd_rva,
         _suite, _res) = r.unpack("<HHHBBIIIIIHH", rva, "SystemInfo")
        csd = ""
        if csd_rva:
            try:
                csd = _minidump_string(r, csd_rva, "CSD version string")
            except FormatError:
                csd = ""  # a broken service-pack string does not make the dump unreadable
        vendor = None
        if size >= SYSTEM_INFO_SIZE and arch in (0, 9, 10):
            raw = r.read(rva + 32, 12, "CPU vendor")
            if all(32 <= b < 127 for b in raw):
                vendor = raw.decode("ascii")
        platform = PLATFORMS.get(platform_id, ("unknown", ""))[0]
        return SystemInfo(arch, ARCHITECTURES.get(arch, f"arch {arch:#x}"), level, revision, cpus, product,
                          major, minor, build, platform_id, platform, csd, vendor)

    def exception(self, size: int, rva: int) -> ExceptionInfo:
        r = self.r
        if size < 40:
            raise FormatError(f"exception stream is too small ({size} bytes)", r.path)
        thread_id, _pad, code, flags, record, address, n_params, _pad2 = r.unpack("<IIIIQQII", rva, "exception stream")
        n = min(n_params, EXCEPTION_MAXIMUM_PARAMETERS, max(0, (size - 40) // 8))
        params = list(r.unpack(f"<{n}Q", rva + 40, "exception parameters")) if n else []
        return ExceptionInfo(thread_id, code, flags, record, address, params)

    def modules(self, size: int, rva: int) -> list[Module]:
        r = self.r
        count, start = _list_count(r, size, rva, MODULE_SIZE, "module list", MAX_MODULES)
        raw = r.read(start, count * MODULE_SIZE, "module list")
        modules = []
        for i in range(count):
            at = i * MODULE_SIZE
            base, msize, checksum, ts, name_rva = struct.unpack_from("<QIIII", raw, at)
            cv_size, cv_rva = struct.unpack_from("<II", raw, at + 24 + 52)
            module = Module(base, msize, checksum, ts, "")
            try:
                module.name = _minidump_string(r, name_rva, f"module {i} name")
                if cv_size:
                    if cv_size > MAX_CODEVIEW:
                        raise FormatError(f"CodeView record of {cv_size} bytes")
                    _parse_codeview(module, r.read(cv_rva, cv_size, f"module {i} CodeView record"))
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
        if size < 24:
            return
        size_of_info, flags1, pid, create_time = self.r.unpack("<IIII", rva, "misc info")
        if flags1 & 1:
            dump.process_id = pid
        if flags1 & 2:
            dump.process_create_time = create_time


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
            elif stype in (STREAM_COMMENT_A, STREAM_COMMENT_W):
                text = p.comment(stype, ssize, rva)
                if text:
                    dump.comments.append(text)
            elif stype == STREAM_MISC_INFO:
                p.misc_info(dump, ssize, rva)
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
    with open(p, "rb") as f:
        return read_minidump_file(f, p)


__all__ = ["Minidump", "Module", "SystemInfo", "ExceptionInfo", "read_minidump", "read_minidump_file",
           "build_minidump", "codeview_rsds"]


def build_minidump(*, modules: list[dict] | None = None, exception: dict | None = None,
                   arch: int = 9, platform_id: int = 2, version: tuple[int, int, int] = (10, 0, 19045),
                   csd_version: str = "", comments: list[str] | None = None, timestamp: int = 0) -> bytes:
    """A small, well-formed minidump (for tests and benchmarks).

    ``modules``: dicts with ``name``, ``base``, ``size``, ``timestamp`` and an
    optional raw ``codeview`` record (bytes).  ``exception``: ``code``,
    ``address``, optional ``parameters``, ``thread_id``, ``flags``.
    ``comments``: written as CommentStreamW.
    """
    blobs = bytearray()
    streams: list[tuple[int, bytes]] = []

    def place(data: bytes) -> int:
        # Everything after the header and directory; RVAs are fixed up below.
        while len(blobs) % 4:
            blobs.append(0)
        at = len(blobs)
        blobs.extend(data)
        return at

    def mdstring(text: str) -> bytes:
        raw = text.encode("utf-16-le")
        return struct.pack("<I", len(raw)) + raw + b"\0\0"

    csd_at = place(mdstring(csd_version))
    sysinfo = struct.pack("<HHHBBIIIIIHH", arch, 6, 0, 4, 1, version[0], version[1], version[2], platform_id,
                          0, 0, 0) + b"\0" * 24
    streams.append((STREAM_SYSTEM_INFO, sysinfo))
    mod_records = []
    for m in modules or []:
        name_at = place(mdstring(m["name"]))
        cv = m.get("codeview") or b""
        cv_at = place(cv) if cv else 0
        mod_records.append((m, name_at, cv_at, len(cv)))
    if exception is not None:
        params = list(exception.get("parameters", []))[:EXCEPTION_MAXIMUM_PARAMETERS]
        exc = struct.pack("<IIIIQQII", exception.get("thread_id", 1), 0, exception["code"],
                          exception.get("flags", 0), 0, exception["address"], len(params), 0)
        exc += struct.pack(f"<{EXCEPTION_MAXIMUM_PARAMETERS}Q", *(params + [0] * (EXCEPTION_MAXIMUM_PARAMETERS - len(params))))
        exc += struct.pack("<II", 0, 0)
        streams.append((STREAM_EXCEPTION, exc))
    for text in comments or []:
        streams.append((STREAM_COMMENT_W, text.encode("utf-16-le") + b"\0\0"))
    # Layout: header, directory (module list + the streams above), strings and
    # CodeView records, then the streams' data.
    base = HEADER_SIZE + DIRECTORY_ENTRY_SIZE * (len(streams) + 1)
    out = bytearray()
    directory = []
    body = bytearray(blobs)

    def put(data: bytes) -> int:
        while len(body) % 4:
            body.append(0)
        at = len(body)
        body.extend(data)
        return base + at

    mods = bytearray(struct.pack("<I", len(mod_records)))
    for m, name_at, cv_at, cv_len in mod_records:
        rec = struct.pack("<QIIII", m["base"], m["size"], 0, m.get("timestamp", 0), base + name_at)
        rec += b"\0" * 52 + struct.pack("<II", cv_len, base + cv_at if cv_len else 0) + b"\0" * 24
        mods += rec
    directory.append((STREAM_MODULE_LIST, len(mods), put(bytes(mods))))
    for stype, data in streams:
        if stype == STREAM_SYSTEM_INFO:
            data = data[:24] + struct.pack("<I", base + csd_at) + data[28:]
        directory.append((stype, len(data), put(data)))
    out += struct.pack("<6IQ", MDMP_SIGNATURE, MDMP_VERSION, len(directory), HEADER_SIZE, 0, timestamp, 0)
    for stype, size, rva in directory:
        out += struct.pack("<III", stype, size, rva)
    out += body
    return bytes(out)


def codeview_rsds(guid: bytes, age: int, pdb_path: str) -> bytes:
    """An RSDS CodeView record (for :func:`build_minidump`)."""
    return b"RSDS" + guid + struct.pack("<I", age) + pdb_path.encode("utf-8") + b"\0"

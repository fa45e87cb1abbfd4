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
    records = []
    for m in modules:
        name_rva = place(_minidump_string(m["name"]))
        cv = m.get("codeview") or b""
        cv_rva = place(cv) if cv else 0
        records.append(MODULE.pack(m["base"], m["size"], 0, m.get("timestamp", 0), name_rva, b"\0" * 52,
                                   len(cv), cv_rva, 0, 0, 0, 0))
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

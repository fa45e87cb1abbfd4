"""PE reader (PE32 and PE32+): what identifies an image and the PDB it asks for.

``pefile`` parses the headers with ``fast_load`` and then only the debug
directory; the CodeView/REPRO/PDBCHECKSUM payloads are read here, with every
offset and size checked against the file.

Debug directory types used (winnt.h): 2 CODEVIEW, 16 REPRO, 19 PDBCHECKSUM.
CodeView payloads: ``RSDS`` + GUID(16) + age(u32) + path\\0 (PDB 7.0) and
``NB10`` + offset(u32) + signature(u32) + age(u32) + path\\0 (PDB 2.0).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError
from symtool.formats.binio import cstring
from symtool.ids import CodeId, DebugId, basename_any

IMAGE_DEBUG_TYPE_CODEVIEW = 2
IMAGE_DEBUG_TYPE_REPRO = 16
IMAGE_DEBUG_TYPE_PDBCHECKSUM = 19
MAX_CODEVIEW = 64 * 1024  # a CodeView record is a header plus a path: bounded

MACHINES = {
    0x014C: "x86",
    0x8664: "x64",
    0xAA64: "arm64",
    0x01C4: "arm",
    0x0200: "ia64",
    0xA641: "arm64ec",
    0x0000: "unknown",
}


@dataclass
class CodeView:
    """One CodeView debug-directory entry: the PDB the image asks for."""

    debug_id: DebugId
    pdb_path: str  # as recorded (rustc records only the file name, via /PDBALTPATH)

    @property
    def pdb_name(self) -> str:
        return basename_any(self.pdb_path)


@dataclass
class PeInfo:
    path: str
    machine: int
    is_64: bool
    timestamp: int
    size_of_image: int
    is_dll: bool
    codeview: list[CodeView] = field(default_factory=list)
    repro: bool = False  # /Brepro: TimeDateStamp is then a hash, not a time
    pdb_checksum: tuple[str, str] | None = None  # (algorithm, hex digest)
    debug_types: list[int] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "pe"

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"0x{self.machine:04x}")

    @property
    def code_id(self) -> CodeId:
        return CodeId(self.timestamp, self.size_of_image)

    @property
    def index(self) -> str:
        return self.code_id.index()

    @property
    def primary_codeview(self) -> CodeView | None:
        """The entry debuggers use: the last RSDS one if any (there is normally exactly one)."""
        rsds = [cv for cv in self.codeview if cv.debug_id.kind == "pdb70"]
        if rsds:
            return rsds[-1]
        return self.codeview[-1] if self.codeview else None


def _parse_codeview(data: bytes, path: str) -> CodeView:
    if data[:4] == b"RSDS":
        if len(data) < 24:
            raise FormatError("truncated RSDS CodeView record", path)
        age = struct.unpack_from("<I", data, 20)[0]
        name = cstring(data, 24).decode("utf-8", "replace")
        return CodeView(DebugId.from_guid_bytes(data[4:20], age), name)
    if data[:4] == b"NB10":
        if len(data) < 16:
            raise FormatError("truncated NB10 CodeView record", path)
        _off, sig, age = struct.unpack_from("<III", data, 4)
        name = cstring(data, 16).decode("latin-1")
        return CodeView(DebugId.nb10(sig, age), name)
    raise FormatError(f"unknown CodeView signature {data[:4]!r}", path)


def _parse(pe, data_len: int, path: str) -> PeInfo:
    import pefile

    fh = pe.FILE_HEADER
    opt = pe.OPTIONAL_HEADER
    info = PeInfo(
        path=path,
        machine=fh.Machine,
        is_64=opt.Magic == pefile.OPTIONAL_HEADER_MAGIC_PE_PLUS,
        timestamp=fh.TimeDateStamp,
        size_of_image=opt.SizeOfImage,
        is_dll=bool(fh.Characteristics & 0x2000),
    )
    for entry in getattr(pe, "DIRECTORY_ENTRY_DEBUG", []) or []:
        s = entry.struct
        info.debug_types.append(s.Type)
        if s.Type == IMAGE_DEBUG_TYPE_REPRO:
            info.repro = True
        if s.Type not in (IMAGE_DEBUG_TYPE_CODEVIEW, IMAGE_DEBUG_TYPE_PDBCHECKSUM):
            continue
        size = s.SizeOfData
        offset = s.PointerToRawData
        if offset == 0 and s.AddressOfRawData:
            try:
                offset = pe.get_offset_from_rva(s.AddressOfRawData)
            except Exception:
                raise FormatError("debug directory entry points outside the file", path) from None
        if size == 0 or offset + size > data_len:
            raise FormatError(
                f"debug directory entry (type {s.Type}) runs past the end of the file", path
            )
        if size > MAX_CODEVIEW:
            raise FormatError(f"debug directory entry (type {s.Type}) is implausibly large ({size} bytes)", path)
        payload = pe.__data__[offset:offset + size]
        if s.Type == IMAGE_DEBUG_TYPE_CODEVIEW:
            info.codeview.append(_parse_codeview(bytes(payload), path))
        else:
            algo = cstring(bytes(payload)).decode("ascii", "replace")
            digest = bytes(payload[len(algo) + 1:]).hex()
            info.pdb_checksum = (algo, digest)
    return info


def read_pe(path: str | os.PathLike[str]) -> PeInfo:
    """Read a PE image's identity and debug directory; FormatError on malformed input."""
    import pefile

    p = os.fspath(path)
    with open(p, "rb") as f:
        head = f.read(2)
    if head != b"MZ":
        raise FormatError("not a PE file (no MZ header)", p)
    try:
        pe = pefile.PE(p, fast_load=True)
    except pefile.PEFormatError as err:
        raise FormatError(f"not a valid PE file: {err.value}", p) from None
    except (MemoryError, OverflowError, ValueError, struct.error) as err:
        raise FormatError(f"not a valid PE file: {err}", p) from None
    try:
        try:
            pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_DEBUG"]])
        except pefile.PEFormatError as err:
            raise FormatError(f"bad debug directory: {err.value}", p) from None
        except (IndexError, KeyError, ValueError, TypeError, struct.error, OverflowError, AttributeError) as err:
            raise FormatError(f"bad debug directory: {err}", p) from None
        return _parse(pe, len(pe.__data__), p)
    finally:
        pe.close()

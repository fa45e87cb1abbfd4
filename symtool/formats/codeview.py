"""CodeView debug-information records: what a PE image or a minidump module
says about the PDB (or build id) that describes it.

One parser for both readers: the PE reader finds these records through the
image's debug directory (type 2, IMAGE_DEBUG_TYPE_CODEVIEW), the minidump
reader through each MINIDUMP_MODULE's CvRecord.

Layouts (Microsoft's "PDB 7.0 / PDB 2.0 file format" CV_INFO_PDB70 and
CV_INFO_PDB20 structures; Breakpad's minidump_format.h MDCVInfoELF)::

    CV_INFO_PDB70  "RSDS", GUID Signature (16 bytes), u32 Age, char PdbFileName[] (UTF-8, NUL-terminated)
    CV_INFO_PDB20  "NB10", u32 Offset (0), u32 Signature (a time stamp), u32 Age,
                   char PdbFileName[] (ANSI code page, NUL-terminated)
    MDCVInfoELF    "BpEL" (0x4270454C as a little-endian u32), u8 build_id[]

Every size is checked against the record's length before it is used; a
truncated record raises :class:`~symtool.errors.FormatError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from symtool.errors import FormatError
from symtool.formats.binio import cstring
from symtool.ids import DebugId, basename_any

SIGNATURE_RSDS = b"RSDS"
SIGNATURE_NB10 = b"NB10"
SIGNATURE_ELF = b"LEpB"  # MD_CVINFOELF_SIGNATURE 0x4270454C ("BpEL") as stored, little-endian

CV_INFO_PDB70 = struct.Struct("<4s16sI")  # CV_INFO_PDB70 up to PdbFileName: CvSignature, Signature (GUID), Age
CV_INFO_PDB20 = struct.Struct("<4sIII")  # CV_INFO_PDB20 up to PdbFileName: CvSignature, Offset, Signature, Age
CV_SIGNATURE = struct.Struct("<4s")  # the CvSignature every record starts with

# A record is a fixed header plus a path (or a build id): anything bigger is
# corrupt or hostile, and refusing it keeps a size field from sizing a read.
MAX_CODEVIEW = 64 * 1024

KIND_RSDS = "RSDS"
KIND_NB10 = "NB10"
KIND_ELF = "ELF"


@dataclass(frozen=True)
class CodeView:
    """One CodeView record: the PDB (RSDS, NB10) or ELF build id (Breakpad's BpEL) it names."""

    kind: str  # KIND_RSDS, KIND_NB10 or KIND_ELF
    debug_id: DebugId
    pdb_path: str | None = None  # as recorded (rustc records only the file name, via /PDBALTPATH)
    build_id: bytes | None = None  # KIND_ELF only

    @property
    def pdb_name(self) -> str | None:
        return basename_any(self.pdb_path) if self.pdb_path else None


def parse_codeview(data: bytes) -> CodeView | None:
    """The record in ``data``; None for CodeView formats that name no PDB
    (NB09/NB11 symbols embedded in old images, or any other signature).

    Raises FormatError (without a path: the caller knows the file) when a
    known record is truncated or ``data`` is shorter than a signature.
    """
    if len(data) > MAX_CODEVIEW:
        raise FormatError(f"CodeView record of {len(data)} bytes is implausibly large")
    if len(data) < CV_SIGNATURE.size:
        raise FormatError(f"truncated CodeView record ({len(data)} bytes)")
    (signature,) = CV_SIGNATURE.unpack_from(data, 0)
    if signature == SIGNATURE_RSDS:
        if len(data) < CV_INFO_PDB70.size:
            raise FormatError("truncated RSDS CodeView record")
        _sig, guid, age = CV_INFO_PDB70.unpack_from(data, 0)
        path = cstring(data, CV_INFO_PDB70.size).decode("utf-8", "replace")
        return CodeView(KIND_RSDS, DebugId.from_guid_bytes(guid, age), path)
    if signature == SIGNATURE_NB10:
        if len(data) < CV_INFO_PDB20.size:
            raise FormatError("truncated NB10 CodeView record")
        _sig, _offset, stamp, age = CV_INFO_PDB20.unpack_from(data, 0)
        # The ANSI code page of the machine that linked is unknown: latin-1 keeps every byte.
        path = cstring(data, CV_INFO_PDB20.size).decode("latin-1")
        return CodeView(KIND_NB10, DebugId.nb10(stamp, age), path)
    if signature == SIGNATURE_ELF:
        build_id = bytes(data[CV_SIGNATURE.size:])
        if not build_id:
            raise FormatError("empty ELF build-id CodeView record")
        # Breakpad's debug identifier: the first 16 bytes of the build id as a GUID, age 0.
        return CodeView(KIND_ELF, DebugId.from_guid_bytes(build_id[:16].ljust(16, b"\0"), 0), build_id=build_id)
    return None


__all__ = ["CodeView", "parse_codeview", "MAX_CODEVIEW", "CV_INFO_PDB70", "CV_INFO_PDB20",
           "KIND_RSDS", "KIND_NB10", "KIND_ELF"]

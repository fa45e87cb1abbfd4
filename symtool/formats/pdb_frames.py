"""x86 frame data from a PDB: the old FPO records and the New FPO (FrameData)
records with their program strings, found by RVA.

Layout facts (LLVM's "The PDB DBI Stream" docs, microsoft-pdb's cvinfo.h and
winnt.h; checked against ``llvm-pdbutil dump --fpo``):

* The DBI stream's optional debug header substream is an array of u16 stream
  numbers (0xFFFF: none).  Slot 0 names the FPO stream, slot 9 the New FPO
  stream.
* The FPO stream is an array of 16-byte FPO_DATA records:
  ``ulOffStart, cbProcSize, cdwLocals`` (u32), ``cdwParams`` (u16, in DWORDs),
  then a u16 bitfield: ``cbProlog:8, cbRegs:3, fHasSEH:1, fUseBP:1,
  reserved:1, cbFrame:2``.
* The New FPO stream is an optional u32 (a relocation pointer, present when
  the stream is not a multiple of 32 bytes) followed by 32-byte FrameData
  records: ``RvaStart, CodeSize, LocalSize, ParamsSize, MaxStackSize,
  FrameFunc`` (u32; FrameFunc is the offset of the program string in the
  ``/names`` string table), ``PrologSize, SavedRegsSize`` (u16), ``Flags``
  (u32: 1 HasSEH, 2 HasEH, 4 IsFunctionStart).

Every stream number, size and string offset is checked before it is used;
hostile data raises FormatError.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, replace

from symtool.errors import FormatError
from symtool.formats.pdb import STREAM_DBI, Msf, _names_buffer, open_msf, read_dbi_header, read_pdb_file

# FPO_DATA (winnt.h): ulOffStart, cbProcSize, cdwLocals, cdwParams, then the bitfield word.
FPO_DATA = struct.Struct("<IIIHH")
# FRAMEDATA (cvinfo.h): RvaStart, CodeSize, LocalSize, ParamsSize, MaxStackSize, FrameFunc,
# PrologSize, SavedRegsSize, Flags.
FRAME_DATA = struct.Struct("<IIIIIIHHI")
FRAME_DATA_RELOC = struct.Struct("<I")  # the New FPO stream's optional leading relocation pointer
DBG_STREAM_NUMBER = struct.Struct("<H")  # one slot of the DBI optional debug header

DBG_SLOT_FPO = 0
DBG_SLOT_NEW_FPO = 9
NIL_STREAM16 = 0xFFFF
FRAME_FLAG_SEH = 1
FRAME_FLAG_FUNCTION_START = 4
MAX_FRAME_STREAM = 64 << 20  # bytes of FPO / New FPO data read (real PDBs: a few MB)
MAX_PROGRAM = 1024  # characters of one program string (real ones: under 200)
MAX_OVERLAP = 64  # records stepped back over when looking for one that covers an RVA


@dataclass(frozen=True)
class FrameInfo:
    """How to find the caller of a function at an RVA, in bytes (as Breakpad's STACK WIN)."""

    kind: str  # "framedata" (a program string) or "fpo" (old FPO_DATA)
    rva: int
    size: int
    locals_size: int
    params_size: int
    saved_regs_size: int
    prolog_size: int
    program: str | None = None  # framedata only (FrameTable.find fills it in from program_offset)
    program_offset: int | None = None  # framedata: FrameFunc, the program's offset in /names
    uses_bp: bool = False  # fpo only: EBP was pushed and used as a general register
    has_seh: bool = False

    @property
    def end(self) -> int:
        return self.rva + self.size


class FrameTable:
    """Frame records by RVA: FrameData first, FPO_DATA where no FrameData covers the RVA."""

    def __init__(self, framedata: list[FrameInfo], fpo: list[FrameInfo], names: bytes = b""):
        self.names = names  # the /names buffer that FrameData programs point into
        self._programs: dict[int, str | None] = {}
        self.framedata = sorted(framedata, key=lambda r: r.rva)
        self.fpo = sorted(fpo, key=lambda r: r.rva)
        self._fd_starts = [r.rva for r in self.framedata]
        self._fpo_starts = [r.rva for r in self.fpo]

    def __len__(self) -> int:
        return len(self.framedata) + len(self.fpo)

    @staticmethod
    def _covering(records: list[FrameInfo], starts: list[int], rva: int) -> FrameInfo | None:
        # The covering record that starts last: FrameData has one record per prologue step.
        i = bisect.bisect_right(starts, rva) - 1
        for k in range(i, max(i - MAX_OVERLAP, -1), -1):
            if records[k].rva <= rva < records[k].end:
                return records[k]
        return None

    def program_of(self, info: FrameInfo) -> str | None:
        """The record's program string (None: none, unterminated or too long)."""
        if info.program is not None or info.program_offset is None:
            return info.program
        off = info.program_offset
        if off not in self._programs:
            try:
                self._programs[off] = program_at(self.names, off)
            except FormatError:
                self._programs[off] = None
        return self._programs[off]

    def find(self, rva: int) -> FrameInfo | None:
        """The record for ``rva``, its program string read (programs are read only when needed:
        a hostile table of many records costs no more than its size)."""
        found = self._covering(self.framedata, self._fd_starts, rva)
        if found is not None:
            return replace(found, program=self.program_of(found))
        return self._covering(self.fpo, self._fpo_starts, rva)


def _debug_streams(msf: Msf) -> list[int]:
    dbi = read_dbi_header(msf)
    if dbi is None:
        return []
    offset, size = dbi.substream("optional_debug_header")
    raw = msf.read_stream(STREAM_DBI, offset, size - size % DBG_STREAM_NUMBER.size)
    return [n for (n,) in DBG_STREAM_NUMBER.iter_unpack(raw)]


def _stream(msf: Msf, slots: list[int], slot: int, what: str) -> bytes:
    if slot >= len(slots) or slots[slot] == NIL_STREAM16:
        return b""
    number = slots[slot]
    if number >= msf.num_streams:
        raise FormatError(f"{what} stream {number} does not exist", msf.r.path)
    size = msf.stream_size(number)
    if size > MAX_FRAME_STREAM:
        raise FormatError(f"{what} stream of {size} bytes is too big", msf.r.path)
    return msf.read_stream(number)


def parse_fpo(data: bytes, path: str = "") -> list[FrameInfo]:
    """FPO_DATA records (``data``: the FPO stream)."""
    if len(data) % FPO_DATA.size:
        raise FormatError(f"FPO stream of {len(data)} bytes is not a whole number of records", path)
    out = []
    for start, size, locals_dw, params_dw, bits in FPO_DATA.iter_unpack(data):
        out.append(FrameInfo("fpo", start, size, locals_dw * 4, params_dw * 4, ((bits >> 8) & 7) * 4,
                             bits & 0xFF, uses_bp=bool(bits & 0x1000), has_seh=bool(bits & 0x800)))
    return out


def program_at(names: bytes, offset: int, path: str = "") -> str:
    """The program string at ``offset`` in the ``/names`` buffer (NUL-terminated, at most MAX_PROGRAM)."""
    if not 0 <= offset < len(names):
        raise FormatError(f"FrameData program offset {offset:#x} is outside /names", path)
    end = names.find(b"\0", offset, offset + MAX_PROGRAM + 1)
    if end < 0:
        raise FormatError(f"FrameData program at {offset:#x} is unterminated or too long", path)
    return names[offset:end].decode("ascii", "replace")


def parse_framedata(data: bytes, names: bytes, path: str = "") -> list[FrameInfo]:
    """FrameData records (``data``: the New FPO stream); each program offset is checked against
    ``names`` (the /names buffer), the strings are read by FrameTable.find."""
    if len(data) % FRAME_DATA.size:
        if len(data) % FRAME_DATA.size != FRAME_DATA_RELOC.size:
            raise FormatError(f"New FPO stream of {len(data)} bytes is not a whole number of records", path)
        data = data[FRAME_DATA_RELOC.size:]
    out = []
    for start, size, locals_, params, _max_stack, func, prolog, saved, flags in FRAME_DATA.iter_unpack(data):
        if func >= len(names):
            raise FormatError(f"FrameData program offset {func:#x} is outside /names", path)
        out.append(FrameInfo("framedata", start, size, locals_, params, saved, prolog, program_offset=func,
                             has_seh=bool(flags & FRAME_FLAG_SEH)))
    return out


def read_frame_table(msf: Msf, named_streams: dict[str, int] | None = None) -> FrameTable:
    """The PDB's FPO and FrameData records (empty when it has none)."""
    path = msf.r.path
    slots = _debug_streams(msf)
    fpo = parse_fpo(_stream(msf, slots, DBG_SLOT_FPO, "FPO"), path)
    new = _stream(msf, slots, DBG_SLOT_NEW_FPO, "New FPO")
    framedata: list[FrameInfo] = []
    names = b""
    if new:
        if named_streams is None:
            named_streams = read_pdb_file(msf.r.f, path).named_streams
        names = _names_buffer(msf, named_streams.get("/names"))
        framedata = parse_framedata(new, names, path)
    return FrameTable(framedata, fpo, names)


def read_frame_table_path(path: str | os.PathLike[str]) -> FrameTable:
    """:func:`read_frame_table` of the PDB at ``path``: raises FormatError / OSError."""
    f, msf = open_msf(path)
    with f:
        return read_frame_table(msf)


__all__ = ["FrameInfo", "FrameTable", "FPO_DATA", "FRAME_DATA", "parse_fpo", "parse_framedata", "program_at",
           "read_frame_table", "read_frame_table_path"]

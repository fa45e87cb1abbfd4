"""Apple's compact unwind tables: the ``__TEXT,__unwind_info`` section of a Mach-O image.

Layouts and encodings from ``<mach-o/compact_unwind_encoding.h>`` (version 1)::

    unwind_info_section_header   version (1), commonEncodingsArraySectionOffset, commonEncodingsArrayCount,
                                 personalityArraySectionOffset, personalityArrayCount,
                                 indexSectionOffset, indexCount
    first-level index entry      functionOffset, secondLevelPagesSectionOffset, lsdaIndexArraySectionOffset
                                 (the last entry is a sentinel: the end of the last function, page 0)
    LSDA index entry             functionOffset, lsdaOffset
    regular second-level page    kind (2), entryPageOffset (u16), entryCount (u16);
                                 entries: functionOffset, encoding
    compressed second-level page kind (3), entryPageOffset, entryCount, encodingsPageOffset, encodingsCount
                                 (u16 each); entries: u32 = encoding index << 24 | offset from the
                                 first-level entry's functionOffset; an index below the common count
                                 names a common encoding, the rest the page's own encodings

Function offsets are relative to the image's ``__TEXT`` VM address (module RVAs).  A
function runs up to the next entry's start; encoding 0 means "no unwind information".

An encoding is decoded by CPU (:func:`decode_x86_64`, :func:`decode_arm64`) into a
:class:`CompactRule` the unwinder applies; DWARF mode gives the offset of the function's
FDE in ``__eh_frame``.  Every count and offset is checked against the section before it is
used: a lookup reads at most a few dozen words (two binary searches), a full listing
(:meth:`CompactUnwindInfo.entries`) at most one entry per four bytes of the section.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError

UNWIND_SECTION_VERSION = 1
UNWIND_INFO_HEADER = struct.Struct("<7I")
INDEX_ENTRY = struct.Struct("<3I")
LSDA_ENTRY = struct.Struct("<2I")
REGULAR_PAGE_HEADER = struct.Struct("<IHH")
COMPRESSED_PAGE_HEADER = struct.Struct("<IHHHH")
REGULAR_ENTRY = struct.Struct("<2I")
U32 = struct.Struct("<I")
UNWIND_SECOND_LEVEL_REGULAR = 2
UNWIND_SECOND_LEVEL_COMPRESSED = 3

# Bits every encoding shares.
UNWIND_IS_NOT_FUNCTION_START = 0x80000000
UNWIND_HAS_LSDA = 0x40000000
UNWIND_PERSONALITY_MASK = 0x30000000
UNWIND_MODE_MASK = 0x0F000000

# x86_64.
UNWIND_X86_64_MODE_RBP_FRAME = 0x01000000
UNWIND_X86_64_MODE_STACK_IMMD = 0x02000000
UNWIND_X86_64_MODE_STACK_IND = 0x03000000
UNWIND_X86_64_MODE_DWARF = 0x04000000
UNWIND_X86_64_RBP_FRAME_REGISTERS = 0x00007FFF
UNWIND_X86_64_RBP_FRAME_OFFSET = 0x00FF0000
UNWIND_X86_64_FRAMELESS_STACK_SIZE = 0x00FF0000
UNWIND_X86_64_FRAMELESS_STACK_ADJUST = 0x0000E000
UNWIND_X86_64_FRAMELESS_STACK_REG_COUNT = 0x00001C00
UNWIND_X86_64_FRAMELESS_STACK_REG_PERMUTATION = 0x000003FF
UNWIND_X86_64_DWARF_SECTION_OFFSET = 0x00FFFFFF
# UNWIND_X86_64_REG_*: 0 is none.
X86_64_COMPACT_REGISTERS = (None, "rbx", "r12", "r13", "r14", "r15", "rbp")

# arm64.
UNWIND_ARM64_MODE_FRAMELESS = 0x02000000
UNWIND_ARM64_MODE_DWARF = 0x03000000
UNWIND_ARM64_MODE_FRAME = 0x04000000
UNWIND_ARM64_FRAMELESS_STACK_SIZE_MASK = 0x00FFF000
UNWIND_ARM64_DWARF_SECTION_OFFSET = 0x00FFFFFF
# UNWIND_ARM64_FRAME_*_PAIR bits, in the order the pairs are stored below the frame record.
ARM64_PAIRS = ((0x001, ("x19", "x20")), (0x002, ("x21", "x22")), (0x004, ("x23", "x24")),
               (0x008, ("x25", "x26")), (0x010, ("x27", "x28")), (0x100, ("d8", "d9")),
               (0x200, ("d10", "d11")), (0x400, ("d12", "d13")), (0x800, ("d14", "d15")))



@dataclass(frozen=True)
class CompactEntry:
    """One function's row: ``[start, end)`` as module RVAs, its encoding, LSDA and personality."""

    start: int
    end: int
    encoding: int
    lsda: int | None = None  # RVA of the language-specific data area
    personality: int | None = None  # RVA of the personality pointer (a GOT slot)


@dataclass
class CompactRule:
    """What an encoding says, by CPU (names as in compact_unwind_encoding.h):

    * ``frame``: an RBP/FP frame; ``saved`` lists (register, offset from the frame pointer)
      (x86_64: RBP - 8*offset upward; arm64: the pairs below the frame record);
    * ``frameless``: ``stack_size`` bytes (x86_64: with the return address; arm64: the caller's
      PC is LR), ``saved`` as (register, offset from the callee's stack pointer);
      x86_64 ``STACK_IND`` gives the size through ``stack_size_at`` (offset of the ``sub``
      immediate in the function) plus ``stack_adjust``;
    * ``dwarf``: the FDE at ``dwarf_offset`` in ``__eh_frame``;
    * ``none``: no unwind information (encoding 0)."""

    kind: str
    stack_size: int = 0
    stack_size_at: int | None = None
    stack_adjust: int = 0
    saved: list[tuple[str, int]] = field(default_factory=list)
    dwarf_offset: int | None = None
    frame_offset: int = 0  # x86_64 RBP frame: where the saved registers start, in words below RBP


def _permutation(count: int, permutation: int) -> list[int]:
    """The UNWIND_X86_64_FRAMELESS_STACK_REG_PERMUTATION field decoded to register numbers 1-6,
    in the order they were pushed (a Lehmer code over the six callee-saved registers)."""
    radices = {6: (120, 24, 6, 2, 1), 5: (120, 24, 6, 2, 1), 4: (60, 12, 3, 1), 3: (20, 4, 1), 2: (5, 1), 1: (1,)}
    digits = []
    for radix in radices.get(count, ())[:count]:
        digits.append(permutation // radix)
        permutation -= digits[-1] * radix
    while len(digits) < count:
        digits.append(0)
    used: set[int] = set()
    out = []
    for digit in digits:
        free = [r for r in range(1, 7) if r not in used]
        if digit >= len(free):
            raise FormatError(f"compact unwind register permutation digit {digit} is out of range")
        out.append(free[digit])
        used.add(free[digit])
    return out


def decode_x86_64(encoding: int) -> CompactRule:
    mode = encoding & UNWIND_MODE_MASK
    if encoding & ~(UNWIND_IS_NOT_FUNCTION_START | UNWIND_HAS_LSDA | UNWIND_PERSONALITY_MASK) == 0:
        return CompactRule("none")
    if mode == UNWIND_X86_64_MODE_RBP_FRAME:
        offset = (encoding & UNWIND_X86_64_RBP_FRAME_OFFSET) >> 16
        regs = encoding & UNWIND_X86_64_RBP_FRAME_REGISTERS
        saved = []
        for i in range(5):
            number = (regs >> (3 * i)) & 7
            if number == 0:
                continue
            if number > 6:
                raise FormatError(f"compact unwind encoding {encoding:#010x}: register number {number}")
            saved.append((X86_64_COMPACT_REGISTERS[number], -8 * offset + 8 * i))
        return CompactRule("frame", saved=saved, frame_offset=offset)
    if mode in (UNWIND_X86_64_MODE_STACK_IMMD, UNWIND_X86_64_MODE_STACK_IND):
        size = (encoding & UNWIND_X86_64_FRAMELESS_STACK_SIZE) >> 16
        adjust = (encoding & UNWIND_X86_64_FRAMELESS_STACK_ADJUST) >> 13
        count = (encoding & UNWIND_X86_64_FRAMELESS_STACK_REG_COUNT) >> 10
        if count > 6:
            raise FormatError(f"compact unwind encoding {encoding:#010x}: {count} saved registers")
        numbers = _permutation(count, encoding & UNWIND_X86_64_FRAMELESS_STACK_REG_PERMUTATION)
        # Saved registers sit right below the return address, first pushed highest; the
        # offsets here are from the stack top + stack size (where the return address ends).
        saved = [(X86_64_COMPACT_REGISTERS[n], -8 - 8 * (count - i)) for i, n in enumerate(numbers)]
        if mode == UNWIND_X86_64_MODE_STACK_IMMD:
            return CompactRule("frameless", stack_size=size * 8, saved=saved)
        return CompactRule("frameless", stack_size_at=size, stack_adjust=adjust * 8, saved=saved)
    if mode == UNWIND_X86_64_MODE_DWARF:
        return CompactRule("dwarf", dwarf_offset=encoding & UNWIND_X86_64_DWARF_SECTION_OFFSET)
    raise FormatError(f"compact unwind encoding {encoding:#010x}: unknown x86_64 mode {mode >> 24}")


def decode_arm64(encoding: int) -> CompactRule:
    mode = encoding & UNWIND_MODE_MASK
    if encoding & ~(UNWIND_IS_NOT_FUNCTION_START | UNWIND_HAS_LSDA | UNWIND_PERSONALITY_MASK) == 0:
        return CompactRule("none")
    if mode == UNWIND_ARM64_MODE_DWARF:
        return CompactRule("dwarf", dwarf_offset=encoding & UNWIND_ARM64_DWARF_SECTION_OFFSET)
    if mode not in (UNWIND_ARM64_MODE_FRAME, UNWIND_ARM64_MODE_FRAMELESS):
        raise FormatError(f"compact unwind encoding {encoding:#010x}: unknown arm64 mode {mode >> 24}")
    # Pairs are stored downward from the top of the frame (below FP/LR for a frame, from
    # SP + stack size for a frameless function): first register of a pair higher.
    saved = []
    slot = -8
    for bit, (first, second) in ARM64_PAIRS:
        if encoding & bit:
            saved += [(first, slot), (second, slot - 8)]
            slot -= 16
    if mode == UNWIND_ARM64_MODE_FRAME:
        return CompactRule("frame", saved=saved)
    size = ((encoding & UNWIND_ARM64_FRAMELESS_STACK_SIZE_MASK) >> 12) * 16
    return CompactRule("frameless", stack_size=size, saved=saved)


DECODERS = {"x86_64": decode_x86_64, "arm64": decode_arm64}


class CompactUnwindInfo:
    """The ``__unwind_info`` section's bytes, looked up by RVA."""

    def __init__(self, data: bytes, path: str = "<__unwind_info>"):
        self.data = data
        self.path = path
        if len(data) < UNWIND_INFO_HEADER.size:
            raise FormatError(f"__unwind_info of {len(data)} bytes is too small for its header", path)
        (version, self.common_offset, self.common_count, self.personality_offset, self.personality_count,
         self.index_offset, self.index_count) = UNWIND_INFO_HEADER.unpack_from(data, 0)
        if version != UNWIND_SECTION_VERSION:
            raise FormatError(f"__unwind_info version {version} (only 1 is known)", path)
        self._table(self.common_offset, self.common_count, 4, "common encodings")
        self._table(self.personality_offset, self.personality_count, 4, "personalities")
        self._table(self.index_offset, self.index_count, INDEX_ENTRY.size, "first-level index")
        if self.common_count > 127:
            raise FormatError(f"__unwind_info: {self.common_count} common encodings (at most 127)", path)

    def _table(self, offset: int, count: int, size: int, what: str) -> None:
        if offset > len(self.data) or count * size > len(self.data) - offset:
            raise FormatError(f"__unwind_info: {what} ({count} at {offset:#x}) run past the section "
                              f"({len(self.data)} bytes)", self.path)

    def _u32(self, offset: int) -> int:
        return U32.unpack_from(self.data, offset)[0]

    def common_encodings(self) -> list[int]:
        return [self._u32(self.common_offset + 4 * k) for k in range(self.common_count)]

    def personalities(self) -> list[int]:
        """RVAs of the personality pointers (personality index 1 is the first)."""
        return [self._u32(self.personality_offset + 4 * k) for k in range(self.personality_count)]

    def index(self) -> list[tuple[int, int, int]]:
        """The first-level entries: (function offset, page offset, LSDA index offset)."""
        return [INDEX_ENTRY.unpack_from(self.data, self.index_offset + INDEX_ENTRY.size * k)
                for k in range(self.index_count)]

    def lsdas(self) -> list[tuple[int, int]]:
        """(function offset, LSDA offset) of every LSDA index entry: from the first index entry's
        LSDA offset to the last (sentinel) entry's."""
        if self.index_count == 0:
            return []
        first = self.index()[0][2]
        last = self.index()[-1][2]
        if last < first:
            raise FormatError("__unwind_info: LSDA index ends before it starts", self.path)
        self._table(first, (last - first) // LSDA_ENTRY.size, LSDA_ENTRY.size, "LSDA index")
        return [LSDA_ENTRY.unpack_from(self.data, off) for off in range(first, last - LSDA_ENTRY.size + 1,
                                                                          LSDA_ENTRY.size)]

    def _page_header(self, page_offset: int) -> tuple[int, int, int, int, int]:
        """(kind, entry offset, entry count, encodings offset, encodings count) of a second-level
        page, every table checked against the section."""
        if page_offset + 4 > len(self.data):
            raise FormatError(f"__unwind_info: second-level page at {page_offset:#x} runs past the section",
                              self.path)
        kind = self._u32(page_offset)
        header = REGULAR_PAGE_HEADER if kind == UNWIND_SECOND_LEVEL_REGULAR else COMPRESSED_PAGE_HEADER
        if kind not in (UNWIND_SECOND_LEVEL_REGULAR, UNWIND_SECOND_LEVEL_COMPRESSED):
            raise FormatError(f"__unwind_info: second-level page at {page_offset:#x} of unknown kind {kind}",
                              self.path)
        if page_offset + header.size > len(self.data):
            raise FormatError(f"__unwind_info: page header at {page_offset:#x} is cut short", self.path)
        if kind == UNWIND_SECOND_LEVEL_REGULAR:
            _k, entry_offset, count = header.unpack_from(self.data, page_offset)
            self._table(page_offset + entry_offset, count, REGULAR_ENTRY.size, "regular page")
            return kind, page_offset + entry_offset, count, 0, 0
        _k, entry_offset, count, enc_offset, enc_count = header.unpack_from(self.data, page_offset)
        self._table(page_offset + entry_offset, count, 4, "compressed page")
        self._table(page_offset + enc_offset, enc_count, 4, "page encodings")
        return kind, page_offset + entry_offset, count, page_offset + enc_offset, enc_count

    def _page_entry(self, header: tuple[int, int, int, int, int], k: int, base: int) -> tuple[int, int]:
        """(function offset, encoding) of entry ``k`` of a page (``base``: its first-level function offset)."""
        kind, entries, _count, encodings, enc_count = header
        if kind == UNWIND_SECOND_LEVEL_REGULAR:
            return REGULAR_ENTRY.unpack_from(self.data, entries + REGULAR_ENTRY.size * k)
        word = self._u32(entries + 4 * k)
        index = word >> 24
        if index < self.common_count:
            encoding = self._u32(self.common_offset + 4 * index)
        elif index - self.common_count < enc_count:
            encoding = self._u32(encodings + 4 * (index - self.common_count))
        else:
            raise FormatError(f"__unwind_info: page entry {k} names encoding {index} of "
                              f"{self.common_count + enc_count}", self.path)
        return base + (word & 0x00FFFFFF), encoding

    def _decode_page(self, page_offset: int, base: int) -> tuple[int, list[int], list[int]]:
        """(kind, function offsets, encodings) of every entry of the page at ``page_offset``."""
        header = self._page_header(page_offset)
        pairs = [self._page_entry(header, k, base) for k in range(header[2])]
        return header[0], [p[0] for p in pairs], [p[1] for p in pairs]

    def _lsda_for(self, lsda_start: int, lsda_end: int, function: int) -> int | None:
        count = max(lsda_end - lsda_start, 0) // LSDA_ENTRY.size
        if count == 0:
            return None
        self._table(lsda_start, count, LSDA_ENTRY.size, "LSDA index")
        lo, hi = 0, count
        while lo < hi:
            mid = (lo + hi) // 2
            f, lsda = LSDA_ENTRY.unpack_from(self.data, lsda_start + mid * LSDA_ENTRY.size)
            if f == function:
                return lsda
            if f < function:
                lo = mid + 1
            else:
                hi = mid
        return None

    def _personality(self, encoding: int) -> int | None:
        index = (encoding & UNWIND_PERSONALITY_MASK) >> 28
        if index == 0:
            return None
        if index > self.personality_count:
            raise FormatError(f"__unwind_info: personality {index} of {self.personality_count}", self.path)
        return self._u32(self.personality_offset + 4 * (index - 1))

    def _entry(self, start: int, end: int, encoding: int, lsda: tuple[int, int]) -> CompactEntry:
        lsda_rva = self._lsda_for(lsda[0], lsda[1], start) if encoding & UNWIND_HAS_LSDA else None
        return CompactEntry(start, max(end, start), encoding, lsda_rva, self._personality(encoding))

    def lookup(self, rva: int) -> CompactEntry | None:
        """The entry covering ``rva`` (None: before the first function, past the sentinel, or in a
        page with no entry at or before it)."""
        count = self.index_count
        if count < 2:
            return None
        lo, hi = 0, count - 2  # the last entry is the sentinel: never a page of its own
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if INDEX_ENTRY.unpack_from(self.data, self.index_offset + INDEX_ENTRY.size * mid)[0] <= rva:
                lo = mid
            else:
                hi = mid - 1
        first, page, lsda_start = INDEX_ENTRY.unpack_from(self.data, self.index_offset + INDEX_ENTRY.size * lo)
        next_first, _p, lsda_end = INDEX_ENTRY.unpack_from(self.data, self.index_offset + INDEX_ENTRY.size * (lo + 1))
        if rva < first or rva >= next_first or page == 0:
            return None
        # Binary search in the page's own bytes: a lookup reads O(log n) entries, never a whole page.
        header = self._page_header(page)
        lo, hi = 0, header[2]
        while lo < hi:
            mid = (lo + hi) // 2
            if rva < self._page_entry(header, mid, first)[0]:
                hi = mid
            else:
                lo = mid + 1
        if lo == 0:
            return None
        start, encoding = self._page_entry(header, lo - 1, first)
        end = self._page_entry(header, lo, first)[0] if lo < header[2] else next_first
        return self._entry(start, end, encoding, (lsda_start, lsda_end))

    def entries(self) -> list[CompactEntry]:
        """Every second-level entry in order (for listings and tests)."""
        out: list[CompactEntry] = []
        index = self.index()
        for k in range(len(index) - 1):
            first, page, lsda_start = index[k]
            next_first, _p, lsda_end = index[k + 1]
            if page == 0:
                continue
            _kind, offsets, encodings = self._decode_page(page, first)
            ends = offsets[1:] + [next_first]
            out += [self._entry(start, end, encoding, (lsda_start, lsda_end))
                    for start, end, encoding in zip(offsets, ends, encodings)]
        return out

    def page_kinds(self) -> list[tuple[int, int, int]]:
        """(page offset, kind, entry count) of every second-level page."""
        out = []
        for first, page, _lsda in self.index()[:-1]:
            if page:
                kind, _entries, count, _enc, _n = self._page_header(page)
                out.append((page, kind, count))
        return out


__all__ = ["CompactUnwindInfo", "CompactEntry", "CompactRule", "decode_x86_64", "decode_arm64", "DECODERS",
           "UNWIND_HAS_LSDA", "UNWIND_X86_64_MODE_RBP_FRAME", "UNWIND_X86_64_MODE_STACK_IMMD",
           "UNWIND_X86_64_MODE_STACK_IND", "UNWIND_X86_64_MODE_DWARF", "UNWIND_ARM64_MODE_FRAME",
           "UNWIND_ARM64_MODE_FRAMELESS", "UNWIND_ARM64_MODE_DWARF"]

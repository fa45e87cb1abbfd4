"""ARM64 unwind data of a PE image: the 8-byte ``.pdata`` entries, packed unwind data
(Flag 1 and 2) with the canonical prologue it stands for, and full ``.xdata`` records
(header, extended header, epilog scopes, unwind codes, exception handler RVA).

Facts from Microsoft's "ARM64 exception handling" documentation; the layouts are declared
once below.  An unwind code is one instruction of a prologue or epilogue, stored in the
order the unwinder undoes them; the codes of one sequence end at ``end`` (``end_c`` ends a
fragment's own codes and is followed by its parent's "phantom" prologue, which ends at
``end``).  Nothing is trusted: counts are checked against the bytes that hold them, every
read is bounded by the image's sections, reserved and custom-stack codes raise
FormatError, and decoding one sequence never looks past the record's code bytes.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError
from symtool.formats.pe_unwind import (DIRECTORY_EXCEPTION, IMAGE_FILE_MACHINE_ARM64, MAX_FUNCTIONS, PeUnwindImage,
                                       parse_pe_unwind, read_image_file)

# IMAGE_ARM64_RUNTIME_FUNCTION_ENTRY: BeginAddress, then UnwindData (an .xdata RVA when Flag = 0)
# or packed unwind data: Flag:2 FunctionLength:11 RegF:3 RegI:4 H:1 CR:2 FrameSize:9 (low bits first).
RUNTIME_FUNCTION_ARM64 = struct.Struct("<II")
# .xdata header word: FunctionLength:18 Vers:2 X:1 E:1 EpilogCount:5 CodeWords:5; when EpilogCount
# and CodeWords are both 0, an extension word follows: ExtendedEpilogCount:16 ExtendedCodeWords:8.
# An epilog scope word: EpilogStartOffset:18 Res:4 EpilogStartIndex:10.  The handler RVA is one word.
XDATA_WORD = struct.Struct("<I")

FLAG_XDATA = 0
FLAG_PACKED = 1
FLAG_PACKED_FRAGMENT = 2  # packed data for code with no prologue or epilogue of its own

# Register numbers as the unwinder keeps them: x0..x28, 29 is fp, 30 is lr; FP registers d0..d31.
LR = 30
FP = 29


@dataclass(frozen=True)
class Arm64UnwindCode:
    """One unwind code: ``op`` its documented name; ``reg`` the first register it saves (19..30
    for integer ops, 29 for the fp/lr pair, 8..15 for the FP ops); ``offset`` the stack offset
    it saves at, or for ``alloc_*`` the bytes allocated, for ``*_x`` the pre-decrement of SP,
    for ``add_fp`` the distance from SP to x29 (all in bytes)."""

    op: str
    length: int  # encoded size in bytes
    reg: int = 0
    offset: int = 0

    @property
    def is_end(self) -> bool:
        return self.op == "end"

    @property
    def is_fp_register(self) -> bool:
        return self.op.startswith("save_freg")


# Custom-stack codes (asm routines: trap frame, machine frame, context, EC context, clear
# unwound-to-call) and reserved ones are rejected with their documented meaning.
CUSTOM_STACK = {0xE8: "MSFT_OP_TRAP_FRAME", 0xE9: "MSFT_OP_MACHINE_FRAME", 0xEA: "MSFT_OP_CONTEXT",
                0xEB: "MSFT_OP_EC_CONTEXT", 0xEC: "MSFT_OP_CLEAR_UNWOUND_TO_CALL"}


def decode_code(data: bytes, i: int) -> Arm64UnwindCode:
    """The unwind code at byte ``i`` of ``data`` (FormatError: truncated, reserved or custom)."""
    b = data[i]

    def more(n: int) -> int:
        if i + n >= len(data):
            raise FormatError(f"unwind code {b:#04x} at byte {i} runs past the {len(data)} code bytes")
        return int.from_bytes(data[i + 1:i + 1 + n], "big")

    if b < 0x20:
        return Arm64UnwindCode("alloc_s", 1, 0, (b & 0x1F) * 16)
    if b < 0x40:
        return Arm64UnwindCode("save_r19r20_x", 1, 19, (b & 0x1F) * 8)
    if b < 0x80:
        return Arm64UnwindCode("save_fplr", 1, FP, (b & 0x3F) * 8)
    if b < 0xC0:
        return Arm64UnwindCode("save_fplr_x", 1, FP, ((b & 0x3F) + 1) * 8)
    if b < 0xE0:
        word = b << 8 | more(1)
        if b < 0xC8:  # 11000xxx'xxxxxxxx
            return Arm64UnwindCode("alloc_m", 2, 0, (word & 0x7FF) * 16)
        x, z = (word >> 6) & 0xF, word & 0x3F
        if b < 0xCC:  # 110010xx'xxzzzzzz
            return Arm64UnwindCode("save_regp", 2, 19 + x, z * 8)
        if b < 0xD0:  # 110011xx'xxzzzzzz
            return Arm64UnwindCode("save_regp_x", 2, 19 + x, (z + 1) * 8)
        if b < 0xD4:  # 110100xx'xxzzzzzz
            return Arm64UnwindCode("save_reg", 2, 19 + x, z * 8)
        if b < 0xD6:  # 1101010x'xxxzzzzz
            return Arm64UnwindCode("save_reg_x", 2, 19 + ((word >> 5) & 0xF), ((word & 0x1F) + 1) * 8)
        x3 = (word >> 6) & 0x7
        if b < 0xD8:  # 1101011x'xxzzzzzz
            return Arm64UnwindCode("save_lrpair", 2, 19 + 2 * x3, z * 8)
        if b < 0xDA:  # 1101100x'xxzzzzzz
            return Arm64UnwindCode("save_fregp", 2, 8 + x3, z * 8)
        if b < 0xDC:  # 1101101x'xxzzzzzz
            return Arm64UnwindCode("save_fregp_x", 2, 8 + x3, (z + 1) * 8)
        if b < 0xDE:  # 1101110x'xxzzzzzz
            return Arm64UnwindCode("save_freg", 2, 8 + x3, z * 8)
        if b == 0xDE:  # 11011110'xxxzzzzz
            return Arm64UnwindCode("save_freg_x", 2, 8 + ((word >> 5) & 0x7), ((word & 0x1F) + 1) * 8)
        raise FormatError(f"reserved unwind code {b:#04x}")
    if b == 0xE0:
        return Arm64UnwindCode("alloc_l", 4, 0, more(3) * 16)
    if b == 0xE1:
        return Arm64UnwindCode("set_fp", 1, FP, 0)
    if b == 0xE2:
        return Arm64UnwindCode("add_fp", 2, FP, more(1) * 8)
    simple = {0xE3: "nop", 0xE4: "end", 0xE5: "end_c", 0xE6: "save_next", 0xFC: "pac_sign_lr"}
    if b in simple:
        return Arm64UnwindCode(simple[b], 1)
    if b in CUSTOM_STACK:
        raise FormatError(f"unwind code {b:#04x} ({CUSTOM_STACK[b]}, a custom stack of an assembly routine) "
                          "is not supported")
    raise FormatError(f"reserved unwind code {b:#04x}")


def decode_sequence(data: bytes, start: int) -> list[Arm64UnwindCode]:
    """The codes from byte ``start`` to ``end`` (an ``end_c`` is kept and decoding goes on
    into the parent's codes).  A sequence that runs off the bytes without ``end`` ends there,
    as the bytes after the last code are padding."""
    if not 0 <= start <= len(data):
        raise FormatError(f"unwind code index {start} is outside the {len(data)} code bytes")
    codes: list[Arm64UnwindCode] = []
    i = start
    while i < len(data):  # each step consumes at least one byte: bounded by len(data)
        code = decode_code(data, i)
        codes.append(code)
        i += code.length
        if code.is_end:
            break
    return codes


def prolog_instruction_count(codes: list[Arm64UnwindCode]) -> int:
    """Instructions in the prologue that ``codes`` (from index 0) describe: one per code before
    the first ``end`` or ``end_c``."""
    n = 0
    for code in codes:
        if code.op in ("end", "end_c"):
            break
        n += 1
    return n


@dataclass(frozen=True)
class PackedUnwind:
    """The fields of packed unwind data (Flag 1 or 2)."""

    flag: int
    function_length: int  # bytes
    reg_f: int
    reg_i: int
    homed: bool  # H
    cr: int
    frame_size: int  # bytes

    @classmethod
    def from_word(cls, word: int) -> "PackedUnwind":
        return cls(word & 3, ((word >> 2) & 0x7FF) * 4, (word >> 13) & 7, (word >> 16) & 0xF, bool((word >> 20) & 1),
                   (word >> 21) & 3, ((word >> 23) & 0x1FF) * 16)

    def canonical_codes(self) -> list[Arm64UnwindCode]:
        """The unwind codes of the canonical prologue this data stands for, in unwind order and
        ending with ``end``."""
        if self.cr == 1 and self.reg_i == 1:
            raise FormatError("packed unwind data with CR=1 and RegI=1 has no canonical prologue")
        if self.reg_i > 10:
            raise FormatError(f"packed unwind data saves {self.reg_i} integer registers (x19..x28 are 10)")
        int_size = 8 * self.reg_i + (8 if self.cr == 1 else 0)
        fp_size = 8 * (self.reg_f + 1) if self.reg_f else 0
        save_size = (int_size + fp_size + 64 * self.homed + 15) & ~15
        local_size = self.frame_size - save_size
        if local_size < 0:
            raise FormatError(f"packed unwind data: frame of {self.frame_size} bytes is smaller than its "
                              f"{save_size}-byte save area")
        chained = self.cr in (2, 3)
        codes: list[Arm64UnwindCode] = []
        if chained:
            codes.append(Arm64UnwindCode("set_fp", 1, FP, 0))
            codes.append(Arm64UnwindCode("save_fplr_x", 1, FP, local_size) if local_size <= 512
                         else Arm64UnwindCode("save_fplr", 1, FP, 0))
        if local_size > 4080:
            codes.append(_alloc(local_size - 4080))
            codes.append(_alloc(4080))
        elif (not chained and local_size > 0) or local_size > 512:
            codes.append(_alloc(local_size))
        if self.homed:
            predecrement = not (self.reg_i or self.reg_f or self.cr == 1)
            codes += [Arm64UnwindCode("nop", 1)] * 3
            # stp x0, x1, [sp, #-savsz]! when nothing before it moved SP: an allocation to undo.
            codes.append(_alloc(save_size) if predecrement else Arm64UnwindCode("nop", 1))
        float_regs = self.reg_f + 1 if self.reg_f else 0
        pairs = (float_regs + 1) // 2
        for k in range(pairs - 1, -1, -1):
            if k == pairs - 1 and float_regs % 2:
                codes.append(Arm64UnwindCode("save_freg", 2, 8 + 2 * k, int_size + 16 * k))
            elif k == 0 and self.reg_i == 0 and self.cr != 1:
                codes.append(Arm64UnwindCode("save_fregp_x", 2, 8, save_size))
            else:
                codes.append(Arm64UnwindCode("save_fregp", 2, 8 + 2 * k, int_size + 16 * k))
        if self.cr == 1 and self.reg_i % 2 == 0:
            codes.append(Arm64UnwindCode("save_reg_x", 2, LR, save_size) if self.reg_i == 0
                         else Arm64UnwindCode("save_reg", 2, LR, int_size - 8))
        int_pairs = (self.reg_i + 1) // 2
        for k in range(int_pairs - 1, -1, -1):
            if k == int_pairs - 1 and self.reg_i % 2:
                if self.cr == 1:
                    codes.append(Arm64UnwindCode("save_lrpair", 2, 19 + 2 * k, 16 * k))
                elif k == 0:
                    codes.append(Arm64UnwindCode("save_reg_x", 2, 19, save_size))
                else:
                    codes.append(Arm64UnwindCode("save_reg", 2, 19 + 2 * k, 16 * k))
            elif k == 0:
                codes.append(Arm64UnwindCode("save_regp_x", 2, 19, save_size))
            else:
                codes.append(Arm64UnwindCode("save_regp", 2, 19 + 2 * k, 16 * k))
        if self.cr == 2:
            codes.append(Arm64UnwindCode("pac_sign_lr", 1))
        codes.append(Arm64UnwindCode("end", 1))
        return codes


def _alloc(size: int) -> Arm64UnwindCode:
    if size < 512:
        return Arm64UnwindCode("alloc_s", 1, 0, size)
    if size < 32768:
        return Arm64UnwindCode("alloc_m", 2, 0, size)
    return Arm64UnwindCode("alloc_l", 4, 0, size)


@dataclass(frozen=True)
class Arm64Epilog:
    start: int  # byte offset from the function's start
    index: int  # byte index of its first unwind code


@dataclass
class Arm64UnwindInfo:
    """How to unwind one function (or fragment), from packed data or an .xdata record."""

    rva: int | None  # the .xdata record's RVA (None: packed)
    function_length: int  # bytes
    flag: int
    version: int = 0
    has_handler: bool = False  # X
    packed_epilog: bool = False  # E: one epilog, its first code at ``epilog_index``
    epilog_index: int = 0
    epilogs: list[Arm64Epilog] = field(default_factory=list)
    code_bytes: bytes = b""
    handler_rva: int | None = None
    packed: PackedUnwind | None = None
    _prolog: list[Arm64UnwindCode] | None = None
    _epilog_codes: dict[int, list[Arm64UnwindCode]] = field(default_factory=dict)

    @property
    def prolog_codes(self) -> list[Arm64UnwindCode]:
        """The codes from index 0 to ``end``: the whole prologue (and any phantom parent prologue
        after ``end_c``), undone from a fault in the body."""
        if self._prolog is None:
            self._prolog = self.packed.canonical_codes() if self.packed is not None else \
                decode_sequence(self.code_bytes, 0)
        return self._prolog

    @property
    def prolog_instructions(self) -> int:
        if self.flag == FLAG_PACKED_FRAGMENT:
            return 0
        return prolog_instruction_count(self.prolog_codes)

    def epilog_sequence(self, index: int) -> list[Arm64UnwindCode]:
        codes = self._epilog_codes.get(index)
        if codes is None:
            codes = self._epilog_codes[index] = decode_sequence(self.code_bytes, index)
        return codes

    def epilog_at(self, offset: int) -> tuple[int, list[Arm64UnwindCode]] | None:
        """(instructions of the epilogue already run, its codes) when byte ``offset`` of the
        function is inside an epilogue; the epilogue's last instruction is the return that
        ``end`` stands for."""
        if self.flag == FLAG_PACKED_FRAGMENT:
            return None
        if self.packed is not None:
            # The canonical epilogue: the prologue undone, without `mov x29, sp` and the homing
            # stores (H), ending the function.
            codes = [c for c in self.prolog_codes if c.op not in ("set_fp", "nop")]
            start = self.function_length - 4 * len(codes)
        elif self.packed_epilog:
            codes = self.epilog_sequence(self.epilog_index)
            start = self.function_length - 4 * _instructions(codes)  # E: the one epilogue ends the function
        else:
            k = bisect.bisect_right(self.epilogs, offset, key=lambda e: e.start) - 1
            if k < 0:
                return None
            start = self.epilogs[k].start
            codes = self.epilog_sequence(self.epilogs[k].index)
        if start <= offset < start + 4 * _instructions(codes):
            return (offset - start) // 4, codes
        return None


def _instructions(codes: list[Arm64UnwindCode]) -> int:
    """Instructions of an epilogue: one per code (end_c has none), ``end`` being the return."""
    return sum(1 for c in codes if c.op != "end_c")


def parse_xdata(read_rva, rva: int, path: str = "<bytes>") -> Arm64UnwindInfo:
    """The .xdata record at ``rva``; ``read_rva(rva, size)`` gives image bytes or None."""
    def word(at: int, what: str) -> int:
        raw = read_rva(at, 4)
        if raw is None:
            raise FormatError(f".xdata at RVA {rva:#x}: {what} is outside the image's sections", path)
        return XDATA_WORD.unpack(raw)[0]

    if rva % 4:
        raise FormatError(f".xdata at RVA {rva:#x} is not 4-byte aligned", path)
    head = word(rva, "the header")
    length = (head & 0x3FFFF) * 4
    version, x, e = (head >> 18) & 3, (head >> 20) & 1, (head >> 21) & 1
    epilog_count, code_words = (head >> 22) & 0x1F, (head >> 27) & 0x1F
    at = rva + 4
    if epilog_count == 0 and code_words == 0:
        ext = word(at, "the extended header")
        epilog_count, code_words = ext & 0xFFFF, (ext >> 16) & 0xFF
        at += 4
    if version != 0:
        raise FormatError(f".xdata at RVA {rva:#x}: unknown version {version}", path)
    if not e and epilog_count > length // 4:
        # Each scope starts at its own instruction: more scopes than instructions is no record (and
        # would make this reader read words the function cannot justify).
        raise FormatError(f".xdata at RVA {rva:#x}: {epilog_count} epilog scopes in a function of "
                          f"{length // 4} instructions", path)
    info = Arm64UnwindInfo(rva, length, FLAG_XDATA, version, bool(x), bool(e))
    if e:
        info.epilog_index = epilog_count
    else:
        raw = read_rva(at, 4 * epilog_count) if epilog_count else b""
        if raw is None:
            raise FormatError(f".xdata at RVA {rva:#x}: {epilog_count} epilog scopes run off the section", path)
        for (scope,) in XDATA_WORD.iter_unpack(raw):
            start, reserved, index = (scope & 0x3FFFF) * 4, (scope >> 18) & 0xF, scope >> 22
            if reserved:
                raise FormatError(f".xdata at RVA {rva:#x}: epilog scope with reserved bits {reserved:#x}", path)
            info.epilogs.append(Arm64Epilog(start, index))
        if any(a.start > b.start for a, b in zip(info.epilogs, info.epilogs[1:])):
            raise FormatError(f".xdata at RVA {rva:#x}: epilog scopes are not in order of their start", path)
        at += 4 * epilog_count
    code = read_rva(at, 4 * code_words) if code_words else b""
    if code is None:
        raise FormatError(f".xdata at RVA {rva:#x}: {code_words} code words run off the section", path)
    info.code_bytes = code
    at += 4 * code_words
    if e and info.epilog_index >= max(len(code), 1):
        raise FormatError(f".xdata at RVA {rva:#x}: epilog code index {info.epilog_index} is past the "
                          f"{len(code)} code bytes", path)
    for epilog in info.epilogs:
        if epilog.index >= len(code) or epilog.start >= length:
            raise FormatError(f".xdata at RVA {rva:#x}: epilog scope (offset {epilog.start}, index "
                              f"{epilog.index}) is outside the function or its codes", path)
    if x:
        info.handler_rva = word(at, "the exception handler RVA")
    return info


@dataclass
class Arm64PeUnwindImage(PeUnwindImage):
    """A PE image's headers and its ARM64 ``.pdata``: sorted (BeginAddress, UnwindData) words."""

    arm64_entries: list[tuple[int, int]] = field(default_factory=list)
    _arm64_infos: dict[int, Arm64UnwindInfo] = field(default_factory=dict)

    def function_at(self, rva: int) -> tuple[int, int, int] | None:
        """(begin, end, unwind word) of the entry covering ``rva`` (None: a leaf without .pdata).
        FormatError when the entry's unwind data cannot be read."""
        found = self._covering(rva)
        if found is None:
            return None
        i, info = found
        begin, word = self.arm64_entries[i]
        return begin, begin + info.function_length, word

    def unwind_info_for(self, i: int) -> Arm64UnwindInfo:
        info = self._arm64_infos.get(i)
        if info is None:
            info = self._arm64_infos[i] = decode_entry(self.arm64_entries[i][1], self.read_rva, self.path)
        return info

    def arm64_unwind_info(self, rva: int) -> tuple[int, Arm64UnwindInfo] | None:
        """(function begin, unwind info) of the function covering ``rva``."""
        found = self._covering(rva)
        return None if found is None else (self.arm64_entries[found[0]][0], found[1])

    def _covering(self, rva: int) -> tuple[int, Arm64UnwindInfo] | None:
        """(entry index, unwind info) of the last entry starting at or below ``rva`` if its
        function's length reaches ``rva``."""
        i = bisect.bisect_right(self._begins, rva) - 1
        if i < 0:
            return None
        info = self.unwind_info_for(i)
        return (i, info) if rva < self.arm64_entries[i][0] + info.function_length else None


def decode_entry(word: int, read_rva, path: str = "<bytes>") -> Arm64UnwindInfo:
    """The unwind info of a .pdata entry whose second word is ``word``."""
    flag = word & 3
    if flag == FLAG_XDATA:
        return parse_xdata(read_rva, word, path)
    if flag == 3:
        raise FormatError(f".pdata entry with reserved flag 3 (word {word:#010x})", path)
    packed = PackedUnwind.from_word(word)
    # The codes now: impossible packed data is rejected here, not in the middle of a walk.
    return Arm64UnwindInfo(None, packed.function_length, flag, packed=packed, _prolog=packed.canonical_codes())


def attach_arm64_pdata(image: PeUnwindImage, ex_rva: int, ex_size: int) -> Arm64PeUnwindImage:
    """``image`` with its ARM64 exception directory read: sorted 8-byte entries."""
    count = ex_size // RUNTIME_FUNCTION_ARM64.size
    if count > MAX_FUNCTIONS:
        raise FormatError(f"exception directory of {ex_size} bytes is implausible", image.path)
    raw = image.read_rva(ex_rva, count * RUNTIME_FUNCTION_ARM64.size) if count else b""
    if raw is None:
        raise FormatError("exception directory runs outside the image's sections", image.path)
    entries = sorted(set(RUNTIME_FUNCTION_ARM64.iter_unpack(raw)))
    out = Arm64PeUnwindImage(**{f: getattr(image, f) for f in image.__dataclass_fields__})
    out.arm64_entries = entries
    out._begins = [e[0] for e in entries]
    out.functions = []
    return out


def parse_pe_unwind_any(data: bytes, path: str = "<bytes>") -> PeUnwindImage:
    """``parse_pe_unwind``, with an ARM64 image's .pdata read as ARM64 entries."""
    image = parse_pe_unwind(data, path)
    if image.machine != IMAGE_FILE_MACHINE_ARM64:
        return image
    ex_rva, ex_size = image.exception_directory
    return attach_arm64_pdata(image, ex_rva, ex_size)


def read_pe_unwind_any(path: str | os.PathLike[str], max_size: int = 1 << 30) -> PeUnwindImage:
    """``read_pe_unwind`` for any machine: ARM64 images come back as :class:`Arm64PeUnwindImage`."""
    data, p = read_image_file(path, max_size)
    return parse_pe_unwind_any(data, p)


__all__ = ["Arm64UnwindCode", "Arm64UnwindInfo", "Arm64Epilog", "Arm64PeUnwindImage", "PackedUnwind",
           "decode_code", "decode_sequence", "decode_entry", "parse_xdata", "parse_pe_unwind_any",
           "read_pe_unwind_any", "attach_arm64_pdata", "IMAGE_FILE_MACHINE_ARM64", "DIRECTORY_EXCEPTION"]

"""DWARF call frame information: ``.eh_frame`` (with its ``.eh_frame_hdr``
search table) and ``.debug_frame``, read into the unwind row of one address.

What is read (DWARF 2-5 CFI, the LSB "Exception Frames" extension):

* CIEs (versions 1, 3, 4) and FDEs, 32- and 64-bit lengths; augmentation
  strings ``z`` with ``R`` (FDE pointer encoding), ``P`` (personality),
  ``L`` (LSDA), ``S`` (signal frame) -- ``zR``, ``zPLR``, ``zRS`` and so on;
  ``eh`` (the old GCC form) is refused, unknown letters after ``z`` are
  skipped with the augmentation data;
* ``DW_EH_PE_*`` pointer encodings: absptr, (s|u)data2/4/8, (s|u)leb128,
  relative to the pointer (pcrel), the section (datarel: ``.eh_frame_hdr``),
  ``indirect`` is refused (it needs process memory);
* the ``.eh_frame_hdr`` binary-search table, when present and sorted;
  otherwise every FDE is indexed once, on first lookup;
* every ``DW_CFA_*`` instruction, run up to the address asked for, giving a
  :class:`CfiRow`: the CFA rule (register + offset, or an expression kept as
  bytes) and each register's rule.

Everything is read lazily through :class:`symtool.formats.dwarf.SectionView`
and :class:`~symtool.formats.dwarf.Cursor` (bounds-checked); malformed data
raises :class:`FormatError`.  :func:`read_elf_cfi` opens an ELF file's unwind
sections and its loadable segments (for the code bytes a stack scan checks).
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError
from symtool.formats import elf as elf_format
from symtool.formats.binio import BoundedReader
from symtool.formats.dwarf import Cursor, SectionView, bound_to_length, read_initial_length

# Pointer encodings (LSB, "DWARF Extensions": DW_EH_PE_*): low nibble the format, high the application.
DW_EH_PE_absptr = 0x00
DW_EH_PE_uleb128 = 0x01
DW_EH_PE_udata2 = 0x02
DW_EH_PE_udata4 = 0x03
DW_EH_PE_udata8 = 0x04
DW_EH_PE_sleb128 = 0x09
DW_EH_PE_sdata2 = 0x0A
DW_EH_PE_sdata4 = 0x0B
DW_EH_PE_sdata8 = 0x0C
DW_EH_PE_pcrel = 0x10
DW_EH_PE_textrel = 0x20
DW_EH_PE_datarel = 0x30
DW_EH_PE_funcrel = 0x40
DW_EH_PE_aligned = 0x50
DW_EH_PE_indirect = 0x80
DW_EH_PE_omit = 0xFF

# Call frame instructions (DWARF 5, 6.4.2); the first three carry an operand in their low 6 bits.
DW_CFA_advance_loc = 0x40
DW_CFA_offset = 0x80
DW_CFA_restore = 0xC0
DW_CFA_nop = 0x00
DW_CFA_set_loc = 0x01
DW_CFA_advance_loc1 = 0x02
DW_CFA_advance_loc2 = 0x03
DW_CFA_advance_loc4 = 0x04
DW_CFA_offset_extended = 0x05
DW_CFA_restore_extended = 0x06
DW_CFA_undefined = 0x07
DW_CFA_same_value = 0x08
DW_CFA_register = 0x09
DW_CFA_remember_state = 0x0A
DW_CFA_restore_state = 0x0B
DW_CFA_def_cfa = 0x0C
DW_CFA_def_cfa_register = 0x0D
DW_CFA_def_cfa_offset = 0x0E
DW_CFA_def_cfa_expression = 0x0F
DW_CFA_expression = 0x10
DW_CFA_offset_extended_sf = 0x11
DW_CFA_def_cfa_sf = 0x12
DW_CFA_def_cfa_offset_sf = 0x13
DW_CFA_val_offset = 0x14
DW_CFA_val_offset_sf = 0x15
DW_CFA_val_expression = 0x16
# AArch64's reuse of 0x2D (DW_CFA_GNU_window_save on SPARC): the return address is now signed, or no
# longer (pointer authentication, -mbranch-protection=pac-ret); the walker strips PAC bits anyway.
DW_CFA_AARCH64_negate_ra_state = 0x2D
DW_CFA_GNU_args_size = 0x2E
DW_CFA_GNU_negative_offset_extended = 0x2F

# Register rules of a row (DWARF 5, 6.4.1).
UNDEFINED = "undefined"
SAME_VALUE = "same_value"
OFFSET = "offset"  # saved at CFA + N
VAL_OFFSET = "val_offset"  # the value is CFA + N
REGISTER = "register"  # in another register
EXPRESSION = "expression"  # saved at the address an expression computes
VAL_EXPRESSION = "val_expression"

# .eh_frame_hdr: version, eh_frame_ptr encoding, fde_count encoding, table encoding.
EH_FRAME_HDR = struct.Struct("<BBBB")

MAX_ENTRIES = 1 << 21  # CIEs + FDEs indexed in one section
MAX_INSTRUCTIONS = 1 << 16  # call frame instructions run for one row
MAX_STATE_STACK = 64  # DW_CFA_remember_state depth
MAX_AUGMENTATION = 64  # bytes of an augmentation string
MAX_EXPRESSION = 1 << 12  # bytes of one DWARF expression kept in a row
MAX_REGISTER = 1 << 12  # register numbers above this are not any real ABI's


@dataclass
class Cie:
    offset: int
    version: int
    augmentation: str
    address_size: int
    code_align: int
    data_align: int
    return_register: int
    fde_encoding: int = DW_EH_PE_absptr
    lsda_encoding: int = DW_EH_PE_omit
    signal_frame: bool = False
    has_augmentation_data: bool = False
    instructions: tuple[int, int] = (0, 0)  # [start, end) in the section


@dataclass
class Fde:
    offset: int
    cie: Cie
    pc_begin: int
    pc_end: int
    instructions: tuple[int, int]


@dataclass
class CfiRow:
    """How to find the caller's registers at one address: the CFA rule and each register's rule.

    ``cfa``: ("register", regno, offset) or ("expression", bytes).  ``rules``: regno ->
    (kind, operand), kind one of the rule constants; a register not listed keeps
    the CIE's default (same value, for a callee-saved register)."""

    address: int
    cfa: tuple
    rules: dict[int, tuple] = field(default_factory=dict)
    return_register: int = 16
    signal_frame: bool = False
    ra_signed: bool = False  # AArch64: the saved return address carries a PAC signature here
    fde_begin: int = 0
    fde_end: int = 0


class CfiSection:
    """The CIEs and FDEs of one ``.eh_frame`` or ``.debug_frame``.

    ``address``: the section's virtual address (for pcrel pointers); ``hdr``: the
    ``.eh_frame_hdr`` view and address, used for the binary search when present."""

    def __init__(self, view: SectionView, address: int, endian: str, address_size: int, is_eh: bool,
                 hdr: tuple[SectionView, int] | None = None):
        self.view = view
        self.address = address
        self.endian = endian
        self.address_size = address_size
        self.is_eh = is_eh
        self._cies: dict[int, Cie] = {}
        self._index: list[tuple[int, int, int]] | None = None  # (pc_begin, pc_end, fde offset), sorted
        self._starts: list[int] = []
        self._hdr_table: tuple[SectionView, int, int, int, int] | None = None
        if hdr is not None:
            try:
                self._hdr_table = self._read_hdr(*hdr)
            except FormatError:
                self._hdr_table = None  # a broken search table: index the FDEs themselves

    # -- pointers ------------------------------------------------------------
    def _pointer(self, c: Cursor, encoding: int, section_address: int, datarel_base: int = 0,
                 what: str = "pointer", address_size: int | None = None) -> int:
        if encoding == DW_EH_PE_omit:
            raise FormatError(f"{c.view.name}: {what} is omitted where it is needed", c.view.path)
        if encoding & DW_EH_PE_indirect:
            raise FormatError(f"{c.view.name}: indirect {what} (needs process memory)", c.view.path)
        size = address_size or self.address_size
        at = section_address + c.pos
        fmt = encoding & 0x0F
        if fmt == DW_EH_PE_absptr:
            value = c.uint(size, what)
        elif fmt == DW_EH_PE_uleb128:
            value = c.uleb(what)
        elif fmt in (DW_EH_PE_udata2, DW_EH_PE_sdata2):
            value = c.uint(2, what)
            if fmt == DW_EH_PE_sdata2 and value & 0x8000:
                value -= 1 << 16
        elif fmt in (DW_EH_PE_udata4, DW_EH_PE_sdata4):
            value = c.uint(4, what)
            if fmt == DW_EH_PE_sdata4 and value & 0x80000000:
                value -= 1 << 32
        elif fmt in (DW_EH_PE_udata8, DW_EH_PE_sdata8):
            value = c.uint(8, what)
            if fmt == DW_EH_PE_sdata8 and value & (1 << 63):
                value -= 1 << 64
        elif fmt == DW_EH_PE_sleb128:
            value = c.sleb(what)
        else:
            raise FormatError(f"{c.view.name}: unknown pointer format {encoding:#x} for {what}", c.view.path)
        app = encoding & 0x70
        if app == DW_EH_PE_pcrel:
            value += at
        elif app == DW_EH_PE_datarel:
            value += datarel_base
        elif app not in (DW_EH_PE_absptr,):
            raise FormatError(f"{c.view.name}: pointer application {app:#x} for {what} not supported", c.view.path)
        return value & ((1 << (8 * size)) - 1)

    # -- .eh_frame_hdr -------------------------------------------------------
    def _read_hdr(self, view: SectionView, address: int):
        version, ptr_enc, count_enc, table_enc = EH_FRAME_HDR.unpack(view.read(0, EH_FRAME_HDR.size, "header"))
        if version != 1:
            raise FormatError(f"{view.name}: version {version}", view.path)
        c = Cursor(view, EH_FRAME_HDR.size, None, self.endian)
        self._pointer(c, ptr_enc, address, address, "eh_frame_ptr")
        if count_enc == DW_EH_PE_omit or table_enc == DW_EH_PE_omit:
            raise FormatError(f"{view.name}: no search table", view.path)
        count = self._pointer(c, count_enc, address, address, "fde_count")
        # The table is pairs of sdata4 (or udata4) entries relative to the header in practice;
        # only fixed-size entries can be binary-searched.
        size = {DW_EH_PE_udata2: 2, DW_EH_PE_sdata2: 2, DW_EH_PE_udata4: 4, DW_EH_PE_sdata4: 4,
                DW_EH_PE_udata8: 8, DW_EH_PE_sdata8: 8}.get(table_enc & 0x0F)
        if size is None or table_enc & 0x70 not in (DW_EH_PE_datarel, DW_EH_PE_absptr):
            raise FormatError(f"{view.name}: table encoding {table_enc:#x} cannot be searched", view.path)
        if count > MAX_ENTRIES or c.pos + count * 2 * size > view.size:
            raise FormatError(f"{view.name}: {count} entries run past its end", view.path)
        return view, address, c.pos, count, table_enc

    def _hdr_entry(self, k: int) -> tuple[int, int]:
        view, address, start, _count, enc = self._hdr_table
        size = 8 if enc & 0x0F in (DW_EH_PE_udata8, DW_EH_PE_sdata8) else \
            4 if enc & 0x0F in (DW_EH_PE_udata4, DW_EH_PE_sdata4) else 2
        c = Cursor(view, start + k * 2 * size, start + (k + 1) * 2 * size, self.endian)
        loc = self._pointer(c, enc, address, address, "table location")
        fde = self._pointer(c, enc, address, address, "table FDE address")
        return loc, fde

    def _find_hdr(self, address: int) -> Fde | None:
        _view, _a, _s, count, _e = self._hdr_table
        lo, hi = 0, count
        while lo < hi:  # the last entry whose location is <= address
            mid = (lo + hi) // 2
            if self._hdr_entry(mid)[0] <= address:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None
        _loc, fde_address = self._hdr_entry(lo - 1)
        offset = fde_address - self.address
        if not 0 <= offset < self.view.size:
            raise FormatError(f"{self.view.name}: search table points outside the section ({fde_address:#x})",
                              self.view.path)
        entry = self._entry(offset)
        if not isinstance(entry, Fde):
            raise FormatError(f"{self.view.name}: search table points at a CIE ({offset:#x})", self.view.path)
        return entry if entry.pc_begin <= address < entry.pc_end else None

    # -- entries -------------------------------------------------------------
    def _header(self, offset: int) -> tuple[Cursor, int, int, int]:
        """(cursor after the id field, id, end of entry, offset size); end == offset + 4 for a terminator."""
        c = Cursor(self.view, offset, None, self.endian)
        length, offset_size = read_initial_length(c, "entry")
        if length == 0:
            return c, -1, c.pos, offset_size
        end = bound_to_length(c, length, "entry", offset)
        id_at = c.pos
        ident = c.uint(offset_size, "CIE id / pointer")
        if self.is_eh:
            ident = -2 if ident == 0 else id_at - ident  # -2: a CIE; else the CIE's offset
        else:
            ident = -2 if ident == (1 << (8 * offset_size)) - 1 else ident
        return c, ident, end, offset_size

    def _entry(self, offset: int) -> Cie | Fde | None:
        c, ident, end, _osize = self._header(offset)
        if ident == -1:
            return None
        if ident == -2:
            return self._cie(offset)
        return self._fde(offset, c, ident, end)

    def _cie(self, offset: int) -> Cie:
        cie = self._cies.get(offset)
        if cie is not None:
            return cie
        c, ident, end, _osize = self._header(offset)
        if ident != -2:
            raise FormatError(f"{self.view.name}: no CIE at {offset:#x}", self.view.path)
        version = c.u8("CIE version")
        if version not in (1, 3, 4):
            raise FormatError(f"{self.view.name}: CIE version {version} at {offset:#x}", self.view.path)
        raw = c.cstring("augmentation")
        if len(raw) > MAX_AUGMENTATION:
            raise FormatError(f"{self.view.name}: augmentation string too long at {offset:#x}", self.view.path)
        aug = raw.decode("ascii", "replace")
        address_size = self.address_size
        if version == 4:
            address_size = c.u8("address size")
            segment_size = c.u8("segment selector size")
            if address_size not in (2, 4, 8) or segment_size != 0:
                raise FormatError(f"{self.view.name}: CIE address size {address_size} / segment size "
                                  f"{segment_size} at {offset:#x}", self.view.path)
        if aug.startswith("eh"):
            raise FormatError(f"{self.view.name}: old GCC 'eh' augmentation at {offset:#x}", self.view.path)
        code_align = c.uleb("code alignment")
        data_align = c.sleb("data alignment")
        ra = c.u8("return address register") if version == 1 else c.uleb("return address register")
        cie = Cie(offset, version, aug, address_size, code_align, data_align, ra)
        if aug.startswith("z"):
            cie.has_augmentation_data = True
            length = c.uleb("augmentation length")
            data_end = c.pos + length
            if data_end > end:
                raise FormatError(f"{self.view.name}: augmentation data runs past the CIE at {offset:#x}",
                                  self.view.path)
            for letter in aug[1:]:
                if letter == "R":
                    cie.fde_encoding = c.u8("FDE pointer encoding")
                elif letter == "L":
                    cie.lsda_encoding = c.u8("LSDA encoding")
                elif letter == "P":
                    enc = c.u8("personality encoding")
                    if enc & DW_EH_PE_indirect:
                        enc &= ~DW_EH_PE_indirect  # the personality pointer itself is not needed
                    self._pointer(c, enc, self.address, 0, "personality")
                elif letter == "S":
                    cie.signal_frame = True
                else:
                    break  # an unknown letter: the rest of the data is skipped by its length
            c.pos = data_end
        elif aug not in ("",):
            raise FormatError(f"{self.view.name}: augmentation {aug!r} without 'z' at {offset:#x}", self.view.path)
        cie.instructions = (c.pos, end)
        self._cies[offset] = cie
        return cie

    def _fde(self, offset: int, c: Cursor, cie_offset: int, end: int) -> Fde:
        if not 0 <= cie_offset < self.view.size or cie_offset == offset:
            raise FormatError(f"{self.view.name}: FDE at {offset:#x} points at {cie_offset:#x}, not a CIE",
                              self.view.path)
        cie = self._cie(cie_offset)
        begin = self._pointer(c, cie.fde_encoding, self.address, 0, "FDE initial location", cie.address_size)
        length = self._pointer(c, cie.fde_encoding & 0x0F, self.address, 0, "FDE address range", cie.address_size)
        if cie.has_augmentation_data:
            aug_len = c.uleb("FDE augmentation length")
            c.skip(aug_len, "FDE augmentation data")
        return Fde(offset, cie, begin, begin + length, (c.pos, end))

    def entries(self):
        """Every FDE, in section order (CIEs are read as FDEs name them)."""
        offset = 0
        n = 0
        while offset < self.view.size:
            n += 1
            if n > MAX_ENTRIES:
                raise FormatError(f"{self.view.name}: more than {MAX_ENTRIES} entries", self.view.path)
            if self.view.size - offset < 4:
                break  # padding at the end
            c, ident, end, _osize = self._header(offset)
            if ident == -1:
                if self.is_eh:
                    break  # the zero terminator of .eh_frame
                offset = end
                continue
            if ident != -2:
                yield self._fde(offset, c, ident, end)
            offset = end

    def _build_index(self) -> None:
        index = [(f.pc_begin, f.pc_end, f.offset) for f in self.entries() if f.pc_end > f.pc_begin]
        index.sort()
        self._index = index
        self._starts = [e[0] for e in index]

    def find(self, address: int) -> Fde | None:
        """The FDE covering ``address`` (a virtual address of the file), or None."""
        if self._hdr_table is not None:
            return self._find_hdr(address)
        if self._index is None:
            self._build_index()
        i = bisect.bisect_right(self._starts, address) - 1
        while i >= 0:
            begin, end, offset = self._index[i]
            if begin <= address < end:
                fde = self._entry(offset)
                return fde if isinstance(fde, Fde) else None
            if end <= address and i > 0 and self._index[i - 1][1] <= address:
                return None  # FDEs do not nest: an earlier one will not cover it either
            i -= 1
        return None

    # -- rows ----------------------------------------------------------------
    def row(self, fde: Fde, address: int) -> CfiRow:
        """Run the CIE's initial instructions, then the FDE's up to ``address``."""
        cie = fde.cie
        row = CfiRow(fde.pc_begin, ("register", -1, 0), {}, cie.return_register, cie.signal_frame,
                     fde.pc_begin, fde.pc_end)
        budget = [MAX_INSTRUCTIONS]
        self._run(cie, cie.instructions, row, None, address, budget)
        initial = dict(row.rules)
        self._run(cie, fde.instructions, row, initial, address, budget)
        if row.cfa[0] == "register" and row.cfa[1] < 0:
            raise FormatError(f"{self.view.name}: FDE at {fde.offset:#x} defines no CFA", self.view.path)
        return row

    def _run(self, cie: Cie, span: tuple[int, int], row: CfiRow, initial: dict | None, target: int,
             budget: list[int]) -> None:
        c = Cursor(self.view, span[0], span[1], self.endian)
        stack: list[tuple[tuple, dict]] = []
        name, path = self.view.name, self.view.path

        def reg(value: int) -> int:
            if value > MAX_REGISTER:
                raise FormatError(f"{name}: register {value} in call frame instructions", path)
            return value

        def block() -> bytes:
            n = c.uleb("expression length")
            if n > MAX_EXPRESSION:
                raise FormatError(f"{name}: expression of {n} bytes", path)
            start = c.pos
            c.skip(n, "expression")
            return c.view.read(start, n, "expression")

        def advance(delta: int) -> bool:
            """Move the location; True when it passes the target (the row is complete)."""
            new = row.address + delta * cie.code_align
            if new > target:
                return True
            row.address = new
            return False

        while c.pos < c.end:
            budget[0] -= 1
            if budget[0] < 0:
                raise FormatError(f"{name}: more than {MAX_INSTRUCTIONS} call frame instructions", path)
            op = c.u8("call frame instruction")
            high, low = op & 0xC0, op & 0x3F
            if high == DW_CFA_advance_loc:
                if advance(low):
                    return
            elif high == DW_CFA_offset:
                row.rules[low] = (OFFSET, c.uleb("offset") * cie.data_align)
            elif high == DW_CFA_restore:
                self._restore(row, initial, low)
            elif op == DW_CFA_nop:
                pass
            elif op == DW_CFA_set_loc:
                new = self._pointer(c, cie.fde_encoding, self.address, 0, "DW_CFA_set_loc", cie.address_size)
                if new > target:
                    return
                row.address = new
            elif op in (DW_CFA_advance_loc1, DW_CFA_advance_loc2, DW_CFA_advance_loc4):
                size = {DW_CFA_advance_loc1: 1, DW_CFA_advance_loc2: 2, DW_CFA_advance_loc4: 4}[op]
                if advance(c.uint(size, "advance")):
                    return
            elif op in (DW_CFA_offset_extended, DW_CFA_offset_extended_sf):
                r = reg(c.uleb("register"))
                off = c.uleb("offset") if op == DW_CFA_offset_extended else c.sleb("offset")
                row.rules[r] = (OFFSET, off * cie.data_align)
            elif op == DW_CFA_GNU_negative_offset_extended:
                r = reg(c.uleb("register"))
                row.rules[r] = (OFFSET, -c.uleb("offset") * cie.data_align)
            elif op in (DW_CFA_val_offset, DW_CFA_val_offset_sf):
                r = reg(c.uleb("register"))
                off = c.uleb("offset") if op == DW_CFA_val_offset else c.sleb("offset")
                row.rules[r] = (VAL_OFFSET, off * cie.data_align)
            elif op == DW_CFA_restore_extended:
                self._restore(row, initial, reg(c.uleb("register")))
            elif op == DW_CFA_undefined:
                row.rules[reg(c.uleb("register"))] = (UNDEFINED, None)
            elif op == DW_CFA_same_value:
                row.rules[reg(c.uleb("register"))] = (SAME_VALUE, None)
            elif op == DW_CFA_register:
                r = reg(c.uleb("register"))
                row.rules[r] = (REGISTER, reg(c.uleb("register")))
            elif op == DW_CFA_remember_state:
                if len(stack) >= MAX_STATE_STACK:
                    raise FormatError(f"{name}: DW_CFA_remember_state nested deeper than {MAX_STATE_STACK}", path)
                stack.append((row.cfa, dict(row.rules)))
            elif op == DW_CFA_restore_state:
                if not stack:
                    raise FormatError(f"{name}: DW_CFA_restore_state without a remembered state", path)
                # DWARF 5: the CFA rule is restored too (as GCC, LLVM and libunwind do).
                row.cfa, row.rules = stack.pop()
            elif op == DW_CFA_def_cfa:
                row.cfa = ("register", reg(c.uleb("register")), c.uleb("offset"))
            elif op == DW_CFA_def_cfa_sf:
                row.cfa = ("register", reg(c.uleb("register")), c.sleb("offset") * cie.data_align)
            elif op == DW_CFA_def_cfa_register:
                r = reg(c.uleb("register"))
                row.cfa = ("register", r, row.cfa[2] if row.cfa[0] == "register" else 0)
            elif op in (DW_CFA_def_cfa_offset, DW_CFA_def_cfa_offset_sf):
                off = c.uleb("offset") if op == DW_CFA_def_cfa_offset else c.sleb("offset") * cie.data_align
                if row.cfa[0] != "register":
                    raise FormatError(f"{name}: DW_CFA_def_cfa_offset after a CFA expression", path)
                row.cfa = ("register", row.cfa[1], off)
            elif op == DW_CFA_def_cfa_expression:
                row.cfa = ("expression", block())
            elif op == DW_CFA_expression:
                r = reg(c.uleb("register"))
                row.rules[r] = (EXPRESSION, block())
            elif op == DW_CFA_val_expression:
                r = reg(c.uleb("register"))
                row.rules[r] = (VAL_EXPRESSION, block())
            elif op == DW_CFA_GNU_args_size:
                c.uleb("argument size")
            elif op == DW_CFA_AARCH64_negate_ra_state:
                row.ra_signed = not row.ra_signed
            else:
                raise FormatError(f"{name}: unknown call frame instruction {op:#x} at {c.pos - 1:#x}", path)

    @staticmethod
    def _restore(row: CfiRow, initial: dict | None, regno: int) -> None:
        if initial is not None and regno in initial:
            row.rules[regno] = initial[regno]
        else:
            row.rules.pop(regno, None)

    def row_at(self, address: int) -> CfiRow | None:
        fde = self.find(address)
        return None if fde is None else self.row(fde, address)


SHF_EXECINSTR = 0x4  # an allocated section holding code
MAX_RELOCATIONS = 1 << 22
MAX_COMMENT = 64 << 10


class ElfCfi:
    """An ELF file's unwind tables and code, addressed by ``rva`` (an address relative to where
    the file's first page is mapped, as a minidump's module base is): vaddr = rva + ``load_bias``.

    Code is what a stack scan checks a return address against: bytes of the executable
    sections (``SHF_EXECINSTR``), read through the loadable segments that hold them."""

    def __init__(self, path: str, reader: BoundedReader, sections: list[CfiSection], segments: list,
                 code: list[tuple[int, int]], load_bias: int, is_64: bool,
                 dynamic_relocations: tuple[int, int] | None = None):
        self.path = path
        self._rela = dynamic_relocations  # .rela.dyn's (file offset, size)
        self.comment = ""  # the .comment section: compilers' version strings ("rustc version 1.95.0 (…)")
        self._relative: tuple[list[int], list[int]] | None = None
        self._reader = reader
        self.sections = sections
        self.segments = [s for s in segments if s.type == elf_format.PT_LOAD]
        self.code = sorted(code)  # (start, end) vaddrs of executable sections
        self.load_bias = load_bias
        self.is_64 = is_64

    def row_at_rva(self, rva: int) -> CfiRow | None:
        """The row for ``rva`` from the first section (``.eh_frame``, then ``.debug_frame``) covering it."""
        address = rva + self.load_bias
        for section in self.sections:
            row = section.row_at(address)
            if row is not None:
                return row
        return None

    def is_code(self, rva: int) -> bool:
        address = rva + self.load_bias
        return any(start <= address < end for start, end in self.code)

    def read_rva(self, rva: int, size: int) -> bytes | None:
        address = rva + self.load_bias
        for s in self.segments:
            if s.vaddr <= address and address + size <= s.vaddr + s.filesz and size >= 0:
                try:
                    return self._reader.read(s.offset + address - s.vaddr, size, "code")
                except FormatError:
                    return None
        return None

    def read_loaded(self, rva: int, size: int, base: int) -> bytes | None:
        """``size`` bytes at ``rva`` as the dynamic loader left them with the file mapped at
        ``base``: a position-independent file's pointers (a panic's Location, its string
        pieces) are zero in the file and filled in by RELATIVE relocations."""
        data = self.read_rva(rva, size)
        if data is None or not self._rela:
            return data
        offsets, addends = self._relative_relocations()
        address = rva + self.load_bias
        i = bisect.bisect_left(offsets, address)
        out = None
        while i < len(offsets) and offsets[i] + 8 <= address + size:
            out = out or bytearray(data)
            struct.pack_into("<Q", out, offsets[i] - address, (base + addends[i] - self.load_bias) & (2 ** 64 - 1))
            i += 1
        return bytes(out) if out is not None else data

    def _relative_relocations(self) -> tuple[list[int], list[int]]:
        if self._relative is None:
            pairs = []
            offset, size = self._rela
            count = min(size // elf_format.ELF64_RELA.size, MAX_RELOCATIONS)
            try:
                raw = self._reader.read(offset, count * elf_format.ELF64_RELA.size, ".rela.dyn") if count else b""
            except FormatError:
                raw = b""
            for r_offset, r_info, r_addend in elf_format.ELF64_RELA.iter_unpack(raw):
                if r_info & 0xFFFFFFFF in elf_format.RELATIVE_TYPES:
                    pairs.append((r_offset, r_addend))
            pairs.sort()
            self._relative = ([p[0] for p in pairs], [p[1] for p in pairs])
        return self._relative

    def close(self) -> None:
        self._reader.f.close()


def read_elf_cfi(path: str | os.PathLike[str]) -> ElfCfi:
    """The unwind tables of an ELF file (kept open for lazy reads: call ``close``)."""
    p = os.fspath(path)
    f = open(p, "rb")
    try:
        r = BoundedReader(f, p)
        if r.size == 0:
            raise FormatError("empty file", p)
        elf = elf_format.ElfFile(r, p)
        elf.read_sections()
        address_size = 8 if elf.lay.is_64 else 4
        sections = []
        eh = elf.section(".eh_frame")
        if eh is not None and eh.type != elf_format.SHT_NOBITS and eh.size:
            hdr_sec = elf.section(".eh_frame_hdr")
            hdr = None
            if hdr_sec is not None and hdr_sec.type != elf_format.SHT_NOBITS and hdr_sec.size:
                hdr = (elf.view(hdr_sec), hdr_sec.addr)
            sections.append(CfiSection(elf.view(eh), eh.addr, elf.lay.endian, address_size, True, hdr))
        dbg = elf.section(".debug_frame")
        if dbg is not None and dbg.type != elf_format.SHT_NOBITS and dbg.size:
            sections.append(CfiSection(elf.view(dbg), 0, elf.lay.endian, address_size, False))
        code = [(s.addr, s.addr + s.size) for s in elf.sections
                if s.flags & SHF_EXECINSTR and s.flags & elf_format.SHF_ALLOC and s.type != elf_format.SHT_NOBITS]
        rela = elf.section(".rela.dyn")
        dynamic = None
        if rela is not None and rela.type == elf_format.SHT_RELA and elf.lay.is_64 and elf.lay.endian == "<":
            dynamic = (rela.offset, rela.size)
        cfi = ElfCfi(p, r, sections, elf.segments(), code, elf.load_bias(), elf.lay.is_64, dynamic)
        comment = elf.section(".comment")
        if comment is not None and comment.type != elf_format.SHT_NOBITS and 0 < comment.size <= MAX_COMMENT:
            cfi.comment = r.read(comment.offset, comment.size, ".comment").decode("utf-8", "replace")
        return cfi
    except BaseException:
        f.close()
        raise


__all__ = ["CfiSection", "CfiRow", "Cie", "Fde", "ElfCfi", "read_elf_cfi", "UNDEFINED", "SAME_VALUE", "OFFSET",
           "VAL_OFFSET", "REGISTER", "EXPRESSION", "VAL_EXPRESSION"]

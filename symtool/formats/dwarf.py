"""Just enough DWARF to identify split units: unit headers, the first DIE's
attributes, and the ``.debug_cu_index`` of a ``.dwp``.

What is read (DWARF 2-5, 32- and 64-bit DWARF):

* a **skeleton unit** in a binary's ``.debug_info``: DWARF 5 ``DW_UT_skeleton``
  (the DWO ID is in the unit header), or a DWARF 4 compile unit carrying
  ``DW_AT_GNU_dwo_id`` (GNU split-DWARF extension);
* a **split unit** in ``.debug_info.dwo``: ``DW_UT_split_compile`` (ID in the
  header) or a DWARF 4 compile unit with ``DW_AT_GNU_dwo_id``;
* the **unit index** ``.debug_cu_index`` (version 2, the GNU extension used
  with DWARF 4, and version 5): signature -> contribution of each section.

Everything is read lazily through a :class:`SectionView` (a window of the
file, or a decompressed section) with every length and offset checked against
the section it lies in.  Malformed data raises :class:`FormatError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError

# Unit types (DWARF 5, 7.5.1).
DW_UT_compile = 0x01
DW_UT_type = 0x02
DW_UT_partial = 0x03
DW_UT_skeleton = 0x04
DW_UT_split_compile = 0x05
DW_UT_split_type = 0x06

DW_TAG_compile_unit = 0x11
DW_TAG_skeleton_unit = 0x4A
DW_AT_GNU_dwo_name = 0x2130
DW_AT_GNU_dwo_id = 0x2131
DW_AT_dwo_name = 0x76

DW_FORM_indirect = 0x16
DW_FORM_implicit_const = 0x21

# Section identifiers of a unit index (columns of .debug_cu_index).
DW_SECT_INFO = 1
DW_SECT_ABBREV = 3

# A unit's first DIE lies within its first bytes; a chunk this size is read at a time.
CHUNK = 4096
# Real units rarely nest this deep in DW_FORM_indirect; deeper is hostile.
MAX_INDIRECT = 8
# Abbreviation declarations read before giving up on finding a code.
MAX_ABBREVS = 1 << 16
# Attributes in one abbreviation declaration.
MAX_ATTRS = 4096
# Units in one .debug_info walked for skeletons.
MAX_UNITS = 1 << 20

# Unit-index header (DWARF 5, 7.3.5.3): version (v5: u16 + u16 padding; v2: u32),
# section count, unit count, slot count.
CU_INDEX_HEADER = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}
# v5 writes version as a u16 followed by two padding bytes: the low half of the
# little-endian u32, the high half of the big-endian one.


class SectionView:
    """Bounded positional reads within one section (file window or bytes)."""

    def __init__(self, name: str, size: int, read, path: str):
        self.name = name
        self.size = size
        self._read = read  # (offset within section, length) -> bytes
        self.path = path

    @classmethod
    def of_bytes(cls, name: str, data: bytes, path: str) -> "SectionView":
        return cls(name, len(data), lambda off, n: data[off:off + n], path)

    def read(self, offset: int, length: int, what: str = "data") -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise FormatError(f"{self.name}: {what} at {offset:#x} (+{length}) runs past the section's end "
                              f"({self.size} bytes)", self.path)
        data = self._read(offset, length)
        if len(data) != length:
            raise FormatError(f"{self.name}: short read at {offset:#x}", self.path)
        return data


class Cursor:
    """Sequential reads from a SectionView, buffered a chunk at a time."""

    def __init__(self, view: SectionView, pos: int, end: int | None, endian: str):
        self.view = view
        self.pos = pos
        self.end = view.size if end is None else min(end, view.size)
        self.endian = endian
        self._buf = b""
        self._buf_start = pos
        self._order = "little" if endian == "<" else "big"

    def preload(self, data: bytes, start: int) -> None:
        """Serve reads from ``data``, the section's bytes from offset ``start`` (already read
        whole by the caller), instead of reading a chunk at a time."""
        self._buf = data
        self._buf_start = start

    def _need(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise FormatError(f"{self.view.name}: {what} at {self.pos:#x} runs past its end ({self.end:#x})",
                              self.view.path)
        rel = self.pos - self._buf_start
        if rel < 0 or rel + n > len(self._buf):
            length = min(max(n, CHUNK), self.end - self.pos)
            self._buf = self.view.read(self.pos, length, what)
            self._buf_start = self.pos
            rel = 0
        out = self._buf[rel:rel + n]
        self.pos += n
        return out

    def unpack(self, record: struct.Struct, what: str = "record") -> tuple:
        """The fields of one declared layout at the cursor, consumed."""
        return record.unpack(self._need(record.size, what))

    def skip(self, n: int, what: str = "data") -> None:
        if n < 0 or self.pos + n > self.end:
            raise FormatError(f"{self.view.name}: {what} at {self.pos:#x} (+{n}) runs past its end ({self.end:#x})",
                              self.view.path)
        self.pos += n

    def u8(self, what: str = "byte") -> int:
        rel = self.pos - self._buf_start
        if 0 <= rel < len(self._buf) and self.pos < self.end:
            self.pos += 1
            return self._buf[rel]
        return self._need(1, what)[0]

    def uint(self, size: int, what: str = "integer") -> int:
        rel = self.pos - self._buf_start
        if 0 <= rel and rel + size <= len(self._buf) and self.pos + size <= self.end and size >= 0:
            self.pos += size
            return int.from_bytes(self._buf[rel:rel + size], self._order)
        return int.from_bytes(self._need(size, what), "little" if self.endian == "<" else "big")

    def uleb(self, what: str = "ULEB128") -> int:
        rel = self.pos - self._buf_start
        buf = self._buf
        if 0 <= rel < len(buf) and self.pos < self.end and buf[rel] < 0x80:
            self.pos += 1  # the common one-byte case
            return buf[rel]
        return self._leb128(False, what)

    def sleb(self, what: str = "SLEB128") -> int:
        return self._leb128(True, what)

    def _leb128(self, signed: bool, what: str) -> int:
        value = shift = 0
        while True:
            b = self.u8(what)
            if shift < 64:
                value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if signed and b & 0x40:
                    value -= 1 << min(shift, 64)
                return value
            if shift > 70:  # 10 bytes carry 64 bits; more is padding or garbage
                raise FormatError(f"{self.view.name}: {what} at {self.pos:#x} is too long", self.view.path)

    def cstring(self, what: str = "string") -> bytes:
        """Bytes up to a NUL (consumed, not returned); only the first 4096 are kept."""
        out = b""
        while True:
            rel = self.pos - self._buf_start
            if not 0 <= rel < len(self._buf) or self.pos >= self.end:
                self._need(1, what)  # refill (or raise at the end)
                self.pos -= 1
                rel = 0
            limit = min(len(self._buf), rel + self.end - self.pos)
            nul = self._buf.find(b"\0", rel, limit)
            stop = limit if nul < 0 else nul
            if len(out) < 4096:
                out += self._buf[rel:stop][:4096 - len(out)]
            self.pos += stop - rel
            if nul >= 0:
                self.pos += 1
                return out


def leb128_at(data: bytes, pos: int, signed: bool = False) -> tuple[int, int]:
    """(value, position after it) of the LEB128 at ``data[pos]``: for loops that decode a
    section's bytes themselves (a unit's DIE walk, a line program).  IndexError past the end;
    more than 64 bits' worth of bytes are read and their excess bits dropped."""
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        if shift < 64:
            value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if signed and b & 0x40:
                value -= 1 << min(shift, 64)
            return value, pos


@dataclass
class Unit:
    """Header facts of one unit of .debug_info[.dwo]."""

    offset: int  # of the unit header within the section
    end: int  # offset of the next unit
    version: int
    unit_type: int  # DW_UT_*; DWARF 2-4 compile units report DW_UT_compile
    offset_size: int  # 4 (DWARF32) or 8 (DWARF64)
    address_size: int
    abbrev_offset: int
    die_offset: int  # the first DIE
    dwo_id: int | None = None  # from the DWARF 5 header (skeleton / split_compile)


DWARF64_ESCAPE = 0xFFFFFFFF  # a 32-bit initial length of this value: a 64-bit length follows
RESERVED_LENGTHS = 0xFFFFFFF0  # 32-bit initial lengths from here up are reserved


def read_initial_length(c: Cursor, what: str) -> tuple[int, int]:
    """(length, offset size) of the DWARF "initial length" at the cursor (units, line tables,
    aranges sets, CFI entries): 32-bit, or the 64-bit escape; reserved values are refused."""
    length = c.uint(4, f"{what} length")
    if length == DWARF64_ESCAPE:
        return c.uint(8, f"64-bit {what} length"), 8
    if length >= RESERVED_LENGTHS:
        raise FormatError(f"{c.view.name}: reserved {what} length {length:#x} at {c.pos - 4:#x}", c.view.path)
    return length, 4


def bound_to_length(c: Cursor, length: int, what: str, start: int) -> int:
    """Limit the cursor to the ``length`` bytes after it, checked against the section; the end."""
    end = c.pos + length
    if end > c.view.size:
        raise FormatError(f"{c.view.name}: {what} at {start:#x} (length {length:#x}) runs past the section's end",
                          c.view.path)
    c.end = end
    return end


def read_unit_header(view: SectionView, offset: int, endian: str) -> Unit:
    c = Cursor(view, offset, None, endian)
    length, offset_size = read_initial_length(c, "unit")
    end = bound_to_length(c, length, "unit", offset)
    version = c.uint(2, "unit version")
    dwo_id = None
    if 2 <= version <= 4:
        abbrev = c.uint(offset_size, "abbreviation offset")
        addr_size = c.u8("address size")
        unit_type = DW_UT_compile
    elif version == 5:
        unit_type = c.u8("unit type")
        addr_size = c.u8("address size")
        abbrev = c.uint(offset_size, "abbreviation offset")
        if unit_type in (DW_UT_skeleton, DW_UT_split_compile):
            dwo_id = c.uint(8, "DWO ID")
        elif unit_type in (DW_UT_type, DW_UT_split_type):
            c.skip(8 + offset_size, "type signature")
        elif unit_type not in (DW_UT_compile, DW_UT_partial):
            raise FormatError(f"{view.name}: unknown unit type {unit_type:#x} at {offset:#x}", view.path)
    else:
        raise FormatError(f"{view.name}: unsupported DWARF version {version} at {offset:#x}", view.path)
    if addr_size not in (1, 2, 4, 8):
        raise FormatError(f"{view.name}: address size {addr_size} at {offset:#x}", view.path)
    return Unit(offset, end, version, unit_type, offset_size, addr_size, abbrev, c.pos, dwo_id)


# Fixed sizes of attribute forms; None: variable (handled in skip_form); "addr"/"off": unit-dependent.
_FIXED = {
    0x05: 2, 0x06: 4, 0x07: 8, 0x0B: 1, 0x0C: 1, 0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8,
    0x19: 0, 0x1C: 4, 0x1E: 16, 0x20: 8, 0x21: 0, 0x24: 8,
    0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4,
}
_ULEB = {0x0D: "s", 0x0F: "u", 0x15: "u", 0x1A: "u", 0x1B: "u", 0x22: "u", 0x23: "u", 0x1F01: "u", 0x1F02: "u"}
_OFFSET = {0x0E, 0x17, 0x1D, 0x1F, 0x1F20, 0x1F21}


def read_form(c: Cursor, form: int, unit: Unit, depth: int = 0) -> int | None:
    """Consume one attribute value; returns it when it is an integer constant, else None."""
    if form in _FIXED:
        n = _FIXED[form]
        return c.uint(n, "attribute") if n else None
    if form in _ULEB:
        return c.uleb("attribute") if _ULEB[form] == "u" else c.sleb("attribute")
    if form in _OFFSET:
        c.skip(unit.offset_size, "attribute")
        return None
    if form == 0x01:  # addr
        c.skip(unit.address_size, "address")
        return None
    if form == 0x10:  # ref_addr: address-sized in DWARF 2
        c.skip(unit.address_size if unit.version == 2 else unit.offset_size, "reference")
        return None
    if form == 0x08:  # string
        c.cstring("string attribute")
        return None
    if form == 0x03:
        c.skip(c.uint(2, "block length"), "block")
        return None
    if form == 0x04:
        c.skip(c.uint(4, "block length"), "block")
        return None
    if form == 0x0A:
        c.skip(c.u8("block length"), "block")
        return None
    if form in (0x09, 0x18):  # block, exprloc
        c.skip(c.uleb("block length"), "block")
        return None
    if form == DW_FORM_indirect:
        if depth >= MAX_INDIRECT:
            raise FormatError(f"{c.view.name}: DW_FORM_indirect nests too deeply", c.view.path)
        return read_form(c, c.uleb("indirect form"), unit, depth + 1)
    raise FormatError(f"{c.view.name}: unknown attribute form {form:#x}", c.view.path)


def _abbrev_attributes(c: "Cursor", abbrev: SectionView, code: int) -> list[tuple[int, int]]:
    """The (attribute, form) pairs of the abbreviation whose tag and children flag ``c`` has
    just read, up to its (0, 0) end."""
    attrs = []
    for _ in range(MAX_ATTRS):
        at = c.uleb("attribute")
        form = c.uleb("form")
        if at == 0 and form == 0:
            return attrs
        if form == DW_FORM_implicit_const:
            c.sleb("implicit constant")
        attrs.append((at, form))
    raise FormatError(f"{abbrev.name}: abbreviation {code} has too many attributes", abbrev.path)


def find_abbrev(abbrev: SectionView, offset: int, code: int, endian: str) -> tuple[int, list[tuple[int, int]]]:
    """(tag, [(attribute, form)...]) of abbreviation ``code`` in the table at ``offset``."""
    c = Cursor(abbrev, offset, None, endian)
    for _ in range(MAX_ABBREVS):
        this = c.uleb("abbreviation code")
        if this == 0:
            break
        tag = c.uleb("tag")
        c.u8("children flag")
        attrs = _abbrev_attributes(c, abbrev, this)
        if this == code:
            return tag, attrs
    raise FormatError(f"{abbrev.name}: abbreviation code {code} not found in the table at {offset:#x}", abbrev.path)


def first_die_dwo_id(info: SectionView, abbrev: SectionView, unit: Unit, endian: str,
                     abbrev_base: int = 0) -> tuple[int | None, int | None]:
    """(tag, DW_AT_GNU_dwo_id) of a unit's first DIE (the unit DIE); the ID is None when absent."""
    c = Cursor(info, unit.die_offset, unit.end, endian)
    code = c.uleb("abbreviation code")
    if code == 0:
        return None, None
    tag, attrs = find_abbrev(abbrev, abbrev_base + unit.abbrev_offset, code, endian)
    dwo_id = None
    for at, form in attrs:
        value = read_form(c, form, unit)
        if at == DW_AT_GNU_dwo_id:
            dwo_id = value
            break
    return tag, dwo_id


def unit_dwo_id(info: SectionView, abbrev: SectionView | None, unit: Unit, endian: str,
                abbrev_base: int = 0) -> int | None:
    """The DWO ID a unit carries (header in DWARF 5, DW_AT_GNU_dwo_id in DWARF 4), or None."""
    if unit.dwo_id is not None:
        return unit.dwo_id
    if unit.version >= 5 or unit.unit_type != DW_UT_compile or abbrev is None:
        return None
    tag, dwo_id = first_die_dwo_id(info, abbrev, unit, endian, abbrev_base)
    return dwo_id if tag == DW_TAG_compile_unit else None


def iter_units(view: SectionView, endian: str):
    """Unit headers of a .debug_info[.dwo] section, in order."""
    off = 0
    for _ in range(MAX_UNITS):
        if off >= view.size:
            return
        unit = read_unit_header(view, off, endian)
        yield unit
        off = unit.end
    raise FormatError(f"{view.name}: more than {MAX_UNITS} units", view.path)


def skeleton_ids(info: SectionView, abbrev: SectionView | None, endian: str) -> list[int]:
    """DWO IDs of the skeleton units of a binary's .debug_info, in section order."""
    out = []
    for unit in iter_units(info, endian):
        if unit.unit_type == DW_UT_skeleton:
            out.append(unit.dwo_id)
        elif unit.version <= 4:
            dwo_id = unit_dwo_id(info, abbrev, unit, endian)
            if dwo_id is not None:
                out.append(dwo_id)
    return out


def split_unit_ids(info: SectionView, abbrev: SectionView | None, endian: str) -> list[int]:
    """DWO IDs of the split units of a .dwo's .debug_info.dwo (no index: one table per file)."""
    out = []
    for unit in iter_units(info, endian):
        dwo_id = unit_dwo_id(info, abbrev, unit, endian)
        if dwo_id is not None:
            out.append(dwo_id)
    return out


@dataclass
class UnitIndex:
    """A parsed .debug_cu_index: version and one row per unit."""

    version: int
    section_ids: list[int]
    rows: list["IndexRow"] = field(default_factory=list)


@dataclass
class IndexRow:
    """One unit of a .debug_cu_index: its DWO id, its slot and its contributions."""

    signature: int
    slot: int
    offsets: dict[int, tuple[int, int]]  # DW_SECT_* -> (offset, size)


def read_cu_index(view: SectionView, endian: str) -> UnitIndex:
    """The rows of a .debug_cu_index (version 2 or 5), every table checked against the section."""
    head = CU_INDEX_HEADER[endian]
    raw_version, ncols, nunits, nslots = head.unpack(view.read(0, head.size, "unit index header"))
    version = raw_version & 0xFFFF if endian == "<" else raw_version >> 16 if raw_version >> 16 else raw_version
    if version not in (2, 5):
        raise FormatError(f"{view.name}: unsupported unit index version {raw_version:#x}", view.path)
    if ncols == 0 and nunits == 0 and nslots == 0:
        return UnitIndex(version, [])
    if ncols == 0 or ncols > 16:
        raise FormatError(f"{view.name}: {ncols} section columns", view.path)
    if nslots & (nslots - 1) or nunits > nslots or nslots == 0:
        raise FormatError(f"{view.name}: {nunits} units in {nslots} slots (a power of two, at least as many)",
                          view.path)
    need = head.size + nslots * 12 + ncols * 4 + nunits * ncols * 8
    if need > view.size:
        raise FormatError(f"{view.name}: tables need {need} bytes, the section has {view.size}", view.path)
    c = Cursor(view, head.size, None, endian)
    signatures = [c.uint(8, "signature") for _ in range(nslots)]
    indices = [c.uint(4, "row index") for _ in range(nslots)]
    cols = [c.uint(4, "section id") for _ in range(ncols)]
    offsets = [[c.uint(4, "offset") for _ in range(ncols)] for _ in range(nunits)]
    sizes = [[c.uint(4, "size") for _ in range(ncols)] for _ in range(nunits)]
    index = UnitIndex(version, cols)
    used: set[int] = set()
    for slot, row in enumerate(indices):
        if row == 0:
            continue
        if row > nunits or row in used:
            raise FormatError(f"{view.name}: slot {slot} names row {row} of {nunits}", view.path)
        used.add(row)
        index.rows.append(IndexRow(signatures[slot], slot,
                                   {cols[k]: (offsets[row - 1][k], sizes[row - 1][k]) for k in range(ncols)}))
    if len(used) != nunits:
        raise FormatError(f"{view.name}: {nunits} units but {len(used)} used slots", view.path)
    return index


def check_index_against_units(index: UnitIndex, info: SectionView, abbrev: SectionView | None,
                              endian: str) -> None:
    """Each row's INFO contribution holds a unit whose own DWO ID is the row's signature."""
    for row in index.rows:
        if DW_SECT_INFO not in row.offsets:
            raise FormatError(f"{info.name}: unit index has no INFO column", info.path)
        off, size = row.offsets[DW_SECT_INFO]
        if off + size > info.size:
            raise FormatError(f"{info.name}: contribution of {row.signature:#018x} runs past the section's end",
                              info.path)
        unit = read_unit_header(info, off, endian)
        if unit.end > off + size:
            raise FormatError(f"{info.name}: unit of {row.signature:#018x} is longer than its contribution",
                              info.path)
        abbrev_base = row.offsets.get(DW_SECT_ABBREV, (0, 0))[0]
        own = unit_dwo_id(info, abbrev, unit, endian, abbrev_base)
        if own != row.signature:
            got = "none" if own is None else f"{own:#018x}"
            raise FormatError(f"{info.name}: the unit index says {row.signature:#018x} but the unit at {off:#x} "
                              f"has DWO ID {got}", info.path)


# -- attribute values and DIE trees (the symbolizer's reader) -----------------------------------

# Forms (DWARF 5, 7.5.6), with the GNU split-DWARF extensions.
DW_FORM_addr = 0x01
DW_FORM_block2 = 0x03
DW_FORM_block4 = 0x04
DW_FORM_data2 = 0x05
DW_FORM_data4 = 0x06
DW_FORM_data8 = 0x07
DW_FORM_string = 0x08
DW_FORM_block = 0x09
DW_FORM_block1 = 0x0A
DW_FORM_data1 = 0x0B
DW_FORM_flag = 0x0C
DW_FORM_sdata = 0x0D
DW_FORM_strp = 0x0E
DW_FORM_udata = 0x0F
DW_FORM_ref_addr = 0x10
DW_FORM_ref1 = 0x11
DW_FORM_ref2 = 0x12
DW_FORM_ref4 = 0x13
DW_FORM_ref8 = 0x14
DW_FORM_ref_udata = 0x15
DW_FORM_sec_offset = 0x17
DW_FORM_exprloc = 0x18
DW_FORM_flag_present = 0x19
DW_FORM_strx = 0x1A
DW_FORM_addrx = 0x1B
DW_FORM_ref_sup4 = 0x1C
DW_FORM_strp_sup = 0x1D
DW_FORM_data16 = 0x1E
DW_FORM_line_strp = 0x1F
DW_FORM_ref_sig8 = 0x20
DW_FORM_loclistx = 0x22
DW_FORM_rnglistx = 0x23
DW_FORM_ref_sup8 = 0x24
DW_FORM_strx1, DW_FORM_strx2, DW_FORM_strx3, DW_FORM_strx4 = 0x25, 0x26, 0x27, 0x28
DW_FORM_addrx1, DW_FORM_addrx2, DW_FORM_addrx3, DW_FORM_addrx4 = 0x29, 0x2A, 0x2B, 0x2C
DW_FORM_GNU_addr_index = 0x1F01
DW_FORM_GNU_str_index = 0x1F02
DW_FORM_GNU_ref_alt = 0x1F20
DW_FORM_GNU_strp_alt = 0x1F21

# Kinds of attribute values read_value returns, as (kind, value).
V_CONST = "const"  # data, flag, sdata, udata, implicit_const
V_ADDR = "addr"  # an address
V_ADDRX = "addrx"  # an index into .debug_addr
V_STR = "str"  # inline string (bytes)
V_STRP = "strp"  # offset into .debug_str
V_LINE_STRP = "line_strp"  # offset into .debug_line_str
V_STRX = "strx"  # index into the string offsets table
V_REF = "ref"  # offset of a DIE within the same section (unit-relative already resolved)
V_SEC_OFFSET = "sec_offset"
V_RNGLISTX = "rnglistx"
V_LOCLISTX = "loclistx"
V_OTHER = "other"  # blocks, exprlocs, signatures, supplementary references: not used

_STRX_SIZES = {DW_FORM_strx1: 1, DW_FORM_strx2: 2, DW_FORM_strx3: 3, DW_FORM_strx4: 4}
_ADDRX_SIZES = {DW_FORM_addrx1: 1, DW_FORM_addrx2: 2, DW_FORM_addrx3: 3, DW_FORM_addrx4: 4}
_DATA_SIZES = {DW_FORM_data1: 1, DW_FORM_data2: 2, DW_FORM_data4: 4, DW_FORM_data8: 8, DW_FORM_flag: 1}
_REF_SIZES = {DW_FORM_ref1: 1, DW_FORM_ref2: 2, DW_FORM_ref4: 4, DW_FORM_ref8: 8}


@dataclass
class Abbrev:
    """One abbreviation declaration: tag, children flag, attribute specs."""

    tag: int
    has_children: bool
    attrs: tuple[tuple[int, int, int], ...]  # (attribute, form, implicit constant)
    _sizes: dict = field(default_factory=dict)

    def fixed_size(self, unit: Unit) -> int | None:
        """Bytes of all attribute values when every form has a fixed size in ``unit``, else None."""
        key = (unit.offset_size, unit.address_size, unit.version == 2)
        if key not in self._sizes:
            total = 0
            for _at, form, _const in self.attrs:
                size = form_size(form, unit)
                if size is None:
                    total = None
                    break
                total += size
            self._sizes[key] = total
        return self._sizes[key]


def form_size(form: int, unit: Unit) -> int | None:
    """Bytes of a value of ``form`` in ``unit`` when fixed (0: implicit), else None."""
    if form in _FIXED:
        return _FIXED[form]
    if form in _OFFSET:
        return unit.offset_size
    if form == DW_FORM_addr:
        return unit.address_size
    if form == DW_FORM_ref_addr:
        return unit.address_size if unit.version == 2 else unit.offset_size
    return None


ABBREV_WINDOW = 1 << 16  # bytes of .debug_abbrev read at first for one table (grown 4x while short)
UNIT_ABBREV_WINDOW = 1 << 10  # the same, when only the declarations up to one code are wanted


def read_abbrev_table(abbrev: SectionView, offset: int, endian: str, until: int | None = None) -> dict[int, Abbrev]:
    """Every declaration of the abbreviation table at ``offset``: code -> Abbrev; with ``until``,
    only those up to the first declaring that code (a unit DIE's, usually the first: reading
    one unit DIE needs no more).

    The table's bytes are read in one window and decoded with local variables (a unit's
    table has hundreds of declarations, each a few one-byte LEB128s); a table longer than the
    window is read again in a window four times larger, so the bytes read stay within twice
    the table's size (or the section's)."""
    if offset >= abbrev.size:
        return {}  # as a table that ends with the section
    window = ABBREV_WINDOW if until is None else UNIT_ABBREV_WINDOW
    while True:
        length = min(window, abbrev.size - offset)
        data = abbrev.read(offset, length, "abbreviation table")
        whole = offset + length == abbrev.size
        try:
            return _abbrev_table_in(data, whole, abbrev, offset, until)
        except IndexError:
            if whole:
                raise FormatError(f"{abbrev.name}: abbreviation table at {offset:#x} runs past its end "
                                  f"({abbrev.size:#x})", abbrev.path) from None
            window *= 4


def _abbrev_table_in(data: bytes, whole: bool, abbrev: SectionView, offset: int,
                     until: int | None = None) -> dict[int, Abbrev]:
    """The table at the start of ``data``; IndexError when it runs past ``data`` (past the
    section when ``whole``)."""
    table: dict[int, Abbrev] = {}
    pos, end = 0, len(data)

    def leb(signed: bool = False) -> int:
        nonlocal pos
        start = pos
        value, pos = leb128_at(data, pos, signed)
        if pos - start > 10:  # 10 bytes carry 64 bits; more is padding or garbage
            raise FormatError(f"{abbrev.name}: LEB128 at {offset + start:#x} is too long", abbrev.path)
        return value

    # Each LEB128 field is read inline when it is one byte (nearly all are), the call to
    # leb() only for longer ones: the repeated four-line pattern below is that fast path.
    for _ in range(MAX_ABBREVS):
        if pos >= end:
            if whole:
                break  # a table may end with the section instead of a 0 code
            raise IndexError
        code = data[pos]
        if code < 0x80:
            pos += 1
        else:
            code = leb()
        if code == 0:
            break
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag = leb()
        children = data[pos]
        pos += 1
        attrs = []
        for _ in range(MAX_ATTRS):
            at = data[pos]
            if at < 0x80:
                pos += 1
            else:
                at = leb()
            form = data[pos]
            if form < 0x80:
                pos += 1
            else:
                form = leb()
            if at == 0 and form == 0:
                break
            const = leb(True) if form == DW_FORM_implicit_const else 0
            attrs.append((at, form, const))
        else:
            raise FormatError(f"{abbrev.name}: abbreviation {code} has too many attributes", abbrev.path)
        table.setdefault(code, Abbrev(tag, children != 0, tuple(attrs)))  # a tuple: untracked by the collector
        if code == until:
            break
    else:
        raise FormatError(f"{abbrev.name}: more than {MAX_ABBREVS} abbreviations at {offset:#x}", abbrev.path)
    return table


DW_TAG_subprogram = 0x2E
DW_TAG_inlined_subroutine = 0x1D
DW_AT_low_pc = 0x11
DW_AT_ranges = 0x55
DW_AT_entry_pc = 0x52
MAX_ABBREV_SCAN = 16 << 20  # bytes of .debug_abbrev walked for abbrev_features (real ones: KiB to a few MiB)


def abbrev_features(abbrev: SectionView, endian: str, limit: int = MAX_ABBREV_SCAN) -> tuple[bool, bool]:
    """(functions with code, inlined calls) as the abbreviation tables declare them.

    Producers (LLVM, GCC) declare an abbreviation only when a DIE uses it, so a
    ``DW_TAG_subprogram`` declaration with ``DW_AT_low_pc`` or ``DW_AT_ranges``
    means a function with code, and any ``DW_TAG_inlined_subroutine`` an inlined
    call -- without reading ``.debug_info``, whose size is the debug info's.
    Only the first ``limit`` bytes are walked: past them, what was not seen counts
    as absent.
    """
    c = Cursor(abbrev, 0, min(abbrev.size, limit), endian)
    functions = inlined = False
    while c.pos < c.end and not (functions and inlined):
        code = c.uleb("abbreviation code")
        if code == 0:
            continue  # the end of one table; the next one follows
        tag = c.uleb("tag")
        c.u8("children flag")
        attrs = {at for at, _form in _abbrev_attributes(c, abbrev, code)}
        if tag == DW_TAG_subprogram and attrs & {DW_AT_low_pc, DW_AT_ranges, DW_AT_entry_pc}:
            functions = True
        elif tag == DW_TAG_inlined_subroutine:
            inlined = True
    return functions, inlined


def read_value(c: Cursor, form: int, const: int, unit: Unit, depth: int = 0) -> tuple[str, object]:
    """Consume one attribute value: (kind, value) with kind one of the V_* names.

    References of the unit-relative forms are returned as offsets within the section
    (``unit.offset`` added); DW_FORM_ref_addr is already section-relative."""
    if form in _DATA_SIZES:
        return V_CONST, c.uint(_DATA_SIZES[form], "constant")
    if form in (DW_FORM_udata,):
        return V_CONST, c.uleb("constant")
    if form == DW_FORM_sdata:
        return V_CONST, c.sleb("constant")
    if form == DW_FORM_implicit_const:
        return V_CONST, const
    if form == DW_FORM_flag_present:
        return V_CONST, 1
    if form in _REF_SIZES:
        return V_REF, unit.offset + c.uint(_REF_SIZES[form], "reference")
    if form == DW_FORM_ref_udata:
        return V_REF, unit.offset + c.uleb("reference")
    if form == DW_FORM_ref_addr:
        return V_REF, c.uint(unit.address_size if unit.version == 2 else unit.offset_size, "reference")
    if form == DW_FORM_addr:
        return V_ADDR, c.uint(unit.address_size, "address")
    if form in (DW_FORM_addrx, DW_FORM_GNU_addr_index):
        return V_ADDRX, c.uleb("address index")
    if form in _ADDRX_SIZES:
        return V_ADDRX, c.uint(_ADDRX_SIZES[form], "address index")
    if form == DW_FORM_string:
        return V_STR, c.cstring("string attribute")
    if form == DW_FORM_strp:
        return V_STRP, c.uint(unit.offset_size, "string offset")
    if form == DW_FORM_line_strp:
        return V_LINE_STRP, c.uint(unit.offset_size, "string offset")
    if form in (DW_FORM_strx, DW_FORM_GNU_str_index):
        return V_STRX, c.uleb("string index")
    if form in _STRX_SIZES:
        return V_STRX, c.uint(_STRX_SIZES[form], "string index")
    if form == DW_FORM_sec_offset:
        return V_SEC_OFFSET, c.uint(unit.offset_size, "section offset")
    if form == DW_FORM_rnglistx:
        return V_RNGLISTX, c.uleb("range list index")
    if form == DW_FORM_loclistx:
        return V_LOCLISTX, c.uleb("location list index")
    if form == DW_FORM_indirect:
        if depth >= MAX_INDIRECT:
            raise FormatError(f"{c.view.name}: DW_FORM_indirect nests too deeply", c.view.path)
        return read_value(c, c.uleb("indirect form"), const, unit, depth + 1)
    read_form(c, form, unit, depth)  # blocks, exprlocs, signatures, supplementary forms: skipped
    return V_OTHER, None

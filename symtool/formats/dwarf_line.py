"""DWARF line-number programs (``.debug_line``, DWARF 2-5): address -> file and line.

One program is read at a time, when the symbolizer first needs the line table of
a unit (``DW_AT_stmt_list``).  The header's directory and file tables (DWARF 5
entry formats included: ``DW_FORM_string``, ``line_strp``, ``strp``, ``udata``,
``data1``-``data16``, blocks) and the opcodes of the state machine are checked
against the unit's length.  The whole program is run once for each sequence's
bounds only (malformed opcodes are found then); a sequence's rows are made the
first time an address falls in it.  Sequences are sorted as LLVM sorts them, so a
lookup is two binary searches.

File names are joined the way ``llvm-symbolizer`` prints them
(``DWARFDebugLine::LineTable::getFileNameByIndex`` with an absolute path): an
absolute file name stays as it is; otherwise the compilation directory (unless the
include directory is absolute), the include directory and the file name are joined
with ``/``.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError
from symtool.formats import dwarf
from symtool.formats.dwarf import Cursor, SectionView
from symtool.formats.symbols import ADDRESS_END

# Standard opcodes (DWARF 5, 6.2.5.2).
DW_LNS_copy = 1
DW_LNS_advance_pc = 2
DW_LNS_advance_line = 3
DW_LNS_set_file = 4
DW_LNS_set_column = 5
DW_LNS_negate_stmt = 6
DW_LNS_set_basic_block = 7
DW_LNS_const_add_pc = 8
DW_LNS_fixed_advance_pc = 9
DW_LNS_set_prologue_end = 10
DW_LNS_set_epilogue_begin = 11
DW_LNS_set_isa = 12
# Extended opcodes (6.2.5.3).
DW_LNE_end_sequence = 1
DW_LNE_set_address = 2
DW_LNE_define_file = 3
DW_LNE_set_discriminator = 4
# Content types of DWARF 5 directory / file entry formats (6.2.4.1).
DW_LNCT_path = 1
DW_LNCT_directory_index = 2

# The fixed part of a line program header after unit_length and version:
# DWARF 5 first has address_size and segment_selector_size (u8 each).
LINE_V5_ADDRESS = struct.Struct("BB")
# After header_length: minimum_instruction_length, [maximum_operations_per_instruction (v4+)],
# default_is_stmt, line_base (signed), line_range, opcode_base.
LINE_PARAMS_V2 = struct.Struct("BBbBB")
LINE_PARAMS_V4 = struct.Struct("BBBbBB")

# Directories / files in one header; more is hostile.
MAX_ENTRIES = 1 << 20
MAX_FORMATS = 64
MAX_PATH = 4096


@dataclass
class FileEntry:
    """One file of a line program's header: its name and the index of its directory."""

    name: str
    dir_index: int


def pack_row(file: int, column: int, line: int) -> int:
    """A row's file index, column and line as one int (a line is 32-bit, as LLVM's; a file index
    or column, a ULEB128 of at most 64 bits)."""
    return (file << 96) | (column << 32) | line


def unpack_row(row: int) -> tuple[int, int, int]:
    """(file index, line, column) of a packed row."""
    return row >> 96, row & 0xFFFFFFFF, (row >> 32) & 0xFFFFFFFFFFFFFFFF


@dataclass
class Sequence:
    """One sequence of a line program: its address range, and its rows once decoded."""

    low: int
    high: int  # first address after the sequence
    addrs: list[int] | None = None  # row addresses (the end row excluded); None: not decoded yet
    rows: list[int] | None = None  # (file index, line, column) per address, packed (pack_row)
    span: tuple[int, int] = (0, 0)  # its opcodes within the program's bytes


@dataclass
class LineTable:
    """A unit's line table.  The program is run once without making rows (each sequence's
    bounds, which a lookup needs to pick the sequence); a sequence's rows are made the first
    time an address falls in it: a lookup of a few addresses decodes a few of a unit's
    hundreds of sequences (one per function, for LLVM's code)."""

    version: int
    include_dirs: list[str]
    files: list[FileEntry]
    sequences: list[Sequence]  # sorted by high (LLVM's orderByHighPC)
    _highs: list[int] = field(default_factory=list)
    _program: bytes = b""
    _machine: tuple = ()  # the rest of _run_bytes' arguments
    program_size: int = 0
    _names: dict = field(default_factory=dict)  # (file index, comp_dir) -> file_name()

    def decoded(self, seq: Sequence) -> Sequence:
        """``seq`` with its rows."""
        if seq.addrs is None:
            start, end = seq.span
            # A sequence starts in the machine's initial state: its bytes run alone give its rows.
            try:
                found = _run_bytes(self._program[start:end], *self._machine)
            except (IndexError, ValueError):
                found = []
            if len(found) != 1 or (found[0].low, found[0].high) != (seq.low, seq.high):
                raise FormatError("line program: a sequence decodes differently alone", self._machine[0].path)
            seq.addrs, seq.rows = found[0].addrs, found[0].rows
        return seq

    def lookup(self, address: int) -> tuple[int, int, int] | None:
        """(file index, line, column) of the row covering ``address``, as LLVM's lookupAddress picks it."""
        k = bisect.bisect_right(self._highs, address)
        if k == len(self.sequences):
            return None
        seq = self.sequences[k]
        if not seq.low <= address < seq.high:
            return None
        seq = self.decoded(seq)
        i = bisect.bisect_right(seq.addrs, address) - 1
        if i < 0:
            return None
        return unpack_row(seq.rows[i])

    def extent(self, address: int) -> tuple[int, int]:
        """[lo, hi) around ``address`` over which lookup() gives the same answer (the row's
        addresses up to the next row, or the gap between sequences)."""
        k = bisect.bisect_right(self._highs, address)
        below = self._highs[k - 1] if k > 0 else 0  # lower addresses belong to earlier sequences
        if k == len(self.sequences):
            return below, ADDRESS_END
        seq = self.sequences[k]
        if address < seq.low:
            return below, seq.low
        seq = self.decoded(seq)
        i = bisect.bisect_right(seq.addrs, address) - 1
        if i < 0:
            return address, address + 1
        end = seq.addrs[i + 1] if i + 1 < len(seq.addrs) else seq.high
        return max(seq.addrs[i], below), min(end, seq.high)

    def file_name(self, index: int, comp_dir: str | None) -> str | None:
        """The path of file ``index`` as llvm-symbolizer prints it; None for a bad index (joined
        once per index and directory: every frame of every address asks)."""
        key = (index, comp_dir)
        if key not in self._names:
            self._names[key] = self._file_name(index, comp_dir)
        return self._names[key]

    def _file_name(self, index: int, comp_dir: str | None) -> str | None:
        if self.version >= 5:
            if not 0 <= index < len(self.files):
                return None
            entry = self.files[index]
        else:
            if not 0 < index <= len(self.files):
                return None
            entry = self.files[index - 1]
        name = entry.name
        if _is_absolute(name):
            return name
        include = ""
        if self.version >= 5:
            if 0 <= entry.dir_index < len(self.include_dirs):
                include = self.include_dirs[entry.dir_index]
        elif 0 < entry.dir_index <= len(self.include_dirs):
            include = self.include_dirs[entry.dir_index - 1]
        path = ""
        if comp_dir and not _is_absolute(include):
            path = comp_dir
        for part in (include, name):
            path = _append(path, part)
        return path


def _is_absolute(path: str) -> bool:
    """POSIX or Windows absolute (LLVM's isPathAbsoluteOnWindowsOrPosix)."""
    return path.startswith("/") or path.startswith("\\") or (len(path) > 2 and path[1] == ":" and path[2] in "/\\")


def _append(path: str, part: str) -> str:
    """llvm::sys::path::append: one separator between non-empty parts, nothing normalised."""
    if not part:
        return path
    if not path:
        return part
    if path.endswith("/") or part.startswith("/"):
        return path + part
    return path + "/" + part


@dataclass
class Strings:
    """The string sections a line table header may point into (absent ones are None)."""

    debug_str: SectionView | None = None
    line_str: SectionView | None = None


def _string_at(view: SectionView | None, offset: int, endian: str, what: str, path: str) -> str:
    if view is None:
        raise FormatError(f"{what} points into a missing string section", path)
    c = Cursor(view, offset, None, endian)
    return c.cstring(what)[:MAX_PATH].decode("utf-8", "replace")


def _entry_value(c: Cursor, form: int, unit: dwarf.Unit, strings: Strings) -> object:
    kind, value = dwarf.read_value(c, form, 0, unit)
    if kind == dwarf.V_STR:
        return value.decode("utf-8", "replace")
    if kind == dwarf.V_LINE_STRP:
        return _string_at(strings.line_str, value, c.endian, "line string", c.view.path)
    if kind == dwarf.V_STRP:
        return _string_at(strings.debug_str, value, c.endian, "string", c.view.path)
    if kind == dwarf.V_CONST:
        return value
    return None  # strx (no offsets table for a line table here), blocks, MD5 (data16)


def _entries(c: Cursor, unit: dwarf.Unit, strings: Strings, what: str) -> list[tuple[object, int]]:
    """A DWARF 5 directory or file table: [(path, directory index)]."""
    nformats = c.u8(f"{what} format count")
    if nformats > MAX_FORMATS:
        raise FormatError(f"{c.view.name}: {nformats} {what} entry formats", c.view.path)
    formats = [(c.uleb("content type"), c.uleb("form")) for _ in range(nformats)]
    count = c.uleb(f"{what} count")
    if count > MAX_ENTRIES or count > c.end - c.pos:  # real entries take a byte at least
        raise FormatError(f"{c.view.name}: {count} {what} entries in a {c.end - c.pos}-byte header", c.view.path)
    out = []
    for _ in range(count):
        path: object = None
        dir_index = 0
        for ctype, form in formats:
            value = _entry_value(c, form, unit, strings)
            if ctype == DW_LNCT_path:
                path = value
            elif ctype == DW_LNCT_directory_index and isinstance(value, int):
                dir_index = value
        out.append((path if isinstance(path, str) else "", dir_index))
    return out


def read_line_table(view: SectionView, offset: int, endian: str, address_size: int,
                    strings: Strings | None = None) -> LineTable:
    """The line program at ``offset`` of ``view`` (``.debug_line``), run to its rows."""
    strings = strings or Strings()
    c = Cursor(view, offset, None, endian)
    length, offset_size = dwarf.read_initial_length(c, "line table")
    end = dwarf.bound_to_length(c, length, "line table", offset)
    version = c.uint(2, "line table version")
    if not 2 <= version <= 5:
        raise FormatError(f"{view.name}: unsupported line table version {version} at {offset:#x}", view.path)
    if version >= 5:
        address_size, _seg = c.unpack(LINE_V5_ADDRESS, "address size")
        if address_size not in (1, 2, 4, 8):
            raise FormatError(f"{view.name}: address size {address_size} at {offset:#x}", view.path)
    header_length = c.uint(offset_size, "header length")
    program = c.pos + header_length
    if program > end:
        raise FormatError(f"{view.name}: line table header at {offset:#x} is longer than its unit", view.path)
    params = LINE_PARAMS_V4 if version >= 4 else LINE_PARAMS_V2
    fields = c.unpack(params, "line table parameters")
    if version >= 4:
        min_inst, _max_ops, _default_stmt, line_base, line_range, opcode_base = fields
    else:
        min_inst, _default_stmt, line_base, line_range, opcode_base = fields
    std_lengths = list(c.unpack(struct.Struct(f"{max(opcode_base - 1, 0)}B"), "standard opcode lengths"))
    pseudo = dwarf.Unit(offset, end, version, dwarf.DW_UT_compile, offset_size, address_size, 0, 0)
    dirs: list[str] = []
    files: list[FileEntry] = []
    if version >= 5:
        dirs = [str(p) for p, _ in _entries(c, pseudo, strings, "directory")]
        files = [FileEntry(p, d) for p, d in _entries(c, pseudo, strings, "file name")]
    else:
        for _ in range(MAX_ENTRIES):
            d = c.cstring("include directory")
            if not d:
                break
            dirs.append(d[:MAX_PATH].decode("utf-8", "replace"))
        for _ in range(MAX_ENTRIES):
            name = c.cstring("file name")
            if not name:
                break
            dir_index = c.uleb("directory index")
            c.uleb("modification time")
            c.uleb("file length")
            files.append(FileEntry(name[:MAX_PATH].decode("utf-8", "replace"), dir_index))
    data = view.read(program, end - program, "line program")
    machine = (view, endian, program, version, address_size, min_inst, line_base, line_range, opcode_base,
               std_lengths, None)
    try:
        sequences = _scan_bytes(data, files, *machine[:-1])
    except (IndexError, ValueError):
        raise FormatError(f"{view.name}: line program at {program:#x} ends inside an opcode", view.path) from None
    sequences.sort(key=lambda s: s.high)
    return LineTable(version, dirs, files, sequences, [s.high for s in sequences], data, machine, len(data))


def _scan_bytes(data: bytes, files: list[FileEntry], view: SectionView, endian: str, base: int, version: int,
                address_size: int, min_inst: int, line_base: int, line_range: int, opcode_base: int,
                std_lengths: list[int]) -> list[Sequence]:
    """The program's sequences with their bounds and spans, rows not made: _run_bytes'
    state machine for the address alone (no line, column, file or row lists), about a third
    of its cost.  DW_LNE_define_file entries are added to ``files`` here.  Its address opcodes
    repeat _run_bytes' on purpose: a helper shared by both would be a call per opcode."""
    sequences: list[Sequence] = []
    mask = (1 << (8 * address_size)) - 1 if address_size < 8 else (1 << 64) - 1
    address, low, start = 0, -1, 0
    const_add = ((255 - opcode_base) // line_range) * min_inst if line_range else 0
    order = "little" if endian == "<" else "big"
    pos, end = 0, len(data)
    special_address = [0] * 256
    if line_range:
        for op in range(opcode_base, 256):
            special_address[op] = ((op - opcode_base) // line_range) * min_inst
    leb128_at = dwarf.leb128_at
    # The address is masked where it is used (a row's, the sequence's end, set_address), not
    # at each advance: (a + b) & mask is ((a & mask) + b) & mask.  Branches in the order of how
    # often the opcodes come (special opcodes, then the ULEB-operand ones: line, column, file).
    while pos < end:
        op = data[pos]
        pos += 1
        if op >= opcode_base:
            if line_range == 0:
                raise FormatError(f"{view.name}: special opcode with line_range 0", view.path)
            address += special_address[op]
            if low < 0:
                low = address & mask
        elif op in (DW_LNS_advance_line, DW_LNS_set_column, DW_LNS_set_file):
            while data[pos] >= 0x80:
                pos += 1
            pos += 1
        elif op == 0:
            at, size = _extended(data, pos, end, view, base)
            pos = at
            if size == 0:
                continue
            sub = data[at]
            if sub == DW_LNE_end_sequence:
                address &= mask
                if 0 <= low < address:  # as _run_bytes keeps them
                    sequences.append(Sequence(low, address, span=(start, at + size)))
                address, low, start = 0, -1, at + size
            elif sub == DW_LNE_set_address and size - 1 in (1, 2, 4, 8):
                address = int.from_bytes(data[at + 1:at + size], order) & mask
            elif sub == DW_LNE_define_file and version <= 4:
                _define_file(data, at + 1, at + size, files)
            pos = at + size
        elif op == DW_LNS_copy:
            if low < 0:
                low = address & mask
        elif op == DW_LNS_advance_pc:
            b = data[pos]
            if b < 0x80:
                pos += 1
            else:
                b, pos = leb128_at(data, pos)
            address += b * min_inst
        elif op == DW_LNS_const_add_pc:
            address += const_add
        elif op == DW_LNS_fixed_advance_pc:
            if pos + 2 > end:
                raise IndexError
            address += int.from_bytes(data[pos:pos + 2], order)
            pos += 2
        elif op in (DW_LNS_negate_stmt, DW_LNS_set_basic_block, DW_LNS_set_prologue_end, DW_LNS_set_epilogue_begin):
            pass
        else:  # set_isa and unknown standard opcodes: skip their ULEB operands
            for _ in range(std_lengths[op - 1] if op - 1 < len(std_lengths) else 0):
                while data[pos] >= 0x80:
                    pos += 1
                pos += 1
    if pos > end:
        raise IndexError
    return sequences


def _extended(data: bytes, pos: int, end: int, view: SectionView, base: int) -> tuple[int, int]:
    """(where its sub-opcode is, its length) of the extended opcode whose ULEB128 length is at
    ``pos``, checked against the program's end."""
    size, at = dwarf.leb128_at(data, pos)
    if size > end - at:
        raise FormatError(f"{view.name}: extended opcode at {base + at:#x} runs past its line table", view.path)
    return at, size


def _define_file(data: bytes, pos: int, stop: int, files: list[FileEntry]) -> None:
    """Add the entry of the DW_LNE_define_file whose operands are data[pos:stop] (DWARF 2-4)."""
    nul = data.index(b"\0", pos, stop)
    name = data[pos:nul]
    dir_index, pos = dwarf.leb128_at(data, nul + 1)
    _mtime, pos = dwarf.leb128_at(data, pos)
    _length, pos = dwarf.leb128_at(data, pos)
    if len(files) < MAX_ENTRIES:
        files.append(FileEntry(name[:MAX_PATH].decode("utf-8", "replace"), dir_index))


def _run_bytes(data: bytes, view: SectionView, endian: str, base: int, version: int, address_size: int, min_inst: int,
               line_base: int, line_range: int, opcode_base: int, std_lengths: list[int],
               files: list[FileEntry] | None) -> list[Sequence]:
    """The rows of the opcodes in ``data``, per sequence, decoded with local variables (no call
    per byte): it runs once per row.  ``files``: where DW_LNE_define_file adds entries (None:
    _scan_bytes has added them)."""
    sequences: list[Sequence] = []
    mask = (1 << (8 * address_size)) - 1 if address_size < 8 else (1 << 64) - 1
    address, file, line, column = 0, 1, 1, 0
    file_column = pack_row(file, column, 0)  # the row's file and column, packed (its line is or-ed in)
    addrs: list[int] = []
    rows: list[int] = []  # packed rows (pack_row): ints, not tuples -- nothing for the cyclic collector
    const_add = ((255 - opcode_base) // line_range) * min_inst if line_range else 0
    order = "little" if endian == "<" else "big"
    pos, end = 0, len(data)
    # Per special opcode, its address and line advances: two list reads a row instead of a
    # division and a modulo.
    special_address = [0] * 256
    special_line = [0] * 256
    if line_range:
        for op in range(opcode_base, 256):
            special_address[op] = ((op - opcode_base) // line_range) * min_inst
            special_line[op] = line_base + (op - opcode_base) % line_range

    leb128_at = dwarf.leb128_at

    def uleb() -> int:
        nonlocal pos
        b = data[pos]
        if b < 0x80:  # the common one-byte case, without a call
            pos += 1
            return b
        value, pos = leb128_at(data, pos)
        return value

    while pos < end:
        op = data[pos]
        pos += 1
        if op >= opcode_base:
            if line_range == 0:
                raise FormatError(f"{view.name}: special opcode with line_range 0", view.path)
            address = (address + special_address[op]) & mask
            line = (line + special_line[op]) & 0xFFFFFFFF  # LLVM's row line is 32-bit unsigned
            addrs.append(address)
            rows.append(file_column | line)
        elif op == DW_LNS_advance_line:
            b = data[pos]
            if b < 0x80:  # one byte, the common case: sign bit 0x40, no call
                pos += 1
                line = (line + (b - 0x80 if b & 0x40 else b)) & 0xFFFFFFFF
            else:
                value, pos = leb128_at(data, pos, True)
                line = (line + value) & 0xFFFFFFFF
        elif op == DW_LNS_set_column:
            b = data[pos]
            if b < 0x80:
                pos += 1
                column = b
            else:
                column, pos = leb128_at(data, pos)
            file_column = (file << 96) | (column << 32)  # pack_row, inline: set_column comes with most rows
        elif op == 0:
            at, size = _extended(data, pos, end, view, base)
            pos = at
            if size == 0:
                continue
            sub = data[at]
            if sub == DW_LNE_end_sequence:
                # LLVM keeps sequences with rows and a non-empty range only.
                if addrs and addrs[0] < address:
                    sequences.append(Sequence(addrs[0], address, addrs, rows))
                addrs, rows = [], []
                address, file, line, column = 0, 1, 1, 0
                file_column = pack_row(file, column, 0)
            elif sub == DW_LNE_set_address and size - 1 in (1, 2, 4, 8):
                address = int.from_bytes(data[at + 1:at + size], order) & mask
            elif sub == DW_LNE_define_file and version <= 4 and files is not None:
                _define_file(data, at + 1, at + size, files)
            pos = at + size
        elif op == DW_LNS_copy:
            addrs.append(address)
            rows.append(file_column | line)
        elif op == DW_LNS_advance_pc:
            b = data[pos]
            if b < 0x80:
                pos += 1
            else:
                b, pos = leb128_at(data, pos)
            address = (address + b * min_inst) & mask
        elif op == DW_LNS_set_file:
            file = uleb()
            file_column = (file << 96) | (column << 32)
        elif op == DW_LNS_const_add_pc:
            address = (address + const_add) & mask
        elif op == DW_LNS_fixed_advance_pc:
            if pos + 2 > end:
                raise IndexError
            address = (address + int.from_bytes(data[pos:pos + 2], order)) & mask
            pos += 2
        elif op in (DW_LNS_negate_stmt, DW_LNS_set_basic_block, DW_LNS_set_prologue_end, DW_LNS_set_epilogue_begin):
            pass
        else:  # set_isa and unknown standard opcodes: skip their ULEB operands
            for _ in range(std_lengths[op - 1] if op - 1 < len(std_lengths) else 0):
                uleb()
    if pos > end:
        raise IndexError
    return sequences


__all__ = ["LineTable", "FileEntry", "Sequence", "Strings", "read_line_table"]

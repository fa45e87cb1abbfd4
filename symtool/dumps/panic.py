"""The panic a crashed Rust program was in: its message and location, read from the dump.

A debugger finds ``core::panic::Location`` and ``core::fmt::Arguments`` through the
panic frames' parameters; this reads them the way a careful scanner does.  The
words of the crashing thread's stack, from the exception's stack pointer up
through the frame of the first user function (the panic path's frames are the
ones that hold pointers to both), are tried as pointers to each structure in
turn, and a candidate is taken only when every field checks out: the file name is
UTF-8 ending in ``.rs`` in an image's data, line and column are plausible, each
string piece is UTF-8 in readable memory, each argument's formatter is code.
The innermost valid pointer wins (the frames of the panic path lie below the
user's).

Bytes come from the dump where it saved them, else from the module's image file
(found in the stores or build directories), relocated as the loader did (PE base
relocations for an ASLR base, ELF RELATIVE relocations for a position-independent
file): Wine's and ProcDump's ``-mp`` dumps hold only stacks, and both structures'
static parts live in the image.

Arguments are formatted exactly for integers, ``bool``, ``char``, ``&str``
(Display and Debug) and nested ``fmt::Arguments``; a ``&dyn Debug`` is followed
through its vtable to the concrete formatter.  The formatter's type comes from
its symbol (the PDB's public name, or the DWARF name); anything else shows as
``{…}``.  Every read counts against a byte budget, and recursion, pieces,
arguments and the message are capped: a hostile dump costs bounded work.
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass
from typing import Callable

from symtool.errors import FormatError
from symtool.formats.rust_panic import (FAT_POINTER, LAYOUT_2018, POINTER, TEMPLATE_ARG_INDEX, TEMPLATE_END,
                                        TEMPLATE_FIELDS, TEMPLATE_LONG_PIECE, TEMPLATE_PLACEHOLDER, TEMPLATE_U16,
                                        PanicLayout, layouts_for, rustc_version)

UNKNOWN_ARGUMENT = "{…}"
MAX_SCAN_BYTES = 256 << 10  # stack bytes tried as pointers
MAX_READ_BYTES = 2 << 20  # everything read for one panic
MAX_STRING = 4096  # one piece, file name or &str argument
MAX_PIECES = 64
MAX_ARGUMENTS = 64
MAX_MESSAGE = 8192
MAX_DEPTH = 4  # nested Arguments / references / dyn
MAX_LINE = 10_000_000
MAX_COLUMN = 100_000

# Functions only a panic runs through (names normalized; any Rust version).
PANIC_FUNCTIONS = ("core::panicking::panic", "std::panicking::begin_panic", "std::panicking::rust_panic",
                   "std::panicking::panic_handler", "rust_begin_unwind")

INTEGERS = {"u8": (1, False), "i8": (1, True), "u16": (2, False), "i16": (2, True), "u32": (4, False),
            "i32": (4, True), "u64": (8, False), "i64": (8, True), "usize": (8, False), "isize": (8, True),
            "u128": (16, False), "i128": (16, True)}


@dataclass
class Panic:
    """``panic`` in ``stack --json`` and ``dumps --json`` (stable keys, in this order)."""

    message: str | None
    file: str | None
    line: int | None
    column: int | None
    thread: str | None

    def to_json(self) -> dict:
        return asdict(self)

    def headline(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.file else "an unknown location"
        text = f"panicked at {where}"
        if self.message is not None:
            text += f": {self.message}"
        if self.thread:
            text = f"thread '{self.thread}' {text}"
        return text


class BudgetExceeded(Exception):
    pass


class ProcessMemory:
    """Reads of the crashed process's memory: the dump's saved ranges, else module images."""

    def __init__(self, read_saved: Callable[[int, int], bytes | None],
                 modules: list[tuple[int, int, object]], budget: int = MAX_READ_BYTES):
        self._read_saved = read_saved
        self._modules = sorted(modules, key=lambda m: m[0])  # (base, size, image with read_rva/is_code or None)
        self.budget = budget

    def module_at(self, address: int):
        for base, size, image in self._modules:
            if base <= address < base + size:
                return base, image
        return None

    def read(self, address: int, size: int) -> bytes | None:
        if size <= 0 or address <= 0 or address + size > 1 << 64:
            return None
        if size > self.budget:
            raise BudgetExceeded()
        self.budget -= size
        data = self._read_saved(address, size)
        if data is not None and len(data) == size:
            return data
        found = self.module_at(address)
        if found is None or found[1] is None:
            return None
        base, image = found
        return image.read_loaded(address - base, size, base)  # pointers as the loader relocated them

    def pointer(self, address: int) -> int | None:
        data = self.read(address, POINTER.size)
        return POINTER.unpack(data)[0] if data else None

    def in_image(self, address: int) -> bool:
        found = self.module_at(address)
        return found is not None and found[1] is not None

    def is_code(self, address: int) -> bool:
        found = self.module_at(address)
        return found is not None and found[1] is not None and found[1].is_code(address - found[0])

    def text(self, address: int, length: int) -> str | None:
        """Valid UTF-8 of at most MAX_STRING bytes at ``address`` (None: not readable or not text)."""
        if length == 0:
            return ""
        if not 0 < length <= MAX_STRING:
            return None
        data = self.read(address, length)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None


def is_panic(functions: list[str | None]) -> bool:
    return any(f and f.startswith(PANIC_FUNCTIONS) for f in functions)


def read_location(mem: ProcessMemory, address: int, layout: PanicLayout = LAYOUT_2018):
    """(file, line, column) of a ``Location`` at ``address``, or None when it is not one."""
    if not mem.in_image(address):  # a Location is a static: it lives in an image
        return None
    data = mem.read(address, layout.location.size)
    if data is None:
        return None
    file_ptr, file_len, line, column = layout.location.unpack(data)
    if not (0 < file_len <= MAX_STRING and 0 < line <= MAX_LINE and 0 < column <= MAX_COLUMN):
        return None
    if not mem.in_image(file_ptr):
        return None
    file = mem.text(file_ptr, file_len)
    if file is None or not file.endswith(".rs") or any(ord(c) < 0x20 for c in file):
        return None
    return file, line, column


@dataclass
class _Arguments:
    parts: list  # literal pieces (str) and argument indexes (int), in order
    arguments: list[tuple[int, int]]  # (value pointer, formatter address) by index


def read_arguments(mem: ProcessMemory, address: int, layout: PanicLayout = LAYOUT_2018,
                   static_str: bool = True) -> _Arguments | None:
    """The ``fmt::Arguments`` at ``address``, or None when it is not one.  ``static_str``: accept
    the template layout's static-str form (a pointer and an odd length: a Location's first two
    words look like one, so only when the compiler version says this layout applies)."""
    if layout.kind == "template":
        return _read_template_arguments(mem, address, layout, static_str)
    data = mem.read(address, layout.arguments.size)
    if data is None:
        return None
    pieces_ptr, n_pieces, fmt_ptr, n_fmt, args_ptr, n_args = layout.arguments.unpack(data)
    if n_pieces > MAX_PIECES or n_args > MAX_ARGUMENTS or n_pieces + n_args == 0:
        return None
    if fmt_ptr == 0 and not n_args <= n_pieces <= n_args + 1:  # what Arguments::new_v1 asserts
        return None
    if fmt_ptr != 0 and (n_fmt > MAX_ARGUMENTS or n_pieces > n_fmt + 1):
        return None
    raw = mem.read(pieces_ptr, FAT_POINTER.size * n_pieces) if n_pieces else b""
    if raw is None:
        return None
    pieces = []
    for ptr, length in FAT_POINTER.iter_unpack(raw):
        text = mem.text(ptr, length)
        if text is None:
            return None
        pieces.append(text)
    arguments = _read_argument_array(mem, args_ptr, n_args, layout)
    if arguments is None:
        return None
    order: list[int] = list(range(n_args))
    if fmt_ptr != 0:
        raw = mem.read(fmt_ptr, layout.format_spec_size * n_fmt) if n_fmt else b""
        if raw is None:
            return None
        order = []
        for k in range(n_fmt):
            (position,) = POINTER.unpack_from(raw, k * layout.format_spec_size)
            order.append(position if position < n_args else k)
    parts: list = []
    for k, index in enumerate(order):
        if k < len(pieces):
            parts.append(pieces[k])
        parts.append(index)
    parts.extend(pieces[len(order):])
    return _Arguments(parts, arguments)


def _read_argument_array(mem: ProcessMemory, address: int, count: int, layout: PanicLayout):
    if not count:
        return []
    raw = mem.read(address, layout.argument.size * count)
    if raw is None:
        return None
    arguments = []
    for value, formatter in layout.argument.iter_unpack(raw):
        if not mem.is_code(formatter):
            return None
        arguments.append((value, formatter))
    return arguments


def _read_template_arguments(mem: ProcessMemory, address: int, layout: PanicLayout,
                             static_str: bool) -> _Arguments | None:
    data = mem.read(address, layout.arguments.size)
    if data is None:
        return None
    template, args = layout.arguments.unpack(data)
    if not mem.in_image(template):  # the template (or the static str) is a constant in an image
        return None
    if args & 1:
        if not static_str:
            return None
        text = mem.text(template, args >> 1)
        return None if text is None else _Arguments([text], [])
    parts: list = []
    pos = template
    next_argument = 0
    while True:
        if len(parts) > 2 * MAX_PIECES:
            return None
        head = mem.read(pos, 1)
        if head is None:
            return None
        n = head[0]
        pos += 1
        if n == TEMPLATE_END:
            break
        if n < TEMPLATE_LONG_PIECE or n == TEMPLATE_LONG_PIECE:
            if n == TEMPLATE_LONG_PIECE:
                raw = mem.read(pos, TEMPLATE_U16.size)
                if raw is None:
                    return None
                (n,) = TEMPLATE_U16.unpack(raw)
                pos += TEMPLATE_U16.size
            text = mem.text(pos, n)
            if text is None:
                return None
            parts.append(text)
            pos += n
        elif n >= TEMPLATE_PLACEHOLDER:
            index = next_argument
            for bit, size in TEMPLATE_FIELDS:
                if n & bit:
                    if bit == TEMPLATE_ARG_INDEX:
                        raw = mem.read(pos, size)
                        if raw is None:
                            return None
                        (index,) = TEMPLATE_U16.unpack(raw)
                    pos += size
            if index >= MAX_ARGUMENTS:
                return None
            parts.append(index)
            next_argument = index + 1
        else:
            return None  # 0x81-0xBF: not a template byte
    indexes = [p for p in parts if isinstance(p, int)]
    if not parts or (indexes and args == 0):
        return None
    arguments = _read_argument_array(mem, args, max(indexes) + 1 if indexes else 0, layout)
    return None if arguments is None else _Arguments(parts, arguments)


class PanicReader:
    """Formats a panic's Arguments, naming each formatter with ``names(address)`` (function
    names covering a code address: the procedure's and the public symbol's)."""

    def __init__(self, mem: ProcessMemory, names: Callable[[int], list[str]], layout: PanicLayout = LAYOUT_2018):
        self.mem = mem
        self.names = names
        self.layout = layout

    def message(self, args: _Arguments, depth: int = 0) -> str:
        out: list[str] = []
        size = 0
        for part in args.parts:
            if isinstance(part, str):
                out.append(part)
            elif part < len(args.arguments):
                value, formatter = args.arguments[part]
                out.append(self.argument(value, formatter, depth))
            else:
                out.append(UNKNOWN_ARGUMENT)
            size += len(out[-1])
            if size > MAX_MESSAGE:
                break
        text = "".join(out)
        return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"

    def argument(self, value: int, formatter: int, depth: int) -> str:
        kind = formatter_type(self.names(formatter))
        if kind is None:
            return UNKNOWN_ARGUMENT
        trait, type_name = kind
        text = self.render(value, trait, type_name, depth)
        return UNKNOWN_ARGUMENT if text is None else text

    def render(self, value: int, trait: str, type_name: str, depth: int) -> str | None:
        if depth > MAX_DEPTH:
            return None
        type_name = type_name.strip()
        if type_name.startswith("&"):
            inner = type_name[5:] if type_name.startswith("&mut ") else type_name[1:]
            inner = inner.strip()
            if inner == "str" or inner.startswith("dyn "):
                data = self.mem.read(value, FAT_POINTER.size)
                if data is None:
                    return None
                pointer, meta = FAT_POINTER.unpack(data)
                return self.render_unsized(pointer, meta, trait, inner, depth + 1)
            pointer = self.mem.pointer(value)
            return None if pointer is None else self.render(pointer, trait, inner, depth + 1)
        if type_name in INTEGERS:
            size, signed = INTEGERS[type_name]
            data = self.mem.read(value, size)
            if data is None:
                return None
            number = int.from_bytes(data, "little", signed=signed)
            if trait == "LowerHex":
                return f"{number & ((1 << 8 * size) - 1):x}"
            if trait == "UpperHex":
                return f"{number & ((1 << 8 * size) - 1):X}"
            return str(number) if trait in ("Display", "Debug") else None
        if type_name == "bool":
            data = self.mem.read(value, 1)
            return None if data is None or data[0] > 1 else ("true" if data[0] else "false")
        if type_name == "char":
            data = self.mem.read(value, 4)
            if data is None:
                return None
            code = int.from_bytes(data, "little")
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return None
            return chr(code) if trait == "Display" else "'" + escape_debug(chr(code), "'") + "'"
        if type_name == "core::fmt::Arguments":
            args = read_arguments(self.mem, value, self.layout, static_str=True)
            return None if args is None else self.message(args, depth + 1)
        return None

    def render_unsized(self, pointer: int, meta: int, trait: str, type_name: str, depth: int) -> str | None:
        if type_name == "str":
            text = self.mem.text(pointer, meta)
            if text is None:
                return None
            return text if trait == "Display" else '"' + escape_debug(text, '"') + '"'
        # dyn Trait: the vtable's first method is the trait's formatting function.
        method = self.mem.pointer(meta + self.layout.vtable_methods)
        if method is None or not self.mem.is_code(method):
            return None
        kind = formatter_type(self.names(method))
        return None if kind is None else self.render(pointer, kind[0], kind[1], depth + 1)


_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", "\0": "\\0"}


def escape_debug(text: str, quote: str) -> str:
    """Rust's ``Debug`` escaping of a str (quote ``"``) or char (quote ``'``)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or not ch.isprintable() and ch != " ":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return "".join(out)


_IMPL_FOR = re.compile(r"<impl core::fmt::(Display|Debug|LowerHex|UpperHex) for ([^<>]+?)>::fmt\b")
_TRAIT_IMPL = " as core::fmt::"


def formatter_type(names: list[str]) -> tuple[str, str] | None:
    """(trait, type) a formatting function is for, from its names: a public symbol
    (``<impl core::fmt::Display for u16>::fmt``, ``<&T as core::fmt::Display>::fmt``) and a
    procedure name whose generic argument fills in ``T`` (the PDB's ``core::fmt::{impl#61}::fmt<str>``,
    DWARF's ``fmt<str>``)."""
    from symtool.demangle import normalize_msvc_name

    generic = None
    for name in names:
        name = normalize_msvc_name(name)
        if name.endswith(">") and (name.startswith("fmt<") or "::fmt<" in name):
            generic = name[name.index("fmt<") + 4:-1].strip() if name.startswith("fmt<") \
                else name[name.index("::fmt<") + 6:-1].strip()
    for name in names:
        name = normalize_msvc_name(name)
        m = _IMPL_FOR.search(name)
        if m:
            return m.group(1), m.group(2).strip()
        if name.startswith("<") and _TRAIT_IMPL in name:
            depth = 0
            for i, ch in enumerate(name):
                depth += ch == "<"
                depth -= ch == ">"
                if depth == 1 and name.startswith(_TRAIT_IMPL, i):
                    type_name = name[1:i]
                    rest = name[i + len(_TRAIT_IMPL):]
                    trait = rest.split(">", 1)[0]
                    if not rest.startswith(trait + ">::fmt"):
                        break
                    if re.search(r"\bT\b", type_name):
                        if generic is None:
                            return None
                        type_name = re.sub(r"\bT\b", generic, type_name)
                    return trait, type_name
                if depth == 0:
                    break
    return None


def find_panic(mem: ProcessMemory, stack: bytes, stack_start: int, scan_from: int, scan_to: int,
               names: Callable[[int], list[str]], layouts: tuple[PanicLayout, ...] = (LAYOUT_2018,)):
    """(file, line, column) or None, and the message or None, from the stack words in
    [scan_from, scan_to), trying ``layouts`` (see symtool.formats.rust_panic.layouts_for)."""
    known = len(layouts) == 1  # the compiler version chose the layout
    readers = [PanicReader(mem, names, layout) for layout in layouts]
    location = message = None
    tried_locations: set[int] = set()
    tried_arguments: set[int] = set()
    begin = max(scan_from - stack_start, 0) & ~7
    end = min(scan_to - stack_start, len(stack), begin + MAX_SCAN_BYTES)
    try:
        for off in range(begin, end - 7, 8):
            (word,) = POINTER.unpack_from(stack, off)
            if word < 0x10000:
                continue
            if location is None and word not in tried_locations:
                tried_locations.add(word)
                location = read_location(mem, word, layouts[0])
            if message is None and word not in tried_arguments:
                tried_arguments.add(word)
                for reader in readers:
                    args = read_arguments(mem, word, reader.layout, static_str=known)
                    if args is not None:
                        message = reader.message(args)
                        break
            if location is not None and message is not None:
                break
    except (BudgetExceeded, FormatError, struct.error):
        pass  # what was found before the budget ran out stands
    return location, message


def _thread_name(md, thread_id: int, functions: list[str | None]) -> str | None:
    """The panicking thread's name: the dump's thread-name stream, else ``main`` for the thread
    that runs ``std::rt::lang_start`` (std names the main thread so)."""
    thread = md.dump.thread(thread_id)
    if thread is not None and thread.name:
        return thread.name
    if any(f and f.startswith("std::rt::lang_start") for f in functions) and \
            not any(f and f.startswith("std::thread::") for f in functions):
        return "main"
    return None


def _rustc_of(md, frame, resolver) -> tuple[int, int] | None:
    """The rustc version that built ``frame``'s code: its PDB module's S_COMPILE3, or its ELF
    file's ``.comment``."""
    module = md.dump.module_at(int(frame.address, 16))
    if module is None:
        return None
    syms = resolver.module(module)
    try:
        if syms.build_id is not None:
            return rustc_version(getattr(syms.image, "comment", None))
        if syms.pdb_path is not None:
            return rustc_version(resolver.symbolizers.get(syms.pdb_path).compiler_at(int(frame.address, 16)
                                                                                    - module.base))
    except (FormatError, OSError, ValueError):
        return None
    return None


def crash_panic(md, stack, resolver) -> Panic | None:
    """The panic of the crashing thread's walked ``stack`` (a ThreadStack), or None when the
    crash is not a panic.  Frames must be symbolized (``resolver`` names the formatters)."""
    from symtool.demangle import demangle
    from symtool.dumps.signature import runtime_prefix

    functions = [f.function for f in stack.frames]
    if not stack.frames or not is_panic(functions):
        return None
    sps = [int(f.sp, 16) for f in stack.frames if f.sp]
    if not sps:
        return None
    scan_from = sps[0]
    user = runtime_prefix(stack.frames)
    scan_to = scan_from + MAX_SCAN_BYTES
    if user < len(stack.frames) and stack.frames[user].sp:
        user_sp = int(stack.frames[user].sp, 16)
        later = [sp for sp in sps if sp > user_sp]
        scan_to = later[0] if later else user_sp + MAX_SCAN_BYTES
    rng = md.range_at(scan_from)
    if rng is None:
        return None
    try:
        stack_bytes = md.read_range(rng, min(rng.size, MAX_SCAN_BYTES + (scan_from - rng.start)))
    except FormatError:
        return None
    modules = {}
    for f in stack.frames:
        module = md.dump.module_at(int(f.address, 16)) if f.module else None
        if module is not None and module.base not in modules:
            modules[module.base] = (module.base, module.size, resolver.module(module).image)

    def read_saved(address: int, size: int) -> bytes | None:
        try:
            return md.read_memory(address, size)
        except FormatError:
            return None

    mem = ProcessMemory(read_saved, list(modules.values()))

    def names(address: int) -> list[str]:
        module = md.dump.module_at(address)
        if module is None:
            return []
        syms = resolver.module(module)
        try:
            if syms.build_id is not None:
                sym = resolver.dwarf_symbolizer(syms)
            elif syms.pdb_path is not None:
                sym = resolver.symbolizers.get(syms.pdb_path)
            else:
                return []
            res = sym.symbolize(address - module.base) if sym is not None else None
        except (FormatError, OSError, ValueError, IndexError, KeyError, struct.error):
            return []
        if res is None:
            return []
        out = [demangle(res.symbol)] if res.symbol else []
        if res.frames:
            out.append(res.frames[-1].function)
        if res.short_name:
            out.append(res.short_name)
        return out

    layouts = layouts_for(_rustc_of(md, stack.frames[min(user, len(stack.frames) - 1)], resolver))
    location, message = find_panic(mem, stack_bytes, rng.start, scan_from, scan_to, names, layouts)
    if location is None and message is None:
        return None
    file, line, column = location if location is not None else (None, None, None)
    return Panic(message, file, line, column, _thread_name(md, stack.thread_id, functions))


__all__ = ["Panic", "crash_panic", "ProcessMemory", "PanicReader", "find_panic", "read_location", "read_arguments", "is_panic",
           "formatter_type", "escape_debug", "UNKNOWN_ARGUMENT"]

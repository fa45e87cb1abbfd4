"""Rust's panic structures as they lie in a crashed process's memory.

A panic carries a ``core::panic::Location`` (a static in the image's read-only
data: the file as a ``&str``, then line and column) and, for formatted panics,
a ``core::fmt::Arguments`` (static string pieces, optional format specs, and
the arguments: each a pointer to the value and the address of the function that
formats it).  Their layouts are rustc's choice (``repr(Rust)``), so they are
declared here once per layout, with the compiler versions each was read from:

* ``LAYOUT_2018`` (Rust 1.51 up to 1.92): ``Location {file: &str,
  line: u32, col: u32}``; ``Arguments {pieces: &[&str], fmt: Option<&[rt::v1::Argument]>,
  args: &[ArgumentV1]}``, each slice a (pointer, length) pair in that order;
  ``ArgumentV1 {value, formatter}``.  Read from rustc 1.63's x86_64-pc-windows-msvc
  programs (tests/corpus/std-crashers) and checked there against each program's
  own panic line.
* ``LAYOUT_TEMPLATE`` (Rust 1.93 and later): the same Location; ``Arguments`` is a byte
  template (below), checked on rustc 1.95 Linux programs.

Which one applies comes from the compiler version the debug info records (a PDB
module's S_COMPILE3, an ELF file's ``.comment``); when it is unknown both are tried.

Everything here is 64-bit little-endian; the readers validate every field
before using it (see :mod:`symtool.dumps.panic`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# A Rust fat pointer to str or a slice: (data pointer, length).
FAT_POINTER = struct.Struct("<QQ")
POINTER = struct.Struct("<Q")


@dataclass(frozen=True)
class PanicLayout:
    name: str
    kind: str  # "slices": pieces/fmt/args slices; "template": a byte template and an argument array
    location: struct.Struct  # file pointer, file length, line, column
    arguments: struct.Struct  # the fmt::Arguments record (fields per kind, see below)
    argument: struct.Struct  # value pointer, formatter function
    format_spec_size: int  # slices: size of one fmt spec entry; its first field is the argument position
    vtable_methods: int  # offset of the first trait method in a vtable (after drop, size, align)


LAYOUT_2018 = PanicLayout(
    name="rust-1.51",
    kind="slices",
    location=struct.Struct("<QQII"),
    arguments=struct.Struct("<QQQQQQ"),  # pieces ptr, pieces len, fmt ptr (0: None), fmt len, args ptr, args len
    argument=struct.Struct("<QQ"),
    format_spec_size=56,
    vtable_methods=24,
)

# rustc 1.93 and later (rust-lang/rust#148789; read from rustc 1.95's x86_64-unknown-linux-gnu
# programs): ``Arguments {template: *const u8, args: usize}``.  With the low bit of ``args`` set,
# the Arguments is a static str: ``template`` points at its bytes, ``args >> 1`` is its length.
# Otherwise ``args`` points at the Argument array and ``template`` at a byte program ended by 0:
# 1-127: a literal piece of that many bytes; 0x80: a u16 length, then the piece; 0xC0-0xFF: a
# placeholder whose low bits say which fields follow (1: flags u32, 2: width u16, 4: precision
# u16, 8: argument index u16; without an index, the next argument).
LAYOUT_TEMPLATE = PanicLayout(
    name="rust-1.93",
    kind="template",
    location=struct.Struct("<QQII"),
    arguments=struct.Struct("<QQ"),
    argument=struct.Struct("<QQ"),
    format_spec_size=0,
    vtable_methods=24,
)
TEMPLATE_END = 0
TEMPLATE_LONG_PIECE = 0x80
TEMPLATE_PLACEHOLDER = 0xC0
TEMPLATE_U16 = struct.Struct("<H")
# (bit, size) of a placeholder's optional fields, in the order they follow its first byte.
TEMPLATE_FIELDS = ((0x1, 4), (0x2, 2), (0x4, 2), (0x8, 2))
TEMPLATE_ARG_INDEX = 0x8

TEMPLATE_SINCE = (1, 93)


def layouts_for(rustc: tuple[int, int] | None) -> tuple[PanicLayout, ...]:
    """The layouts to try for code built by rustc ``(major, minor)``; both when unknown."""
    if rustc is None:
        return (LAYOUT_2018, LAYOUT_TEMPLATE)
    return (LAYOUT_TEMPLATE,) if rustc >= TEMPLATE_SINCE else (LAYOUT_2018,)


def rustc_version(text: str | None) -> tuple[int, int] | None:
    """(major, minor) from a compiler version string ("rustc version 1.95.0 (…)",
    "clang LLVM (rustc version 1.63.0)"), or None."""
    if not text:
        return None
    at = text.find("rustc version ")
    if at < 0:
        return None
    parts = text[at + len("rustc version "):].split(".", 2)
    try:
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None


__all__ = ["PanicLayout", "LAYOUT_2018", "LAYOUT_TEMPLATE", "layouts_for", "rustc_version", "FAT_POINTER", "POINTER",
           "TEMPLATE_END", "TEMPLATE_LONG_PIECE", "TEMPLATE_PLACEHOLDER", "TEMPLATE_U16", "TEMPLATE_FIELDS",
           "TEMPLATE_ARG_INDEX"]

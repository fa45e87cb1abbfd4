"""Rust's panic structures as they lie in a crashed process's memory.

A panic carries a ``core::panic::Location`` (a static in the image's read-only
data: the file as a ``&str``, then line and column) and, for formatted panics,
a ``core::fmt::Arguments`` (static string pieces, optional format specs, and
the arguments: each a pointer to the value and the address of the function that
formats it).  Their layouts are rustc's choice (``repr(Rust)``), so they are
declared here once per layout, with the compiler versions each was read from:

* ``LAYOUT_2018`` (Rust 1.51 through at least 1.88): ``Location {file: &str,
  line: u32, col: u32}``; ``Arguments {pieces: &[&str], fmt: Option<&[rt::v1::Argument]>,
  args: &[ArgumentV1]}``, each slice a (pointer, length) pair in that order;
  ``ArgumentV1 {value, formatter}``.  Read from rustc 1.63's x86_64-pc-windows-msvc
  programs (tests/corpus/std-crashers) and checked there against each program's
  own panic line.

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
    location: struct.Struct  # file pointer, file length, line, column
    arguments: struct.Struct  # pieces ptr, pieces len, fmt ptr (0: None), fmt len, args ptr, args len
    argument: struct.Struct  # value pointer, formatter function
    format_spec_size: int  # size of one rt::v1::Argument (fmt entries); its first field is the position
    vtable_methods: int  # offset of the first trait method in a vtable (after drop, size, align)


LAYOUT_2018 = PanicLayout(
    name="rust-1.51",
    location=struct.Struct("<QQII"),
    arguments=struct.Struct("<QQQQQQ"),
    argument=struct.Struct("<QQ"),
    format_spec_size=56,
    vtable_methods=24,
)

LAYOUTS = (LAYOUT_2018,)

__all__ = ["PanicLayout", "LAYOUT_2018", "LAYOUTS", "FAT_POINTER", "POINTER"]

"""What a symbolizer says about one address: the types the PDB and DWARF symbolizers share.

``Symbolized.frames`` is innermost first: with inlining, frames[0] is the inlined
callee that contains the address and frames[-1] the function it was inlined into.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError

# What a parser's explicit checks may still let through on hostile data.
MALFORMED = (struct.error, ValueError, IndexError, KeyError, OverflowError, RecursionError, TypeError,
             AttributeError, ZeroDivisionError)


def malformed_is_format_error(what: str):
    """A method decorator: whatever slips past the explicit checks on hostile data is still a
    FormatError ("malformed <what>") naming ``self.path``, never a traceback."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except FormatError:
                raise
            except MALFORMED as err:
                raise FormatError(f"malformed {what} ({type(err).__name__}: {err})", self.path) from None
        return wrapper
    return decorate


@dataclass
class Frame:
    """One function of an address's inline chain, and the file, line and column it is at.

    ``function`` may be given as None with ``mangled``: it is then ``demangle(mangled)``, worked
    out when first read.  ``symbolize`` prints LLVM's spelling (:func:`llvm_function`) and never
    reads it: a second demangling of every legacy name was 0.1 s of a cold run of 10,000
    addresses (the DWARF reader's frames are made this way)."""

    function: str
    file: str | None = None
    line: int | None = None
    column: int | None = None  # DWARF only (the line table's column, or DW_AT_call_column); 0: none
    # The function's linkage (mangled) name where one is known: the DWARF linkage name or the
    # symbol-table name ``function`` was demangled from, or the PDB public symbol at the
    # procedure's start.  ``function`` is the display form (symtool.demangle.demangle, or the
    # PDB's procedure name); ``symtool symbolize`` prints LLVM's whole demangling of this.
    mangled: str | None = None
    # What llvm-symbolizer prints for the function (:func:`llvm_function`), once worked out: a
    # symbol cache keeps it, so a warm run demangles nothing.  Derived, so not compared.
    printed: str | None = field(default=None, compare=False, repr=False)


def _frame_function(frame: Frame) -> str:
    function = frame._function
    if function is None and frame.mangled:
        from symtool.demangle import demangle  # (not on symbolize's way: start-up)

        function = frame._function = demangle(frame.mangled)
    return function


def _set_frame_function(frame: Frame, function: str | None) -> None:
    frame._function = function


# The dataclass's field, read through the property (its __init__, __eq__ and __repr__ included).
Frame.function = property(_frame_function, _set_frame_function)


# Itanium C++ (and Rust legacy), Rust v0 (with Mach-O's extra underscore), MSVC C++.
_MANGLED_PREFIXES = ("_Z", "__Z", "_R", "__R", "?")


def llvm_function(frame: Frame) -> str:
    """The frame's function as llvm-symbolizer prints it: LLVM's demangling of the linkage name
    it came from, whole (a Rust legacy name as Itanium C++ with its ``::h<hash>``, LLVM's
    `` (.llvm.N)`` suffix), where ``stack`` shows the readable, shortened ``function``.  Worked
    out once per Frame (kept in ``printed``)."""
    if frame.printed is not None:
        return frame.printed
    mangled = frame.mangled
    if mangled:
        from symtool.demangle import demangle_llvm  # only symbolize's output needs it: start-up

        printed = demangle_llvm(mangled)
        if printed == mangled and mangled.startswith(_MANGLED_PREFIXES):
            # A C++ or MSVC (``?name@@...``) name, which symtool does not demangle: the debug
            # info's own name where there is one.
            printed = frame.function or printed
        # else demangled, or a plain (C, #[no_mangle]) name: printed as it is (the readable
        # ``function`` is not needed, nor worked out)
    else:
        printed = frame.function or "??"
    frame.printed = printed
    return printed


@dataclass
class Symbolized:
    """What the debug information says about one RVA.  ``frames`` is innermost first: with
    inlining, frames[0] is the inlined callee that contains the address and
    frames[-1] the procedure it was inlined into."""

    rva: int
    section: int  # PDB: section number; ELF: index of the section holding the address
    offset: int  # within that section
    frames: list[Frame] = field(default_factory=list)
    symbol: str | None = None  # public (linkage) name covering the address
    symbol_offset: int | None = None  # rva - start of the procedure or public symbol
    module: str | None = None  # the object file / compiland
    # DWARF: the outer function's own DW_AT_name, which keeps the generic arguments a legacy
    # linkage name lacks ("fmt<str>" for "<&T as core::fmt::Display>::fmt").
    short_name: str | None = None

    @property
    def function(self) -> str | None:
        return self.frames[0].function if self.frames else None

    @property
    def file(self) -> str | None:
        return self.frames[0].file if self.frames else None

    @property
    def line(self) -> int | None:
        return self.frames[0].line if self.frames else None


ADDRESS_END = 1 << 64  # past every address: the end of an extent nothing bounds


class Extent:
    """[lo, hi): the addresses around the one asked for over which every fact found so far
    is the same (each lookup narrows it to its own cell), so one answer serves them all."""

    __slots__ = ("lo", "hi")

    def __init__(self):
        self.lo, self.hi = 0, ADDRESS_END

    def clip(self, lo: int, hi: int) -> None:
        if lo > self.lo:
            self.lo = lo
        if hi < self.hi:
            self.hi = hi

    def clip_cell(self, starts, ends, k: int, addr: int) -> None:
        """Narrow to the cell of ``addr`` in disjoint sorted [starts[i], ends[i]) where ``k`` is
        the last start at or before it: that interval, or the gap around the address."""
        if k >= 0 and addr < ends[k]:
            self.clip(starts[k], ends[k])
        else:
            self.clip(ends[k] if k >= 0 else 0, starts[k + 1] if k + 1 < len(starts) else ADDRESS_END)


__all__ = ["ADDRESS_END", "Extent", "Frame", "Symbolized", "llvm_function"]

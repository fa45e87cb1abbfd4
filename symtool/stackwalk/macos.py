"""One unwind step of a macOS (Mach-O) frame: compact unwind first, ``__eh_frame`` for the
functions whose compact encoding says DWARF mode.

:class:`MachoUnwindImage` is a module's binary as the walker sees it (addressed by RVA: VM
address minus ``__TEXT``'s): its ``__unwind_info`` (:mod:`symtool.formats.compact_unwind`),
its ``__eh_frame`` (:mod:`symtool.formats.dwarf_cfi`, pc-relative pointers from the section's
VM address) and its code (for the scanner's call-instruction check).

x86_64 (libunwind's rules for each encoding):

* RBP frame: the saved registers lie ``8 * offset`` below RBP, upward in encoding order;
  the caller's RIP is ``[RBP + 8]``, RSP ``RBP + 16``, RBP ``[RBP]``;
* frameless: the stack size is immediate or read from the ``sub rsp, imm32`` in the function
  (plus the adjustment); the return address is the last word of the frame, the saved
  registers right below it, in permutation order;
* DWARF: the FDE's row (``symtool.stackwalk.cfi.apply_row``);
* encoding 0 in the innermost frame: a leaf that neither moved RSP nor saved anything, so
  the return address is at ``[RSP]``;
* no entry (ld64.lld leaves functions that only have an FDE out of ``__unwind_info``): the
  ``__eh_frame`` FDE covering the address, as libunwind looks it up.

arm64 (:func:`unwind_macho_arm64`, the hook the arm64 walker calls):

* frame: x19..x28 and d8..d15 pairs below the frame record at FP; the caller's PC is ``[FP + 8]``
  with pointer-authentication bits stripped, SP ``FP + 16``, FP ``[FP]``;
* frameless: pairs below ``SP + stack size``; the caller's PC is LR (so only in the innermost
  frame: a function that calls saves LR and has a frame);
* DWARF: the FDE's row, with the aarch64 register rules.

Compact unwind describes a function's body: a fault inside a prologue or epilogue unwinds
as if the frame were complete (the caller found may then be wrong; the walk checks that it
leads to a return address before believing it).
"""

from __future__ import annotations

import os

from symtool.errors import FormatError
from symtool.formats.compact_unwind import CompactUnwindInfo, CompactRule, decode_arm64, decode_x86_64
from symtool.formats.cpu_context import CpuContext
from symtool.formats.dwarf_cfi import CfiRow, CfiSection
from symtool.formats.macho import MachoImage, open_macho_image
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import MASK64, VOLATILE, UnwindError

MAX_UNWIND_INFO = 64 << 20  # bytes of __unwind_info read (real images: a few hundred KB)
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM64 = 0x0100000C


class MachoUnwindImage:
    """A Mach-O binary's unwind tables and code, by module RVA (kept open: call ``close``)."""

    def __init__(self, image: MachoImage):
        self.image = image
        self.path = image.path
        self.arch = "arm64" if image.slice.cputype == CPU_TYPE_ARM64 else "x86_64"
        self.is_64 = image.is_64
        self.load_bias = image.text_vmaddr
        self.compact: CompactUnwindInfo | None = None
        view = image.view("__TEXT", "__unwind_info")
        if view is not None:
            if view.size > MAX_UNWIND_INFO:
                raise FormatError(f"__unwind_info of {view.size} bytes (limit {MAX_UNWIND_INFO})", self.path)
            self.compact = CompactUnwindInfo(view.read(0, view.size, "__unwind_info"), self.path)
        self.eh_frame: CfiSection | None = None
        eh = image.view("__TEXT", "__eh_frame")
        sec = image.slice.section("__TEXT", "__eh_frame")
        if eh is not None and sec is not None:
            self.eh_frame = CfiSection(eh, sec[5], image.endian, 8 if image.is_64 else 4, True)
        self._decode = decode_arm64 if self.arch == "arm64" else decode_x86_64

    def close(self) -> None:
        self.image.close()

    def compact_at(self, rva: int) -> tuple[int, int, CompactRule] | None:
        """(function start RVA, encoding, rule) of the compact entry covering ``rva``."""
        if self.compact is None:
            return None
        entry = self.compact.lookup(rva)
        if entry is None:
            return None
        return entry.start, entry.encoding, self._decode(entry.encoding)

    def row_at_rva(self, rva: int) -> CfiRow | None:
        """The ``__eh_frame`` row for ``rva`` (DWARF-mode functions, and binaries without compact unwind)."""
        if self.eh_frame is None:
            return None
        return self.eh_frame.row_at(rva + self.load_bias)

    def is_code(self, rva: int) -> bool:
        return self.image.is_code(rva + self.load_bias)

    def read_rva(self, rva: int, size: int) -> bytes | None:
        return self.image.read_vm(rva + self.load_bias, size)


def read_macho_unwind(path: str | os.PathLike[str], uuid: str | None = None) -> MachoUnwindImage:
    image = open_macho_image(path, uuid=uuid)
    try:
        return MachoUnwindImage(image)
    except BaseException:
        image.close()
        raise


def _read64(mem: StackMemory, address: int, what: str) -> int:
    value = mem.u64(address & MASK64)
    if value is None:
        raise UnwindError(f"{what} at {address & MASK64:#x} is outside the saved stack")
    return value


def _rule(image: MachoUnwindImage, ctx: CpuContext, pc_name: str, base: int, innermost: bool):
    pc = ctx.regs.get(pc_name)
    if pc is None:
        raise UnwindError(f"{pc_name} unknown")
    rva = (pc if innermost else pc - 1) - base
    try:
        found = image.compact_at(rva)
    except FormatError as err:
        raise UnwindError(err.message) from None
    return rva, found


def _dwarf_row(image: MachoUnwindImage, rva: int) -> CfiRow:
    try:
        row = image.row_at_rva(rva)
    except FormatError as err:
        raise UnwindError(err.message) from None
    if row is None:
        raise UnwindError(f"no compact unwind entry and no __eh_frame FDE covers RVA {rva:#x}")
    return row


def unwind_macho_x64(ctx: CpuContext, image: MachoUnwindImage, base: int, mem: StackMemory,
                     innermost: bool) -> CpuContext:
    """The caller's registers from an x86_64 Mach-O frame's compact unwind entry (or its FDE).

    Raises UnwindError (no entry, memory outside the saved stack) or EndOfStack (DWARF rows)."""
    from symtool.stackwalk.cfi import apply_row

    rva, found = _rule(image, ctx, "rip", base, innermost)
    regs = ctx.regs
    rsp = regs.get("rsp")
    if rsp is None:
        raise UnwindError("rsp unknown")
    if found is None:
        # Not in __unwind_info (or none at all): functions with only an FDE, as libunwind does.
        if image.eh_frame is not None:
            return apply_row(ctx, _dwarf_row(image, rva), mem)
        raise UnwindError(f"no compact unwind entry covers RVA {rva:#x}")
    start, encoding, rule = found
    new = CpuContext("x64", {k: v for k, v in regs.items() if k not in VOLATILE and k != "rip"})
    if rule.kind == "dwarf":
        return apply_row(ctx, _dwarf_row(image, rva), mem)
    if rule.kind == "none":
        if not innermost:
            raise UnwindError(f"no unwind information for RVA {rva:#x} (encoding 0)")
        new.regs["rip"] = _read64(mem, rsp, "return address")
        new.regs["rsp"] = rsp + 8
        return new
    if rule.kind == "frame":
        rbp = regs.get("rbp")
        if not rbp:
            raise UnwindError("RBP frame without a frame pointer")
        for name, offset in rule.saved:
            new.regs[name] = _read64(mem, rbp + offset, f"saved {name}")
        new.regs["rip"] = _read64(mem, rbp + 8, "return address")
        new.regs["rbp"] = _read64(mem, rbp, "saved RBP")
        new.regs["rsp"] = (rbp + 16) & MASK64
        return new
    size = rule.stack_size
    if rule.stack_size_at is not None:
        raw = image.read_rva(start + rule.stack_size_at, 4)
        if raw is None:
            raise UnwindError(f"stack size of the function at RVA {start:#x} is not in the image")
        size = int.from_bytes(raw, "little") + rule.stack_adjust
    top = rsp + size
    for name, offset in rule.saved:
        new.regs[name] = _read64(mem, top + offset, f"saved {name}")
    new.regs["rip"] = _read64(mem, top - 8, "return address")
    new.regs["rsp"] = top & MASK64
    return new


def unwind_macho_arm64(ctx: CpuContext, image: MachoUnwindImage, base: int, mem: StackMemory,
                       innermost: bool) -> CpuContext:
    """The caller's registers from an arm64 Mach-O frame's compact unwind entry (the hook of
    symtool.stackwalk.arm64; the walk strips pointer-authentication bits from the PC it returns).
    DWARF-mode entries are unwound with their ``__eh_frame`` row (AArch64 register rules)."""
    from symtool.stackwalk.cfi import apply_row as apply_dwarf

    rva, found = _rule(image, ctx, "pc", base, innermost)

    def strip(address: int) -> int:
        return address
    regs = ctx.regs
    sp = regs.get("sp")
    if sp is None:
        raise UnwindError("sp unknown")
    if found is None and image.eh_frame is None:
        raise UnwindError(f"no compact unwind entry covers RVA {rva:#x}")
    if found is None or found[2].kind == "dwarf":
        return apply_dwarf(ctx, _dwarf_row(image, rva), mem)
    _start, encoding, rule = found
    callee_saved = [f"x{n}" for n in range(19, 29)] + [f"d{n}" for n in range(8, 16)] + ["fp"]
    new = CpuContext(ctx.cpu, {k: v for k, v in regs.items() if k in callee_saved})
    if rule.kind == "none":
        if not innermost or "lr" not in regs:
            raise UnwindError(f"no unwind information for RVA {rva:#x} (encoding 0)")
        new.regs["pc"] = strip(regs["lr"])
        new.regs["sp"] = sp
        return new
    if rule.kind == "frame":
        fp = regs.get("fp")
        if not fp:
            raise UnwindError("frame without a frame pointer")
        for name, offset in rule.saved:
            new.regs[name] = _read64(mem, fp + offset, f"saved {name}")
        new.regs["pc"] = strip(_read64(mem, fp + 8, "saved LR"))
        new.regs["fp"] = _read64(mem, fp, "saved FP")
        new.regs["sp"] = (fp + 16) & MASK64
        return new
    if not innermost or "lr" not in regs:
        raise UnwindError(f"frameless function at RVA {rva:#x} in a caller frame (its LR is gone)")
    top = sp + rule.stack_size
    for name, offset in rule.saved:
        new.regs[name] = _read64(mem, top + offset, f"saved {name}")
    new.regs["pc"] = strip(regs["lr"])
    new.regs["sp"] = top & MASK64
    return new


__all__ = ["MachoUnwindImage", "read_macho_unwind", "unwind_macho_x64", "unwind_macho_arm64"]

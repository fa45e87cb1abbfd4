"""One ARM64 (AArch64) unwind step: from a module's unwind data, along the frame
record chain, or by scanning.

**The unwind-data hook.**  Each kind of module image that carries ARM64 unwind
data has one function in :data:`UNWINDERS`, with this signature::

    unwind(ctx: CpuContext, image, base: int, mem: StackMemory, innermost: bool) -> CpuContext

* ``ctx``: the callee's registers (``CpuContext.regs`` names: ``x0``..``x28``,
  ``fp``, ``lr``, ``sp``, ``pc``, ``cpsr``, ``d8``..``d15``; only known ones);
* ``image``: the module's image object as ``image_for(module)`` gave it
  (:class:`~symtool.formats.dwarf_cfi.ElfCfi` for ELF; a PE image's
  ``.pdata``/``.xdata``, a Mach-O's ``__unwind_info`` from their own modules);
* ``base``: the address the module is loaded at (``pc - base`` is the RVA);
* ``mem``: the saved stack (:class:`~symtool.stackwalk.memory.StackMemory`);
* ``innermost``: ``ctx`` is the context frame (``pc`` is the faulting
  instruction, perhaps in a prologue or epilogue); otherwise ``pc`` is a
  return address and the function's body is at ``pc - 4``.

It returns the caller's registers, those that can be known: at least ``pc``
(the return address; PAC bits may be left in, the walk strips them) and
``sp`` (the callee's CFA), plus every callee-saved register it restored.  It
raises :class:`~symtool.stackwalk.x64.UnwindError` when the data does not cover
``pc`` or does not evaluate (the walk then tries the frame records, then
scanning), or :class:`~symtool.stackwalk.cfi.EndOfStack` when the data says the
frame has no caller.

**The frame record chain** (AAPCS64 6.2.3): a function that sets up a frame
stores the pair (caller's FP, LR) at ``fp``: ``[fp]`` is the caller's frame
pointer, ``[fp+8]`` the return address, and the caller's SP is ``fp + 16``
at least (exact for ``stp x29, x30, [sp, #-16]!; mov x29, sp``).  The
innermost frame may be a leaf that saved nothing: its return address is still
in LR, and FP and SP are the caller's.  Such a frame is taken as a leaf when
LR is a return address and differs from the one in the frame record (a
non-leaf whose LR still matches its own record is unwound by the record).
Callers found this way are checked like the x86 EBP chain: the stack pointer
grows and the return address follows a call instruction in a module.

**Scanning** looks for a word on the stack that, stripped of PAC bits,
follows a ``BL``, ``BLR`` or ``BLRA*`` instruction in a module's code.

**Pointer authentication.**  With PAC (ARMv8.3; Apple's arm64e, Linux with
``-mbranch-protection``) a return address saved on the stack carries a
signature in its upper bits.  :func:`strip_pac` keeps only the bits of a
user-space code address: as many as the highest module end address needs
(rust-minidump's first heuristic), at least 39 and at most 48 (Linux, Windows
and macOS give user space at most 48 address bits).  Only return addresses
are stripped: a saved FP is a stack address, which may lie above every
module (Linux puts the stack near 2^47), so the module mask would cut it.
"""

from __future__ import annotations

from typing import Callable, Protocol

from symtool.formats.cpu_context import ARM64_CALLEE_SAVED_FP, CpuContext
from symtool.formats.dwarf_cfi import ElfCfi
from symtool.formats.pe_unwind_arm64 import Arm64PeUnwindImage
from symtool.stackwalk.arm64_pe import unwind_arm64_pe
from symtool.stackwalk.cfi import unwind_cfi
from symtool.stackwalk.macos import MachoUnwindImage, unwind_macho_arm64
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import UnwindError

MASK64 = (1 << 64) - 1
INSTRUCTION_SIZE = 4
# Registers a callee must preserve (AAPCS64 6.1.1, 6.1.2): what a caller frame keeps from its callee
# when the unwind data does not say where they were saved.
CALLEE_SAVED = tuple(f"x{i}" for i in range(19, 29)) + ("fp",) + ARM64_CALLEE_SAVED_FP
MIN_ADDRESS_BITS = 39  # the smallest user address space of Linux's arm64 configurations
MAX_ADDRESS_BITS = 48


class Arm64Unwind(Protocol):
    def __call__(self, ctx: CpuContext, image: object, base: int, mem: StackMemory,
                 innermost: bool) -> CpuContext: ...


def unwind_dwarf_cfi(ctx: CpuContext, image: ElfCfi, base: int, mem: StackMemory, innermost: bool) -> CpuContext:
    """Linux (and any ELF): ``.eh_frame`` / ``.debug_frame`` with the AArch64 register numbers."""
    return unwind_cfi(ctx, image, base, mem, innermost)


# (image type, unwind function): the first whose type the module's image is an instance of is used.
UNWINDERS: list[tuple[type, Arm64Unwind]] = [
    (ElfCfi, unwind_dwarf_cfi),
    (Arm64PeUnwindImage, unwind_arm64_pe),  # Windows ARM64 .pdata/.xdata
    (MachoUnwindImage, unwind_macho_arm64),  # macOS __unwind_info, then __eh_frame for DWARF-mode entries
]


def unwinder_for(image: object) -> Arm64Unwind | None:
    for kind, unwind in UNWINDERS:
        if isinstance(image, kind):
            return unwind
    return None


def address_mask(highest_module_end: int) -> int:
    """The bits of a user-space code address, from the highest module end (see :func:`strip_pac`)."""
    bits = max(MIN_ADDRESS_BITS, min(MAX_ADDRESS_BITS, (highest_module_end - 1).bit_length()))
    return (1 << bits) - 1


def strip_pac(value: int, mask: int) -> int:
    """A return address without its pointer-authentication signature (the bits above ``mask``)."""
    return value & mask


def is_call(insn: int) -> bool:
    """Is the 32-bit instruction ``insn`` a call that sets LR: BL, BLR, BLRAA, BLRAAZ, BLRAB, BLRABZ?"""
    if insn & 0xFC000000 == 0x94000000:  # BL imm26
        return True
    if insn & 0xFFFFFC1F == 0xD63F0000:  # BLR Xn
        return True
    if insn & 0xFFFFF81F == 0xD63F081F:  # BLRAAZ / BLRABZ Xn (bit 10 picks the key)
        return True
    return insn & 0xFFFFF800 == 0xD73F0800  # BLRAA / BLRAB Xn, Xm


def after_call_arm64(code: bytes) -> bool:
    """Do the 4 bytes before a return address hold a call instruction?"""
    return len(code) >= 4 and is_call(int.from_bytes(code[-4:], "little"))


def unwind_frame_record(ctx: CpuContext, mem: StackMemory, innermost: bool,
                        is_return: Callable[[int], bool], mask: int) -> CpuContext:
    """The caller along the frame record chain (module docstring): from the record at ``fp``, or,
    for an innermost leaf, from LR."""
    fp, sp = ctx.regs.get("fp"), ctx.regs.get("sp")
    if sp is None:
        raise UnwindError("sp unknown")
    kept = {k: v for k, v in ctx.regs.items() if k in CALLEE_SAVED}
    saved = None
    if fp and fp % 8 == 0:
        caller_fp, ret = mem.u64(fp), mem.u64(fp + 8)
        if caller_fp is not None and ret is not None:
            saved = (caller_fp, strip_pac(ret, mask))
    lr = ctx.regs.get("lr")
    if innermost and lr is not None:
        lr = strip_pac(lr, mask)
        if (saved is None or saved[1] != lr) and is_return(lr):
            # A leaf: nothing saved yet, the return address is in LR and FP, SP are the caller's.
            return CpuContext("arm64", {**kept, "pc": lr, "lr": lr, "sp": sp})
    if saved is None:
        raise UnwindError("no frame record at fp" if fp else "no frame pointer")
    caller_fp, ret = saved
    return CpuContext("arm64", {**kept, "fp": caller_fp, "pc": ret, "lr": ret, "sp": (fp + 16) & MASK64})


def scanned_caller(ctx: CpuContext, mem: StackMemory, slot: int, ret: int) -> CpuContext:
    """The caller whose return address ``ret`` a scan found at ``slot``.  Its SP is taken to be just
    above the slot (as Breakpad does); when the slot is the LR half of the callee's own frame record,
    the FP half beside it is the caller's FP, otherwise the callee's FP is kept."""
    regs = {k: v for k, v in ctx.regs.items() if k in CALLEE_SAVED}
    if ctx.regs.get("fp") == slot - 8:
        saved_fp = mem.u64(slot - 8)
        if saved_fp is not None:
            regs["fp"] = saved_fp
    regs.update({"pc": ret, "lr": ret, "sp": (slot + 8) & MASK64})
    return CpuContext("arm64", regs)


__all__ = ["scanned_caller", "UNWINDERS", "Arm64Unwind", "unwinder_for", "unwind_dwarf_cfi", "unwind_frame_record",
           "strip_pac", "address_mask", "is_call", "after_call_arm64", "CALLEE_SAVED", "INSTRUCTION_SIZE"]

"""One unwind step from a DWARF CFI row (symtool.formats.dwarf_cfi), for x86_64 and AArch64.

The CFA is ``register + offset``; a CFA given by a DWARF expression is not
evaluated (UnwindError: the walker falls back to the frame pointer, then to
scanning).  Register rules: ``offset(N)`` (saved at CFA+N), ``val_offset(N)``
(the value CFA+N), ``same_value``, ``undefined``, ``register(R)``; expression
rules are not evaluated either.  The caller's stack pointer is the CFA unless
a rule says otherwise; its instruction pointer is the return-address column.
An undefined return address is the end of the stack (as ``_start`` marks it
with ``.cfi_undefined rip`` / ``.cfi_undefined x30``).

Register numbers are each ABI's (:data:`DWARF_ABIS`): the x86_64 psABI's
(figure 3.36; 16 is the return address) and the AArch64 DWARF ABI's (x0..x30
are 0..30, sp is 31, v0..v31 are 64..95; the return address column is 30,
x30 = LR).  On AArch64 a leaf's FDE has no rule for x30 at all: the return
address is still in LR (a register without a rule keeps its value), where on
x86_64 every CIE gives the return address a rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from symtool.errors import FormatError
from symtool.formats.cpu_context import ARM64_CALLEE_SAVED_FP, CpuContext
from symtool.formats.dwarf_cfi import OFFSET, REGISTER, SAME_VALUE, UNDEFINED, VAL_OFFSET, CfiRow, ElfCfi
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import MASK64, VOLATILE, UnwindError

# DWARF register numbers of x86_64 (System V psABI, figure 3.36); 16 is the return address (RIP).
DWARF_X64_REGISTERS = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")
RETURN_ADDRESS = 16


@dataclass(frozen=True)
class DwarfAbi:
    """One CPU's DWARF register numbering, as ``CpuContext.regs`` names the registers."""

    cpu: str
    names: dict[int, str]  # DWARF register number -> register name (registers not needed are left out)
    volatile: frozenset[str]  # not preserved across a call: unknown in the caller unless a rule says
    pc: str
    sp: str
    ra_unchanged_without_rule: bool  # no rule for the return-address column: it holds the return address


X64_ABI = DwarfAbi("x64", dict(enumerate(DWARF_X64_REGISTERS)), frozenset(VOLATILE), "rip", "rsp", False)
# AArch64 (DWARF for the Arm 64-bit Architecture, 4.1): x0..x28, x29 (FP), x30 (LR), 31 SP, 64 + n is v<n>;
# of the vector registers only d8..d15 (the low halves of v8..v15) are callee-saved.  x0..x18 and LR do
# not survive a call (AAPCS64 6.1.1).
ARM64_ABI = DwarfAbi("arm64", {**{i: f"x{i}" for i in range(29)}, 29: "fp", 30: "lr", 31: "sp",
                               **{64 + 8 + k: name for k, name in enumerate(ARM64_CALLEE_SAVED_FP)}},
                     frozenset([f"x{i}" for i in range(19)] + ["lr"]), "pc", "sp", True)
DWARF_ABIS = {"x64": X64_ABI, "arm64": ARM64_ABI}


class EndOfStack(Exception):
    """The unwind data says this frame has no caller (its return address is undefined)."""


def _abi(ctx: CpuContext) -> DwarfAbi:
    abi = DWARF_ABIS.get(ctx.cpu)
    if abi is None:
        raise UnwindError(f"no DWARF register numbers for {ctx.cpu}")
    return abi


def _name(abi: DwarfAbi, regno: int) -> str:
    name = abi.names.get(regno)
    if name is None:
        raise UnwindError(f"DWARF register {regno} is not an {abi.cpu} integer register")
    return name


def apply_row(ctx: CpuContext, row: CfiRow, mem: StackMemory) -> CpuContext:
    """The caller's registers (those that can be known) from the callee's ``ctx`` and its row."""
    abi = _abi(ctx)
    regs = ctx.regs
    if row.cfa[0] != "register":
        raise UnwindError(f"CFA is a DWARF expression at {row.address:#x} (not evaluated)")
    base = _name(abi, row.cfa[1])
    if base not in regs:
        raise UnwindError(f"CFA register {base} unknown")
    cfa = (regs[base] + row.cfa[2]) & MASK64
    new = CpuContext(abi.cpu, {k: v for k, v in regs.items() if k not in abi.volatile and k != abi.pc})
    new.regs[abi.sp] = cfa
    ra_name = abi.names.get(row.return_register, abi.pc)
    rules = dict(row.rules)
    if row.return_register not in rules and abi.ra_unchanged_without_rule:
        rules[row.return_register] = (SAME_VALUE, None)
    if rules.get(row.return_register, (UNDEFINED, None))[0] == UNDEFINED:
        raise EndOfStack()
    for regno, (kind, operand) in rules.items():
        name = ra_name if regno == row.return_register else abi.names.get(regno)
        if name is None:
            continue  # vector and other registers: not needed to find frames
        if kind == OFFSET:
            value = mem.u64((cfa + operand) & MASK64)
            if value is None:
                raise UnwindError(f"{name} saved at {(cfa + operand) & MASK64:#x}, outside the saved stack")
            new.regs[name] = value
        elif kind == VAL_OFFSET:
            new.regs[name] = (cfa + operand) & MASK64
        elif kind == SAME_VALUE:
            if name in regs:
                new.regs[name] = regs[name]
        elif kind == UNDEFINED:
            new.regs.pop(name, None)
        elif kind == REGISTER:
            source = ra_name if operand == row.return_register else _name(abi, operand)
            if source not in regs:
                raise UnwindError(f"{name} is in {source}, which is unknown")
            new.regs[name] = regs[source]
        else:
            if name in (ra_name, abi.sp):
                raise UnwindError(f"{name} rule is a DWARF expression at {row.address:#x} (not evaluated)")
            new.regs.pop(name, None)  # an expression rule for another register: its value is unknown
    if ra_name not in new.regs:
        raise UnwindError("no return address rule" if ra_name == abi.pc else f"return address ({ra_name}) unknown")
    new.regs[abi.pc] = new.regs[ra_name]
    return new


def unwind_cfi(ctx: CpuContext, image: ElfCfi, base: int, mem: StackMemory, innermost: bool) -> CpuContext:
    """One step with the module's CFI.  Caller frames are looked up at ``pc - 1`` (their ``pc`` is a
    return address, which may be the first byte of the next function).

    Raises UnwindError (no row, data that does not evaluate) or EndOfStack."""
    abi = _abi(ctx)
    pc = ctx.regs.get(abi.pc)
    if pc is None or abi.sp not in ctx.regs:
        raise UnwindError(f"{abi.pc} or {abi.sp} unknown")
    rva = (pc if innermost else pc - 1) - base
    try:
        row = image.row_at_rva(rva)
    except FormatError as err:
        raise UnwindError(err.message) from None
    if row is None:
        raise UnwindError(f"no CFI covers {pc:#x}")
    return apply_row(ctx, row, mem)


def unwind_rbp(ctx: CpuContext, mem: StackMemory) -> CpuContext:
    """x86_64 frame-pointer step: [RBP] is the caller's RBP, [RBP+8] the return address."""
    rbp = ctx.regs.get("rbp")
    if not rbp:
        raise UnwindError("no frame pointer")
    saved, ret = mem.u64(rbp), mem.u64(rbp + 8)
    if saved is None or ret is None:
        raise UnwindError(f"frame at RBP {rbp:#x} is not in the saved stack")
    new = CpuContext("x64", {k: v for k, v in ctx.regs.items() if k in ("rbx", "r12", "r13", "r14", "r15")})
    new.regs.update({"rip": ret, "rsp": rbp + 16, "rbp": saved})
    return new


__all__ = ["apply_row", "unwind_cfi", "unwind_rbp", "EndOfStack", "DWARF_X64_REGISTERS", "DWARF_ABIS",
           "DwarfAbi", "X64_ABI", "ARM64_ABI"]

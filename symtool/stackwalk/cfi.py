"""One x86_64 unwind step from a DWARF CFI row (symtool.formats.dwarf_cfi).

The CFA is ``register + offset``; a CFA given by a DWARF expression is not
evaluated (UnwindError: the walker falls back to the frame pointer, then to
scanning).  Register rules: ``offset(N)`` (saved at CFA+N), ``val_offset(N)``
(the value CFA+N), ``same_value``, ``undefined``, ``register(R)``; expression
rules are not evaluated either.  The caller's RSP is the CFA unless a rule
says otherwise; its RIP is the return-address column.  An undefined RIP is
the end of the stack (as ``_start`` marks it with ``.cfi_undefined rip``).
"""

from __future__ import annotations

from symtool.errors import FormatError
from symtool.formats.cpu_context import CpuContext
from symtool.formats.dwarf_cfi import OFFSET, REGISTER, SAME_VALUE, UNDEFINED, VAL_OFFSET, CfiRow, ElfCfi
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import MASK64, VOLATILE, UnwindError

# DWARF register numbers of x86_64 (System V psABI, figure 3.36); 16 is the return address (RIP).
DWARF_X64_REGISTERS = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")
RETURN_ADDRESS = 16


class EndOfStack(Exception):
    """The unwind data says this frame has no caller (its return address is undefined)."""


def _name(regno: int) -> str:
    if not 0 <= regno < len(DWARF_X64_REGISTERS):
        raise UnwindError(f"DWARF register {regno} is not an x86_64 integer register")
    return DWARF_X64_REGISTERS[regno]


def apply_row(ctx: CpuContext, row: CfiRow, mem: StackMemory) -> CpuContext:
    """The caller's registers (those that can be known) from the callee's ``ctx`` and its row."""
    regs = ctx.regs
    if row.cfa[0] != "register":
        raise UnwindError(f"CFA is a DWARF expression at {row.address:#x} (not evaluated)")
    base = _name(row.cfa[1])
    if base not in regs:
        raise UnwindError(f"CFA register {base} unknown")
    cfa = (regs[base] + row.cfa[2]) & MASK64
    new = CpuContext("x64", {k: v for k, v in regs.items() if k not in VOLATILE and k != "rip"})
    new.regs["rsp"] = cfa
    ra_rule = row.rules.get(row.return_register, (UNDEFINED, None))
    if ra_rule[0] == UNDEFINED:
        raise EndOfStack()
    for regno, (kind, operand) in row.rules.items():
        name = "rip" if regno == row.return_register else _name(regno) if regno < RETURN_ADDRESS else None
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
            source = _name(operand) if operand != row.return_register else "rip"
            if source not in regs:
                raise UnwindError(f"{name} is in {source}, which is unknown")
            new.regs[name] = regs[source]
        else:
            if name == "rip" or name == "rsp":
                raise UnwindError(f"{name} rule is a DWARF expression at {row.address:#x} (not evaluated)")
            new.regs.pop(name, None)  # an expression rule for another register: its value is unknown
    if "rip" not in new.regs:
        raise UnwindError("no return address rule")
    return new


def unwind_cfi(ctx: CpuContext, image: ElfCfi, base: int, mem: StackMemory, innermost: bool) -> CpuContext:
    """One step with the module's CFI.  Caller frames are looked up at ``pc - 1`` (their ``pc`` is a
    return address, which may be the first byte of the next function).

    Raises UnwindError (no row, data that does not evaluate) or EndOfStack."""
    pc = ctx.regs.get("rip")
    if pc is None or "rsp" not in ctx.regs:
        raise UnwindError("rip or rsp unknown")
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


__all__ = ["apply_row", "unwind_cfi", "unwind_rbp", "EndOfStack", "DWARF_X64_REGISTERS"]

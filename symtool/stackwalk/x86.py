"""One x86 step along the EBP chain: [EBP] is the caller's EBP, [EBP+4] the return address."""

from __future__ import annotations

from symtool.formats.cpu_context import CpuContext
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import UnwindError


def unwind_x86_ebp(ctx: CpuContext, mem: StackMemory) -> CpuContext:
    ebp = ctx.regs.get("ebp")
    if ebp is None or ebp == 0:
        raise UnwindError("no frame pointer")
    saved_ebp, ret = mem.u32(ebp), mem.u32(ebp + 4)
    if saved_ebp is None or ret is None:
        raise UnwindError(f"frame at EBP {ebp:#x} is not in the saved stack")
    new = CpuContext("x86", {k: v for k, v in ctx.regs.items() if k in ("ebx", "esi", "edi")})
    new.regs.update({"eip": ret, "esp": ebp + 8, "ebp": saved_ebp})
    return new


__all__ = ["unwind_x86_ebp"]

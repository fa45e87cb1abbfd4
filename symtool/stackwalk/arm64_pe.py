"""One Windows ARM64 unwind step from a PE image's ``.pdata``/``.xdata``
(symtool.formats.pe_unwind_arm64), as Windows' ARM64 virtual unwinder does it.

* In a function's body every code from index 0 to ``end`` is undone (through an
  ``end_c`` into the parent's phantom prologue).
* In its prologue only the instructions that ran are undone: with ``k``
  instructions run of a prologue of ``n`` codes, the last ``k`` codes.  That is
  the innermost frame faulting there, or a caller whose prologue made a call
  (``bl __chkstk`` before a large allocation: its return address is in the
  prologue, the allocation not yet made).
* In an epilogue (the innermost frame only: a return address is never in one)
  the epilogue's remaining instructions are finished: its scope's codes are run
  from the first not yet executed one.
* Packed data (Flag 1) is expanded to the codes of its canonical prologue; its one
  epilogue ends the function.  Flag 2 (a fragment) has neither.
* A function without ``.pdata`` is a leaf: the return address is in ``lr`` and
  ``sp`` is unchanged.  Only the innermost frame can be one (a caller has made a
  call, so it saved ``lr`` and has unwind data).
* ``save_next`` extends the next pair save by one pair each (the pair after x27/x28
  is d8/d9); ``pac_sign_lr`` (``lr`` was signed) changes no register: the walk
  strips pointer authentication bits from every return address.

The caller's PC is the restored ``lr``; volatile registers (x0..x17) are dropped.
This is the unwind hook of :mod:`symtool.stackwalk.arm64` for
:class:`~symtool.formats.pe_unwind_arm64.Arm64PeUnwindImage`.
"""

from __future__ import annotations

from symtool.errors import FormatError
from symtool.formats.cpu_context import CpuContext
from symtool.formats.pe_unwind_arm64 import Arm64PeUnwindImage, Arm64UnwindCode
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import UnwindError

MASK64 = (1 << 64) - 1
VOLATILE = tuple(f"x{i}" for i in range(18))


def _int_name(reg: int) -> str:
    return "fp" if reg == 29 else "lr" if reg == 30 else f"x{reg}"


def _read(mem: StackMemory, address: int, what: str) -> int:
    value = mem.u64(address & MASK64)
    if value is None:
        raise UnwindError(f"{what}: stack memory at {address & MASK64:#x} is not in the dump")
    return value


def _register(regs: dict[str, int], name: str) -> int:
    value = regs.get(name)
    if value is None:
        raise UnwindError(f"{name} unknown")
    return value


def _restore_range(regs: dict[str, int], mem: StackMemory, code: Arm64UnwindCode, count: int, at: int) -> None:
    """Reload ``count`` consecutive registers from ``code.reg`` at ``at`` (8 bytes each)."""
    for k in range(count):
        reg = code.reg + k
        if code.is_fp_register:
            if reg > 31:
                raise UnwindError(f"{code.op} runs past d31")
            name = f"d{reg}"
        elif reg <= 28:
            name = f"x{reg}"
        elif reg - 29 + 8 <= 15:
            name = f"d{reg - 29 + 8}"  # save_next after x27/x28 goes on with d8/d9
        else:
            raise UnwindError(f"{code.op} runs past the callee-saved registers")
        regs[name] = _read(mem, at + 8 * k, code.op)


def run_codes(ctx: CpuContext, codes: list[Arm64UnwindCode], mem: StackMemory) -> None:
    """Undo ``codes`` (in order, up to ``end``) on ``ctx.regs``."""
    regs = ctx.regs
    pending_pairs = 0  # save_next codes waiting for the pair save they extend
    for code in codes:
        op = code.op
        if op == "end":
            break
        if op == "save_next":
            pending_pairs += 1
            continue
        count = 2 + 2 * pending_pairs
        pending_pairs = 0
        sp = _register(regs, "sp")
        if op in ("alloc_s", "alloc_m", "alloc_l"):
            regs["sp"] = (sp + code.offset) & MASK64
        elif op in ("save_r19r20_x", "save_regp_x", "save_fregp_x"):
            _restore_range(regs, mem, code, count, sp)
            regs["sp"] = (sp + code.offset) & MASK64
        elif op in ("save_regp", "save_fregp"):
            _restore_range(regs, mem, code, count, sp + code.offset)
        elif op == "save_fplr":
            regs["fp"] = _read(mem, sp + code.offset, op)
            regs["lr"] = _read(mem, sp + code.offset + 8, op)
        elif op == "save_fplr_x":
            regs["fp"] = _read(mem, sp, op)
            regs["lr"] = _read(mem, sp + 8, op)
            regs["sp"] = (sp + code.offset) & MASK64
        elif op == "save_reg":
            regs[_int_name(code.reg)] = _read(mem, sp + code.offset, op)
        elif op == "save_reg_x":
            regs[_int_name(code.reg)] = _read(mem, sp, op)
            regs["sp"] = (sp + code.offset) & MASK64
        elif op == "save_lrpair":
            regs[_int_name(code.reg)] = _read(mem, sp + code.offset, op)
            regs["lr"] = _read(mem, sp + code.offset + 8, op)
        elif op == "save_freg":
            regs[f"d{code.reg}"] = _read(mem, sp + code.offset, op)
        elif op == "save_freg_x":
            regs[f"d{code.reg}"] = _read(mem, sp, op)
            regs["sp"] = (sp + code.offset) & MASK64
        elif op == "set_fp":
            regs["sp"] = _register(regs, "fp")
        elif op == "add_fp":
            regs["sp"] = (_register(regs, "fp") - code.offset) & MASK64
        # nop, end_c and pac_sign_lr: no effect on the registers


def unwind_arm64_pe(ctx: CpuContext, image: Arm64PeUnwindImage, base: int, mem: StackMemory,
                    innermost: bool) -> CpuContext:
    """The caller's registers (those that can be known) from the callee's ``ctx``.

    ``innermost``: the frame holds the faulting instruction (it may be in a prologue or an
    epilogue, or in a leaf function).  Raises UnwindError when memory or unwind data are
    missing or inconsistent.
    """
    pc, sp = ctx.regs.get("pc"), ctx.regs.get("sp")
    if pc is None or sp is None:
        raise UnwindError("pc or sp unknown")
    new = CpuContext(ctx.cpu, {k: v for k, v in ctx.regs.items() if k not in VOLATILE})
    regs = new.regs
    rva = pc - base
    try:
        found = image.arm64_unwind_info(rva)
        if found is None:
            if not innermost:
                raise UnwindError(f"no .pdata covers {pc:#x}, and a caller is no leaf function")
            regs["pc"] = _register(regs, "lr")
            return new
        begin, info = found
        offset = rva - begin
        codes = info.prolog_codes
        prolog = info.prolog_instructions
        if offset < 4 * prolog:
            # Undo only the instructions that ran.  A caller's return address is in a prologue
            # when the prologue calls (__chkstk before a large allocation): the call has run.
            codes = codes[prolog - offset // 4:]
        elif innermost:
            epilog = info.epilog_at(offset)
            if epilog is not None:
                done, epilog_codes = epilog
                codes = epilog_codes[done:]
        run_codes(new, codes, mem)
    except FormatError as err:
        raise UnwindError(err.message) from None
    regs["pc"] = _register(regs, "lr")
    return new


__all__ = ["unwind_arm64_pe", "run_codes", "UnwindError"]

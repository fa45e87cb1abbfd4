"""One x64 unwind step, as RtlVirtualUnwind does it, from a PE image's
``.pdata`` RUNTIME_FUNCTION and UNWIND_INFO (see symtool.formats.pe_unwind).

* In a function's body every unwind code is undone, last pushed first.
* In its prologue (the innermost frame faulted before the prologue finished),
  only the codes whose instruction had run are undone.
* In its epilogue (innermost frame), the epilogue's remaining instructions
  are emulated: ``add rsp``/``lea rsp``, ``pop``s, then ``ret`` or a tail ``jmp``.
* A function without a RUNTIME_FUNCTION is a leaf: the return address is at [RSP].
* Chained UNWIND_INFO is followed (at most ``MAX_CHAIN`` links).
* PUSH_MACHFRAME restores RIP and RSP from the machine frame (an interrupt or
  exception frame) instead of popping a return address.
"""

from __future__ import annotations

from symtool.errors import FormatError
from symtool.formats.cpu_context import X64_REGISTERS, CpuContext
from symtool.formats.pe_unwind import (MAX_CHAIN, UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL, UWOP_PUSH_MACHFRAME,
                                       UWOP_PUSH_NONVOL, UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128,
                                       UWOP_SAVE_XMM128_FAR, UWOP_SET_FPREG, PeUnwindImage)
from symtool.stackwalk.memory import StackMemory

VOLATILE = ("rax", "rcx", "rdx", "r8", "r9", "r10", "r11")
MASK64 = (1 << 64) - 1


class UnwindError(Exception):
    """This step cannot be done from the unwind data (memory missing, data broken)."""


def _read(mem: StackMemory, address: int, what: str) -> int:
    value = mem.u64(address & MASK64)
    if value is None:
        raise UnwindError(f"{what}: stack memory at {address:#x} is not in the dump")
    return value


def _epilogue(image: PeUnwindImage, rva: int, begin: int, end: int) -> list[tuple] | None:
    """The instructions left in the epilogue at ``rva``, or None if ``rva`` is not in one.

    Recognised, as in RtlVirtualUnwind: an optional ``add rsp, imm`` or ``lea rsp, [reg+disp]``,
    ``pop`` of non-volatile registers, then ``ret``/``rep ret``/``ret imm16`` or a ``jmp`` that
    leaves the function (a tail call).
    """
    code = image.read_rva(rva, 64)
    if code is None:
        return None
    ops: list[tuple] = []
    i = 0
    # add rsp, imm8 / imm32
    if code[0:3] == b"\x48\x83\xc4":
        ops.append(("add", code[3] if code[3] < 0x80 else code[3] - 0x100))
        i = 4
    elif code[0:3] == b"\x48\x81\xc4":
        ops.append(("add", int.from_bytes(code[3:7], "little", signed=True)))
        i = 7
    elif code[0] in (0x48, 0x49) and code[1] == 0x8D and (code[2] >> 3) & 7 == 4 and code[2] >> 6 in (1, 2):
        # lea rsp, [reg + disp8/disp32]
        reg = (code[2] & 7) + (8 if code[0] == 0x49 else 0)
        if reg == 4:
            return None  # needs a SIB byte: [rsp+...] forms are not epilogue forms
        if code[2] >> 6 == 1:
            disp, i = (code[3] if code[3] < 0x80 else code[3] - 0x100), 4
        else:
            disp, i = int.from_bytes(code[3:7], "little", signed=True), 7
        ops.append(("lea", X64_REGISTERS[reg], disp))
    while i < len(code):
        b = code[i]
        if 0x58 <= b <= 0x5F:
            ops.append(("pop", X64_REGISTERS[b - 0x58]))
            i += 1
        elif b == 0x41 and i + 1 < len(code) and 0x58 <= code[i + 1] <= 0x5F:
            ops.append(("pop", X64_REGISTERS[code[i + 1] - 0x58 + 8]))
            i += 2
        else:
            break
    if i >= len(code):
        return None
    b = code[i]
    if b == 0xC3 or b == 0xC2 or (b == 0xF3 and i + 1 < len(code) and code[i + 1] == 0xC3):
        return ops + [("ret",)]
    if b == 0xE9 and i + 5 <= len(code):
        target = rva + i + 5 + int.from_bytes(code[i + 1:i + 5], "little", signed=True)
        if not begin <= target < end:
            return ops + [("ret",)]
    if b == 0xEB and i + 2 <= len(code):
        target = rva + i + 2 + (code[i + 1] if code[i + 1] < 0x80 else code[i + 1] - 0x100)
        if not begin <= target < end:
            return ops + [("ret",)]
    if (b == 0xFF and i + 1 < len(code) and code[i + 1] == 0x25) or (
            b == 0x48 and code[i + 1:i + 3] == b"\xff\x25"):
        return ops + [("ret",)]  # jmp [rip+disp]: a tail call through the import table
    return None


def _run_epilogue(ctx: CpuContext, ops: list[tuple], mem: StackMemory) -> CpuContext:
    regs = ctx.regs
    for op in ops:
        if op[0] == "add":
            regs["rsp"] = (regs["rsp"] + op[1]) & MASK64
        elif op[0] == "lea":
            if op[1] not in regs:
                raise UnwindError(f"epilogue: {op[1]} unknown")
            regs["rsp"] = (regs[op[1]] + op[2]) & MASK64
        elif op[0] == "pop":
            regs[op[1]] = _read(mem, regs["rsp"], "epilogue pop")
            regs["rsp"] += 8
        else:
            regs["rip"] = _read(mem, regs["rsp"], "return address")
            regs["rsp"] += 8
    return ctx


def unwind_x64(ctx: CpuContext, image: PeUnwindImage, base: int, mem: StackMemory,
               innermost: bool) -> CpuContext:
    """The caller's registers (those that can be known) from the callee's ``ctx``.

    ``innermost``: the frame holds the faulting instruction (it may be in a prologue or
    epilogue); for caller frames ``pc`` is a return address, always in a body.
    Raises UnwindError when memory or unwind data are missing or inconsistent.
    """
    pc, sp = ctx.regs.get("rip"), ctx.regs.get("rsp")
    if pc is None or sp is None:
        raise UnwindError("rip or rsp unknown")
    new = ctx.copy()
    for reg in VOLATILE:
        new.regs.pop(reg, None)
    regs = new.regs
    rva = pc - base
    try:
        entry = image.function_at(rva)
        if entry is None:
            # A leaf function (no stack allocation, no saved registers): the return address is at [RSP].
            regs["rip"] = _read(mem, sp, "return address")
            regs["rsp"] = sp + 8
            return new
        begin, end, info_rva = entry
        info = image.unwind_info(info_rva)
        offset = rva - begin
        if offset >= info.prolog_size:
            if innermost:
                ops = _epilogue(image, rva, begin, end)
                if ops is not None:
                    return _run_epilogue(new, ops, mem)
            offset = 1 << 32  # the whole prologue has run
        machframe = False
        for _link in range(MAX_CHAIN + 1):
            frame = regs["rsp"]
            if info.frame_register:
                fp_set = any(c.op == UWOP_SET_FPREG and offset >= c.offset for c in info.codes)
                if fp_set:
                    name = X64_REGISTERS[info.frame_register]
                    if name not in regs:
                        raise UnwindError(f"frame register {name} unknown")
                    frame = (regs[name] - info.frame_offset) & MASK64
            for code in info.codes:
                if offset < code.offset:
                    continue  # this prologue instruction had not run yet
                op = code.op
                if op == UWOP_PUSH_NONVOL:
                    regs[X64_REGISTERS[code.info]] = _read(mem, regs["rsp"], "PUSH_NONVOL")
                    regs["rsp"] += 8
                elif op in (UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL):
                    regs["rsp"] += code.operand
                elif op == UWOP_SET_FPREG:
                    regs["rsp"] = frame
                elif op in (UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR):
                    regs[X64_REGISTERS[code.info]] = _read(mem, frame + code.operand, "SAVE_NONVOL")
                elif op in (UWOP_SAVE_XMM128, UWOP_SAVE_XMM128_FAR):
                    pass  # XMM registers are not needed to find frames
                elif op == UWOP_PUSH_MACHFRAME:
                    at = regs["rsp"] + (8 if code.info else 0)
                    regs["rip"] = _read(mem, at, "machine frame RIP")
                    regs["rsp"] = _read(mem, at + 24, "machine frame RSP")
                    machframe = True
            if info.chained is None:
                break
            info = image.unwind_info(info.chained[2])
            offset = 1 << 32  # the chained (parent) function's prologue has run
        else:
            raise UnwindError(f"more than {MAX_CHAIN} chained unwind infos")
    except FormatError as err:
        raise UnwindError(err.message) from None
    if not machframe:
        regs["rip"] = _read(mem, regs["rsp"], "return address")
        regs["rsp"] += 8
    return new


__all__ = ["unwind_x64", "UnwindError"]

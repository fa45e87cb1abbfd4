"""One x86 unwind step: from a function's frame data (a FrameData program string
or an old FPO record, as a PDB gives them) or along the EBP chain ([EBP] is
the caller's EBP, [EBP+4] the return address).

FrameData program strings are postfix: values (``$reg``/``$Tn``/``.name``
variables, signed decimal constants) are pushed; ``+ - * / %`` and ``@``
(align down to a power of two) pop two values and push one; ``^`` reads the
32-bit word at an address; ``=`` assigns the value on top to the variable
below it.  Before evaluation ``$ebp``, ``$esp`` (and ``$ebx``, ``$esi``,
``$edi`` when known) hold the callee's registers, and, as Breakpad and
rust-minidump define them::

    .cbParams, .cbSavedRegs, .cbLocals, .cbCalleeParams  (sizes from the record)
    .raSearch = .raSearchStart = $esp + .cbLocals + .cbSavedRegs + .cbCalleeParams
                                 ($ebp + 4 when the program aligns with @)

where ``.cbCalleeParams`` is the parameter size of the frame's own callee.
Afterwards ``$eip``, ``$esp``, ``$ebp``, ``$ebx``, ``$esi``, ``$edi`` are the
caller's.  PDBs name registers by CodeView number (``$20`` is EBX).

Evaluation is bounded (tokens, stack depth, variables); anything that does not
evaluate (an undefined variable, division by zero, a read outside the saved
stack, a malformed program) raises UnwindError, and the walker falls back.
"""

from __future__ import annotations

from symtool.formats.cpu_context import CpuContext
from symtool.formats.pdb_frames import FrameInfo
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.x64 import UnwindError

MASK32 = 0xFFFFFFFF
MAX_TOKENS = 256  # real programs: under 40
MAX_STACK = 32  # evaluation stack depth
MAX_VARIABLES = 64
MAX_CONSTANT_DIGITS = 11  # a 32-bit value in decimal, with its sign
CALLEE_SAVED = ("ebx", "esi", "edi")
OUTPUTS = ("eip", "esp", "ebp") + CALLEE_SAVED
# CodeView x86 register numbers (cvconst.h CV_HREG_e) as they appear in PDB program strings.
CV_X86_REGISTERS = {"$17": "$eax", "$18": "$ecx", "$19": "$edx", "$20": "$ebx", "$21": "$esp", "$22": "$ebp",
                    "$23": "$esi", "$24": "$edi", "$33": "$eip"}


def _tokens(program: str) -> list[str]:
    out: list[str] = []
    for token in program.split():
        # Some toolchains write "=$eip" for "= $eip" (Breakpad and rust-minidump accept it).
        parts = ["=", token[1:]] if token.startswith("=") and len(token) > 1 else [token]
        out += [CV_X86_REGISTERS.get(p, p) for p in parts]
        if len(out) > MAX_TOKENS:
            raise UnwindError(f"program string has more than {MAX_TOKENS} tokens")
    return out


def eval_program(program: str, variables: dict[str, int], mem: StackMemory,
                 assigned: set[str] | None = None) -> dict[str, int]:
    """Run ``program`` on ``variables`` (updated in place and returned); the names it
    assigns are added to ``assigned``."""
    stack: list[object] = []  # ints are values, strs are variable names

    def value(item: object) -> int:
        if isinstance(item, int):
            return item
        if item not in variables:
            raise UnwindError(f"program string reads {item}, which is not defined")
        return variables[item]  # type: ignore[index]

    def pop() -> object:
        if not stack:
            raise UnwindError("program string pops an empty stack")
        return stack.pop()

    for token in _tokens(program):
        if token in ("+", "-", "*", "/", "%", "@"):
            rhs, lhs = value(pop()), value(pop())
            if token == "+":
                result = lhs + rhs
            elif token == "-":
                result = lhs - rhs
            elif token == "*":
                result = lhs * rhs
            elif rhs == 0:
                raise UnwindError(f"program string divides by zero ({token})")
            elif token == "/":
                result = lhs // rhs
            elif token == "%":
                result = lhs % rhs
            else:
                if rhs & (rhs - 1):
                    raise UnwindError(f"program string aligns to {rhs}, not a power of two")
                result = lhs & ~(rhs - 1)
            stack.append(result & MASK32)
        elif token == "^":
            address = value(pop())
            word = mem.u32(address)
            if word is None:
                raise UnwindError(f"program string reads {address:#x}, outside the saved stack")
            stack.append(word)
        elif token == "=":
            rhs, lhs = pop(), pop()
            if not isinstance(lhs, str):
                raise UnwindError("program string assigns to a constant")
            if assigned is not None:
                assigned.add(lhs)
            if rhs == ".undef":
                variables.pop(lhs, None)
            else:
                if lhs not in variables and len(variables) >= MAX_VARIABLES:
                    raise UnwindError(f"program string defines more than {MAX_VARIABLES} variables")
                variables[lhs] = value(rhs)
        elif token[0] in "$.":
            stack.append(token)
        else:
            digits = token[1:] if token[0] in "+-" else token
            if not digits.isdigit() or not digits.isascii() or len(token) > MAX_CONSTANT_DIGITS:
                raise UnwindError(f"program string has an unknown token {token[:20]!r}")
            stack.append(int(token) & MASK32)
        if len(stack) > MAX_STACK:
            raise UnwindError(f"program string stack deeper than {MAX_STACK}")
    return variables


def unwind_x86_framedata(ctx: CpuContext, info: FrameInfo, mem: StackMemory, callee_params: int = 0) -> CpuContext:
    """The caller's registers from a FrameData record's program string."""
    esp, ebp = ctx.regs.get("esp"), ctx.regs.get("ebp")
    if esp is None or ebp is None or not info.program:
        raise UnwindError("no stack or frame pointer, or no program string")
    frame_size = info.locals_size + info.saved_regs_size + callee_params
    search = ebp + 4 if "@" in info.program else esp + frame_size
    variables = {f"${r}": ctx.regs[r] for r in CALLEE_SAVED if r in ctx.regs}
    variables.update({"$esp": esp, "$ebp": ebp, ".cbParams": info.params_size, ".cbSavedRegs": info.saved_regs_size,
                      ".cbLocals": info.locals_size, ".cbCalleeParams": callee_params,
                      ".raSearch": search & MASK32, ".raSearchStart": search & MASK32})
    # Callee-saved registers the program does not restore are the callee's: a function that
    # does not save EBP, EBX, ESI or EDI does not change them (Breakpad forwards EBX alike).
    assigned: set[str] = set()
    eval_program(info.program, variables, mem, assigned)
    if "$eip" not in assigned or "$esp" not in assigned:
        raise UnwindError("program string did not set $eip and $esp")
    regs = {r: variables[f"${r}"] & MASK32 for r in OUTPUTS if f"${r}" in variables}
    if "eip" not in regs or "esp" not in regs:
        raise UnwindError("program string left $eip or $esp undefined")
    return CpuContext("x86", regs)


def unwind_x86_fpo(ctx: CpuContext, info: FrameInfo, mem: StackMemory, callee_params: int = 0,
                   is_context: bool = False) -> CpuContext:
    """The caller's registers from an old FPO_DATA record (Breakpad's STACK WIN type 0)."""
    esp = ctx.regs.get("esp")
    if esp is None:
        raise UnwindError("no stack pointer")
    at = esp + info.locals_size + info.saved_regs_size + callee_params
    ret = mem.u32(at)
    if ret is not None and is_context and ret == ctx.regs.get("eip"):
        at += 4  # a leftover return address of a frame-pointer-omitted system call (as Breakpad skips it)
        ret = mem.u32(at)
    if ret is None:
        raise UnwindError(f"FPO return address at {at:#x} is outside the saved stack")
    regs = {"eip": ret, "esp": (at + 4) & MASK32}
    if info.uses_bp:
        ebp = mem.u32(esp + callee_params + info.saved_regs_size - 8)
        if ebp is None:
            raise UnwindError("FPO saved EBP is outside the saved stack")
        regs["ebp"] = ebp
    else:
        regs.update({r: ctx.regs[r] for r in ("ebp", "ebx") if r in ctx.regs})
    return CpuContext("x86", regs)


def unwind_x86_frame_info(ctx: CpuContext, info: FrameInfo, mem: StackMemory, callee_params: int = 0,
                          is_context: bool = False) -> CpuContext:
    if info.kind == "framedata":
        return unwind_x86_framedata(ctx, info, mem, callee_params)
    return unwind_x86_fpo(ctx, info, mem, callee_params, is_context)


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


__all__ = ["unwind_x86_ebp", "unwind_x86_framedata", "unwind_x86_fpo", "unwind_x86_frame_info", "eval_program",
           "CV_X86_REGISTERS"]

"""The bounded stack walk: context frame, then unwind data (``cfi``), frame pointers
(``frame-pointer``) or scanning (``scan``), in that order, for each caller.

A module's unwind data is what ``image_for`` returns: a PE image's ``.pdata``
(:class:`PeUnwindImage`, Windows x64) or an ELF file's DWARF CFI
(:class:`ElfCfi`, ``.eh_frame``/``.debug_frame``, Linux x86_64 and arm64) or a Mach-O
binary's compact unwind and ``__eh_frame`` (:class:`MachoUnwindImage`, macOS x86_64 and arm64).
ARM64 frames go through :mod:`symtool.stackwalk.arm64`: the unwinder its
``UNWINDERS`` table gives for the image's type, then the frame record chain
(always: AArch64 code keeps frame records), then scanning; return addresses
are stripped of pointer-authentication bits.  With
``rbp_chain`` (Linux dumps, where code keeps frame pointers more often than
not) an x64 frame without usable CFI is tried along the RBP chain, validated
like the x86 EBP chain, before scanning.

It stops at the end of the saved stack, when the stack pointer does not
increase, when no caller can be found, at a zero return address, or after
``MAX_FRAMES`` frames; the reason is recorded in :attr:`WalkResult.stop`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable

from symtool.formats.cpu_context import CpuContext
from symtool.formats.dwarf_cfi import ElfCfi
from symtool.formats.pdb_frames import FrameTable
from symtool.formats.pe_unwind import PeUnwindImage
from symtool.stackwalk import arm64
from symtool.stackwalk.cfi import EndOfStack, unwind_cfi, unwind_rbp
from symtool.stackwalk.macos import MachoUnwindImage, unwind_macho_x64
from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.scan import after_call, scan_for_return
from symtool.stackwalk.x64 import UnwindError, unwind_x64
from symtool.stackwalk.x86 import unwind_x86_ebp, unwind_x86_frame_info

MAX_FRAMES = 1024
# A return address in the first page is no code: unwind data that leads there marks the end of
# the stack (a program entry point's "return address" is argc), as Breakpad's walker treats it.
MIN_RETURN_ADDRESS = 4096
TRUSTS = ("context", "cfi", "frame-pointer", "scan")


@dataclass
class WalkModule:
    base: int
    size: int
    name: str
    index: int  # position in the dump's module list

    def contains(self, address: int) -> bool:
        return self.base <= address < self.base + self.size


@dataclass
class StackFrame:
    pc: int  # the instruction pointer: the faulting instruction (frame 0) or a return address
    sp: int  # the stack pointer in this frame (Child-SP)
    trust: str  # "context", "cfi", "frame-pointer" or "scan"
    module: WalkModule | None
    context: CpuContext

    @property
    def lookup_address(self) -> int:
        """The address to symbolize: a return address minus one (x86: instructions have any length),
        minus 4 on arm64 (the call instruction itself), so the call itself is named."""
        if self.trust == "context":
            return self.pc
        return self.pc - (arm64.INSTRUCTION_SIZE if self.context.cpu == "arm64" else 1)


@dataclass
class WalkResult:
    frames: list[StackFrame] = field(default_factory=list)
    stop: str = ""  # why the walk ended
    truncated: bool = False  # ended on a problem (not at the stack's end)
    problems: list[str] = field(default_factory=list)


class Modules:
    """Modules sorted by base, found by address."""

    def __init__(self, modules: list[WalkModule]):
        self.modules = sorted(modules, key=lambda m: m.base)
        self._bases = [m.base for m in self.modules]

    def at(self, address: int) -> WalkModule | None:
        i = bisect.bisect_right(self._bases, address) - 1
        if i >= 0 and self.modules[i].contains(address):
            return self.modules[i]
        return None

    @property
    def highest_end(self) -> int:
        return max((m.base + m.size for m in self.modules), default=0)


MODULE_HEADER_PAGE = 0x1000


def walk_stack(ctx: CpuContext, mem: StackMemory, modules: list[WalkModule],
               image_for: Callable[[WalkModule], PeUnwindImage | ElfCfi | None], stack_end: int | None = None,
               max_frames: int = MAX_FRAMES, frame_info_for: Callable[[WalkModule], FrameTable | None] | None = None,
               rbp_chain: bool = False) -> WalkResult:
    """Frames of one thread, innermost first, from its context ``ctx`` and saved stack ``mem``.

    ``frame_info_for(module)``: the module's x86 frame data (FPO / FrameData records, e.g. from
    its PDB) or None; x86 frames are unwound with it first, then along the EBP chain, then by
    scanning."""
    mods = Modules(modules)
    word = 4 if ctx.cpu == "x86" else 8
    pac_mask = arm64.address_mask(mods.highest_end)
    end = stack_end if stack_end is not None else mem.end
    result = WalkResult()
    pc, sp = ctx.pc, ctx.sp
    if pc is None or sp is None:
        result.stop, result.truncated = "the context has no instruction or stack pointer", True
        return result
    frames = result.frames
    frames.append(StackFrame(pc, sp, "context", mods.at(pc), ctx))

    def is_return(value: int) -> bool:
        module = mods.at(value)
        if module is None:
            return False
        image = image_for(module)
        rva = value - module.base
        if image is None:
            # Without the image, any address in a module counts (weaker, still marked scan) but
            # its first page, the headers (ntdll+0x0 was taken for a return address).
            return rva >= MODULE_HEADER_PAGE
        if not image.is_code(rva):
            return False
        if ctx.cpu == "arm64":
            code = image.read_rva(rva - arm64.INSTRUCTION_SIZE, arm64.INSTRUCTION_SIZE)
            return code is not None and arm64.after_call_arm64(code)
        code = image.read_rva(rva - 7, 7)
        return code is not None and after_call(code)

    def is_return_stripped(value: int) -> bool:
        return is_return(arm64.strip_pac(value, pac_mask))

    callee_info = None  # the frame data of the frame below the one being unwound (x86)
    while True:
        if len(frames) >= max_frames:
            result.stop, result.truncated = f"stopped after {max_frames} frames", True
            break
        callee = frames[-1]
        caller: CpuContext | None = None
        trust = ""
        module = callee.module
        image = image_for(module) if module is not None else None
        problem = None
        innermost = callee.trust == "context"
        unwind, first_page_ends = _unwinder(ctx.cpu, image)
        if unwind is not None:
            try:
                caller = unwind(callee.context, image, module.base, mem, innermost)
                trust = "cfi"
            except EndOfStack:
                result.stop = "end of stack (the unwind data leaves the return address undefined)"
                break
            except UnwindError as err:
                problem = f"frame {len(frames) - 1}: {err}"
            if caller is not None and caller.pc is not None and ctx.cpu == "arm64":
                caller.regs["pc"] = arm64.strip_pac(caller.pc, pac_mask)
                if "lr" in caller.regs:
                    caller.regs["lr"] = arm64.strip_pac(caller.regs["lr"], pac_mask)
            if first_page_ends and caller is not None and caller.pc is not None and caller.pc < MIN_RETURN_ADDRESS:
                result.stop = "end of stack (return address in the first page)"
                break
            if ctx.cpu == "x64" and isinstance(image, MachoUnwindImage) and caller is not None \
                    and not ((caller.sp or 0) > callee.sp and is_return(caller.pc or 0)):
                # Compact unwind describes function bodies: in a prologue or epilogue it can point
                # at a word that is no return address.  The frame pointer, then scanning, decide.
                problem = problem or f"frame {len(frames) - 1}: compact unwind led to no return address"
                caller = None
        if ctx.cpu == "arm64":
            if caller is not None and caller.pc and mods.at(caller.pc) is None:
                caller = None  # unwind data led outside every module: not believable
            elif caller is not None and callee.trust in ("frame-pointer", "scan") and caller.pc \
                    and not is_return(caller.pc):
                # A frame record or a scan gives only an estimate of SP (the record may sit below
                # saved registers): unwind data computing from SP then lands anywhere.  Believed only
                # when it lands right after a call instruction.
                caller = None
            if caller is None:
                try:
                    caller = arm64.unwind_frame_record(callee.context, mem, innermost, is_return, pac_mask)
                    trust = "frame-pointer"
                except UnwindError:
                    pass  # no usable frame record: scanning is the fallback
                if caller is not None and caller.pc == 0 and not caller.regs.get("fp"):
                    result.stop = "end of stack (the last frame record is zero)"
                    break
                if caller is not None and not (_sp_grew(caller, callee, innermost) and is_return(caller.pc or 0)):
                    caller = None  # a record that does not lead up the stack to a return address: scan instead
        elif ctx.cpu == "x86":
            table = frame_info_for(module) if frame_info_for is not None and module is not None else None
            info = table.find(callee.lookup_address - module.base) if table is not None else None
            if info is not None:
                try:
                    caller = unwind_x86_frame_info(callee.context, info, mem,
                                                   callee_info.params_size if callee_info else 0,
                                                   callee.trust == "context")
                    trust = "cfi"
                except UnwindError:
                    pass  # frame data that does not evaluate here: the EBP chain, then scanning
                if caller is not None and not (caller.sp > callee.sp and caller.pc and mods.at(caller.pc)):
                    caller = None  # frame data that leads backwards or outside every module
            callee_info = info
            if caller is None:
                try:
                    caller = unwind_x86_ebp(callee.context, mem)
                    trust = "frame-pointer"
                except UnwindError:
                    pass  # no usable frame pointer: scanning is the normal fallback on x86
                if caller is not None and not (caller.sp > callee.sp and is_return(caller.pc or 0)):
                    caller = None  # an EBP that does not lead to a return address into a module: scan instead
        if caller is not None and caller.pc is not None and caller.pc != 0 and mods.at(caller.pc) is None \
                and trust == "cfi":
            caller = None  # unwind data led outside every module: not believable, scan instead
        if caller is None and ctx.cpu == "x64" and callee.trust == "context" and module is None:
            # A call to a bad address (a null or freed function pointer): the return address the
            # call pushed is at [RSP], while RBP is still the caller's frame, one frame too far.
            ret = mem.u64(callee.sp)
            if ret is not None and is_return(ret):
                caller = CpuContext("x64", {k: v for k, v in callee.context.regs.items()
                                            if k in ("rbx", "rbp", "r12", "r13", "r14", "r15")})
                caller.regs.update({"rip": ret, "rsp": callee.sp + 8})
                trust = "scan"
        if caller is None and ctx.cpu == "x64" and rbp_chain:
            try:
                caller = unwind_rbp(callee.context, mem)
                trust = "frame-pointer"
            except UnwindError:
                pass  # no usable frame pointer: scanning is the fallback
            if caller is not None and not (caller.sp > callee.sp and is_return(caller.pc or 0)):
                caller = None  # an RBP that does not lead to a return address into a module: scan instead
        if caller is None:
            if problem:
                result.problems.append(problem)
            found = scan_for_return(mem, callee.sp, word, is_return_stripped if ctx.cpu == "arm64" else is_return)
            if found is None:
                result.stop = "no caller found (end of the saved stack)" if not problem else problem
                result.truncated = bool(problem)
                break
            slot, ret = found
            if ctx.cpu == "arm64":
                caller = arm64.scanned_caller(callee.context, mem, slot, arm64.strip_pac(ret, pac_mask))
            else:
                caller = CpuContext(ctx.cpu, {ctx.pc_name: ret, ctx.sp_name: slot + word})
            trust = "scan"
        cpc, csp = caller.pc, caller.sp
        if cpc is None or csp is None or cpc == 0:
            result.stop = "end of stack (return address 0)"
            break
        if not _sp_grew(caller, callee, innermost):
            result.stop, result.truncated = f"stack pointer did not increase at frame {len(frames)}", True
            break
        if csp > end:
            result.stop = "end of the stack"
            break
        frames.append(StackFrame(cpc, csp, trust, mods.at(cpc), caller))
    return result


def _unwinder(cpu: str, image) -> tuple[Callable | None, bool]:
    """The unwind-data step for a module's image on ``cpu``, and whether a return address in the
    first page it gives marks the end of the stack (DWARF CFI: a program entry's "return address")."""
    if image is None:
        return None, False
    if cpu == "arm64":
        return arm64.unwinder_for(image), True
    if cpu == "x64" and isinstance(image, ElfCfi):
        return unwind_cfi, True
    if cpu == "x64" and isinstance(image, MachoUnwindImage):
        return unwind_macho_x64, True
    if cpu == "x64" and isinstance(image, PeUnwindImage) and image.is_64:
        return unwind_x64, False
    return None, False


def _sp_grew(caller: CpuContext, callee: StackFrame, innermost: bool) -> bool:
    """Did the stack pointer move up?  An arm64 leaf (the innermost frame only) may not have moved it:
    its return address is in LR, not on the stack."""
    if caller.sp is None:
        return False
    if caller.cpu == "arm64" and innermost:
        return caller.sp >= callee.sp and caller.pc != callee.pc
    return caller.sp > callee.sp


__all__ = ["walk_stack", "WalkResult", "StackFrame", "WalkModule", "MAX_FRAMES", "TRUSTS", "Modules"]

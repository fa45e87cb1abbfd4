"""CPU contexts saved in minidumps: the x64 (AMD64) and x86 CONTEXT records.

Layouts from winnt.h, declared once as ``struct.Struct`` records.  Only the
integer registers, the instruction and stack pointers and the flags are
decoded: that is what stack walking uses.  An ARM64 context is recognised
(by the dump's CPU) and reported as unsupported.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from symtool.errors import FormatError

# CONTEXT (AMD64) up to FltSave: P1Home..P6Home, ContextFlags, MxCsr, SegCs, SegDs, SegEs, SegFs, SegGs,
# SegSs, EFlags, Dr0, Dr1, Dr2, Dr3, Dr6, Dr7, Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8..R15, Rip.
CONTEXT_AMD64 = struct.Struct("<6QII6HI6Q16QQ")
CONTEXT_AMD64_SIZE = 0x4D0  # the whole record, FltSave/vector registers included
# CONTEXT (i386) up to ExtendedRegisters: ContextFlags, Dr0, Dr1, Dr2, Dr3, Dr6, Dr7,
# FloatSave (FLOATING_SAVE_AREA, 112 bytes), SegGs, SegFs, SegEs, SegDs, Edi, Esi, Ebx, Edx, Ecx, Eax,
# Ebp, Eip, SegCs, EFlags, Esp, SegSs.
CONTEXT_I386 = struct.Struct("<I6I112s4I6I6I")
CONTEXT_I386_SIZE = 716

# ContextFlags CPU bits (winnt.h).
CONTEXT_FLAG_AMD64 = 0x00100000
CONTEXT_FLAG_I386 = 0x00010000
CONTEXT_FLAG_ARM64 = 0x00400000

# x64 integer register numbers as unwind codes use them (UNWIND_CODE.OpInfo).
X64_REGISTERS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                 "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
X86_REGISTERS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")


@dataclass
class CpuContext:
    """Registers of one frame.  ``regs`` holds only the registers whose values are known."""

    cpu: str  # "x64" or "x86"
    regs: dict[str, int] = field(default_factory=dict)

    @property
    def pc_name(self) -> str:
        return "rip" if self.cpu == "x64" else "eip"

    @property
    def sp_name(self) -> str:
        return "rsp" if self.cpu == "x64" else "esp"

    @property
    def pc(self) -> int | None:
        return self.regs.get(self.pc_name)

    @property
    def sp(self) -> int | None:
        return self.regs.get(self.sp_name)

    def copy(self) -> "CpuContext":
        return CpuContext(self.cpu, dict(self.regs))


def parse_context(data: bytes, cpu: str) -> CpuContext:
    """The CONTEXT record ``data`` of a thread on ``cpu`` ("x64", "x86", "x86-on-win64" or "arm64")."""
    if cpu == "x64":
        if len(data) < CONTEXT_AMD64.size:
            raise FormatError(f"x64 CONTEXT of {len(data)} bytes (needs {CONTEXT_AMD64.size})")
        f = CONTEXT_AMD64.unpack_from(data)
        flags = f[6]
        if flags and not flags & CONTEXT_FLAG_AMD64:
            raise FormatError(f"CONTEXT flags {flags:#x} are not an AMD64 context")
        ints = f[21:37]
        regs = dict(zip(X64_REGISTERS, ints))
        regs["rip"] = f[37]
        regs["eflags"] = f[14]
        return CpuContext("x64", regs)
    if cpu in ("x86", "x86-on-win64"):
        if len(data) < CONTEXT_I386.size:
            raise FormatError(f"x86 CONTEXT of {len(data)} bytes (needs {CONTEXT_I386.size})")
        f = CONTEXT_I386.unpack_from(data)
        flags = f[0]
        if flags and not flags & CONTEXT_FLAG_I386:
            raise FormatError(f"CONTEXT flags {flags:#x} are not an x86 context")
        edi, esi, ebx, edx, ecx, eax, ebp, eip, _cs, eflags, esp, _ss = f[12:24]
        return CpuContext("x86", {"eax": eax, "ecx": ecx, "edx": edx, "ebx": ebx, "esp": esp, "ebp": ebp,
                                  "esi": esi, "edi": edi, "eip": eip, "eflags": eflags})
    raise FormatError(f"stack walking not supported for {cpu}")


__all__ = ["CpuContext", "parse_context", "X64_REGISTERS", "X86_REGISTERS", "CONTEXT_AMD64", "CONTEXT_I386"]

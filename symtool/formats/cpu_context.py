"""CPU contexts saved in minidumps: the x64 (AMD64), x86 and ARM64 CONTEXT records.

Layouts from winnt.h and Breakpad's minidump_cpu_arm64.h, declared once as
``struct.Struct`` records.  Only the integer registers, the instruction and
stack pointers, the flags and (ARM64) the callee-saved FP registers are
decoded: that is what stack walking uses.

ARM64 comes in two layouts:

* ``CONTEXT_ARM64`` (winnt.h; Breakpad's and crashpad's ``MDRawContextARM64``
  is the same record): ContextFlags (u32, CPU bit 0x00400000), Cpsr, X0..X28,
  Fp, Lr, Sp, Pc, V[32] (128-bit), Fpcr, Fpsr, Bcr[8], Bvr[8], Wcr[2], Wvr[2];
  0x390 bytes.
* Breakpad's old ``MDRawContextARM64_Old`` (``#pragma pack(4)``): context_flags
  (u64, CPU bit 0x80000000), iregs[33] (x0..x28, fp, lr, sp, pc), cpsr,
  fpsr, fpcr, regs[32] (128-bit); 796 bytes.  Breakpad's Linux and Android
  writers still emit it (with ProcessorArchitecture 0x8003).

The layout is told by the flags' CPU bit; a context with no flags at all
(some writers leave them zero) by its size.
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

# CONTEXT (ARM64, winnt.h) = MDRawContextARM64: ContextFlags, Cpsr, X0..X28, Fp, Lr (X[31]), Sp, Pc,
# V[32] (ARM64_NT_NEON128, as 64 (low, high) u64 pairs), Fpcr, Fpsr, Bcr[8], Bvr[8], Wcr[2], Wvr[2].
CONTEXT_ARM64 = struct.Struct("<II31QQQ64QII8I8Q2I2Q")
CONTEXT_ARM64_SIZE = 0x390
# MDRawContextARM64_Old (Breakpad, pack(4), so no padding): context_flags (u64), iregs[33] (x0..x28, fp,
# lr, sp, pc), cpsr, then MDFloatingSaveAreaARM64_Old: fpsr, fpcr, regs[32] (128-bit, as u64 pairs).
CONTEXT_ARM64_OLD = struct.Struct("<Q33QIII64Q")
CONTEXT_ARM64_OLD_SIZE = 796

# ContextFlags CPU bits (winnt.h; Breakpad's MD_CONTEXT_ARM64_OLD).
CONTEXT_FLAG_AMD64 = 0x00100000
CONTEXT_FLAG_I386 = 0x00010000
CONTEXT_FLAG_ARM64 = 0x00400000
CONTEXT_FLAG_ARM64_OLD = 0x80000000
# The floating-point part of either ARM64 layout is valid (CONTEXT_FLOATING_POINT, ..._FLOATING_POINT_OLD).
CONTEXT_ARM64_FLOATING_POINT = 0x4

# x64 integer register numbers as unwind codes use them (UNWIND_CODE.OpInfo).
X64_REGISTERS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                 "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
X86_REGISTERS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
# ARM64 integer registers as ``CpuContext.regs`` names them: x29 is "fp", x30 "lr" (AAPCS64's roles,
# and Windows' and Breakpad's field names); then "sp", "pc", "cpsr", and the callee-saved "d8".."d15"
# (the low 64 bits of v8..v15) when the context holds its floating-point part.
ARM64_REGISTERS = tuple(f"x{i}" for i in range(29)) + ("fp", "lr")
ARM64_CALLEE_SAVED_FP = tuple(f"d{i}" for i in range(8, 16))


PC_NAMES = {"x64": "rip", "x86": "eip", "arm64": "pc"}
SP_NAMES = {"x64": "rsp", "x86": "esp", "arm64": "sp"}
FP_NAMES = {"x64": "rbp", "x86": "ebp", "arm64": "fp"}


@dataclass
class CpuContext:
    """Registers of one frame.  ``regs`` holds only the registers whose values are known."""

    cpu: str  # "x64", "x86" or "arm64"
    regs: dict[str, int] = field(default_factory=dict)

    @property
    def pc_name(self) -> str:
        return PC_NAMES.get(self.cpu, "eip")

    @property
    def sp_name(self) -> str:
        return SP_NAMES.get(self.cpu, "esp")

    @property
    def pc(self) -> int | None:
        return self.regs.get(self.pc_name)

    @property
    def sp(self) -> int | None:
        return self.regs.get(self.sp_name)

    @property
    def fp_name(self) -> str:
        return FP_NAMES.get(self.cpu, "ebp")

    def copy(self) -> "CpuContext":
        return CpuContext(self.cpu, dict(self.regs))


def _arm64_context(data: bytes) -> CpuContext:
    """Either ARM64 layout (module docstring), told by the flags' CPU bit or, with no flags, the size."""
    if len(data) < 4:
        raise FormatError(f"ARM64 context of {len(data)} bytes")
    (flags,) = struct.unpack_from("<I", data)
    if flags & CONTEXT_FLAG_ARM64_OLD:
        old = True
    elif flags & CONTEXT_FLAG_ARM64:
        old = False
    elif flags == 0 and len(data) >= CONTEXT_ARM64_OLD_SIZE:
        old = len(data) < CONTEXT_ARM64_SIZE
    else:
        raise FormatError(f"CONTEXT flags {flags:#x} are not an ARM64 context")
    layout = CONTEXT_ARM64_OLD if old else CONTEXT_ARM64
    if len(data) < layout.size:
        raise FormatError(f"{'old Breakpad ' if old else ''}ARM64 context of {len(data)} bytes "
                          f"(needs {layout.size})")
    f = layout.unpack_from(data)
    if old:
        ints, sp, pc, cpsr, vector = f[1:32], f[32], f[33], f[34], f[37:101]
    else:
        ints, sp, pc, cpsr, vector = f[2:33], f[33], f[34], f[1], f[35:99]
    regs = dict(zip(ARM64_REGISTERS, ints))
    regs.update({"sp": sp, "pc": pc, "cpsr": cpsr})
    if flags & CONTEXT_ARM64_FLOATING_POINT:
        for name, i in zip(ARM64_CALLEE_SAVED_FP, range(8, 16)):
            regs[name] = vector[2 * i]  # the low half of v<i> is d<i>
    return CpuContext("arm64", regs)


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
    if cpu == "arm64":
        return _arm64_context(data)
    raise FormatError(f"stack walking not supported for {cpu}")


__all__ = ["CpuContext", "parse_context", "X64_REGISTERS", "X86_REGISTERS", "ARM64_REGISTERS",
           "ARM64_CALLEE_SAVED_FP", "CONTEXT_AMD64", "CONTEXT_I386", "CONTEXT_ARM64", "CONTEXT_ARM64_OLD"]

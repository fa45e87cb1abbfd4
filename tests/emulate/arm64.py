"""Run real AArch64 code in the unicorn CPU emulator up to its fault, with a shadow stack.

The shadow stack is the oracle for stack walking tests: it is kept from the
branch-with-link and return instructions the emulated CPU actually executed
(``BL``, ``BLR``, ``BLRA*`` push the return address; ``RET``, ``RETA*`` pop it),
so it owes nothing to any unwinder, unwind data or debug information.

Generic over the image format: a loader (tests/emulate/pe.py for PE images,
others for Mach-O or ELF) maps the image's bytes with :meth:`Arm64Emulator.map`
and names the code ranges to watch; :meth:`run` starts at an entry point and
stops at the first fault (unmapped read/write/fetch, an undefined instruction,
``BRK``/``UDF``) or when the entry function returns, and gives a :class:`Crash`:
the registers at the faulting instruction, the shadow stack, and the memory a
dump would hold (the stack from SP up, and every mapped image).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from unicorn import (UC_ARCH_ARM64, UC_HOOK_CODE, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_MEM_FETCH_PROT,
                     UC_MEM_FETCH_UNMAPPED, UC_MEM_READ_UNMAPPED, UC_MEM_WRITE_UNMAPPED, UC_MODE_ARM, UC_PROT_EXEC,
                     UC_PROT_READ, UC_PROT_WRITE, Uc, UcError)
from unicorn import arm64_const as A

PAGE = 0x1000
# Where the emulated thread's stack lives (its top is the highest address; SP starts 0x100 below):
# below 2**44, the physical address range of unicorn's "max" CPU (pointer_auth), where Windows
# puts thread stacks too (0x79`xxxxxxxx).
STACK_TOP = 0x79_0000_0000
STACK_SIZE = 1 << 20
# The entry function's return address: zero, as a thread's outermost frame returns nowhere (stack
# walkers stop at a zero return address); returning there ends the run ("exited").
EXIT_ADDRESS = 0
MAX_INSTRUCTIONS = 5_000_000

CALLEE_SAVED_INT = tuple(f"x{i}" for i in range(19, 29)) + ("fp",)
CALLEE_SAVED_FP = tuple(f"d{i}" for i in range(8, 16))
_UC_INT = {f"x{i}": getattr(A, f"UC_ARM64_REG_X{i}") for i in range(29)}
_UC_INT.update(fp=A.UC_ARM64_REG_X29, lr=A.UC_ARM64_REG_X30, sp=A.UC_ARM64_REG_SP, pc=A.UC_ARM64_REG_PC)
_UC_FP = {f"d{i}": getattr(A, f"UC_ARM64_REG_D{i}") for i in range(32)}
_UC_V = {f"v{i}": getattr(A, f"UC_ARM64_REG_Q{i}") for i in range(32)}


def is_call(insn: int) -> bool:
    """BL imm26, BLR Xn, and the pointer-authenticating BLRAA/BLRAAZ/BLRAB/BLRABZ."""
    return (insn & 0xFC000000) == 0x94000000 or (insn & 0xFFFFFC1F) == 0xD63F0000 or \
        (insn & 0xFEFFF800) == 0xD63F0800


def is_return(insn: int) -> bool:
    """RET Xn and the authenticating RETAA/RETAB."""
    return (insn & 0xFFFFFC1F) == 0xD65F0000 or insn in (0xD65F0BFF, 0xD65F0FFF)


def _align_up(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


@dataclass
class ShadowFrame:
    call_site: int  # address of the BL/BLR
    return_address: int  # call_site + 4
    sp: int  # SP at the call (the caller's SP)
    target: int | None = None  # the first instruction executed after the call (the callee's entry)
    saved: dict[str, int] = field(default_factory=dict)  # the caller's x19..x28, fp, d8..d15 at the call


@dataclass
class Crash:
    """What the emulated thread looked like at its fault."""

    reason: str  # "read-unmapped", "write-unmapped", "fetch-unmapped", "brk", "udf", "stopped", "exited", "limit"
    address: int | None  # the faulting data/fetch address (None for brk/udf)
    regs: dict[str, int]  # x0..x28, fp, lr, sp, pc, cpsr at the faulting instruction
    fpregs: dict[str, int]  # d0..d31 (low 64 bits of v0..v31)
    vregs: dict[str, int]  # v0..v31 (128-bit)
    shadow: list[ShadowFrame]  # outermost call first
    memory: list[tuple[int, bytes]] = field(default_factory=list)  # (start, bytes): the stack, then the images
    stack: tuple[int, bytes] = (0, b"")

    def oracle_pcs(self) -> list[int]:
        """The frames the walk must find, innermost first: the faulting PC, then each live call's
        return address."""
        return [self.regs["pc"]] + [f.return_address for f in reversed(self.shadow)]


# System registers (op0, op1, CRn, CRm, op2) and the bits that turn pointer authentication on for
# the emulated thread (it runs at EL1): SCTLR_EL1.EnIB (pacibsp/autibsp sign with the B key),
# HCR_EL2.API and .RW (EL2 does not trap PAuth; EL1 stays AArch64), SCR_EL3.API, .NS and .RW (EL3
# does not trap it; EL2 is enabled, so HCR_EL2 counts).  APIBKey_EL1 gets a fixed key.
PAUTH_ENABLE = [((3, 0, 1, 0, 0), 1 << 30), ((3, 4, 1, 1, 0), 1 << 41 | 1 << 31),
                ((3, 6, 1, 1, 0), 1 << 17 | 1 << 10 | 1)]
APIBKEY = [((3, 0, 2, 1, 2), 0x1122334455667788), ((3, 0, 2, 1, 3), 0x99AABBCCDDEEFF00)]


class Arm64Emulator:
    """One emulated AArch64 thread.  ``cpu_model``: a unicorn ``UC_CPU_ARM64_*`` (None: the default).
    ``pointer_auth``: the "max" CPU with pointer authentication on, so ``pacibsp`` really signs LR
    (return addresses saved on the stack carry a PAC, as on Windows on ARM with pac-ret code or
    Apple's arm64e); otherwise PAC instructions in the hint space are no-ops."""

    def __init__(self, cpu_model: int | None = None, pointer_auth: bool = False):
        self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        if pointer_auth:
            cpu_model = A.UC_CPU_ARM64_MAX
        if cpu_model is not None:
            self.uc.ctl_set_cpu_model(cpu_model)
        if pointer_auth:
            for (op0, op1, crn, crm, op2), bits in PAUTH_ENABLE:
                value = self.uc.reg_read(A.UC_ARM64_REG_CP_REG, (crn, crm, op0, op1, op2))
                self.uc.reg_write(A.UC_ARM64_REG_CP_REG, (crn, crm, op0, op1, op2, value | bits))
            for (op0, op1, crn, crm, op2), key in APIBKEY:
                self.uc.reg_write(A.UC_ARM64_REG_CP_REG, (crn, crm, op0, op1, op2, key))
        self.images: list[tuple[int, bytes]] = []  # mapped bytes to put in a dump
        self.code_ranges: list[tuple[int, int]] = []
        self.shadow: list[ShadowFrame] = []
        self._pending_call: ShadowFrame | None = None
        self._stop: tuple[str, int | None] | None = None
        self._stop_at: tuple[int, int] | None = None  # (address, how many times it runs before the stop)

    # -- memory ----------------------------------------------------------------------------
    def map(self, address: int, data: bytes, size: int | None = None, *, read: bool = True, write: bool = True,
            execute: bool = False, in_dump: bool = True) -> None:
        """Map ``size`` bytes (page-rounded) at ``address`` (page-aligned), holding ``data``."""
        if address % PAGE:
            raise ValueError(f"{address:#x} is not page-aligned")
        length = _align_up(max(size or 0, len(data), 1))
        perms = (UC_PROT_READ if read else 0) | (UC_PROT_WRITE if write else 0) | (UC_PROT_EXEC if execute else 0)
        self.uc.mem_map(address, length, perms)
        if data:
            self.uc.mem_write(address, bytes(data))
        if in_dump:
            self.images.append((address, bytes(data).ljust(length, b"\0")))

    def watch_code(self, start: int, end: int) -> None:
        """Track calls and returns executed in [start, end)."""
        self.code_ranges.append((start, end))

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(address, size))

    # -- hooks -----------------------------------------------------------------------------
    def _on_code(self, uc: Uc, address: int, size: int, _data) -> None:
        if self._pending_call is not None:
            self._pending_call.target = address
            self._pending_call = None
        if self._stop_at is not None and address == self._stop_at[0]:
            if self._stop_at[1] == 0:
                self._stop = ("stopped", None)  # as an asynchronous interrupt would catch the thread
                uc.emu_stop()
                return
            self._stop_at = (address, self._stop_at[1] - 1)
        (insn,) = struct.unpack("<I", uc.mem_read(address, 4))
        if is_call(insn):
            saved = {name: uc.reg_read(_UC_INT[name]) for name in CALLEE_SAVED_INT}
            saved.update({name: uc.reg_read(_UC_FP[name]) for name in CALLEE_SAVED_FP})
            frame = ShadowFrame(address, address + 4, uc.reg_read(A.UC_ARM64_REG_SP), saved=saved)
            self.shadow.append(frame)
            self._pending_call = frame
        elif is_return(insn):
            rn = (insn >> 5) & 31 if (insn & 0xFFFFFC1F) == 0xD65F0000 else 30
            target = uc.reg_read(_UC_INT[f"x{rn}"] if rn < 29 else (A.UC_ARM64_REG_X29 if rn == 29
                                                                      else A.UC_ARM64_REG_X30))
            target &= (1 << 48) - 1  # RETA* authenticate; a plain RET of a signed LR would fault anyway
            # Pop to the frame this returns into (a frame left by longjmp-like code is dropped too).
            for k in range(len(self.shadow) - 1, -1, -1):
                if self.shadow[k].return_address == target:
                    del self.shadow[k:]
                    break

    def _on_interrupt(self, uc: Uc, intno: int, _data) -> None:
        # unicorn reports BRK and undefined instructions with PC at the instruction, and the exception
        # numbers differ between CPU models: the instruction says which.
        pc = uc.reg_read(A.UC_ARM64_REG_PC)
        if pc == EXIT_ADDRESS:  # the entry function returned (the "max" CPU reports a prefetch abort)
            self._stop = ("exited", None)
            uc.emu_stop()
            return
        try:
            (insn,) = struct.unpack("<I", uc.mem_read(pc, 4))
        except UcError:
            insn = None
        if insn is not None and (insn & 0xFFE0001F) == 0xD4200000:
            self._stop = ("brk", None)
        elif insn is not None and insn >> 16 == 0:
            self._stop = ("udf", None)
        else:
            self._stop = (f"exception {intno}", None)
        uc.emu_stop()

    def _on_invalid(self, uc: Uc, access: int, address: int, size: int, value: int, _data) -> bool:
        names = {UC_MEM_READ_UNMAPPED: "read-unmapped", UC_MEM_WRITE_UNMAPPED: "write-unmapped",
                 UC_MEM_FETCH_UNMAPPED: "fetch-unmapped", UC_MEM_FETCH_PROT: "fetch-unmapped"}
        reason = names.get(access, "access-violation")
        if reason == "fetch-unmapped" and address == EXIT_ADDRESS:
            reason = "exited"
        self._stop = (reason, address)
        return False  # not handled: emulation stops with the CPU at the faulting instruction

    # -- running ---------------------------------------------------------------------------
    def run(self, entry: int, *, args: tuple[int, ...] = (), stack_top: int = STACK_TOP,
            stack_size: int = STACK_SIZE, max_instructions: int = MAX_INSTRUCTIONS,
            stack_in_dump_from_sp: bool = True, stop_at: tuple[int, int] | None = None) -> Crash:
        """Run from ``entry`` (with x0.. = ``args``) to the first fault, or, with ``stop_at`` =
        (address, n), to just before the (n+1)-th execution of the instruction at ``address``
        (reason "stopped": a thread caught anywhere, inside prologues and epilogues too)."""
        uc = self.uc
        self._stop_at = stop_at
        stack_base = stack_top - stack_size
        uc.mem_map(stack_base, stack_size, UC_PROT_READ | UC_PROT_WRITE)
        sp = stack_top - 0x100
        uc.reg_write(A.UC_ARM64_REG_SP, sp)
        uc.reg_write(A.UC_ARM64_REG_X30, EXIT_ADDRESS)
        uc.reg_write(A.UC_ARM64_REG_X29, 0)
        for i, value in enumerate(args[:8]):
            uc.reg_write(_UC_INT[f"x{i}"], value)
        if not self.code_ranges:
            uc.hook_add(UC_HOOK_CODE, self._on_code)  # every instruction
        for start, end in self.code_ranges:
            uc.hook_add(UC_HOOK_CODE, self._on_code, begin=start, end=end - 1)
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        reason, address = "limit", None
        try:
            uc.emu_start(entry, EXIT_ADDRESS, count=max_instructions)
        except UcError:
            pass  # the hooks recorded what happened
        pc = uc.reg_read(A.UC_ARM64_REG_PC)
        if self._stop is not None:
            reason, address = self._stop
        elif pc == EXIT_ADDRESS:
            reason = "exited"
        if reason == "fetch-unmapped" and address is not None:
            uc.reg_write(A.UC_ARM64_REG_PC, address)  # a jump to nowhere: PC is the bad target
            pc = address
        regs = {name: uc.reg_read(reg) for name, reg in _UC_INT.items()}
        regs["pc"] = pc
        regs["cpsr"] = uc.reg_read(A.UC_ARM64_REG_NZCV) if hasattr(A, "UC_ARM64_REG_NZCV") else 0
        fpregs = {name: uc.reg_read(reg) for name, reg in _UC_FP.items()}
        vregs = {name: uc.reg_read(reg) for name, reg in _UC_V.items()}
        low = (regs["sp"] if stack_in_dump_from_sp else stack_base) & ~0xF
        low = max(stack_base, min(low, stack_top))
        stack = (low, self.read(low, stack_top - low))
        crash = Crash(reason, address, regs, fpregs, vregs, list(self.shadow), [stack] + list(self.images), stack)
        return crash


__all__ = ["Arm64Emulator", "Crash", "ShadowFrame", "is_call", "is_return", "STACK_TOP", "EXIT_ADDRESS"]

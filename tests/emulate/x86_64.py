"""Run real x86_64 code in the unicorn CPU emulator up to its fault, with a shadow stack.

The shadow stack is the oracle for stack walking tests: it is kept from the ``call`` and
``ret`` instructions the emulated CPU executed (a call pushes the address of the instruction
after it, a return pops), so it owes nothing to any unwinder, unwind data or debug
information.  A loader (tests/emulate/macho.py) maps an image with :meth:`X64Emulator.map`
and names its code with :meth:`watch_code`; :meth:`run` starts at an entry point with a
return address that faults recognisably, and stops at the first fault.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from unicorn import (UC_ARCH_X86, UC_HOOK_CODE, UC_HOOK_MEM_INVALID, UC_MODE_64, UC_PROT_ALL, UC_PROT_READ,
                     UC_PROT_WRITE, Uc, UcError)
from unicorn import x86_const as X

PAGE = 0x1000
STACK_TOP = 0x7FF0_0000_0000
STACK_SIZE = 1 << 20
EXIT_ADDRESS = 0x7FE0_0000_0000  # the entry function's return address: never mapped
MAX_INSTRUCTIONS = 5_000_000

_UC = {name: getattr(X, f"UC_X86_REG_{name.upper()}") for name in
       ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
        "r15", "rip", "eflags")}
REX = range(0x40, 0x50)


def call_length(code: bytes) -> bool:
    """Is ``code`` (one whole instruction) a call: ``E8 rel32`` or ``FF /2`` (any REX prefix)?"""
    i = 1 if code and code[0] in REX else 0
    if i >= len(code):
        return False
    if code[i] == 0xE8:
        return True
    return code[i] == 0xFF and i + 1 < len(code) and (code[i + 1] >> 3) & 7 == 2


def is_ret(code: bytes) -> bool:
    i = 1 if code and code[0] in (0xF3, 0xF2) else 0
    return i < len(code) and code[i] in (0xC3, 0xC2)


@dataclass
class ShadowFrame:
    call_site: int
    return_address: int
    sp: int  # RSP after the call pushed the return address


@dataclass
class Crash:
    reason: str  # "read-unmapped", "write-unmapped", "fetch-unmapped", "exited", "limit"
    address: int | None
    regs: dict[str, int]
    shadow: list[ShadowFrame]  # outermost call first
    stack: tuple[int, bytes] = (0, b"")
    memory: list[tuple[int, bytes]] = field(default_factory=list)

    def oracle_pcs(self) -> list[int]:
        """Innermost first: the faulting RIP, then every live call's return address."""
        return [self.regs["rip"]] + [f.return_address for f in reversed(self.shadow)]


class X64Emulator:
    def __init__(self):
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.code: list[tuple[int, int]] = []
        self.shadow: list[ShadowFrame] = []
        self.fault: tuple[str, int] | None = None
        self.uc.mem_map(STACK_TOP - STACK_SIZE, STACK_SIZE, UC_PROT_READ | UC_PROT_WRITE)

    def map(self, address: int, data: bytes, size: int | None = None, *, execute: bool = True,
            in_dump: bool = False) -> None:
        """Map ``data`` at ``address`` (readable, writable and executable: page rights do not matter
        to the oracle); ``execute`` and ``in_dump`` are accepted for the loaders' sake."""
        start = address & ~(PAGE - 1)
        end = (address + max(size or 0, len(data)) + PAGE - 1) & ~(PAGE - 1)
        self.uc.mem_map(start, end - start, UC_PROT_ALL)
        self.uc.mem_write(address, data)

    def watch_code(self, start: int, end: int) -> None:
        self.code.append((start, end))

    def write(self, address: int, data: bytes) -> None:
        self.uc.mem_write(address, data)

    def _on_code(self, uc, address, size, _user):
        code = bytes(uc.mem_read(address, size))
        if call_length(code):
            rsp = uc.reg_read(X.UC_X86_REG_RSP)
            self.shadow.append(ShadowFrame(address, address + size, rsp - 8))
        elif is_ret(code) and self.shadow:
            self.shadow.pop()

    def _on_invalid(self, uc, access, address, size, value, _user):
        from unicorn import UC_MEM_FETCH_UNMAPPED, UC_MEM_READ_UNMAPPED, UC_MEM_WRITE_UNMAPPED

        kind = {UC_MEM_READ_UNMAPPED: "read-unmapped", UC_MEM_WRITE_UNMAPPED: "write-unmapped",
                UC_MEM_FETCH_UNMAPPED: "fetch-unmapped"}.get(access, "invalid")
        self.fault = (kind, address)
        return False

    def run(self, entry: int, max_instructions: int = MAX_INSTRUCTIONS) -> Crash:
        uc = self.uc
        sp = STACK_TOP - 0x100
        uc.mem_write(sp, struct.pack("<Q", EXIT_ADDRESS))
        uc.reg_write(X.UC_X86_REG_RSP, sp)
        for start, end in self.code:
            uc.hook_add(UC_HOOK_CODE, self._on_code, begin=start, end=end - 1)
        uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        reason = "limit"
        try:
            uc.emu_start(entry, EXIT_ADDRESS, count=max_instructions)
        except UcError:
            reason = self.fault[0] if self.fault else "error"
        regs = {name: uc.reg_read(reg) for name, reg in _UC.items()}
        if regs["rip"] == EXIT_ADDRESS:
            reason = "exited"
        rsp = regs["rsp"]
        # The saved stack ends below the entry's return address (no caller of the entry point:
        # a walk must stop there, as at a thread's first frame).
        low = min(max(rsp, STACK_TOP - STACK_SIZE), sp)  # a stack overflow leaves RSP below the mapping
        stack = (low, bytes(uc.mem_read(low, sp - low)))
        return Crash(reason, self.fault[1] if self.fault else None, regs, list(self.shadow), stack, [stack])


__all__ = ["X64Emulator", "Crash", "ShadowFrame", "STACK_TOP"]

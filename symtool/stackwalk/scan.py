"""Stack scanning: the next word on the stack that looks like a return address.

A candidate must point into a loaded module; when the module's image is at
hand it must point into executable code right after a call instruction
(``call rel32``, ``call r/m`` through a register or memory operand).  Frames
found this way are marked ``scan``: they may be stale return addresses.
"""

from __future__ import annotations

from typing import Callable

from symtool.stackwalk.memory import StackMemory

SCAN_WORDS = 256  # how far (in pointer-sized words) to look for the next return address


def after_call(code: bytes) -> bool:
    """Do the 7 bytes before a return address end with a call instruction?"""
    if len(code) < 7:
        return False
    if code[-5] == 0xE8:  # call rel32
        return True
    if code[-2] == 0xFF and (code[-1] >> 3) & 7 == 2 and code[-1] >> 6 == 3:  # call reg
        return True
    if code[-3] == 0xFF and (code[-2] >> 3) & 7 == 2 and code[-2] >> 6 == 1:  # call [reg+disp8]
        return True
    if code[-2] == 0xFF and (code[-1] >> 3) & 7 == 2 and code[-1] >> 6 == 0 and code[-1] & 7 not in (4, 5):
        return True  # call [reg]
    if code[-6] == 0xFF and (code[-5] >> 3) & 7 == 2 and (code[-5] >> 6 == 2 or code[-5] & 0xC7 == 5):
        return True  # call [reg+disp32], call [rip+disp32]
    if code[-7] == 0xFF and (code[-6] >> 3) & 7 == 2 and code[-6] & 7 == 4:  # call [sib+disp32]
        return True
    if code[-4] == 0xFF and (code[-3] >> 3) & 7 == 2 and code[-3] & 7 == 4 and code[-3] >> 6 == 1:
        return True  # call [sib+disp8]
    return False


def scan_for_return(mem: StackMemory, start: int, word: int, is_return: Callable[[int], bool | None],
                    words: int = SCAN_WORDS) -> tuple[int, int] | None:
    """(address of the slot, return address) of the first plausible return address at or above
    ``start``; ``is_return(value)`` says yes, no, or None (no module there)."""
    addr = start
    for _ in range(words):
        value = mem.u64(addr) if word == 8 else mem.u32(addr)
        if value is None:
            return None
        if value > 0xFFFF and is_return(value):
            return addr, value
        addr += word
    return None


__all__ = ["after_call", "scan_for_return", "SCAN_WORDS"]

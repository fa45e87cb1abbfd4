"""A Windows minidump of an emulated crash: the thread's real registers (CONTEXT_ARM64), its stack
from SP up, the loaded images' bytes, and an exception stream for the fault."""

from __future__ import annotations

from builders.minidump import build_threads_minidump
from emulate.arm64 import Crash

EXCEPTION_ACCESS_VIOLATION = 0xC0000005
EXCEPTION_BREAKPOINT = 0x80000003
EXCEPTION_ILLEGAL_INSTRUCTION = 0xC000001D
STATUS_WAKE_SYSTEM_DEBUGGER = 0x80000007  # a thread caught where it was ("stopped")
CODES = {"brk": EXCEPTION_BREAKPOINT, "udf": EXCEPTION_ILLEGAL_INSTRUCTION, "stopped": STATUS_WAKE_SYSTEM_DEBUGGER}
THREAD_ID = 0x1A64


def crash_minidump(crash: Crash, modules: list[dict], *, with_images: bool = True) -> bytes:
    regs = dict(crash.regs)
    regs.update({f"v{i}": crash.vregs[f"v{i}"] for i in range(32)})
    memory = [crash.stack] + (list(crash.memory[1:]) if with_images else [])
    code = CODES.get(crash.reason, EXCEPTION_ACCESS_VIOLATION)
    return build_threads_minidump(
        modules=modules, threads=[{"tid": THREAD_ID, "regs": regs, "stack": 0}], memory=memory,
        exception={"thread_id": THREAD_ID, "code": code, "address": crash.address or crash.regs["pc"]},
        platform_id=2, cpu="arm64")


__all__ = ["crash_minidump"]

"""The emulation harness (tests/emulate/) is an oracle for stack walks: checked here on a program
whose calls, returns and faults are known instruction by instruction (encodings as llvm-objdump
prints them), independent of any unwinder."""

from __future__ import annotations

import struct

from emulate.arm64 import EXIT_ADDRESS, Arm64Emulator, is_call, is_return

BASE = 0x10000
PROGRAM = [
    0xA9BF7BFD,  # 0x00 main:  stp x29, x30, [sp, #-16]!
    0x94000003,  # 0x04        bl f
    0xA8C17BFD,  # 0x08        ldp x29, x30, [sp], #16
    0xD65F03C0,  # 0x0c        ret
    0xF81F0FFE,  # 0x10 f:     str x30, [sp, #-16]!
    0x10000089,  # 0x14        adr x9, g
    0xD63F0120,  # 0x18        blr x9
    0xF84107FE,  # 0x1c        ldr x30, [sp], #16
    0xD65F03C0,  # 0x20        ret
    0xD2800101,  # 0x24 g:     mov x1, #8
    0xF9400020,  # 0x28        ldr x0, [x1]        (faults: nothing is mapped at 8)
    0xD65F03C0,  # 0x2c        ret
    0xD503237F,  # 0x30 sign:  pacibsp
    0xAA1E03E0,  # 0x34        mov x0, x30
    0xD50323FF,  # 0x38        autibsp
    0xAA1E03E1,  # 0x3c        mov x1, x30
    0xD4200020,  # 0x40        brk #1
    0xA9BF7BFD,  # 0x44 quiet: stp x29, x30, [sp, #-16]!
    0x94000003,  # 0x48        bl leaf
    0xA8C17BFD,  # 0x4c        ldp x29, x30, [sp], #16
    0xD65F03C0,  # 0x50        ret
    0xD65F03C0,  # 0x54 leaf:  ret
    0x00000000,  # 0x58 undef: udf #0
]


def _emulator(**kwargs) -> Arm64Emulator:
    emu = Arm64Emulator(**kwargs)
    emu.map(BASE, struct.pack(f"<{len(PROGRAM)}I", *PROGRAM), execute=True, write=False)
    emu.watch_code(BASE, BASE + 4 * len(PROGRAM))
    return emu


def test_the_shadow_stack_holds_the_live_calls_at_a_fault():
    crash = _emulator().run(BASE)
    assert crash.reason == "read-unmapped" and crash.address == 8
    assert crash.regs["pc"] == BASE + 0x28 and crash.regs["lr"] == BASE + 0x1C
    assert crash.oracle_pcs() == [BASE + 0x28, BASE + 0x1C, BASE + 0x08]
    assert [(f.call_site, f.target) for f in crash.shadow] == [(BASE + 0x04, BASE + 0x10), (BASE + 0x18, BASE + 0x24)]
    start, data = crash.stack
    assert start <= crash.regs["sp"] and struct.unpack_from("<Q", data, crash.regs["sp"] - start)[0] == BASE + 0x08


def test_returns_pop_the_shadow_stack_and_a_stop_catches_the_thread_before_an_instruction():
    crash = _emulator().run(BASE + 0x44)
    assert crash.reason == "exited" and crash.regs["pc"] == EXIT_ADDRESS and crash.shadow == []
    stopped = _emulator().run(BASE + 0x44, stop_at=(BASE + 0x54, 0))
    assert stopped.reason == "stopped" and stopped.regs["pc"] == BASE + 0x54
    assert stopped.oracle_pcs() == [BASE + 0x54, BASE + 0x4C]
    assert stopped.shadow[0].saved["fp"] == 0  # the caller's registers at the call


def test_breakpoints_and_undefined_instructions_stop_at_the_instruction():
    assert _emulator().run(BASE + 0x58).reason == "udf"
    crash = _emulator().run(BASE + 0x30)
    assert crash.reason == "brk" and crash.regs["pc"] == BASE + 0x40
    assert crash.regs["x0"] == crash.regs["x1"] == EXIT_ADDRESS  # no pointer authentication: hints are nops


def test_pointer_authentication_signs_lr_for_real():
    crash = _emulator(pointer_auth=True).run(BASE + 0x30)
    assert crash.reason == "brk"
    signed, authenticated = crash.regs["x0"], crash.regs["x1"]
    assert signed != authenticated and signed & ((1 << 48) - 1) == authenticated == EXIT_ADDRESS


def test_call_and_return_decoding():
    assert all(is_call(w) for w in (0x94000003, 0xD63F0120, 0xD63F093F, 0xD63F0D3F))  # bl, blr, blraaz, blrabz
    assert all(is_return(w) for w in (0xD65F03C0, 0xD65F0BFF, 0xD65F0FFF))  # ret, retaa, retab
    assert not any(is_call(w) or is_return(w) for w in (0x14000003, 0xD61F0120, 0xD503237F))  # b, br, pacibsp

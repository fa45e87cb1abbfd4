"""DWARF CFI rows as llvm-dwarfdump prints them (``--eh-frame``/``--debug-frame``), compared with
symtool's reader row by row: the oracle of tests/test_linux_stack.py (x86_64) and
tests/test_linux_arm64_stack.py (AArch64)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import need_tool
from symtool.formats.dwarf_cfi import OFFSET, REGISTER, SAME_VALUE, UNDEFINED, VAL_OFFSET, CfiRow, read_elf_cfi

DUMP_ROW = re.compile(r"^\s*0x([0-9a-f]+): CFA=(.*)$")


def dwarfdump_rows(binary: Path, which: str) -> dict[int, tuple[str, bool]]:
    """address -> (llvm-dwarfdump's row text, "RSP+8: RIP=[CFA-8]"; whether its FDE restores a
    remembered state) for every row of every FDE of the ``which`` section."""
    tool = need_tool("llvm-dwarfdump")
    out = subprocess.run([tool, f"--{which}", str(binary)], capture_output=True, text=True, check=True).stdout
    title = {"eh-frame": ".eh_frame contents:", "debug-frame": ".debug_frame contents:"}[which]
    rows = {}
    in_section = restores = False
    for line in out.splitlines():
        if line.endswith(" contents:"):
            in_section = line.strip() == title
        elif not in_section:
            continue
        elif " FDE " in line or " CIE" in line:
            restores = False
        elif "DW_CFA_restore_state" in line:
            restores = True
        else:
            m = DUMP_ROW.match(line)
            if m:
                rows[int(m.group(1), 16)] = (m.group(2).strip(), restores)
    assert rows, out[:2000]
    return rows


X64_NAMES = {0: "RAX", 1: "RDX", 2: "RCX", 3: "RBX", 4: "RSI", 5: "RDI", 6: "RBP", 7: "RSP", 16: "RIP",
             **{k: f"R{k}" for k in range(8, 16)}}


# llvm-dwarfdump 14's AArch64 names: W0..W30 (it names the 64-bit registers by their 32-bit halves),
# WSP for 31, and B0..B31 for the vector registers 64..95.
AARCH64_NAMES = {**{k: f"W{k}" for k in range(31)}, 31: "WSP", **{64 + k: f"B{k}" for k in range(32)}}


def row_text(row: CfiRow, names: dict[int, str] = X64_NAMES) -> str:
    """Our row, written as llvm-dwarfdump writes it (register order as it sorts them: by number)."""
    kind, reg, off = row.cfa
    text = f"{names[reg]}{off:+d}" if off else names[reg]  # llvm-dwarfdump leaves out a zero offset
    rules = []
    for r in sorted(row.rules):
        rule, operand = row.rules[r]
        name = names.get(r, f"reg{r}")
        cfa = f"CFA{operand:+d}" if operand else "CFA"  # llvm-dwarfdump writes [CFA], not [CFA+0]
        if rule == OFFSET:
            rules.append(f"{name}=[{cfa}]")
        elif rule == VAL_OFFSET:
            rules.append(f"{name}={cfa}")
        elif rule == UNDEFINED:
            rules.append(f"{name}=undefined")
        elif rule == SAME_VALUE:
            rules.append(f"{name}=same")
        elif rule == REGISTER:
            rules.append(f"{name}={names.get(operand, operand)}")
    return text + (": " + ", ".join(rules) if rules else "")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("+-", "-")).strip()


def check_rows(binary: Path, which: str, names: dict[int, str] = X64_NAMES) -> int:
    """Every row of ``binary``'s ``which`` section ("eh-frame", "debug-frame") as llvm-dwarfdump
    prints it; the number of rows compared."""
    rows = dwarfdump_rows(binary, which)
    cfi = read_elf_cfi(binary)
    try:
        section = cfi.sections[0] if which == "eh-frame" else cfi.sections[-1]
        checked = 0
        for address, (expected, restores) in rows.items():
            row = section.row_at(address)
            assert row is not None, hex(address)
            if "DW_OP" in expected.split(":")[0]:  # a CFA expression (PLT entries): kept, not evaluated
                assert row.cfa[0] == "expression", (hex(address), expected)
                continue
            ours = _norm(row_text(row, names))
            if restores and ours.split(":")[1:] == _norm(expected).split(":")[1:]:
                # DW_CFA_restore_state restores the CFA rule too (DWARF 5 6.4.2.4; the unwinders of
                # libgcc and LLVM's libunwind do); llvm-dwarfdump's row listing keeps the current CFA.
                continue
            assert ours == _norm(expected), (hex(address), row_text(row, names), expected)
            checked += 1
        return checked
    finally:
        cfi.close()


__all__ = ["check_rows", "row_text", "dwarfdump_rows", "X64_NAMES", "AARCH64_NAMES"]

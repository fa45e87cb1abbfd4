"""`symtool check` for what keys Linux debug files: the GNU build-id, and a .dwp that is useless.

* **build-id**: debuginfod, SSQP stores and gdb find debug files by it.  A Linux
  build linked with ``--build-id=none`` has none, and a hex build-id shorter
  than 16 bytes (``--build-id=0x...``) collides.  Seen in the linker arguments
  of the rustflags cargo uses (``-C link-arg(s)=...``, last one wins) and in
  the binaries already built in the profile's output dir.
* **strip + packed**: with ``strip = "debuginfo"`` the linker drops the skeleton
  units, so the ``.dwp`` cargo still writes for ``split-debuginfo = "packed"``
  is referred to by nothing (on macOS rustc runs dsymutil before stripping:
  the ``.dSYM`` stays good, no finding there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

MIN_BUILD_ID = 16
FIX = ('add "-C", "link-arg=-Wl,--build-id=sha1" to [target.<triple>] rustflags in .cargo/config.toml '
       "(or RUSTFLAGS)")


def is_linux_like(target) -> bool:
    """ELF targets whose debug files are keyed by build-id (Linux, Android, the BSDs...)."""
    return target.family == "unix" and not target.is_apple


def _linker_args(tokens) -> Iterable[tuple[str, object]]:
    """(linker argument, token) for every ``-C link-arg=`` / ``-C link-args=`` in a rustflags list."""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        text = tok.text
        option = None
        if text in ("-C", "--codegen") and i + 1 < len(tokens):
            option = tokens[i + 1].text
            i += 1
        elif text.startswith("--codegen="):
            option = text[len("--codegen="):]
        elif text.startswith("-C"):
            option = text[2:]
        i += 1
        if not option or "=" not in option:
            continue
        name, value = option.split("=", 1)
        name = name.replace("_", "-")
        if name == "link-arg":
            yield value, tok
        elif name == "link-args":
            for part in value.split():
                yield part, tok


def build_id_setting(tokens) -> tuple[str, object] | None:
    """The last ``--build-id[=style]`` among the linker arguments, and the token that says it."""
    found = None
    for arg, tok in _linker_args(tokens):
        parts = arg[4:].split(",") if arg.startswith("-Wl,") else [arg]
        for p in parts:
            if p == "--build-id" or p == "-build-id":
                found = ("default", tok)
            elif p.startswith(("--build-id=", "-build-id=")):
                found = (p.split("=", 1)[1], tok)
    return found


def flag_problem(style: str) -> str | None:
    """Why a --build-id style cannot key debug files, or None."""
    if style == "none":
        return "no build-id: debuginfod, symbol stores and gdb cannot find this build's debug files"
    if style.lower().startswith("0x"):
        digits = style[2:]
        if len(digits) // 2 < MIN_BUILD_ID:
            return (f"a fixed {len(digits) // 2}-byte build-id: shorter than {MIN_BUILD_ID} bytes, and the same for "
                    "every build, so stores cannot tell builds apart")
    return None


def built_problems(output_dir: Path | None) -> list[tuple[Path, str]]:
    """ELF executables and shared objects already in ``output_dir`` without a usable build-id."""
    if output_dir is None or not output_dir.is_dir():
        return []
    from symtool.errors import SymtoolError
    from symtool.formats.elf import read_elf

    out = []
    try:
        entries = sorted(output_dir.iterdir())
    except OSError:
        return []
    for p in entries:
        try:
            if not p.is_file() or not (os.access(p, os.X_OK) or p.name.endswith(".so")):
                continue
            with open(p, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            info = read_elf(p, dwo_ids=False)
        except (SymtoolError, OSError):
            continue
        if info.elf_type not in (2, 3):
            continue
        if info.build_id is None:
            out.append((p, "has no build-id"))
        elif len(info.build_id.raw) < MIN_BUILD_ID:
            out.append((p, f"has a {len(info.build_id.raw)}-byte build-id (fewer than {MIN_BUILD_ID}: collides)"))
    return out

"""Readable names for mangled Rust symbols.

Rust's legacy mangling (``_ZN`` + length-prefixed path segments + ``17h<hash>`` +
``E``, Itanium-like) is what PDB public symbols (S_PUB32) of Rust programs
carry.  Procedure names in PDBs are already readable; this is for the public
symbol that names an address no procedure record covers.
"""

from __future__ import annotations

import re

_RUST_LEGACY = re.compile(r"^_?_ZN((?:\d+[^\d].*?)+)E$")


def demangle(name: str) -> str:
    """Readable form of a Rust legacy-mangled name (``_ZN..17h<hash>E``); other
    names unchanged.  Used only for public symbols when no procedure covers
    the address (procedure names in PDBs are already readable)."""
    if not _RUST_LEGACY.match(name):
        return name
    body = name[name.index("_ZN") + 3:-1]
    parts = []
    pos = 0
    while pos < len(body):
        m = re.match(r"\d+", body[pos:])
        if not m:
            return name
        n = int(m.group())
        pos += len(m.group())
        if n == 0 or pos + n > len(body):
            return name
        parts.append(body[pos:pos + n])
        pos += n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    subs = {"$LT$": "<", "$GT$": ">", "$RF$": "&", "$BP$": "*", "$C$": ",", "$u20$": " ",
            "$u27$": "'", "$u5b$": "[", "$u5d$": "]", "$u7b$": "{", "$u7d$": "}", "$u7e$": "~", "..": "::"}
    out = []
    for part in parts:
        for k, v in subs.items():
            part = part.replace(k, v)
        out.append(part[1:] if part.startswith("_$") else part)
    return "::".join(out) if out else name


__all__ = ["demangle"]

"""The texts written into the PDB: ``srcsrv`` (VERSION=2) and Source Link JSON.

srcsrv (Microsoft's "Language specification" for source server): CRLF line
ends, each entry ``path*target`` in the source files section, and
``SRCSRVTRG=%var2%`` with no ``SRCSRVCMD``: the debugger fetches ``var2``
over HTTP itself (or opens it as a path).  ``%`` starts a variable in srcsrv,
so a literal ``%`` (percent-encoded URLs) is written ``%%``.  ``*`` separates
fields and cannot be escaped: paths or targets holding one are left out.
"""

from __future__ import annotations

import json

SRCSRV_INI = "SRCSRV: ini ------------------------------------------------"
SRCSRV_VARIABLES = "SRCSRV: variables ------------------------------------------"
SRCSRV_FILES = "SRCSRV: source files ---------------------------------------"
SRCSRV_END = "SRCSRV: end ------------------------------------------------"


def srcsrv_escape(text: str) -> str:
    return text.replace("%", "%%")


def representable(path: str, target: str) -> bool:
    return not any(c in s for s in (path, target) for c in "*\r\n\0")


def srcsrv_text(entries: list[tuple[str, str]], tool: str = "symtool") -> str:
    lines = [SRCSRV_INI, "VERSION=2", "INDEXVERSION=2", "VERCTRL=http", SRCSRV_VARIABLES,
             f"SRCSRV_INDEXER={tool}", "SRCSRVTRG=%var2%", SRCSRV_FILES]
    for path, target in entries:
        lines.append(f"{srcsrv_escape(path)}*{srcsrv_escape(target)}")
    lines.append(SRCSRV_END)
    return "\r\n".join(lines) + "\r\n"


def parse_srcsrv(text: str) -> list[tuple[str, str]]:
    """The (path, target) entries of a srcsrv text written with SRCSRVTRG=%var2%."""
    out = []
    section = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("SRCSRV:"):
            section = line.split()[1]
            continue
        if section == "source" and line:
            fields = line.split("*")
            if len(fields) >= 2:
                out.append((fields[0].replace("%%", "%"), fields[1].replace("%%", "%")))
    return out


def sourcelink_text(entries: list[tuple[str, str]]) -> str:
    docs = {path: url for path, url in entries if url.startswith(("http://", "https://"))}
    return json.dumps({"documents": docs}, indent=2, ensure_ascii=False)

"""Parse ``_NT_SYMBOL_PATH`` the way debuggers read it.

Elements are separated by ``;``.  Recognised forms (keywords case-insensitive):

* ``srv*[cache1*[cache2*...]]server``: a symbol server (URL or store
  directory) with downstream caches; ``srv*server`` or ``srv**server`` means
  "the default cache".
* ``symsrv*symsrv.dll*[cache*...]server``: the same, naming the DLL.
* ``cache*[dir]``: elements after it are cached in ``dir`` (default cache
  when empty).
* anything else: a local or UNC directory, read as a symbol store.

We only *read* the path: caches become candidate download caches and are
also looked in first, servers and directories become sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SymPathEntry:
    """One element of a symbol path: a server with its caches, or a directory."""

    kind: str  # "server" (srv*/symsrv* element) or "dir" (plain directory)
    location: str  # URL or directory
    caches: list[str] = field(default_factory=list)  # downstream caches ("" = default cache)


@dataclass
class SymPath:
    """A parsed symbol path (``_NT_SYMBOL_PATH``): its elements in order."""

    entries: list[SymPathEntry] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """Servers and store directories in order (caches excluded)."""
        return [e.location for e in self.entries]

    @property
    def caches(self) -> list[str]:
        """Explicit downstream caches named anywhere, in order, without duplicates."""
        seen: list[str] = []
        for e in self.entries:
            for c in e.caches:
                if c and c not in seen:
                    seen.append(c)
        return seen

    @property
    def first_cache(self) -> str | None:
        return self.caches[0] if self.caches else None


def parse_sympath(text: str) -> SymPath:
    """Parse a symbol path; unknown or empty elements are skipped, never fatal."""
    result = SymPath()
    pending_cache: list[str] | None = None  # from a preceding cache* element
    for raw in (text or "").split(";"):
        element = raw.strip().strip('"').strip()
        if not element:
            continue
        parts = element.split("*")
        keyword = parts[0].strip().lower()
        if keyword in ("srv", "symsrv") and len(parts) >= 2:
            rest = [p.strip() for p in parts[1:]]
            if keyword == "symsrv":
                rest = rest[1:]  # the DLL name (symsrv.dll or another)
            if not rest or not rest[-1]:
                continue  # "srv*" without a server
            server, caches = rest[-1], rest[:-1]
            if not caches and pending_cache is not None:
                caches = list(pending_cache)
            if not caches:
                caches = [""]  # symsrv's default downstream store
            result.entries.append(SymPathEntry("server", server, caches))
        elif keyword == "cache" and len(parts) >= 2:
            pending_cache = [p.strip() for p in parts[1:]] or [""]
        else:
            result.entries.append(SymPathEntry("dir", element, list(pending_cache or [])))
    return result

"""Work budgets: the one place that says how much work a reader may do on input it did not write.

A PDB, a DWARF section, a minidump, a srcsrv stream or a store's admin file is
data someone else may control (docs/security.md).  Every reader that loops
over or allocates from such data checks a budget from this table *before* it
loops or allocates, and raises :class:`~symtool.errors.BudgetError` (exit 2,
one line naming the budget and its variable) when the input asks for more:
never a hang, never an out-of-memory.

Each limit is overridable by its environment variable (a whole number; a K, M
or G suffix multiplies by 1024s), read when the limit is asked for, so a test
or an operator with an unusual file can lift one without touching the others.
Leaf module: stdlib and symtool.errors only (formats/ import it).
"""

from __future__ import annotations

import os
from collections import namedtuple

# Every reader imports this table, ``symtool id`` and ``symbolize`` included: a named tuple costs
# their start-up less than a dataclass would (and typing is not imported for ``Mapping``).


class Budget(namedtuple("Budget", "name default unit why")):
    """One limit: ``unit`` says what is counted ("bytes", "names", "frames", ...), ``why`` is one
    line for docs/security.md."""

    __slots__ = ()

    @property
    def env(self) -> str:
        return f"SYMTOOL_MAX_{self.name}"


BUDGETS: dict[str, Budget] = {b.name: b for b in (
    Budget("SOURCE_FILE_SIZE", 64 << 20, "bytes",
           "a source file archived by --sources (larger is no source file)"),
    Budget("PDB_NAME", 32 << 10, "bytes",
           "one file name in a PDB's DBI file info or /names (Windows paths end at 32,767)"),
    Budget("PDB_NAMES_TOTAL", 64 << 20, "bytes",
           "all file names decoded from one PDB (each distinct offset costs its name's length)"),
    Budget("PDB_STREAMS_READ", 64, "times the PDB's size",
           "bytes of streams read while listing a PDB's source files (each module stream once)"),
    Budget("SRCSRV_SCAN", 1 << 20, "characters",
           "characters scanned while expanding one srcsrv target (on top of 20,000 steps, 8,192 output)"),
    Budget("STACK_FRAMES", 200_000, "frames",
           "frames shown by one `stack --all`, all threads together (a reused walk counts again)"),
    Budget("INFLATE_RATIO", 64, "times the file's size",
           "bytes decompressed from one ELF's SHF_COMPRESSED debug sections, all together"),
    Budget("INFLATE_FLOOR", 64 << 20, "bytes",
           "decompressed bytes always allowed per ELF, whatever its size (small files compress well)"),
    Budget("DWARF_CACHE", 1 << 30, "bytes",
           "estimated memory of the DWARF units and line tables one symbolizer keeps parsed (least recently "
           "used are let go past it)"),
    Budget("SYMCACHE_FILE", 1 << 30, "bytes",
           "one symbol cache file (a larger one is not trusted: it is rebuilt)"),
    Budget("ADMIN_OBJECT", 1 << 30, "bytes",
           "an object store's history.txt / server.txt, streamed (the local store streams these too)"),
)}


def limit(name: str, environ: Mapping[str, str] | None = None) -> int:
    """The limit ``name`` (a key of BUDGETS): ``SYMTOOL_MAX_<name>`` when set, else the default.

    ConfigError for anything but a positive whole number (with K/M/G suffix).
    """
    from symtool.errors import ConfigError

    budget = BUDGETS[name]
    env = os.environ if environ is None else environ
    text = (env.get(budget.env) or "").strip()
    if not text:
        return budget.default
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits or len(digits) > 15 or not all("0" <= c <= "9" for c in digits) or int(digits) == 0:
        raise ConfigError(f"{budget.env} must be a positive whole number (e.g. 64M), not {text[:30]!r}")
    return int(digits) * scale


def exceeded(name: str, what: str, path: "str | os.PathLike[str] | None" = None):
    """The BudgetError to raise when ``what`` went over the limit ``name``."""
    from symtool.errors import BudgetError

    budget = BUDGETS[name]
    return BudgetError(f"{what}: over the work budget of {limit(name)} {budget.unit} "
                       f"({budget.env}; a hostile or corrupt file)", path)


class Counter:
    """A running total checked against a limit before each piece of work is done."""

    __slots__ = ("name", "cap", "used", "what", "path", "unit")

    def __init__(self, name: str, cap: int | None = None, *, what: str = "", path=None, unit: str | None = None):
        """``cap``: the limit itself when the budget is a ratio (then ``unit`` says what is counted)."""
        self.name = name
        self.cap = limit(name) if cap is None else cap
        self.used = 0
        self.what = what or BUDGETS[name].why
        self.path = path
        self.unit = unit or BUDGETS[name].unit

    def spend(self, n: int) -> None:
        """Account for ``n`` more units; BudgetError (before the work) when that is over the cap."""
        self.used += n
        if self.used > self.cap:
            raise self.error()

    def error(self):
        from symtool.errors import BudgetError

        budget = BUDGETS[self.name]
        return BudgetError(f"{self.what}: over the work budget of {self.cap} {self.unit} "
                           f"({budget.env}; a hostile or corrupt file)", self.path)

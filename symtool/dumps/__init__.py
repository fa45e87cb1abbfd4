"""Triage many minidumps: what each needs to be symbolized, whether the stores
have it, and which crashes are the same.

One row per dump (a :class:`~symtool.dumps.triage.TriageRow`; its
``to_json()`` is the ``--json`` shape):

* the exception (code as ProcDump writes it, e.g. ``C0000005``, a name, and
  details such as read/write/execute for access violations or the fail-fast
  subcode), the faulting module and offset, and -- when the faulting
  module's PDB is found in a local store or build directory -- the function,
  file:line and inline frames at the exception address;
* every module with the store keys looked for (``name/INDEX/name`` for the
  PDB named by its CodeView record, ``name/TimeDateStamp+SizeOfImage/name``
  for the image), like ``symchk /id`` does, and whether they were found;
* a ``bucket``: exception code + faulting module + function (or offset when
  not symbolized).  :class:`Buckets` counts them with first/last time and an
  example file.

Unreadable dumps become rows with ``error``; the run goes on.  Rows are
produced one at a time (:func:`triage`) so memory stays flat over thousands
of dumps; store lookups and parsed PDBs are cached for the run.

Modules: ``exceptions`` (code names and details), ``files`` (which files are
dumps, and their times), ``locate`` (store and build-directory lookups),
``symbolize`` (the faulting address with its PDB), ``triage`` (rows),
``buckets``.
"""

from __future__ import annotations

import sys
import types

# The names below are imported on first use (PEP 562): ``symtool symbolize`` and ``stack``
# import symtool.dumps.symbolize / .stack, which must not pull in triage and buckets.
__all__ = ["triage", "triage_one", "collect_dumps", "describe_exception", "parse_procdump_name", "dump_time",
           "Buckets", "Bucket", "Hit", "SymbolLocator", "SymbolizerCache", "row_missing", "ROW_KEYS",
           "TriageRow", "ModuleRow", "FrameRow"]


def __getattr__(name: str):
    if name in ("Bucket", "Buckets"):
        from symtool.dumps import buckets as module
    elif name == "describe_exception":
        from symtool.dumps import exceptions as module
    elif name in ("collect_dumps", "dump_time", "parse_procdump_name"):
        from symtool.dumps import files as module
    elif name in ("Hit", "SymbolLocator"):
        from symtool.dumps import locate as module
    elif name == "SymbolizerCache":
        from symtool.dumps import symbolize as module
    elif name in ("ROW_KEYS", "FrameRow", "ModuleRow", "TriageRow", "row_missing", "triage", "triage_one"):
        import symtool.dumps.triage

        module = sys.modules["symtool.dumps.triage"]
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        # The import system binds each submodule it loads on its package: this package's
        # ``triage`` is the function (as when the names above were imported eagerly), not the
        # submodule of the same name, whichever is imported first.
        if name == "triage" and isinstance(value, types.ModuleType):
            value = value.triage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

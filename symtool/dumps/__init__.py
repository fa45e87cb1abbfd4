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

The package imports none of them itself: ``symtool symbolize`` and ``stack`` use ``locate``,
``stack`` and ``symbolize`` without the triage machinery (tens of milliseconds of imports), so
callers import from the module that owns a name (``from symtool.dumps.triage import triage``).
"""

"""Writers of binary files that exist only for tests and benchmarks.

Each builder declares its own layouts from the published specifications and
imports nothing from ``symtool``: a builder that shared the reader's
constants would make a round trip between them prove nothing.  Each one is
checked against an independent reader in tests/test_builders.py (the
``minidump`` package for minidumps, ``llvm-pdbutil`` for MSF files).
"""

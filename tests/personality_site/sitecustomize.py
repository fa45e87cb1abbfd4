"""Run by Python at start-up when this directory is on PYTHONPATH (tests/conftest.py puts it there
for child processes while the suite runs under ``SYMTOOL_TEST_PERSONALITY``): the child then runs
with the Windows personality of ``$WINDOWS_PERSONALITY`` (3.11 or 3.12), like the test that started it."""

import os
import sys

_semantics = os.environ.get("WINDOWS_PERSONALITY")
if _semantics:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import windows_personality

    windows_personality.activate(_semantics)
    del sys.path[0]

"""Stack walking: from a thread's CPU context and stack bytes to its frames.

Layers, each usable alone (as in rust-minidump):

* :mod:`memory` -- the saved stack bytes, read by address (misses are None, never errors);
* :mod:`x64` -- one x64 unwind step from ``.pdata``/UNWIND_INFO (every unwind op,
  chained info, leaf functions, a fault inside a prologue or an epilogue);
* :mod:`x86` -- one x86 step from frame data (FrameData program strings, FPO records)
  or along the EBP chain;
* :mod:`scan` -- stack scanning for return addresses right after a call instruction;
* :mod:`walk` -- the bounded walk that tries them in order and records how each frame
  was found: ``context``, ``cfi``, ``frame-pointer`` or ``scan``.

Nothing here knows about PDBs or stores: the caller passes the modules and
functions that return a module's image and its x86 frame data (or None).
"""

from __future__ import annotations

from symtool.stackwalk.memory import StackMemory
from symtool.stackwalk.walk import MAX_FRAMES, TRUSTS, StackFrame, WalkModule, WalkResult, walk_stack

__all__ = ["StackMemory", "StackFrame", "WalkModule", "WalkResult", "walk_stack", "MAX_FRAMES", "TRUSTS"]

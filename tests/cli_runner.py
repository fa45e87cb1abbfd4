"""Run ``symtool ARGS`` inside the test process, with a subprocess's contract.

Starting ``python -m symtool`` costs ~0.15 s of CPU (interpreter, typer, rich); the
suite ran it about 470 times.  :func:`symtool_in_process` runs the same entry point
(:func:`symtool.main.run`, what the console script runs after setting up its streams)
in-process and returns a :class:`subprocess.CompletedProcess`, so a test written for
``subprocess.run([sys.executable, "-m", "symtool", ...], capture_output=True, text=True)``
reads the same ``returncode``, ``stdout`` and ``stderr``:

* ``env`` replaces the whole environment for the call (as ``subprocess.run(env=...)``),
  ``cwd`` is the working directory, ``input`` is stdin (empty when not given);
* stdout and stderr are byte streams that are not terminals (a redirected stdout:
  UTF-8), decoded as ``text=True`` does (UTF-8, universal newlines) unless ``text=False``;
* an exception that escapes the command is printed as the interpreter would
  (``Traceback ...`` on stderr, exit 1): tests asserting "no traceback" still see one.

Keep a real subprocess where the test is about the process: exit status from a signal,
resource limits (RLIMIT_*), a hang that a timeout must kill, the console script or
``python -m`` start-up, the interpreter's own stream encoding or locale.

The process state a command reads is saved and restored around each call (sys.argv,
the standard streams, os.environ, the working directory, symtool's global output
options); calls are serialised by a lock, since that state is process-wide.
"""

from __future__ import annotations

import faulthandler
import io
import os
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Mapping

_LOCK = threading.Lock()


class _Bytes(io.BytesIO):
    """A captured stream's bytes; the text layer above may close it, the bytes stay readable."""

    def close(self) -> None:  # pragma: no cover - nothing here closes it on purpose
        pass


def _decode(data: bytes, text: bool) -> str | bytes:
    if not text:
        return data
    # subprocess's text=True: the locale's encoding (UTF-8 here), strict, universal newlines.
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=None).read()


def symtool_in_process(*args: object, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                       input: str | bytes | None = None, text: bool = True, timeout: float | None = 300,
                       prog_name: str = "symtool") -> subprocess.CompletedProcess:
    """``symtool ARGS`` run in this process; see the module docstring for what is kept of a subprocess.

    ``timeout`` is a watchdog, not a deadline the command sees: a command still running after it
    dumps every thread's stack and ends the test process (a hang fails the run instead of
    stalling it; under xdist the worker's crash names the test)."""
    from symtool.commands import common
    from symtool.main import run

    argv = [str(a) for a in args]
    stdin_bytes = input.encode("utf-8") if isinstance(input, str) else (input or b"")
    out, err = _Bytes(), _Bytes()
    with _LOCK:
        saved_streams = sys.stdin, sys.stdout, sys.stderr
        saved_argv, saved_env, saved_cwd = sys.argv, dict(os.environ), os.getcwd()
        saved_output = common.OUTPUT.verbosity, common.OUTPUT.color
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_bytes), encoding="utf-8")
        # What configure_output makes of a redirected stdout; stderr escapes as Python's own does.
        sys.stdout = io.TextIOWrapper(out, encoding="utf-8", errors="backslashreplace", write_through=True)
        sys.stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
        sys.argv = [prog_name, *argv]
        common.OUTPUT.verbosity, common.OUTPUT.color = 0, "auto"
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        try:
            if cwd is not None:
                os.chdir(cwd)
            if timeout is not None:
                faulthandler.dump_traceback_later(timeout, exit=True, file=sys.__stderr__)
            try:
                code = run(prog_name)
            except SystemExit as exit_:
                code = exit_.code
                if code is not None and not isinstance(code, int):
                    sys.stderr.write(f"{code}\n")
                    code = 1
            except Exception:  # noqa: BLE001 - uncaught: printed as Python does (Ctrl-C stops the tests)
                traceback.print_exc()
                code = 1
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except ValueError:  # closed by the command
                    pass
        finally:
            faulthandler.cancel_dump_traceback_later()
            os.chdir(saved_cwd)
            if env is not None:
                os.environ.clear()
                os.environ.update(saved_env)
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            sys.argv = saved_argv
            common.OUTPUT.verbosity, common.OUTPUT.color = saved_output
    return subprocess.CompletedProcess([prog_name, *argv], code or 0, _decode(out.getvalue(), text),
                                       _decode(err.getvalue(), text))

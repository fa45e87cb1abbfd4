"""The ``symtool`` console script.

``symtool env`` runs in every new shell, and ``symtool id`` and ``symtool symbolize``
are often a whole run, so they are parsed here before typer is imported (typer's
import alone costs more than the rest of the command), and so is ``symtool publish``
(a CI step publishing a build's files: typer was a tenth of publishing 400 small ones);
``--help`` and anything the fast parser does not take go through typer like
every other command.
"""

from __future__ import annotations

import os
import sys

# Set (to anything), it sends `env`, `id`, `symbolize` and `publish` through typer like every other command:
# the tests run each argument form both ways and compare what the user sees.
NO_FAST_PATH = "_SYMTOOL_NO_FAST_PATH"


def _complete_var(prog_name: str) -> str:
    """The environment variable click's shell completion sets when it asks for candidates."""
    return "_{}_COMPLETE".format(prog_name.replace("-", "_").replace(" ", "_").upper())


def _show_completion(shell: str, prog_name: str) -> int:
    """``symtool --show-completion SHELL``: the script for the shell named, never a guessed one.

    typer's own option ignores a name after it when it can guess the current
    shell; the name given must win (a script for zsh, written from bash).
    """
    from typer.completion import get_completion_script

    from symtool.commands.common import bad_usage

    shells = ("bash", "zsh", "fish", "powershell", "pwsh")
    if shell not in shells:
        return bad_usage(f"--show-completion takes one of {', '.join(shells)}, not {shell!r}")
    complete_var = _complete_var(prog_name)
    sys.stdout.write(get_completion_script(prog_name=prog_name, complete_var=complete_var, shell=shell) + "\n")
    return 0


def _unwind_on_termination() -> None:
    """SIGTERM and SIGHUP (and Ctrl+Break's SIGBREAK on Windows) end symtool the way Ctrl-C does: by an exception, so every ``with`` block's
    clean-up runs and no temp file (a download, a copy into a store) is left behind.  Exit status
    128 + the signal, as the shell reports a process killed by it.  (SIGKILL cannot be caught: for it
    `store verify --repair` and the fetch cache's own clean-up remove what a dead writer left.)"""
    import signal

    def terminate(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)  # a second one must not interrupt the clean-up
        raise SystemExit(128 + signum)

    def interrupt(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt  # "interrupted", exit 130: what Ctrl+C gives

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, terminate)
    # Ctrl+Break in a Windows console (Ctrl+C's twin there, which consoles and CI agents send to
    # stop a job): without a handler Windows ends the process at once, temp files and lock left.
    sig = getattr(signal, "SIGBREAK", None)
    if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
        signal.signal(sig, interrupt)


class _DeferredInspect(type(sys)):
    """Stands for the inspect module in ``sys.modules`` until one of its attributes is used; then
    the real module is imported (and takes its place there) and the attribute is the real one's.

    Why: dataclasses imports inspect at its own import (with ast, dis, tokenize and linecache,
    ~6 ms, a quarter of what a warm `symtool symbolize` or `symtool id` of an ELF or Mach-O file
    adds to Python's start) but uses it only to write a docstring for a class that has none; the
    record classes on those paths have theirs.  (`symtool id` of a PDB imports no dataclasses.)  importlib.util.LazyLoader cannot do this on Python 3.11: the next
    ``import inspect`` statement reads ``__spec__`` and that loads the module.  Whatever does use
    inspect (typer, when the fast path hands over) gets the real module's attributes, and later
    imports the real module itself."""

    def __getattr__(self, name: str):
        if sys.modules.get("inspect") is self:
            del sys.modules["inspect"]
        import inspect as real

        return getattr(real, name)


def _defer_inspect() -> None:
    """:class:`_DeferredInspect` in ``sys.modules`` (for the typer-free paths; not when inspect is
    loaded already, as in the test suite, which runs :func:`run` in-process)."""
    if "inspect" not in sys.modules:
        sys.modules["inspect"] = _DeferredInspect("inspect")


def main(prog_name: str = "symtool") -> None:
    from symtool.commands.common import configure_output

    configure_output()
    _unwind_on_termination()
    sys.exit(run(prog_name))


def run(prog_name: str = "symtool") -> int:
    """The command ``sys.argv`` names, on the streams already set up; its exit code.

    :func:`main` without the process set-up (stream encoding, signal handlers) and
    without exiting: the test suite runs commands in-process through it
    (tests/cli_runner.py).  A command may still raise SystemExit."""
    from symtool.commands.common import bad_usage, take_global_options

    try:
        sys.argv[1:] = take_global_options(sys.argv[1:])
    except ValueError as err:
        return bad_usage(str(err))
    if len(sys.argv) == 3 and sys.argv[1] == "--show-completion":
        return _show_completion(sys.argv[2], prog_name)
    if len(sys.argv) == 2 and sys.argv[1].startswith("--show-completion="):
        return _show_completion(sys.argv[1].partition("=")[2], prog_name)
    fast = not os.environ.get(NO_FAST_PATH) and _complete_var(prog_name) not in os.environ
    if fast and sys.argv[1:2] in (["id"], ["symbolize"], ["publish"]):
        _defer_inspect()
    if fast and sys.argv[1:2] == ["env"]:
        from symtool.commands.env import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            return code
    if fast and sys.argv[1:2] == ["id"]:
        from symtool.commands.ident import fast_main as id_main

        code = id_main(sys.argv[2:])
        if code is not None:
            return code
    if fast and sys.argv[1:2] == ["symbolize"]:
        from symtool.commands.symbolize import fast_main as symbolize_main

        code = symbolize_main(sys.argv[2:])
        if code is not None:
            return code
    if fast and sys.argv[1:2] == ["publish"]:
        from symtool.commands.publish import fast_main as publish_main

        code = publish_main(sys.argv[2:])
        if code is not None:
            return code
    from symtool.cli import make_app

    # Shell completion asks about every command; a run names one (after the global options).
    completing = _complete_var(prog_name) in os.environ
    command = None if completing or len(sys.argv) < 2 else sys.argv[1]
    return _run_app(make_app(command), prog_name)


def _run_app(app, prog_name: str) -> int:
    """Run the typer app; click's own usage errors (unknown option or command, bad value) are
    printed by symtool's rule (one ``error:`` line, JSON under ``--json``, exit 2), not as
    click's usage box."""
    from symtool.commands.common import report_usage_error

    try:
        code = app(prog_name=prog_name, standalone_mode=False)
    except Exception as err:  # click's exceptions only; anything else is a bug and re-raised
        code = report_usage_error(err, sys.argv[1:])
        if code is None:
            raise
    return code if isinstance(code, int) else 0


def cargo_main() -> None:
    """``cargo symtool ARGS``: cargo runs ``cargo-symtool symtool ARGS``; drop that word."""
    if sys.argv[1:2] == ["symtool"]:
        del sys.argv[1]
    main("cargo symtool")


if __name__ == "__main__":
    main()

"""Helpers shared by the command modules: messages, exit codes, JSON.

A leaf: it imports no command module and not :mod:`symtool.cli`, so the data
flows one way (``symtool.main`` → ``symtool.cli`` → ``symtool.commands.*`` →
library).  Exit codes come from :func:`symtool.errors.exit_status`.

Messages follow cargo's conventions: ``error:``, ``warning:`` and ``note:``
prefixes on stderr, coloured on a terminal unless ``NO_COLOR`` is set or
``--color never`` is given; ``-q`` silences warnings and notes (never errors),
``-v`` adds detail.  Text that came from a file or a server is escaped before
it reaches the terminal, so control characters cannot forge lines or colours.
"""

from __future__ import annotations

import os
import sys

from symtool.errors import EXIT_BAD_INPUT, HANDLED, exit_status

# Imported by every run, ``symtool id`` and ``symbolize`` included, whose whole run is a few
# tens of milliseconds: json, functools and typing are imported where they are used (the
# annotations are strings, ``from __future__ import annotations``).

COLOR_CHOICES = ("auto", "always", "never")


class OutputSettings:
    """The global options, set once per run by :func:`take_global_options` or the typer callback."""

    def __init__(self, verbosity: int = 0, color: str = "auto"):
        self.verbosity = verbosity  # -1 quiet, 0 normal, 1+ verbose
        self.color = color

    def __repr__(self) -> str:
        return f"OutputSettings(verbosity={self.verbosity!r}, color={self.color!r})"


OUTPUT = OutputSettings()


def take_global_options(argv: list[str]) -> list[str]:
    """Remove ``-q``/``--quiet``, ``-v``/``--verbose`` (``-vv``) and ``--color WHEN`` from ``argv``.

    cargo accepts them before or after the subcommand; so do we.  Options after
    a ``--`` are left alone.  Returns the remaining arguments; raises ValueError
    for a bad ``--color`` value.
    """
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest.append(arg)
            rest.extend(args)
            break
        if arg in ("-q", "--quiet"):
            OUTPUT.verbosity = -1
        elif arg == "--verbose" or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            OUTPUT.verbosity = max(OUTPUT.verbosity, 0) + (1 if arg == "--verbose" else len(arg) - 1)
        elif arg == "--color" or arg.startswith("--color="):
            value = arg.partition("=")[2] if "=" in arg else next(args, "")
            if value not in COLOR_CHOICES:
                raise ValueError(f"--color takes one of {', '.join(COLOR_CHOICES)}, not {value!r}")
            OUTPUT.color = value
        else:
            rest.append(arg)
    return rest


# Kinds of option in a command's table for :func:`parse_options` (``symtool symbolize``, ``publish``):
# a flag, an option taking one value (given twice: the last), a repeatable one (a list).
FLAG, VALUE, MULTIPLE = "flag", "value", "multiple"


def parse_options(argv: list[str], options, positional: str) -> dict | None:
    """The parameters of a command's ARGV as its typer command would pass them, for the commands
    symtool.main runs before typer is imported; None when ARGV has anything the typer command must
    see (an option not in ``options``, ``--help``, a flag given a value, an option without its
    value or with one that looks like an option, a clustered short option): typer then parses it
    and words the error.

    ``options``: ``(names, parameter, kind)`` for each option, the first name the long one; the
    arguments that are not options are ``positional``'s list (None when there are none).  Options
    not given are False (flags) or None."""
    by_name = {name: (dest, kind) for names, dest, kind in options for name in names}
    values: dict = {dest: (False if kind == FLAG else None) for _names, dest, kind in options}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest.extend(args)
            break
        if arg == "-" or not arg.startswith("-"):
            rest.append(arg)
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        spec = by_name.get(name)
        if spec is None:
            return None
        dest, kind = spec
        if kind == FLAG:
            if eq:
                return None
            values[dest] = True
            continue
        if not eq:
            value = next(args, None)
            if value is None or value.startswith("-"):
                return None
        if kind == MULTIPLE:
            values[dest] = (values[dest] or []) + [value]
        else:
            values[dest] = value  # given twice: the last one, as click takes it
    values[positional] = rest or None
    return values


def _use_color(stream) -> bool:
    if OUTPUT.color == "always":
        return True
    if OUTPUT.color == "never" or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()) or os.environ.get("TERM") == "dumb":
        return False
    from symtool import platform

    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):
        return True
    return platform.console_colors(fd)  # a Windows console without VT support prints escapes raw


_STYLES = {"error": "1;31", "warning": "1;33", "note": "1;36"}


def terminal_safe(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``, ``\\r``, ``\\n``...).

    Module names, dump comments, server messages and file contents are not
    ours: printed raw, an escape sequence or a CR/LF could forge a line.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def message(kind: str, text: str) -> None:
    """One ``kind: text`` line on stderr (kind is error, warning or note)."""
    if kind != "error" and OUTPUT.verbosity < 0:
        return
    stream = sys.stderr
    label = f"{kind}:"
    if _use_color(stream):
        label = f"\x1b[{_STYLES[kind]}m{label}\x1b[0m"
    stream.write(f"{label} {terminal_safe(_no_userinfo(text))}\n")


def _no_userinfo(text: str) -> str:
    """Messages never show a URL's ``user:password@``, whoever built them."""
    if "@" not in text:
        return text
    from symtool.store.layout import strip_userinfo

    return strip_userinfo(text)


def error(text: str) -> None:
    message("error", text)


def warning(text: str) -> None:
    message("warning", text)


def note(text: str) -> None:
    message("note", text)


def verbose(text: str, level: int = 1) -> None:
    """Detail shown with ``-v`` (``-vv`` for level 2)."""
    if OUTPUT.verbosity >= level:
        sys.stderr.write(f"{terminal_safe(text)}\n")


_MARKUP = None


def escape_markup(text: str) -> str:
    """``text`` with each ``[word...]`` escaped, so rich prints it instead of reading it as a style.

    Help text says ``[workspace.metadata.symtool]`` and ``[PATH...]``; typer
    renders help through rich, whose markup would swallow them.  Escaping twice
    changes nothing.
    """
    global _MARKUP
    if _MARKUP is None:
        import re

        _MARKUP = re.compile(r"(?<!\\)\[(?=[A-Za-z#/@][^\[\]]*\])")
    return _MARKUP.sub(r"\\[", text)


def error_object(err: BaseException, code: int, text: str | None) -> dict[str, Any]:
    """What a ``--json`` command prints on stdout when it fails: never empty output."""
    path = getattr(err, "path", None)
    return {"error": {"message": _no_userinfo(getattr(err, "message", None) or text or ""),
                      "path": _no_userinfo(path) if path else path,
                      "kind": type(err).__name__, "exit_code": code}}


def run_parsed(values: dict | None, run, json_key: str) -> int | None:
    """Run a command the fast parser took (``values``, None when typer must take over) with its
    parameters; its exit code, or the wording of a handled error (JSON too when ``values[json_key]``)."""
    if values is None:
        return None
    try:
        code = run(**values)
    except HANDLED as err:
        return report_error(err, bool(values.get(json_key)))
    return 0 if code is None else code


def report_error(err: BaseException, as_json: bool = False) -> int:
    """Print the error for ``err`` (a line on stderr, and a JSON object with --json); its exit code."""
    code, text = exit_status(err)
    if text is None:
        try:  # a closed pipe: make later writes (and the interpreter's flush) silent
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return code
    error(text)
    if as_json:
        print_json(error_object(err, code, text))
    return code


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one stderr line (plus a JSON error with --json) and the exit code."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HANDLED as err:
            import typer

            wants_json = bool(kwargs.get("as_json") or kwargs.get("json_out"))
            raise typer.Exit(report_error(err, wants_json)) from None

    return wrapper


def print_json(data: Any) -> None:
    """Stable, machine-readable output for ``--json``: UTF-8 whatever the locale or code page."""
    import json

    write_utf8(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def write_utf8(text: str) -> None:
    """``text`` on stdout as UTF-8 bytes, whatever its encoding says.

    A redirected stdout on Windows is encoded in the ANSI code page, strictly:
    a name outside cp1252 raised UnicodeEncodeError.  Programs reading JSON or
    shell code expect UTF-8 (a Windows console's stdout takes UTF-8 bytes too).
    A lone surrogate (an undecodable byte of a POSIX file name) is written as
    ``\\udcXX``: valid JSON, which reads back as the same string.
    """
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:  # pragma: no cover - a replaced stdout without a byte layer
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    stream.write(text.encode("utf-8", "backslashreplace"))
    stream.flush()


def configure_output() -> None:
    """Text on stdout never fails to encode: the one place output streams are set up (``symtool.main``).

    Redirected (a file, a pipe, a CI log), stdout is UTF-8 like ``--json``;
    on a terminal it keeps the terminal's encoding.  Either way a character
    it cannot encode is escaped (``\\u0441``) instead of raising
    UnicodeEncodeError.  stderr escapes already (Python's default for it).
    """
    stream = sys.stdout
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is None:
        return
    try:
        on_terminal = stream.isatty()
    except (ValueError, OSError):
        on_terminal = False
    try:
        if on_terminal:
            reconfigure(errors="backslashreplace")
        else:
            reconfigure(encoding="utf-8", errors="backslashreplace")
    except (ValueError, OSError):  # a closed or unusual stream: leave it as it is
        pass


def print_json_stream(fields: list[tuple[str, Any]]) -> None:
    """:func:`print_json` of the object whose keys and values are ``fields``, written as it is made.

    A value that is an iterator is written as a JSON array one item at a time (each item is
    encoded, written and let go: a stack of 1,000 threads is never one string in memory); a
    callable value is called when its turn comes (e.g. notes that the iteration adds to).  The
    bytes are print_json's: the same indentation, key order and escaping."""
    import json
    from collections.abc import Iterator

    write = write_utf8  # UTF-8 whatever the code page, as print_json

    def encoded(value: Any, level: int) -> str:
        # json.dumps escapes every newline inside strings, so the only newlines are indentation's:
        # shifting them by the nesting level gives the nested encoding.
        return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False).replace("\n", "\n" + "  " * level)

    write("{")
    for n, (key, value) in enumerate(fields):
        write(("," if n else "") + "\n  " + json.dumps(key, ensure_ascii=False) + ": ")
        if callable(value):
            value = value()
        if isinstance(value, Iterator):
            empty = True
            for item in value:
                write(("[" if empty else ",") + "\n    " + encoded(item, 2))
                empty = False
            write("[]" if empty else "\n  ]")
        else:
            write(encoded(value, 1))
    write("\n}\n" if fields else "}\n")


def bad_usage(text: str) -> int:
    error(text)
    return EXIT_BAD_INPUT


def _click_exceptions():
    """click's exception module: typer >= 0.28 vendors click as ``typer._click``, older typer uses click."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - typer < 0.28
        from click import exceptions
    return exceptions


def _usage_text(err: Any) -> str:
    """One line for a command-line error click found (unknown option or command, bad value)."""
    exceptions = _click_exceptions()
    ctx = getattr(err, "ctx", None)
    if isinstance(err, exceptions.NoSuchOption):
        text = err.message
        hints = sorted(set(err.possibilities or ()))
        if hints:
            text += f" (did you mean {hints[0]}?)" if len(hints) == 1 else f" (did you mean one of {', '.join(hints)}?)"
    else:
        text = err.format_message()
        list_commands = getattr(getattr(ctx, "command", None), "list_commands", None)
        if text.startswith("No such command") and "Did you mean" not in text and callable(list_commands):
            # typer < 0.28 offers no suggestion for a misspelled command; cargo does.
            import difflib

            name = text.split("'")[1] if text.count("'") >= 2 else ""
            close = difflib.get_close_matches(name, list_commands(ctx), n=1)
            if close:
                text += f" Did you mean {close[0]!r}?"
        import re

        text = re.sub(r"\. Did you mean (.*)\?$", r" (did you mean \1?)", text)
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]  # cargo's style: "error: no such option ..."
    where = getattr(ctx, "command_path", None)
    return f"{where}: {text}" if where else text


def report_usage_error(err: BaseException, argv: list[str]) -> "int | None":
    """Print a command-line error click raised (``standalone_mode=False``) the way every other
    error is printed: one ``error:`` line, a JSON error object on stdout when ``--json`` was
    given, exit code 2.  None when ``err`` is not click's (the caller re-raises it)."""
    exceptions = _click_exceptions()
    if type(err).__name__ == "NoArgsIsHelpError":
        return EXIT_BAD_INPUT  # typer printed the help already (`symtool` alone)
    if type(err).__name__ == "Abort":  # click's (typer < 0.28) or typer's own: Ctrl-D at a prompt
        return report_error(KeyboardInterrupt())
    if not isinstance(err, exceptions.ClickException):
        return None
    from symtool.errors import UsageError

    given = argv[:argv.index("--")] if "--" in argv else argv
    return report_error(UsageError(_usage_text(err)), "--json" in given)


def no_symbol_cache_option():
    """``--no-symbol-cache`` of the commands that symbolize (stack, dumps, symbolize)."""
    import typer

    return typer.Option(False, "--no-symbol-cache",
                        help="Neither read nor write the symbol cache (as SYMTOOL_SYMBOL_CACHE=off).")


def apply_symbol_cache_option(no_symbol_cache: bool) -> None:
    """Turn the symbol cache off for this run when ``--no-symbol-cache`` was given."""
    if no_symbol_cache:
        from symtool.store.symcache import disable

        disable()

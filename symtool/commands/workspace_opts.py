"""cargo's selection options, defined once for every command that reads a workspace's build output.

``--manifest-path``, ``-p/--package``, ``--profile`` and ``--target`` mean
what they mean to ``cargo build`` (see :mod:`symtool.cargo.outputs`), so
``cargo build --profile dist`` is followed by ``symtool publish --profile dist``.
A leaf: typer option factories and one resolver, no command imports.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # names of annotations only
    from typing import Any, List, Optional

# typer is imported by the option factories: symbol_dirs is also used by `symbolize`'s
# typer-free path (symtool.commands.symbolize.fast_main).


def manifest_path_option() -> Any:
    import typer

    return typer.Option(None, "--manifest-path", metavar="PATH",
                        help="Cargo.toml of the workspace (default: found from the current directory up).")


def package_option() -> Any:
    import typer

    return typer.Option(None, "--package", "-p", metavar="SPEC",
                        help="Only these packages' artifacts (repeatable), as cargo build -p.")


def profile_option(default_help: str = "release") -> Any:
    import typer

    return typer.Option(None, "--profile", metavar="NAME",
                        help=f"Build profile whose output to read (default: {default_help}; dev reads the debug dir).")


def target_option() -> Any:
    import typer

    return typer.Option(None, "--target", metavar="TRIPLE",
                        help="Target triple whose output to read (repeatable; default: build.target, "
                             "else the host and every triple built).")


def select(manifest_path: Optional[str], package: Optional[List[str]], profile: Optional[str],
           target: Optional[List[str]]):
    """The :class:`symtool.cargo.outputs.OutputSelection` for the options' values."""
    from symtool.cargo.outputs import select_outputs

    return select_outputs(manifest_path, list(package or ()), profile, list(target or ()))


def given(manifest_path: Optional[str], package: Optional[List[str]], profile: Optional[str],
          target: Optional[List[str]]) -> list[str]:
    """The option names used, for commands that refuse them beside explicit PATHs."""
    values = {"--manifest-path": manifest_path, "--package": package, "--profile": profile, "--target": target}
    return [name for name, value in values.items() if value]


def symbol_dirs(manifest_path: Optional[str], package: Optional[List[str]], profile: Optional[str],
                target: Optional[List[str]]) -> list[str]:
    """Build dirs to look in for PDBs and images (``dumps``, ``stack``).

    With none of the options: every profile's output of the workspace, as
    ``symtool env`` lists it (a dump may come from any build).  With any of
    them: exactly the selected output, and an unknown profile, package or
    triple is exit 2 as in the other commands.
    """
    from pathlib import Path

    if not given(None, package, profile, target):
        from symtool.dumps.locate import default_build_dirs
        from symtool.errors import UsageError

        if manifest_path and not Path(manifest_path).is_file():
            raise UsageError("no such file", manifest_path)
        return default_build_dirs(Path(manifest_path) if manifest_path else None)
    selection = select(manifest_path, package, profile, target)
    return [str(d) for d in selection.dirs()]


__all__ = ["given", "symbol_dirs", "manifest_path_option", "package_option", "profile_option", "select",
           "target_option"]

"""What the README says about the command line and the sample workspace, against the real thing:
the typer app's commands, the console scripts pyproject.toml installs, and cargo metadata."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_and_store_subcommand_is_in_the_readme():
    """Issue 26, item 14: `store init` and `cargo symtool` were missing from the README."""
    import typer.main

    from symtool.cli import app

    group = typer.main.get_command(app)
    store = group.commands["store"]
    for name in group.commands:
        assert f"symtool {name}" in README, name
    for sub in store.commands:
        assert re.search(rf"\bstore {sub}\b|store [a-z/]*\b{sub}\b", README), sub
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"symtool", "cargo-symtool"}
    assert "`cargo-symtool`" in README and "cargo symtool check" in README


WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def test_the_sample_workspace_is_described_as_cargo_sees_it():
    """Issue 26, item 14: the README said "a library and two binaries"; cargo metadata is the oracle."""
    from conftest import SAMPLES, sample_layout

    layout = sample_layout()
    section = README.split("## The sample workspace", 1)[1].split("\n## ", 1)[0]
    first = " ".join(section.split("\n\n", 1)[1].split("\n\n", 1)[0].split())
    members = [tomllib.loads((SAMPLES / d / "Cargo.toml").read_text())["package"]["name"] for d in layout.member_dirs]
    assert f"of {WORDS[len(members)]} members and {WORDS[len(layout.bins)]} binaries" in first, first
    for name in (*members, *layout.bins):
        assert f"`{name}`" in first, name
    assert "`crash_me.pdb`" in first

"""The code's shape: imports flow one way, with no cycles.

Every import counts, including those inside functions (they still make two
modules depend on each other), and dynamic imports are not allowed in the
package, since this test could not see them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "symtool"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that ``target`` (a module or a name in one) lives in."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                found = _resolve(target, modules)
                if found and found != name:
                    graph[name].add(found)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_module_under_symtool_forms_an_import_cycle():
    modules = _modules()
    assert "symtool.cli" in modules and "symtool.commands.env" in modules
    assert strongly_connected(import_graph(modules)) == []


def test_no_dynamic_imports_hide_dependencies():
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                 if "import_module(" in p.read_text(encoding="utf-8") or "__import__(" in p.read_text(encoding="utf-8")]
    assert offenders == []


@pytest.mark.parametrize("layer, forbidden", [
    # Library code never reaches up into the command line.
    ("library", ("symtool.cli", "symtool.main", "symtool.commands")),
    # Command modules share helpers through the leaf module only.
    ("symtool.commands", ("symtool.cli", "symtool.main")),
])
def test_imports_flow_one_way(layer, forbidden):
    modules = _modules()
    graph = import_graph(modules)
    if layer == "library":
        members = [m for m in graph if not m.startswith(("symtool.cli", "symtool.main", "symtool.commands", "symtool.__main__"))]
    else:
        members = [m for m in graph if m.startswith(layer)]
    assert members
    bad = sorted((m, t) for m in members for t in graph[m] if t.startswith(forbidden))
    assert bad == []


def test_the_leaf_helper_module_imports_no_command():
    graph = import_graph(_modules())
    assert not any(t.startswith(("symtool.commands.", "symtool.cli")) for t in graph["symtool.commands.common"])


# Calls whose semantics differ by OS (issue 21): Windows' CPython lacks them or gives them other
# meanings.  Only the platform layer may touch them, so each has one POSIX and one Windows version.
PLATFORM_MODULE = "symtool.platform"
PLATFORM_ONLY_MODULES = ("fcntl", "msvcrt")
PLATFORM_ONLY_OS_NAMES = ("pread", "set_blocking", "O_NOFOLLOW", "O_NONBLOCK", "O_DIRECTORY",
                          # Windows refuses these while another handle has the file open (retried there),
                          # and links need a privilege or a file system that has them.
                          "replace", "rename", "unlink", "remove", "link", "symlink")
# pathlib's spellings of the same calls (any object's method of that name: str has none of them).
PLATFORM_ONLY_METHODS = ("unlink", "symlink_to", "hardlink_to", "link_to", "rename")


def platform_calls(tree: ast.AST) -> list[str]:
    """Where ``tree`` imports fcntl/msvcrt/ctypes.windll or touches os.pread & co (by attribute,
    ``from os import``, or ``getattr``/``hasattr`` with the name as a string)."""
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PLATFORM_ONLY_MODULES or alias.name.startswith("ctypes.windll"):
                    found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            for alias in node.names:
                if (module.split(".")[0] in PLATFORM_ONLY_MODULES or (module == "ctypes" and alias.name == "windll")
                        or (module == "os" and alias.name in PLATFORM_ONLY_OS_NAMES)):
                    found.append(f"{line}: from {module} import {alias.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("os", "ctypes"):
            if ((node.value.id == "os" and node.attr in PLATFORM_ONLY_OS_NAMES)
                    or (node.value.id == "ctypes" and node.attr == "windll")):
                found.append(f"{line}: {node.value.id}.{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in PLATFORM_ONLY_METHODS
              and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "platform")):
            found.append(f"{line}: .{node.func.attr}()")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2
              and isinstance(node.args[0], ast.Name) and isinstance(node.args[1], ast.Constant)):
            obj, name = node.args[0].id, node.args[1].value
            if (obj == "os" and name in PLATFORM_ONLY_OS_NAMES) or (obj == "ctypes" and name == "windll"):
                found.append(f"{line}: {node.func.id}({obj}, {name!r})")
    return found


def test_the_platform_call_finder_finds_each_form():
    source = ("import fcntl\nimport msvcrt as m\nfrom ctypes import windll\nfrom os import pread\n"
              "import ctypes, os\nctypes.windll.kernel32\nos.set_blocking(0, True)\n"
              "flags = getattr(os, 'O_NOFOLLOW', 0)\nhasattr(os, 'O_NONBLOCK')\n"
              "# os.pread in a comment, and 'os.pread' in a string, are no calls\nx = 'os.pread'\n"
              "os.replace(a, b)\nPath(p).unlink()\nq.symlink_to(t)\nplatform.unlink(p)\nfrom os import link\n"
              "os.open(d, os.O_DIRECTORY)\n")
    assert sorted(int(f.split(":")[0]) for f in platform_calls(ast.parse(source))) == [
        1, 2, 3, 4, 6, 7, 8, 9, 12, 13, 14, 16, 17]


def test_only_the_platform_layer_touches_os_specific_calls():
    modules = _modules()
    assert PLATFORM_MODULE in modules
    offenders = {name: found for name, path in sorted(modules.items()) if name != PLATFORM_MODULE
                 for found in [platform_calls(ast.parse(path.read_text(encoding="utf-8")))] if found}
    assert offenders == {}

"""Write profile fixes into the root Cargo.toml, touching nothing else.

tomlkit does the TOML-aware edit (values, keys in existing tables, dotted
keys, inline tables).  What tomlkit gets wrong for a person's file is
repaired around it:

* a UTF-8 BOM is removed before parsing and put back after;
* tomlkit writes bare LF on the lines it adds: every added or changed line
  gets the file's own line ending, and unchanged lines are copied from the
  original byte for byte (a line diff decides which is which);
* a new key takes the indentation of its neighbours; blank lines tomlkit
  invents around additions are dropped;
* a missing ``[profile.release]`` is inserted as text after the last
  ``[profile.*]`` table (or at the end), with a blank line around it.

Some valid files tomlkit cannot reproduce at all (bevy's root manifest: it
regroups ``[[example]]`` arrays interleaved with other tables).  For those,
and whenever tomlkit's result fails the proof, the edit is made on the text:
a value is replaced where it is written, a key is added as a new line after
its table's last key (or header), a missing table is inserted as above.

Every result is proven before it is written: it must parse with tomllib, all
data outside ``[profile]`` must be unchanged, and ``[profile]`` must equal the
old one plus exactly the intended edits.  Otherwise ConfigError (exit 2) and
the file is untouched.  Writes are atomic (symtool.fsutil).
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import stat
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from symtool.cargo.metadata import TomlFile, Workspace
from symtool.cargo.profiles import check_workspace, toml_key, toml_literal
from symtool.cargo.tomltext import newline_of, scan
from symtool.cargo.workspace import toml_loads
from symtool.errors import ConfigError
from symtool.fsutil import atomic_writer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BOM_BYTES = b"\xef\xbb\xbf"
Edit = tuple[tuple[str, ...], str]  # (keypath from the document root, new string value)


def _decode(original: bytes, path: Path) -> tuple[bool, str]:
    bom = original.startswith(BOM_BYTES)
    try:
        return bom, original[len(BOM_BYTES) if bom else 0:].decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 ({err.reason} at byte {err.start})", path) from None


def _loads(text: str, path: Path) -> dict[str, Any]:
    try:
        return toml_loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", path) from None


def _is_table(obj: Any) -> bool:
    return hasattr(obj, "keys") and hasattr(obj, "__setitem__")


def _implicit_table(container: Any) -> bool:
    """A tomlkit table with no header of its own: a super table, or the proxy tomlkit makes
    for a table split across the file (when the header does exist, the proof rejects the
    duplicate and the text edit takes over)."""
    is_super = getattr(container, "is_super_table", None)
    return is_super() if callable(is_super) else type(container).__name__ == "OutOfOrderTableProxy"


def _sibling_indent(container: Any) -> str:
    """Indentation of the last plain key in a tomlkit table ("" when none or not applicable)."""
    body = getattr(getattr(container, "value", None), "body", None)
    if not isinstance(body, list):
        return ""
    indent = ""
    for key, item in body:
        if key is None or _is_table(item):
            continue
        trivia = getattr(item, "trivia", None)
        if trivia is not None and getattr(key, "is_dotted", lambda: False)() is False:
            indent = trivia.indent
    return indent if indent.strip(" \t") == "" else ""


def _set(container: Any, key: str, value: str) -> None:
    import tomlkit

    if key in container:
        container[key] = value  # tomlkit keeps the old item's indent and trailing comment
        return
    item = tomlkit.item(value)
    indent = _sibling_indent(container)
    if indent and type(container).__name__ == "Table":
        item.trivia.indent = indent
    body = getattr(getattr(container, "value", None), "body", None)
    if type(container).__name__ == "Table" and isinstance(body, list):
        # tomlkit appends after trailing comments, which belong to whatever follows:
        # put the new key right after the last key instead.
        last = max((i for i, (k, v) in enumerate(body) if k is not None and not _is_table(v)), default=-1)
        if last >= 0 and any(k is None and type(v).__name__ == "Comment" for k, v in body[last + 1:]):
            container.value._insert_after(body[last][0], key, item)
            return
    container[key] = item


def _merge_lines(old: str, new: str, nl: str, path: Path) -> str:
    """``new`` with every line it shares with ``old`` copied from ``old`` and added lines in ``nl``."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    out: list[str] = []

    def ending(line: str) -> str:
        body = line.rstrip("\r\n")
        return body + nl if len(body) != len(line) else body

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out += a[i1:i2]
        elif tag == "delete":
            raise ConfigError("cannot edit safely: tomlkit would drop lines", path)
        elif tag == "insert":
            out += [ending(line) for line in b[j1:j2] if line.strip()]
        else:  # replace: lines that only differ by their ending keep the original bytes
            for k, line in enumerate(b[j1:j2]):
                if i1 + k < i2 and a[i1 + k].rstrip("\r\n") == line.rstrip("\r\n"):
                    out.append(a[i1 + k])
                else:
                    out.append(ending(line))
    return "".join(out)


def _insert_table(text: str, profile: str, keys: dict[str, str], nl: str) -> str:
    """Add ``[profile.<profile>]`` where a person would: after the last [profile.*] table, else at the end."""
    lines = text.splitlines(keepends=True)
    headers = [e for e in scan(text) if e.kind in ("table", "array")]
    profile_headers = [h for h in headers if h.path[:1] == ("profile",)]
    at = len(lines)
    if profile_headers:
        last = profile_headers[-1]
        following = [h for h in headers if h.start > last.start and h.path[:1] != ("profile",)]
        if following:
            at = following[0].line - 1
            floor = last.line  # never move above the last profile header's own line
            while at - 1 >= floor and lines[at - 1].lstrip().startswith("#"):
                at -= 1  # a comment right above the next header belongs to it
            while at - 1 >= floor and not lines[at - 1].strip():
                at -= 1
    block = [f"[profile.{toml_key(profile)}]{nl}"] + [f"{toml_key(k)} = {toml_literal(v)}{nl}" for k, v in keys.items()]
    if at > 0:
        if not lines[at - 1].endswith("\n"):
            lines[at - 1] += nl  # the old last line had no line ending
        if lines[at - 1].strip():
            block.insert(0, nl)
    if at < len(lines) and lines[at].strip():
        block.append(nl)
    return "".join(lines[:at] + block + lines[at:])


def _canon(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _canon(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_canon(v) for v in data]
    if isinstance(data, float) and math.isnan(data):
        return "nan"
    return data


def _expected(before: dict[str, Any], edits: list[Edit]) -> Any:
    profile = copy.deepcopy(before.get("profile", {}))
    for keypath, value in edits:
        table = {"profile": profile}
        for part in keypath[:-1]:
            table = table.setdefault(part, {})
        table[keypath[-1]] = value
    return profile


def _edit_with_tomlkit(text: str, edits: list[Edit], nl: str, path: Path) -> str:
    """The edit done by tomlkit, with the original bytes of every line it did not mean to change."""
    try:
        import tomlkit

        doc = tomlkit.parse(text)
        if doc.as_string() != text:
            # e.g. [[example]] arrays interleaved with other tables (bevy): tomlkit regroups them
            raise ConfigError("cannot edit safely: tomlkit cannot reproduce this file", path)
        new_tables: dict[str, dict[str, str]] = {}
        for keypath, value in edits:
            container: Any = doc
            missing_at = None
            for depth, part in enumerate(keypath[:-1]):
                if _is_table(container) and part in container and _is_table(container[part]):
                    container = container[part]
                else:
                    missing_at = depth
                    break
            if missing_at is None and len(keypath) == 3 and _implicit_table(container):
                # [profile.release] exists only as the parent of [profile.release.package.x]:
                # tomlkit would write its header wherever it pleases; a person puts it after the profiles
                new_tables.setdefault(keypath[1], {})[keypath[2]] = value
            elif missing_at is None:
                _set(container, keypath[-1], value)
            elif len(keypath) == 3 and missing_at == 1 or (len(keypath) == 3 and missing_at == 0 and "profile" not in doc):
                new_tables.setdefault(keypath[1], {})[keypath[2]] = value
            else:
                raise ConfigError(f"cannot edit safely: [{'.'.join(keypath[:-1])}] does not exist", path)
        rendered = doc.as_string()
    except ConfigError:
        raise
    except Exception as err:  # tomlkit has its own exception zoo, and bugs: fail cleanly
        raise ConfigError(f"cannot edit safely: tomlkit: {type(err).__name__}: {err}", path) from None
    result = _merge_lines(text, rendered, nl, path)
    for profile, keys in new_tables.items():
        result = _insert_table(result, profile, keys, nl)
    return result


def _line_end(text: str, offset: int) -> int:
    """Offset just after the line ending of the line holding ``offset`` (len(text) on the last line)."""
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _new_line(text: str, at: int, line: str, nl: str) -> str:
    """``text`` with ``line`` (no ending) inserted as a line of its own at line boundary ``at``."""
    before = text[:at]
    if before and not before.endswith("\n"):
        before += nl  # the old last line had no line ending
    return before + line + nl + text[at:]


def _edit_one_as_text(text: str, keypath: tuple[str, ...], value: str, nl: str, path: Path) -> str:
    entries = scan(text)
    literal = toml_literal(value)
    for entry in entries:
        if entry.kind == "key" and entry.path == keypath and entry.value >= 0:
            end = entry.value + len(text[entry.value:entry.end].rstrip(" \t"))  # spaces before a comment stay
            return text[:entry.value] + literal + text[end:]
    table, key = keypath[:-1], keypath[-1]
    headers = [e for e in entries if e.kind in ("table", "array")]
    siblings = [e for e in entries if e.kind == "key" and e.path[:-1] == table]
    if siblings:
        last = siblings[-1]
        if last.inline:  # the table is an inline table: add the key before its closing brace
            return text[:last.end] + f", {toml_key(key)} = {literal}" + text[last.end:]
        header = next((h.path for h in reversed(headers) if h.start < last.start), ())
        if last.path[:len(header)] != header:
            raise ConfigError(f"cannot edit safely: cannot tell where [{'.'.join(table)}] is written", path)
        written = ".".join(toml_key(p) for p in (*last.path[len(header):-1], key))
        line_start = _line_start(text, last.start)
        indent = text[line_start:last.start]
        indent = indent if indent.strip(" \t") == "" else ""
        return _new_line(text, _line_end(text, last.end), f"{indent}{written} = {literal}", nl)
    header = next((h for h in headers if h.kind == "table" and h.path == table), None)
    if header is not None:
        return _new_line(text, _line_end(text, header.end), f"{toml_key(key)} = {literal}", nl)
    if len(keypath) == 3:
        return _insert_table(text, keypath[1], {key: value}, nl)
    raise ConfigError(f"cannot edit safely: [{'.'.join(table)}] does not exist", path)


def _edit_as_text(text: str, edits: list[Edit], nl: str, path: Path) -> str:
    """The edit done on the text: a value replaced in place, or a line (or a table) inserted.

    For files tomlkit cannot reproduce.  Every byte not in the replaced value
    or the inserted lines stays; the proof in :func:`apply_edits` decides
    whether the result is right.
    """
    for keypath, value in edits:
        text = _edit_one_as_text(text, keypath, value, nl, path)
    return text


def _prove(before: dict[str, Any], result: str, edits: list[Edit], path: Path) -> None:
    after = _loads_checked(result, path)
    rest_before = {k: v for k, v in before.items() if k != "profile"}
    rest_after = {k: v for k, v in after.items() if k != "profile"}
    if _canon(rest_before) != _canon(rest_after):
        raise ConfigError("cannot edit safely: the edit would change data outside [profile]", path)
    if _canon(after.get("profile", {})) != _canon(_expected(before, edits)):
        raise ConfigError("cannot edit safely: the edit would change [profile] in unintended ways", path)


def apply_edits(original: bytes, edits: list[Edit], path: Path) -> bytes:
    """The bytes of ``original`` with ``edits`` applied; ConfigError if that cannot be done exactly.

    tomlkit edits first (it knows dotted keys, inline tables, neighbours'
    layout); where it cannot reproduce the file or its result fails the proof,
    the lines are edited as text.
    """
    bom, text = _decode(original, path)
    before = _loads(text, path)
    if not edits:
        return original
    for keypath, _ in edits:
        if keypath[0] != "profile" or len(keypath) < 3:
            raise ConfigError(f"refusing to edit {'.'.join(keypath)} (only [profile] is edited)", path)
    nl = newline_of(text)
    failures: list[ConfigError] = []
    for editor in (_edit_with_tomlkit, _edit_as_text):
        try:
            result = editor(text, edits, nl, path)
            _prove(before, result, edits, path)
        except ConfigError as err:
            failures.append(err)
            continue
        return (BOM_BYTES if bom else b"") + result.encode("utf-8")
    raise failures[-1]


def _loads_checked(text: str, path: Path) -> dict[str, Any]:
    try:
        return toml_loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"cannot edit safely: the edited file would not be valid TOML ({err})", path) from None


def write_manifest(path: Path, original: bytes, new: bytes) -> None:
    """Atomically replace ``path`` (its target, for a symlink) with ``new``, keeping its permissions."""
    path = Path(path).resolve()
    st = os.stat(path)
    if not st.st_mode & stat.S_IWUSR:
        raise ConfigError("file is read-only; not changed", path)
    if path.read_bytes() != original:
        raise ConfigError("file changed while it was being fixed; not changed", path)
    with atomic_writer(path, "wb") as f:  # keeps the manifest's mode, as cp would
        f.write(new)


def unified_diff(path: Path, old: bytes, new: bytes, shown: str | None = None) -> str:
    """The change as a unified diff whose headers name the file (``shown``, else ``path``), as ruff's do."""
    _, a = _decode(old, path)
    _, b = _decode(new, path)
    name = shown if shown is not None else str(path)
    out = []
    for line in difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                     fromfile=name, tofile=name):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def _holds(data: dict[str, Any], keypath: tuple[str, ...], value: str) -> bool:
    """Whether the parsed manifest ``data`` already has ``value`` at ``keypath``."""
    for part in keypath[:-1]:
        data = data.get(part) if isinstance(data, dict) else None
    return isinstance(data, dict) and data.get(keypath[-1]) == value


@dataclass
class FixOutcome:
    path: Path
    original: bytes
    new: bytes
    applied: list[Edit] = field(default_factory=list)
    result: Any = None  # the CheckResult after the fix

    @property
    def changed(self) -> bool:
        return self.new != self.original


def plan_fix(workspace: Workspace, env: Mapping[str, str], profiles: list[str] | None = None,
             targets: Sequence[str] | str | None = None, cargo_version: tuple[int, int] | None = None,
             host: str | None = None, max_rounds: int = 6, packages: Sequence[str] | None = None) -> FixOutcome:
    """Compute the fixed root manifest (nothing is written).

    Debug levels are fixed first: raising ``debug`` also ends cargo's implicit
    ``strip = "debuginfo"``, so no needless ``strip = "none"`` gets written.
    Values set in the environment, config files or rustflags are left alone
    (their findings remain and name that source).
    """
    path = workspace.root.path
    original = path.read_bytes()
    current = original
    applied: list[Edit] = []
    in_place: set[tuple[str, ...]] = set()
    ws = workspace
    result = None
    for _ in range(max_rounds):
        result = check_workspace(ws, env, profiles, targets, cargo_version, host, packages)
        host = host or result.targets[-1]  # rustc is asked for the host once
        done = {k for k, _ in applied} | in_place
        pending: dict[tuple[str, ...], str] = {}
        for report in result.profiles:
            for finding in report.findings:
                if finding.edit and finding.edit[0] not in done:
                    pending.setdefault(finding.edit[0], finding.edit[1])
        # An edit the file already holds changes nothing: never applied, never reported as fixed.
        _, text = _decode(current, path)
        data = _loads(text, path)
        for keypath in [k for k, v in pending.items() if _holds(data, k, v)]:
            in_place.add(keypath)
            del pending[keypath]
        if not pending:
            break
        batch = [(k, v) for k, v in pending.items() if k[-1] == "debug"] or list(pending.items())
        current = apply_edits(current, batch, path)
        applied += batch
        _, text = _decode(current, path)
        ws = replace(ws, root=TomlFile.from_text(path, text, _loads(text, path)))
    else:
        result = check_workspace(ws, env, profiles, targets, cargo_version, host, packages)
    return FixOutcome(path, original, current, applied, result)

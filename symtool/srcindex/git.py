"""What indexing needs to know about a git checkout, from the ``git`` CLI.

Raw-file URLs are built from the remote URL and the commit of ``HEAD``; a
file is served from there only when it is tracked, unmodified, and ``HEAD``
is on a remote branch (otherwise the forge would not have that commit).
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from symtool.errors import ConfigError


def _git(root: Path, *args: str, input: bytes | None = None) -> bytes | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], input=input, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


@dataclass
class GitCheckout:
    root: Path
    head: str
    remote_url: str | None
    on_remote_branch: bool
    tracked: set[str] = field(default_factory=set)  # '/'-separated, relative to root
    modified: set[str] = field(default_factory=set)  # modified, added, untracked (porcelain)

    def blob(self, rel: str) -> bytes | None:
        """The committed content of ``rel`` at HEAD (what a raw-file URL serves)."""
        return _git(self.root, "cat-file", "blob", f"{self.head}:{rel}")


def open_checkout(directory: Path) -> GitCheckout | None:
    """The checkout containing ``directory``; None outside git (or without git)."""
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    root = Path(top.decode("utf-8", "replace").strip())
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return None  # no commit yet
    remotes = (_git(root, "remote") or b"").decode().split()
    remote = "origin" if "origin" in remotes else (remotes[0] if remotes else None)
    url = None
    if remote:
        raw = _git(root, "remote", "get-url", remote)
        url = raw.decode("utf-8", "replace").strip() if raw else None
    contains = _git(root, "branch", "-r", "--contains", "HEAD") or b""
    tracked = set((_git(root, "ls-files", "-z") or b"").decode("utf-8", "replace").split("\0")) - {""}
    modified = set()
    status = (_git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all") or b"").decode("utf-8", "replace")
    entries = status.split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        if len(e) > 3:
            modified.add(e[3:])
            if e[0] in "RC":
                i += 1  # the rename's source follows
        i += 1
    return GitCheckout(root, head.decode().strip(), url, bool(contains.strip()), tracked, modified)


_SCP = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")


def parse_remote(url: str) -> tuple[str, str] | None:
    """(host, owner/repo path without .git) of a remote URL, or None."""
    m = re.match(r"^(?:https?|ssh|git)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+)$", url)
    if not m:
        m = _SCP.match(url)
    if not m:
        return None
    path = m.group(2).strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return m.group(1).lower(), path


FORGES = ("github", "gitlab", "template")


def raw_url(remote: str, commit: str, rel: str, *, forge: str | None = None, template: str | None = None) -> str | None:
    """The raw-file URL of ``rel`` at ``commit`` in the repository at ``remote``.

    ``forge`` picks the URL scheme (github, gitlab, template); by default it
    is guessed from the host.  ``template`` uses ``{host}``, ``{repo}``
    (owner/name), ``{commit}`` and ``{path}``.
    """
    from urllib.parse import quote

    parsed = parse_remote(remote)
    if parsed is None and not template:
        return None
    host, repo = parsed if parsed else ("", "")
    path = quote(rel, safe="/-._~!$&'()+,;=@")
    if template:
        try:
            return template.format(host=host, repo=repo, commit=commit, path=path)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"invalid source URL template {template!r}: {err}") from None
    if forge is None:
        forge = "github" if host == "github.com" else "gitlab" if "gitlab" in host else None
    if forge == "github":
        if host != "github.com":
            return f"https://{host}/{repo}/raw/{commit}/{path}"
        return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
    if forge == "gitlab":
        return f"https://{host}/{repo}/-/raw/{commit}/{path}"
    return None


def relative_to(root: Path, path: str) -> str | None:
    """``path`` relative to ``root`` with '/' separators (case-insensitive on Windows-style paths)."""
    # posixpath, whatever the host: on Windows os.path is ntpath, whose normpath turns the '/'
    # back into '\\' and the prefix test below never matched (issue 21, item 4).
    p = posixpath.normpath(path.replace("\\", "/"))
    r = posixpath.normpath(str(root).replace("\\", "/"))
    if p == r:
        return None
    if p.startswith(r + "/"):
        return p[len(r) + 1:]
    if p.lower().startswith(r.lower() + "/") and (len(r) > 1 and r[1] == ":"):
        return p[len(r) + 1:]
    return None

"""Shared test fixtures.

* ``fixtures_dir`` — ``tests/fixtures`` (real files made by Microsoft's and others'
  tools, with their provenance and licences in tests/fixtures/README.md).
* ``need_tool(name)`` — skip when an external tool is missing; under ``CI=true``
  a missing tool is a *failure*, never a skip.
* ``sample_build`` — the sample workspace built once per session for
  x86_64-pc-windows-msvc with real cargo + rust-lld (release and dist profiles).

Under ``CI=true`` any skipped test fails the run unless its reason starts with
``optional:`` (e.g. pdbparse, which does not install on every Python): tests/ci_skips.py.

The suite runs under pytest-xdist (``.ci/run``: ``-n logical --dist loadfile``); what
keeps a test worker-safe is in tests/README.md:

* ``symtool_in_process(*args, env=, cwd=, input=)`` (tests/cli_runner.py): ``symtool
  ARGS`` in-process with a subprocess's result; a real process only where the test
  is about the process (signals, rlimits, start-up, encoding).
* ``run_once(tmp_path_factory, name, make)`` (tests/run_once.py): a session build
  made once per run under a lock and shared read-only by every worker.
* ``free_port`` — a free TCP port on 127.0.0.1 for a server a test starts; servers
  (nginx, SeaweedFS, Azurite) and Wine prefixes are per worker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from run_once import run_once

# Session fixtures of real Linux and macOS builds of samples/ (linux_builds, mac_builds); CI=true's
# skips-are-failures rule (tests/ci_skips.py); pytester, for tests of those plugins.
pytest_plugins = ["native_builds", "ci_skips", "pytester"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
FIXTURES_DIR = ROOT / "tests" / "fixtures"
# The symbol cache (symtool.store.symcache) is keyed by identity: tests that rebuild or mutate
# a file keeping its build id / GUID would be answered from another test's cache, and runs
# would fill the user's own cache.  It is off for the suite; tests/test_symcache.py turns it
# on with a cache directory of its own (SYMTOOL_SYMBOL_CACHE=on runs the suite through the cache).
os.environ.setdefault("SYMTOOL_SYMBOL_CACHE", "off")
TRIPLE = "x86_64-pc-windows-msvc"


def in_ci() -> bool:
    """CI=true, as tests/ci_skips.py reads it (imported late: it is a plugin, pytest loads it first)."""
    from ci_skips import IN_CI

    return IN_CI


ON_WINDOWS = sys.platform == "win32"

# Tools and fixtures only Linux has here (Debian packages, Wine, a Linux build): a test module that
# names one is marked `linux_tools` (pytest_collection_modifyitems), which the Windows workflow
# deselects and a Windows run skips.  Nowhere else: on Linux under CI=true a missing one fails.
LINUX_ONLY_TOOLS = frozenset({
    "wine", "winedbg", "gdb", "nginx", "debuginfod", "debuginfod-find", "cabextract", "gcab", "zsh", "fish", "bash",
    "gcc", "patch", "cp", "chromium", "lldb-19", "llvm-symbolizer-19", "c++filt", "weed", "dsymutil", "llvm-lipo",
})
LINUX_ONLY_FIXTURES = ("wine_cmd", "nginx", "linux_builds", "seaweedfs", "wine_stack")
# Modules that cannot even be imported on Windows (POSIX-only standard modules), or that simulate
# Windows on Linux (where the real thing runs, there is nothing to simulate).
_POSIX_ONLY_IMPORT = re.compile(r"^(?:import|from) (resource|fcntl|pty|termios|windows_personality|hostile_helpers)\b",
                                re.M)
_TOOL_CALL = re.compile(r"""need_tool\(\s*["']([^"']+)["']""")


def _tools_named(text: str) -> set[str]:
    return set(_TOOL_CALL.findall(text)) & LINUX_ONLY_TOOLS


_MODULE_FACTS: dict[Path, tuple[str | None, dict[str, set[str]]]] = {}


def _module_facts(path: Path) -> tuple[str | None, dict[str, set[str]]]:
    """(why the whole module needs Linux, or None; the Linux-only tools each function names,
    through the module's own helpers one call deep)."""
    import ast

    if path not in _MODULE_FACTS:
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, SyntaxError, ValueError):
            _MODULE_FACTS[path] = (None, {})
            return _MODULE_FACTS[path]
        imports = _POSIX_ONLY_IMPORT.findall(text)
        whole = "imports " + ", ".join(sorted(set(imports))) if imports else None
        functions = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        own = {name: _tools_named(ast.get_source_segment(text, node) or "") for name, node in functions.items()}
        tools = {}
        for name, node in functions.items():
            called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            tools[name] = own[name].union(*(own[c] for c in called if c in own and c != name))
        _MODULE_FACTS[path] = (whole, tools)
    return _MODULE_FACTS[path]


def linux_only_reason(item) -> str | None:
    """Why test ``item`` needs Linux (a tool, a fixture, an import), or None."""
    whole, tools = _module_facts(Path(str(item.fspath)))
    if whole:
        return whole
    function = getattr(item, "originalname", None) or item.name.split("[", 1)[0]
    # The test, the module's helpers it calls, and the module's fixtures it uses (however indirectly).
    needed = sorted(tools.get(function, set()).union(*(tools.get(f, set()) for f in getattr(item, "fixturenames", ()))))
    if needed:
        return "needs " + ", ".join(needed)
    fixtures = [f for f in LINUX_ONLY_FIXTURES if f in getattr(item, "fixturenames", ())]
    if fixtures:
        return "uses " + ", ".join(fixtures)
    return None


def pytest_ignore_collect(collection_path, config):
    # On Windows a module importing resource/fcntl fails before it could be marked: not collected.
    if ON_WINDOWS and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return bool(_POSIX_ONLY_IMPORT.search(collection_path.read_text(encoding="utf-8")))
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        reason = linux_only_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.linux_tools)
            if ON_WINDOWS:
                item.add_marker(pytest.mark.skip(reason=f"optional: Linux only ({reason})"))


def need_tool(name: str) -> str:
    """Return the path of an external tool, or skip (fail under CI)."""
    path = shutil.which(name)
    if path is None and ON_WINDOWS and name in LINUX_ONLY_TOOLS:
        pytest.skip(f"optional: {name} is a Linux-only tool here (mark the module: LINUX_ONLY_TOOLS)")
    if path is None:
        msg = f"needs `{name}` on PATH"
        if in_ci():
            pytest.fail(f"{msg} (CI must install it: see .ci/run)")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES_DIR


@dataclass
class SampleBuild:
    workspace: Path  # a private copy of samples/
    target_dir: Path  # CARGO_TARGET_DIR used for the build
    triple: str

    def out(self, profile: str = "release") -> Path:
        return self.target_dir / self.triple / profile

    def exe(self, name: str, profile: str = "release") -> Path:
        return self.out(profile) / f"{name}.exe"

    def pdb(self, name: str, profile: str = "release") -> Path:
        return self.out(profile) / f"{name.replace('-', '_')}.pdb"


@dataclass(frozen=True)
class SampleLayout:
    """What samples/ holds, as cargo itself reports it (cargo metadata): tests derive their
    expectations from this, so adding a crate to the samples does not rewrite them."""

    bins: tuple[str, ...]  # binary target names, sorted (crash-me, hello, ...)
    crates: tuple[str, ...]  # every target's crate name (dashes become underscores), sorted
    member_dirs: tuple[str, ...]  # member package dirs relative to samples/, in manifest order

    def exe_names(self) -> list[str]:
        return sorted(f"{b}.exe" for b in self.bins)

    def pdb_names(self) -> list[str]:
        return sorted(f"{b.replace('-', '_')}.pdb" for b in self.bins)

    def pairs(self) -> list[tuple[str, str]]:
        return sorted((f"{b}.exe", f"{b.replace('-', '_')}.pdb") for b in self.bins)


_SAMPLE_LAYOUT: SampleLayout | None = None


def sample_layout() -> SampleLayout:
    global _SAMPLE_LAYOUT
    if _SAMPLE_LAYOUT is None:
        need_tool("cargo")
        import json

        proc = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline",
                               "--manifest-path", str(SAMPLES / "Cargo.toml")],
                              capture_output=True, text=True, timeout=120, env=cargo_env(), check=True)
        meta = json.loads(proc.stdout)
        members = set(meta["workspace_members"])
        packages = [p for p in meta["packages"] if p["id"] in members]
        bins = sorted(t["name"] for p in packages for t in p["targets"] if "bin" in t["kind"])
        crates = sorted({t["name"].replace("-", "_") for p in packages for t in p["targets"]})
        dirs = tuple(str(Path(p["manifest_path"]).parent.relative_to(SAMPLES)) for p in packages)
        _SAMPLE_LAYOUT = SampleLayout(tuple(bins), tuple(crates), dirs)
    return _SAMPLE_LAYOUT


def cargo_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # Profile/rustflags overrides from the developer's shell would change the build.
    for key in list(env):
        if key.startswith("CARGO_PROFILE_") or key in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"):
            del env[key]
    env["RUSTC_BOOTSTRAP"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory) -> SampleBuild:
    """Built once per run, shared by every xdist worker (tests/run_once.py): read-only."""
    need_tool("cargo")

    def build(root: Path) -> None:
        ws = root / "ws"
        shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
        env = cargo_env(CARGO_TARGET_DIR=str(ws / "target"))
        for profile in ("release", "dist"):
            proc = subprocess.run(
                ["cargo", "build", "--profile", profile, "--target", TRIPLE],
                cwd=ws, env=env, capture_output=True, text=True, timeout=600,
            )
            if proc.returncode != 0:
                pytest.fail(f"sample build ({profile}) failed:\n{proc.stderr[-4000:]}")

    ws = run_once(tmp_path_factory, "samples", build) / "ws"
    return SampleBuild(ws, ws / "target", TRIPLE)


@dataclass
class WineCmd:
    """Wine's cmd.exe, a batch interpreter nobody here wrote, in a private prefix."""

    prefix: Path

    def env(self, **extra: str) -> dict[str, str]:
        # Wine hands the Unix environment to Windows programs: start from a
        # minimal one so nothing from the test run leaks into the batch file.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.prefix.parent),
               "WINEPREFIX": str(self.prefix), "WINEDEBUG": "-all", "LANG": "C.UTF-8"}
        env.update(extra)
        return env

    def run(self, script: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
        """``wine cmd /c SCRIPT ARGS``; the script is named by its Z: (Unix root) path."""
        return subprocess.run(["wine", "cmd", "/c", windows_path(script), *args], cwd=cwd or script.parent,
                              env=self.env(**env), capture_output=True, timeout=180, stdin=subprocess.DEVNULL)


def windows_path(path: Path) -> str:
    """The name Wine gives a Unix path: its Z: drive maps the Unix root."""
    return "Z:" + str(path).replace("/", "\\")


@pytest.fixture(scope="session")
def wine_cmd(tmp_path_factory) -> WineCmd:
    need_tool("wine")
    prefix = tmp_path_factory.mktemp("wine") / "prefix"
    runner = WineCmd(prefix)
    # The first start creates the prefix (several seconds); do it once per session.
    proc = subprocess.run(["wine", "cmd", "/c", "exit 0"], env=runner.env(), capture_output=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"wine cmd does not start: {proc.stderr.decode(errors='replace')[-2000:]}")
    return runner


@pytest.fixture(scope="session")
def nginx(tmp_path_factory, fixtures_dir):
    """A real nginx on 127.0.0.1 serving test symbol stores (see tests/nginx_server.py)."""
    from nginx_server import served_workdir, start_nginx

    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"
    binary = need_tool("nginx")
    server = start_nginx(served_workdir(), fixtures_dir / "symstore-exe" / "stores" / "pe_store", binary)
    yield server
    server.stop()


@pytest.fixture
def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (another worker may take it later: retry on EADDRINUSE)."""
    from nginx_server import free_port as pick

    return pick()


@pytest.fixture
def env(tmp_path):
    """A clean environment for symtool subprocesses: no symbol settings or proxies
    leak in from the machine, caches under tmp_path."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("SYMTOOL_", "_NT_")) and k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    e["HOME"] = str(tmp_path / "home")
    e["XDG_CACHE_HOME"] = str(tmp_path / "home" / ".cache")
    e["SYMTOOL_HTTP_RETRIES"] = "1"
    e["NO_COLOR"] = "1"
    return e


def _need_module(name: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(name) is None:
        msg = f"needs the Python package {name} (pip install -e '.[test]'; extra [{extra}])"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """SeaweedFS (`weed mini`) on 127.0.0.1 with an S3 API (see tests/objstore_servers.py)."""
    from objstore_servers import start_seaweedfs, weed_binary

    _need_module("boto3", "s3")
    binary = weed_binary() or need_tool("weed")
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"), binary)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite's blob service on 127.0.0.1 (see tests/objstore_servers.py)."""
    from objstore_servers import AZURITE_MAIN, start_azurite

    _need_module("azure.storage.blob", "azure")
    node = need_tool("node")
    if not AZURITE_MAIN.exists():
        msg = "needs azurite: npm ci --prefix tools/azurite"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    server = start_azurite(tmp_path_factory.mktemp("azurite"), node)
    yield server
    server.stop()


# -- the suite under the Windows personality (issue 21) -----------------------------------------------
#
# SYMTOOL_TEST_PERSONALITY=win312 (or win311) runs the tests of PERSONALITY_MODULES as Windows'
# CPython of that version would (tests/windows_personality.py); =win gives each test one of the two,
# by its name, so one extra pass covers both (.ci/run does that).  Per test and per process: it works
# under pytest-xdist.  Python child processes the test starts get it too (tests/personality_site).
PERSONALITY_ENV = "SYMTOOL_TEST_PERSONALITY"
PERSONALITY_MODULES = (
    "test_windows_personality", "test_publish", "test_fetch", "test_store_admin_cli", "test_store_modes",
    "test_store_lookup", "test_store_query", "test_store_safety", "test_ident_verify", "test_dumps", "test_srcindex",
    "test_check_cli", "test_check", "test_env_paths", "test_env_cli", "test_stack_x86", "test_fetch_dump",
)
_PERSONALITY_SITE = str(ROOT / "tests" / "personality_site")


def personality_semantics(nodeid: str) -> str | None:
    """The Windows semantics (3.11, 3.12) test ``nodeid`` runs under, or None (natively)."""
    wanted = os.environ.get(PERSONALITY_ENV, "")
    if not wanted:
        return None
    if wanted not in ("win", "win311", "win312"):
        raise pytest.UsageError(f"{PERSONALITY_ENV} takes win, win311 or win312, not {wanted!r}")
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    if module not in PERSONALITY_MODULES:
        return None
    if wanted == "win":
        import zlib

        return ("3.11", "3.12")[zlib.crc32(nodeid.encode()) % 2]
    return {"win311": "3.11", "win312": "3.12"}[wanted]


def _children_too(semantics: str, monkeypatch) -> None:
    """Every subprocess this test starts carries the personality (a Python one applies it at start-up)."""
    real_popen = subprocess.Popen

    class PersonalityPopen(real_popen):
        def __init__(self, args, *rest, **kwargs):
            env = dict(os.environ if kwargs.get("env") is None else kwargs["env"])
            env["WINDOWS_PERSONALITY"] = semantics
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_PERSONALITY_SITE, env.get("PYTHONPATH")) if p)
            kwargs["env"] = env
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", PersonalityPopen)


@pytest.fixture(autouse=True)
def _windows_personality_when_asked(request, monkeypatch):
    semantics = personality_semantics(request.node.nodeid)
    if semantics is not None:
        from windows_personality import windows_personality

        windows_personality(monkeypatch, semantics)
        _children_too(semantics, monkeypatch)
    yield


def pytest_report_header(config):
    wanted = os.environ.get(PERSONALITY_ENV)
    if wanted:
        return f"{PERSONALITY_ENV}={wanted}: {', '.join(PERSONALITY_MODULES)} run as Windows' CPython"

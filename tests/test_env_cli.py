"""`symtool env` end to end on the real sample build (tests/conftest.py: sample_build).

Expected elements are spelled out from the fixture's own paths; the toolchain
facts come from running rustc here (the oracle), not from symtool.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import symtool_in_process
from conftest import SAMPLES, TRIPLE, cargo_env, need_tool, sample_layout, windows_path

MS = "https://msdl.microsoft.com/download/symbols"
NAMES = ("_NT_SYMBOL_PATH", "_NT_SOURCE_PATH", "_NT_EXECUTABLE_IMAGE_PATH")
SCRUB = ("SYMTOOL_STORE", "SYMTOOL_CACHE", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "CARGO_BUILD_TARGET",
         "DEBUGINFOD_URLS", "RUSTC", "LOCALAPPDATA", *NAMES)  # what is already set is kept: start from none


# --------------------------------------------------------------------------- helpers

@pytest.fixture
def home(tmp_path):
    """A private cache dir and CARGO_HOME with one registry source dir and a git checkouts dir."""
    cargo_home = tmp_path / "cargo home"
    (cargo_home / "registry" / "src" / "index.crates.io-6f17d22bba15001f").mkdir(parents=True)
    (cargo_home / "git" / "checkouts").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), CARGO_HOME=str(cargo_home), SHELL="/bin/bash")
    return env


def symtool(args, env, cwd=None, entry="in-process"):
    """``symtool env ARGS``: in-process (tests/cli_runner.py), or ``entry="console"``: the console
    script's entry point in a real process (its fast path runs before typer is imported)."""
    if entry == "in-process":
        return symtool_in_process("env", *args, env=env, cwd=cwd, text=False, timeout=120)
    argv = [sys.executable, "-c", "from symtool.main import main; main()", "env", *args]
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=120)


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode("utf-8")


def toolchain():
    need_tool("rustc")
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, check=True).stdout.strip()
    vv = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    commit = re.search(r"^commit-hash: ([0-9a-f]{40})$", vv, re.M).group(1)
    return sysroot, commit


def copy_ws(sample_build, dest: Path) -> Path:
    """The built workspace, target dir included, at another path."""
    shutil.copytree(sample_build.workspace, dest, symlinks=True)
    return dest


def expected(ws: Path, env: dict, stores=(), cache=None, triple="x86_64-pc-windows-msvc"):
    out = ws / "target" / triple
    cache = cache or (env["XDG_CACHE_HOME"] + "/symtool")
    # every profile's standard dir and deps, built or not (samples builds only release and dist;
    # full-debug is samples' debug = 2 profile for real .dwp/.dSYM units)
    build = [str(out / p / sub) for p in ("release", "debug", "dist", "full-debug") for sub in ("", "deps")]
    build = [b.rstrip("/") for b in build]
    srv = [f"srv*{cache}*{s}" for s in stores] + [f"srv*{cache}*{MS}"]
    cargo_home = Path(env["CARGO_HOME"])
    sysroot, _ = toolchain()
    rust_src = Path(sysroot) / "lib" / "rustlib" / "src" / "rust"
    source = ["srv*", str(ws), *(str(ws / d) for d in sample_layout().member_dirs),
              str(cargo_home / "registry" / "src" / "index.crates.io-6f17d22bba15001f"),
              str(cargo_home / "git" / "checkouts")]
    if rust_src.is_dir():
        source.append(str(rust_src))
    return {"_NT_SYMBOL_PATH": ";".join(build + srv), "_NT_SOURCE_PATH": ";".join(source),
            "_NT_EXECUTABLE_IMAGE_PATH": ";".join(build + srv)}


READ_BACK = ('import json, os; print(json.dumps({k: os.environ.get(k) for k in '
             '("_NT_SYMBOL_PATH", "_NT_SOURCE_PATH", "_NT_EXECUTABLE_IMAGE_PATH", "DEBUGINFOD_URLS")}))')

SHELL_ARGV = {
    "bash": ["bash", "--norc", "--noprofile", "-c"],
    "zsh": ["zsh", "-f", "-c"],
    "fish": ["fish", "--no-config", "-c"],
}


def evaluate(shell: str, text: str, env: dict) -> dict:
    """Run the printed statements in a real shell and read the variables back."""
    need_tool(shell)
    reader = f"{sys.executable} -c '{READ_BACK}'\n"
    clean = {k: v for k, v in env.items() if k not in NAMES}
    proc = subprocess.run(SHELL_ARGV[shell] + [text + reader], capture_output=True, env=clean, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def decode_powershell(expr: str) -> str:
    """Evaluate the subset symtool emits: '...' literals ('' = ') and [char]0xNNNN joined by +."""
    units = []
    for token in re.findall(r"'(?:[^']|'')*'|\[char\]0x[0-9A-F]{4}|\+", expr):
        if token == "+":
            continue
        if token.startswith("'"):
            units.append(token[1:-1].replace("''", "'"))
        else:
            units.append(chr(int(token[8:], 16)))
    return "".join(units).encode("utf-16", "surrogatepass").decode("utf-16")


def parse_powershell(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\$env:(\w+) = (.*)", line)
        assert m, line
        out[m.group(1)] = decode_powershell(m.group(2))
    return out


READ_BACK_NAMES = ("_NT_SYMBOL_PATH", "_NT_SOURCE_PATH", "_NT_EXECUTABLE_IMAGE_PATH", "DEBUGINFOD_URLS")


def evaluate_cmd(wine_cmd, text: str, workdir: Path) -> dict:
    """Run the printed batch text in Wine's cmd.exe and read the variables back.

    The batch file ends by writing each variable with ``set NAME`` into a file;
    cmd writes it in the console's ANSI code page, CRLF-terminated.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    script, out = workdir / "symtool-env.cmd", workdir / "vars.txt"
    reader = "".join(f"@if defined {n} set {n}>>{windows_path(out)}\r\n" for n in READ_BACK_NAMES)
    script.write_bytes((text + reader).encode("utf-8"))
    proc = wine_cmd.run(script)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    got = {}
    if out.exists():
        for line in out.read_bytes().decode("cp1252").split("\r\n"):
            name, sep, value = line.partition("=")
            if sep and name in READ_BACK_NAMES:
                got[name] = value
    return got


def read_shell(shell: str, text: str, env: dict, wine_cmd=None, workdir: Path | None = None) -> dict:
    if shell == "powershell":
        # No PowerShell runs on this machine (Debian has none); the decoder covers
        # the small subset symtool emits, and the subset is kept small on purpose.
        got = parse_powershell(text)
    elif shell == "cmd":
        got = evaluate_cmd(wine_cmd, text, workdir)
    else:
        got = evaluate(shell, text, env)
    return {k: v for k, v in got.items() if v is not None}


def with_config(ws: Path, body: str) -> None:
    manifest = ws / "Cargo.toml"
    manifest.write_text(manifest.read_text() + "\n[workspace.metadata.symtool]\n" + body)


# --------------------------------------------------------------------------- the sample workspace

@pytest.fixture
def shell_runner(request, tmp_path):
    """read_shell bound to this test: cmd text runs under Wine (started only when needed)."""
    def run(shell: str, text: str, env: dict) -> dict:
        wine = request.getfixturevalue("wine_cmd") if shell == "cmd" else None
        return read_shell(shell, text, env, wine, tmp_path / f"cmd-{len(text)}")
    return run


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell", "cmd"])
def test_sample_workspace_without_config(sample_build, home, shell, shell_runner):
    text = ok(symtool(["--shell", shell, str(sample_build.workspace)], home))
    assert shell_runner(shell, text, home) == expected(sample_build.workspace, home)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell", "cmd"])
def test_sample_workspace_with_config(sample_build, home, tmp_path, shell, shell_runner):
    ws = copy_ws(sample_build, tmp_path / "ws")
    with_config(ws, 'stores = ["/srv/team syms", "https://symbols.example.com/store"]\ncache = "symcache"\n')
    stores = ["/srv/team syms", "https://symbols.example.com/store"]
    text = ok(symtool(["--shell", shell], home, cwd=ws / "crates" / "crash-me"))
    want = expected(ws, home, stores=stores, cache=str(ws / "symcache"))
    # Non-Windows shells also get the URL stores for debuginfod clients.
    want["DEBUGINFOD_URLS"] = "https://symbols.example.com/store/debuginfod"  # the store's debuginfod view
    assert shell_runner(shell, text, home) == want


def test_environment_overrides_config(sample_build, home, tmp_path):
    ws = copy_ws(sample_build, tmp_path / "ws")
    with_config(ws, 'stores = ["/srv/team"]\ncache = "symcache"\n')
    env = dict(home, SYMTOOL_STORE="/mnt/a;/mnt/b", SYMTOOL_CACHE="/var/cache/sym",
               DEBUGINFOD_URLS="https://debuginfod.debian.net")
    data = json.loads(ok(symtool(["--json", str(ws)], env)))
    srv = [e for e in data["symbol_path"]["elements"] if e["kind"] in ("store", "microsoft")]
    assert [e["value"] for e in srv] == ["srv*/var/cache/sym*/mnt/a", "srv*/var/cache/sym*/mnt/b",
                                         f"srv*/var/cache/sym*{MS}"]
    assert [e["source"] for e in srv] == ["env:SYMTOOL_STORE", "env:SYMTOOL_STORE", "default"]
    assert data["cache"] == {"value": "/var/cache/sym", "source": "env:SYMTOOL_CACHE"}


def test_workspace_path_with_batch_metacharacters_under_wine_cmd(sample_build, home, tmp_path, shell_runner):
    # Everything cmd treats specially that a path can hold: %, &, ^, !, ', (, ), spaces.
    ws = copy_ws(sample_build, tmp_path / "a %PATH% & b" / "c ^ d ! (e) 'f'")
    with_config(ws, 'stores = ["https://symbols.example.com/store?x=%41"]\n')
    want = expected(ws, home, stores=["https://symbols.example.com/store?x=%41"])
    want["DEBUGINFOD_URLS"] = "https://symbols.example.com/store/debuginfod?x=%41"
    text = ok(symtool(["--shell", "cmd"], home, cwd=ws))
    assert shell_runner("cmd", text, home) == want


def test_workspace_path_with_space_quote_and_non_ascii(sample_build, home, tmp_path):
    ws = copy_ws(sample_build, tmp_path / "it's a ws" / "Zoë $HOME %x% & \"q\"")
    with_config(ws, 'stores = ["https://symbols.example.com/store"]\n')
    want = expected(ws, home, stores=["https://symbols.example.com/store"])
    want["DEBUGINFOD_URLS"] = "https://symbols.example.com/store/debuginfod"  # the store's debuginfod view
    for shell in ("bash", "zsh", "fish", "powershell"):
        text = ok(symtool(["--shell", shell], home, cwd=ws))
        assert read_shell(shell, text, home) == want, shell
    # cmd cannot carry a '"' (no Windows path holds one): refused, not mangled.
    proc = symtool(["--shell", "cmd"], home, cwd=ws)
    assert proc.returncode == 2 and b"double quote" in proc.stderr


def test_default_shell_from_SHELL(sample_build, home):
    text = ok(symtool([str(sample_build.workspace)], dict(home, SHELL="/usr/bin/fish")))
    assert text.startswith("set -gx _NT_SYMBOL_PATH ")
    text = ok(symtool([str(sample_build.workspace)], dict(home, SHELL="/usr/bin/zsh")))
    assert text.startswith("export _NT_SYMBOL_PATH=")


def test_unknown_SHELL_is_warned_about(sample_build, home):
    """Issue 26, item 14: `SHELL=/bin/tcsh symtool env` prints bash statements (they fail in tcsh):
    a warning says so and how to choose; POSIX shells read them as they are; -q and --shell silence it."""
    ws = str(sample_build.workspace)
    proc = symtool([ws], dict(home, SHELL="/bin/tcsh"))
    assert ok(proc).startswith("export _NT_SYMBOL_PATH=")
    warnings = [line for line in proc.stderr.decode().splitlines() if "SHELL" in line]
    assert warnings == ["warning: SHELL is /bin/tcsh, whose syntax symtool env does not write: printing bash "
                        "statements (choose with --shell powershell|cmd|bash|zsh|fish)"]
    for quiet in (["-q"], ["--shell", "bash"]):
        assert "SHELL" not in symtool([*quiet, ws], dict(home, SHELL="/bin/tcsh")).stderr.decode()
    assert "SHELL" not in symtool([ws], dict(home, SHELL="/bin/dash")).stderr.decode()


def test_json_elements_and_sources(sample_build, home):
    data = json.loads(ok(symtool(["--json", str(sample_build.workspace)], home)))
    want = expected(sample_build.workspace, home)
    for key, name in (("symbol_path", "_NT_SYMBOL_PATH"), ("source_path", "_NT_SOURCE_PATH"),
                      ("image_path", "_NT_EXECUTABLE_IMAGE_PATH")):
        assert data[key]["value"] == want[name]
        assert [e["value"] for e in data[key]["elements"]] == want[name].split(";")
    kinds = [e["kind"] for e in data["symbol_path"]["elements"]]
    assert kinds == ["build-dir"] * 8 + ["microsoft"]  # release, debug, dist, full-debug: each dir and deps/
    assert data["symbol_path"]["elements"][0]["source"] == "profile release (x86_64-pc-windows-msvc), target dir: default"
    assert data["source_path"]["elements"][1] == {"value": str(sample_build.workspace),
                                                  "source": str(sample_build.workspace / "Cargo.toml"),
                                                  "kind": "workspace"}
    sysroot, commit = toolchain()
    assert data["toolchain"]["sysroot"] == sysroot and data["toolchain"]["commit"] == commit
    rust_src_missing = not (Path(sysroot) / "lib" / "rustlib" / "src" / "rust").is_dir()
    assert any("rust-src is not installed" in w for w in data["warnings"]) == rust_src_missing


def test_the_users_own_symbol_path_is_kept_after_ours(sample_build, home):
    """Issue 26, item 2: `eval "$(symtool env)"` in a start-up file keeps the elements
    _NT_SYMBOL_PATH (and the other two) already held, after the team's and each once; --json
    says where they came from; evaluating it again changes nothing."""
    theirs = "srv*C:\\c*https://their.server/x"
    ws = str(sample_build.workspace)
    want = expected(sample_build.workspace, home)
    our_first = want["_NT_SYMBOL_PATH"].split(";")[0]
    env = dict(home, _NT_SYMBOL_PATH=f"{theirs};{our_first}", _NT_SOURCE_PATH="D:\\src",
               _NT_EXECUTABLE_IMAGE_PATH=theirs)
    got = evaluate("bash", ok(symtool([ws], env)), env)
    assert got["_NT_SYMBOL_PATH"] == f"{want['_NT_SYMBOL_PATH']};{theirs}"  # ours first; our element once
    assert got["_NT_SOURCE_PATH"] == f"{want['_NT_SOURCE_PATH']};D:\\src"
    assert got["_NT_EXECUTABLE_IMAGE_PATH"] == f"{want['_NT_EXECUTABLE_IMAGE_PATH']};{theirs}"
    data = json.loads(ok(symtool(["--json", ws], env)))
    assert data["symbol_path"]["elements"][-1] == {"value": theirs, "source": "env:_NT_SYMBOL_PATH",
                                                   "kind": "inherited"}
    # The start-up file runs again in a nested shell: the same values, nothing doubled.
    evaluated = dict(home, **{k: got[k] for k in NAMES})
    again = evaluate("bash", ok(symtool([ws], evaluated)), evaluated)
    assert {k: again[k] for k in NAMES} == {k: got[k] for k in NAMES}


def test_console_entry_and_typer_command_agree(sample_build, home, monkeypatch):
    fast = ok(symtool(["--json", str(sample_build.workspace)], home, entry="console"))
    assert json.loads(fast) == json.loads(ok(symtool(["--json", str(sample_build.workspace)], home)))
    from typer.testing import CliRunner

    from symtool.cli import app

    for key in list(os.environ):
        monkeypatch.delenv(key)
    result = CliRunner().invoke(app, ["env", "--json", str(sample_build.workspace)], env=home)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(fast)
    help_proc = symtool(["--help"], home, entry="console")
    assert help_proc.returncode == 0 and b"--debugger" in help_proc.stdout


def test_write_files(sample_build, home, tmp_path):
    out = tmp_path / "dbg"
    printed = ok(symtool(["--write", str(out), str(sample_build.workspace)], home))
    names = ["symbols.path", "sources.path", "images.path", "symtool.windbg"]
    assert printed.splitlines() == [str(out / n) for n in names]
    want = expected(sample_build.workspace, home)
    assert (out / "symbols.path").read_text(encoding="utf-8") == want["_NT_SYMBOL_PATH"] + "\n"
    assert (out / "sources.path").read_text(encoding="utf-8") == want["_NT_SOURCE_PATH"] + "\n"
    assert (out / "images.path").read_text(encoding="utf-8") == want["_NT_EXECUTABLE_IMAGE_PATH"] + "\n"
    script = (out / "symtool.windbg").read_text(encoding="utf-8").splitlines()
    commands = [line for line in script if not line.startswith("$$")]
    assert commands == [".sympath " + want["_NT_SYMBOL_PATH"], ".srcpath " + want["_NT_SOURCE_PATH"],
                        ".exepath " + want["_NT_EXECUTABLE_IMAGE_PATH"], ".reload /f", ".ecxr", "kb"]
    assert max(map(len, script)) <= 4096
    assert any("$><" in line for line in script if line.startswith("$$"))
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temp files left


def test_write_refuses_overlong_command_and_writes_nothing(sample_build, home, tmp_path):
    stores = ";".join(f"/srv/symbols/store-number-{i:03d}-" + "x" * 80 for i in range(40))
    out = tmp_path / "dbg"
    proc = symtool(["--write", str(out), str(sample_build.workspace)], dict(home, SYMTOOL_STORE=stores))
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "4096" in err and "symtool.windbg" in err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("bad", ["semi;colon", "star*dir"])
def test_workspace_path_with_separator_is_refused(sample_build, home, tmp_path, bad):
    ws = copy_ws(sample_build, tmp_path / bad / "ws")
    for args in ([], ["--write", str(tmp_path / "out")], ["--json"]):
        proc = symtool(args, home, cwd=ws)
        assert proc.returncode == 2, args
        err = proc.stderr.decode().strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert err.startswith(f"error: {ws / 'target'}")
        assert ("';'" if ";" in bad else "'*'") in err
        if "--json" in args:  # a --json command says why it failed on stdout too
            assert json.loads(proc.stdout)["error"]["exit_code"] == 2
        else:
            assert proc.stdout == b""
    assert not (tmp_path / "out").exists()


def test_store_with_separator_is_refused(sample_build, home):
    proc = symtool([str(sample_build.workspace)], dict(home, SYMTOOL_STORE="/srv/a*b"))
    assert proc.returncode == 2
    assert proc.stderr.decode().strip().startswith("error: /srv/a*b: store contains '*'")


def test_broken_manifest_and_bad_options(tmp_path, home):
    (tmp_path / "Cargo.toml").write_text("[workspace\nmembers = [")
    proc = symtool([str(tmp_path)], home)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "Cargo.toml") in err and "Traceback" not in err
    for args in (["--shell", "tcsh"], ["--debugger", "windbg"], ["--debugger", "gdb", "--json"],
                 [str(tmp_path / "missing")]):
        proc = symtool(args, home)
        assert proc.returncode == 2, args
        assert len(proc.stderr.decode().strip().splitlines()) == 1, args


def test_outside_any_workspace(tmp_path, home):
    proc = symtool(["--json", str(tmp_path)], home)
    data = json.loads(ok(proc))
    assert [e["kind"] for e in data["symbol_path"]["elements"]] == ["microsoft"]
    assert data["workspace_root"] is None


# --------------------------------------------------------------------------- gdb / lldb

def test_debugger_gdb_is_accepted_by_gdb(home, tmp_path):
    sysroot, commit = toolchain()
    text = ok(symtool(["--debugger", "gdb", str(tmp_path)], home))
    line = f"set substitute-path /rustc/{commit} {sysroot}/lib/rustlib/src/rust"
    assert text.splitlines() == [line]
    gdb = shutil.which("gdb")
    if gdb is None:
        pytest.skip("optional: gdb is not installed (the printed text was checked above)")
    script = tmp_path / "rust.gdb"
    script.write_text(text)
    proc = subprocess.run([gdb, "-nx", "-batch", "-x", str(script), "-ex", "show substitute-path"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"/rustc/{commit}" in proc.stdout and f"{sysroot}/lib/rustlib/src/rust" in proc.stdout


def test_debugger_lldb_and_debuginfod(home, tmp_path):
    sysroot, commit = toolchain()
    env = dict(home, SYMTOOL_STORE="https://symbols.example.com/store;/srv/local")
    text = ok(symtool(["--debugger", "lldb", str(tmp_path)], env))
    assert text.splitlines() == [
        f"settings set target.source-map /rustc/{commit} {sysroot}/lib/rustlib/src/rust",
        "settings set plugin.symbol-locator.debuginfod.server-urls https://symbols.example.com/store/debuginfod",
    ]
    gdb_text = ok(symtool(["--debugger", "gdb", str(tmp_path)], env))
    assert "set debuginfod urls https://symbols.example.com/store/debuginfod" in gdb_text.splitlines()


# --------------------------------------------------------------------------- a toolchain we control

FAKE_RUSTC = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  -vV) printf 'rustc 1.99.0 (abcdef012 2030-01-01)\\nbinary: rustc\\ncommit-hash: {commit}\\nhost: x86_64-unknown-linux-gnu\\n' ;;
  --print) printf '%s\\n' "{sysroot}" ;;
esac
"""


@pytest.fixture
def fake_toolchain(tmp_path):
    commit = "c0ffee" + "0" * 34
    sysroot = tmp_path / "tool chain"
    (sysroot / "lib" / "rustlib" / "src" / "rust" / "library").mkdir(parents=True)
    etc = sysroot / "lib" / "rustlib" / "etc"
    etc.mkdir(parents=True)
    for name in ("libcore.natvis", "liballoc.natvis"):
        (etc / name).write_text("<AutoVisualizer/>")
    (etc / "gdb_lookup.py").write_text("")
    rustc = sysroot / "bin" / "rustc"
    rustc.parent.mkdir()
    log = tmp_path / "rustc.log"
    rustc.write_text(FAKE_RUSTC.format(log=log, commit=commit, sysroot=sysroot))
    rustc.chmod(0o755)
    return {"sysroot": sysroot, "rustc": rustc, "log": log, "commit": commit}


def test_rust_src_natvis_and_toolchain_cache(sample_build, home, tmp_path, fake_toolchain):
    env = dict(home, RUSTC=str(fake_toolchain["rustc"]))
    out = tmp_path / "dbg"
    ok(symtool(["--write", str(out), str(sample_build.workspace)], env))
    src = str(fake_toolchain["sysroot"] / "lib" / "rustlib" / "src" / "rust")
    assert (out / "sources.path").read_text().rstrip("\n").split(";")[-1] == src
    etc = fake_toolchain["sysroot"] / "lib" / "rustlib" / "etc"
    script = (out / "symtool.windbg").read_text().splitlines()
    assert [line for line in script if line.startswith(".nvload")] == [
        f'.nvload "{etc / "liballoc.natvis"}"', f'.nvload "{etc / "libcore.natvis"}"']
    assert len(fake_toolchain["log"].read_text().splitlines()) == 2  # -vV and --print sysroot
    # Warm cache: rustc is not run again.
    data = json.loads(ok(symtool(["--json", str(sample_build.workspace)], env)))
    assert data["toolchain"]["commit"] == fake_toolchain["commit"]
    assert data["warnings"] == []
    assert len(fake_toolchain["log"].read_text().splitlines()) == 2
    # The toolchain changed on disk: asked again.
    os.utime(fake_toolchain["rustc"], ns=(1, 1))
    ok(symtool(["--json", str(sample_build.workspace)], env))
    assert len(fake_toolchain["log"].read_text().splitlines()) == 4


def test_pdb_built_by_another_rustc_warns(sample_build, home, tmp_path, fake_toolchain):
    ws = copy_ws(sample_build, tmp_path / "ws")
    other = "1234567890abcdef" * 2 + "01234567"
    # The path straddles the scanner's 1 MiB chunk boundary.
    blob = b"\0" * ((1 << 20) - 20) + f"\\rustc\\{other}\\library\\core\\src\\panicking.rs".encode() + b"\0" * 100
    pdb = sample_build.out("release").relative_to(sample_build.workspace)
    (ws / pdb / "other.pdb").write_bytes(blob)
    env = dict(home, RUSTC=str(fake_toolchain["rustc"]))
    proc = symtool([str(ws)], env)
    ok(proc)
    warnings = [line for line in proc.stderr.decode().splitlines() if "was built by rustc commit" in line]
    assert len(warnings) == 1
    assert other in warnings[0] and fake_toolchain["commit"] in warnings[0] and "other.pdb" in warnings[0]
    # Same commit as the toolchain: quiet. Cache keyed by size and mtime sees the change.
    (ws / pdb / "other.pdb").write_bytes(blob.replace(other.encode(), fake_toolchain["commit"].encode()))
    os.utime(ws / pdb / "other.pdb", ns=(5, 5))
    proc = symtool([str(ws)], env)
    assert b"was built by rustc commit" not in proc.stderr


def test_missing_rustc_warns_unless_quiet(sample_build, home):
    env = dict(home, RUSTC="/nonexistent/rustc")
    proc = symtool([str(sample_build.workspace)], env)
    assert "/nonexistent/rustc did not run" in proc.stderr.decode()
    assert ok(proc).startswith("export _NT_SYMBOL_PATH=")
    proc = symtool(["-q", str(sample_build.workspace)], env)
    assert proc.returncode == 0 and proc.stderr == b""


def test_shell_set_up_before_the_first_build_finds_its_pdbs(tmp_path, home):
    """eval "$(symtool env)" in a fresh checkout, then cargo build: the debugger paths set
    at start-up already hold the dirs the build writes (issue 11, item 11)."""
    need_tool("cargo")
    ws = tmp_path / "fresh"
    shutil.copytree(SAMPLES, ws, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    assert not (ws / "target").exists()
    paths = evaluate("bash", ok(symtool(["--shell", "bash"], home, cwd=ws)), home)
    symbol_dirs = paths["_NT_SYMBOL_PATH"].split(";")
    assert paths["_NT_EXECUTABLE_IMAGE_PATH"] == paths["_NT_SYMBOL_PATH"]
    out = ws / "target" / TRIPLE
    assert symbol_dirs[:4] == [str(out / "release"), str(out / "release" / "deps"),
                               str(out / "debug"), str(out / "debug" / "deps")]
    build_env = cargo_env(CARGO_HOME=home["CARGO_HOME"])
    build_env.pop("CARGO_TARGET_DIR", None)
    for args in (["cargo", "build"], ["cargo", "build", "--release"]):
        proc = subprocess.run(args, cwd=ws, env=build_env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    for pdb in ("crash_me.pdb", "hello.pdb"):
        for profile in ("debug", "release"):
            assert any((Path(d) / pdb).is_file() and Path(d).name == profile for d in symbol_dirs), (pdb, profile)
    # and the same shell start-up after the build gives the same paths
    assert evaluate("bash", ok(symtool(["--shell", "bash"], home, cwd=ws)), home) == paths

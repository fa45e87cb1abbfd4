"""symtool.debugger.paths: the path lists as a pure function of (platform, inputs).

Windows output is checked here on any host: the inputs are written out by
hand, and so are the expected elements.
"""

from __future__ import annotations

import pytest

from symtool.debugger import paths as P
from symtool.debugger.paths import BuildDir, Inputs
from symtool.debugger.windbg import MAX_COMMAND_CHARS, debugger_commands, render_files, windbg_script
from symtool.errors import ConfigError, UsageError
from symtool.settings import default_cache_dir

MS = "https://msdl.microsoft.com/download/symbols"
WS = r"C:\src\my app"
SYSROOT = r"C:\Users\Zoë\.rustup\toolchains\stable-x86_64-pc-windows-msvc"
COMMIT = "59807616e1fa2540724bfbac14d7976d7e4a3860"


def windows_inputs(**over) -> Inputs:
    base = dict(
        platform="win32",
        workspace_root=WS,
        manifest=WS + r"\Cargo.toml",
        members=[WS + r"\crates\core", WS + r"\crates\crash-me"],
        target_dir=WS + r"\target",
        build_dirs=[
            BuildDir(WS + r"\target\x86_64-pc-windows-msvc\release", "release", "x86_64-pc-windows-msvc", True),
            BuildDir(WS + r"\target\x86_64-pc-windows-msvc\dist", "dist", "x86_64-pc-windows-msvc", True),
            BuildDir(WS + r"\target\debug", "debug", None, False),
        ],
        cache=default_cache_dir("win32", {"LOCALAPPDATA": r"C:\Users\Zoë\AppData\Local"}),
        cargo_home=r"C:\Users\Zoë\.cargo",
        registry_src=[r"C:\Users\Zoë\.cargo\registry\src\index.crates.io-6f17d22bba15001f"],
        git_checkouts=r"C:\Users\Zoë\.cargo\git\checkouts",
        sysroot=SYSROOT,
        commit=COMMIT,
        rust_src_installed=True,
        natvis=[SYSROOT + r"\lib\rustlib\etc\liballoc.natvis", SYSROOT + r"\lib\rustlib\etc\libcore.natvis"],
    )
    base.update(over)
    return Inputs(**base)


def values(elements):
    return [e.value for e in elements]


def test_windows_symbol_path_without_config():
    result = P.compute(windows_inputs())
    cache = r"C:\Users\Zoë\AppData\Local\symtool\cache"
    assert values(result.symbol) == [
        r"C:\src\my app\target\x86_64-pc-windows-msvc\release",
        r"C:\src\my app\target\x86_64-pc-windows-msvc\release\deps",
        r"C:\src\my app\target\x86_64-pc-windows-msvc\dist",
        r"C:\src\my app\target\x86_64-pc-windows-msvc\dist\deps",
        r"C:\src\my app\target\debug",
        f"srv*{cache}*{MS}",
    ]
    assert [e.kind for e in result.symbol] == ["build-dir"] * 5 + ["microsoft"]
    assert result.value("symbol_path") == ";".join(values(result.symbol))
    # Minidumps hold no code: the image path lists the same build dirs and stores.
    assert values(result.image) == values(result.symbol)


def test_windows_symbol_path_with_stores():
    stores = [r"\\build01\Symbols", r"D:\team syms", "https://symbols.example.com/sym"]
    result = P.compute(windows_inputs(stores=stores, stores_source=WS + r"\Cargo.toml",
                                      cache=r"E:\symcache", cache_source="env:SYMTOOL_CACHE"))
    tail = values(result.symbol)[5:]
    assert tail == [
        r"srv*E:\symcache*\\build01\Symbols",
        r"srv*E:\symcache*D:\team syms",
        r"srv*E:\symcache*https://symbols.example.com/sym",
        rf"srv*E:\symcache*{MS}",
    ]
    assert [e.source for e in result.symbol[5:8]] == [WS + r"\Cargo.toml"] * 3
    assert result.symbol[-1].source == "default"


def test_windows_source_path():
    result = P.compute(windows_inputs())
    assert values(result.source) == [
        "srv*",
        r"C:\src\my app",
        r"C:\src\my app\crates\core",
        r"C:\src\my app\crates\crash-me",
        r"C:\Users\Zoë\.cargo\registry\src\index.crates.io-6f17d22bba15001f",
        r"C:\Users\Zoë\.cargo\git\checkouts",
        SYSROOT + r"\lib\rustlib\src\rust",
    ]
    assert [e.kind for e in result.source] == ["source-server", "workspace", "member", "member", "registry",
                                               "git", "rust-src"]
    assert result.warnings == []


def test_rust_src_listed_once_and_members_deduplicated():
    inp = windows_inputs(members=[WS + r"\crates\core", WS.upper() + r"\CRATES\CORE", WS])
    result = P.compute(inp)
    vals = values(result.source)
    assert vals.count(SYSROOT + r"\lib\rustlib\src\rust") == 1
    assert vals == ["srv*", WS, WS + r"\crates\core"] + vals[3:]
    assert not any("rustlib\\src\\rust\\" in v for v in vals)


def test_missing_rust_src_warns_and_is_not_listed():
    result = P.compute(windows_inputs(rust_src_installed=False))
    assert not any(e.kind == "rust-src" for e in result.source)
    assert len(result.warnings) == 1
    assert "rust-src is not installed" in result.warnings[0]
    assert "rustup component add rust-src" in result.warnings[0]


def test_commit_mismatch_warns_once_per_commit():
    other = "a" * 40
    pdbs = {WS + r"\target\x86_64-pc-windows-msvc\release\a.pdb": other,
            WS + r"\target\x86_64-pc-windows-msvc\release\b.pdb": other,
            WS + r"\target\x86_64-pc-windows-msvc\release\c.pdb": COMMIT}
    result = P.compute(windows_inputs(pdb_commits=pdbs))
    assert len(result.warnings) == 1
    w = result.warnings[0]
    assert other in w and COMMIT in w and "a.pdb" in w and "1 more" in w
    assert P.compute(windows_inputs(pdb_commits={"x.pdb": COMMIT})).warnings == []


def test_linux_paths_use_slashes():
    inp = Inputs(platform="linux", workspace_root="/home/me/ws", manifest="/home/me/ws/Cargo.toml",
                 build_dirs=[BuildDir("/home/me/ws/target/release", "release")],
                 cache=default_cache_dir("linux", {"HOME": "/home/me"}), sysroot="/opt/rust",
                 rust_src_installed=True)
    result = P.compute(inp)
    assert values(result.symbol) == ["/home/me/ws/target/release", "/home/me/ws/target/release/deps",
                                     f"srv*/home/me/.cache/symtool*{MS}"]
    assert values(result.source) == ["srv*", "/home/me/ws", "/opt/rust/lib/rustlib/src/rust"]


@pytest.mark.parametrize("field,value,named", [
    ("build_dirs", [BuildDir(r"C:\a;b\target\release", "release")], r"C:\a;b\target\release"),
    ("build_dirs", [BuildDir(r"C:\a*b\target\release", "release")], r"C:\a*b\target\release"),
    ("stores", [r"\\srv\sym;bols"], r"\\srv\sym;bols"),
    ("stores", ["https://x.example/a*b"], "https://x.example/a*b"),
    ("cache", r"C:\cache;x", r"C:\cache;x"),
    ("workspace_root", r"C:\w;s", r"C:\w;s"),
    ("members", [r"C:\w\c*"], r"C:\w\c*"),
    ("registry_src", ["C:\\r\nx"], "C:\\r\nx"),
])
def test_separator_characters_are_refused(field, value, named):
    with pytest.raises(ConfigError) as info:
        P.compute(windows_inputs(**{field: value}))
    assert info.value.path == named
    assert "cannot hold" in str(info.value)
    assert info.value.exit_code == 2


def test_srv_chain_rules():
    assert P.srv_chain([r"C:\c", r"\\s\x", "https://a.example/"]) == r"srv*C:\c*\\s\x*https://a.example/"
    with pytest.raises(ConfigError, match="at most one HTTP"):
        P.srv_chain([r"C:\c", "https://a.example/", "https://b.example/"])
    with pytest.raises(ConfigError, match="must come last"):
        P.srv_chain([r"C:\c", "https://a.example/", r"\\s\x"])
    with pytest.raises(ConfigError, match="at most 10"):
        P.srv_chain([rf"C:\s{i}" for i in range(11)])
    assert P.srv_chain([rf"C:\s{i}" for i in range(10)]).split("*")[1:] == [rf"C:\s{i}" for i in range(10)]


def test_store_given_as_chain_or_url_cache_is_refused():
    with pytest.raises(ConfigError, match="not a srv"):
        P.compute(windows_inputs(stores=[r"srv*C:\x*https://a.example/"]))
    with pytest.raises(ConfigError, match="not a URL"):
        P.compute(windows_inputs(cache="https://a.example/cache"))


def test_windbg_script_commands_and_limit():
    result = P.compute(windows_inputs())
    script = windbg_script(result)
    commands = [line for line in script.splitlines() if not line.startswith("$$")]
    assert commands == [
        ".sympath " + result.value("symbol_path"),
        ".srcpath " + result.value("source_path"),
        ".exepath " + result.value("image_path"),
        ".nvload " + SYSROOT + r"\lib\rustlib\etc\liballoc.natvis",
        ".nvload " + SYSROOT + r"\lib\rustlib\etc\libcore.natvis",
        ".reload /f",
        ".ecxr",
        "kb",
    ]
    comments = [line for line in script.splitlines() if line.startswith("$$")]
    assert any("$><" in c for c in comments)
    # '$$' comments end at a semicolon: none may hold one.
    assert not any(";" in c for c in comments)
    assert max(len(line) for line in script.splitlines()) <= MAX_COMMAND_CHARS
    files = render_files(result)
    assert files["symbols.path"] == result.value("symbol_path") + "\n"
    assert files["sources.path"] == result.value("source_path") + "\n"
    assert files["images.path"] == result.value("image_path") + "\n"


def test_windbg_script_refuses_overlong_command():
    many = [BuildDir(WS + "\\target\\" + f"p{i:03d}" + "x" * 60, f"p{i}") for i in range(40)]
    result = P.compute(windows_inputs(build_dirs=many))
    assert len(".sympath " + result.value("symbol_path")) > MAX_COMMAND_CHARS
    with pytest.raises(ConfigError, match="4096"):
        windbg_script(result)


def test_gdb_and_lldb_commands():
    inp = Inputs(platform="linux", sysroot="/home/me/.rustup/toolchains/stable x", commit=COMMIT,
                 stores=["/srv/syms", "https://debuginfod.example.com/"], debuginfod_urls="https://d.example/")
    gdb = debugger_commands(inp, "gdb").splitlines()
    assert gdb == [
        f'set substitute-path /rustc/{COMMIT} "/home/me/.rustup/toolchains/stable x/lib/rustlib/src/rust"',
        'set debuginfod urls "https://debuginfod.example.com/debuginfod https://d.example/"',
        "set debuginfod enabled on",
    ]
    lldb = debugger_commands(inp, "lldb").splitlines()
    assert lldb == [
        f'settings set target.source-map /rustc/{COMMIT} "/home/me/.rustup/toolchains/stable x/lib/rustlib/src/rust"',
        "settings set plugin.symbol-locator.debuginfod.server-urls https://debuginfod.example.com/debuginfod "
        "https://d.example/",
    ]
    plain = Inputs(platform="linux", sysroot="/opt/rust", commit=COMMIT, stores=["/srv/syms"])
    assert debugger_commands(plain, "gdb") == f"set substitute-path /rustc/{COMMIT} /opt/rust/lib/rustlib/src/rust\n"
    with pytest.raises(UsageError):
        debugger_commands(Inputs(platform="linux"), "gdb")


def test_json_shape():
    data = P.compute(windows_inputs()).as_json()
    for key in ("symbol_path", "source_path", "image_path"):
        assert set(data[key]) == {"value", "elements"}
        assert all(set(e) == {"value", "source", "kind"} for e in data[key]["elements"])
        assert data[key]["value"] == ";".join(e["value"] for e in data[key]["elements"])
    assert data["warnings"] == []

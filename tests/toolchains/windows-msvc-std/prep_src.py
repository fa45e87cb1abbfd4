"""Prepare std's sources and its crates.io dependencies for -Zbuild-std on Debian.

Debian's rust-src (1.63) has no Cargo.lock and std's manifests name crates Debian does
not ship, so a patched copy of library/ goes to OUT/rust-src, and std's crates.io
dependencies, copied from Debian's crate registry, go to OUT/vendor (a cargo directory
source).  Every edit is checked to have applied: a Debian update that changes a
manifest fails here, with the file named, rather than later inside cargo.

Usage: python3 prep_src.py OUT
"""

import json
import os
import re
import shutil
import sys

SRC = "/usr/lib/rustlib/src/rust/library"
REG = "/usr/share/cargo/registry"


class PrepError(Exception):
    pass


def main(out: str) -> None:
    lib = os.path.join(out, "rust-src", "library")
    vend = os.path.join(out, "vendor")
    for d in (os.path.join(out, "rust-src"), vend):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(SRC, lib, symlinks=True)

    def edit(path: str, fn) -> None:
        p = os.path.join(lib, path) if not os.path.isabs(path) else path
        with open(p) as f:
            before = f.read()
        after = fn(before)
        if after == before:
            raise PrepError(f"{p}: the edit did not apply (has Debian's package changed?)")
        with open(p, "w") as f:
            f.write(after)

    def drop_section(s: str, header: str) -> str:
        return re.compile(r"^\[" + re.escape(header) + r"\]\n(?:(?!\[).*\n?)*", re.M).sub("", s)

    def drop_line(s: str, regex: str) -> str:
        return re.sub(r"^" + regex + r".*\n", "", s, flags=re.M)

    # dev-dependencies (rand, ...) are not packaged and not needed
    for crate in ("core", "alloc", "std"):
        edit(f"{crate}/Cargo.toml", lambda s: drop_section(s, "dev-dependencies"))

    def std_fix(s: str) -> str:
        s = s.replace('compiler_builtins = { version = "0.1.73" }', 'compiler_builtins = { version = "0.1.70" }')
        for name in ("addr2line", "miniz_oxide", "profiler_builtins", "dlmalloc"):  # gimli symbolizer: not on Windows
            s = drop_line(s, name + r" = ")
        s = drop_section(s, "dependencies.object")
        s = re.sub(r"^\[target\.[^\n]*\]\n(?:(?!\[).*\n?)*", "", s, flags=re.M)  # sgx/hermit/wasi deps
        s = re.sub(r"backtrace = \[[^\]]*\]", "backtrace = []", s)
        return s.replace('profiler = ["profiler_builtins"]', "profiler = []")

    edit("std/Cargo.toml", std_fix)
    edit("test/Cargo.toml", lambda s: drop_line(s, "getopts = "))  # libtest is resolved, never built
    shutil.rmtree(os.path.join(lib, "profiler_builtins"))

    os.makedirs(vend)

    def vendor(d: str) -> str:
        src = os.path.join(REG, d)
        if not os.path.isdir(src):
            raise PrepError(f"{src}: missing (install the librust-*-dev package that ships it)")
        dst = os.path.join(vend, d)
        shutil.copytree(src, dst)
        return dst

    for d in ("compiler_builtins-0.1.70", "libc-0.2.139", "rustc-demangle-0.1.21", "cc-1.0.73"):
        vendor(d)

    # Debian dropped hashbrown's rustc-std-workspace-alloc dependency: restore it.
    h = vendor("hashbrown-0.12.3")

    def hashbrown_fix(s: str) -> str:
        s = s.replace("[dependencies.bumpalo]", '[dependencies.alloc]\nversion = "1.0.0"\noptional = true\n'
                      'package = "rustc-std-workspace-alloc"\n\n[dependencies.bumpalo]', 1)
        s = s.replace('    "compiler_builtins",\n    "rustc-internal-api",',
                      '    "compiler_builtins",\n    "alloc",\n    "rustc-internal-api",')
        return re.sub(r"^\[dev-dependencies[^\n]*\]\n(?:(?!\[).*\n?)*", "", s, flags=re.M)

    edit(os.path.join(h, "Cargo.toml"), hashbrown_fix)

    # std wants cfg-if 0.1 with rustc-dep-of-std; 1.0.0 has the same macro.
    c = os.path.join(vend, "cfg-if-0.1.10")
    shutil.copytree(os.path.join(REG, "cfg-if-1.0.0"), c)

    def cfg_if_fix(s: str) -> str:
        s = s.replace('version = "1.0.0"\nauthors', 'version = "0.1.10"\nauthors', 1)
        return s.replace("[features]\n", '[dependencies.compiler_builtins]\nversion = "0.1.2"\noptional = true\n\n'
                         '[features]\nrustc-dep-of-std = ["core", "compiler_builtins"]\n', 1)

    edit(os.path.join(c, "Cargo.toml"), cfg_if_fix)
    for d in os.listdir(vend):
        with open(os.path.join(vend, d, ".cargo-checksum.json"), "w") as f:
            json.dump({"package": None, "files": {}}, f)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except (PrepError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)

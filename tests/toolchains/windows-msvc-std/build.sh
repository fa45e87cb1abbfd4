#!/usr/bin/env bash
# Build the std crash corpus (tests/corpus/std-crashers) as genuine Rust std programs for
# x86_64-pc-windows-msvc, EXE + PDB, on Debian without MSVC; they run under Wine.
#
#   Debian's rustc/cargo 1.63 + rust-src with -Zbuild-std (RUSTC_BOOTSTRAP=1); std's
#   crates.io dependencies from Debian's crate registry (prep_src.py); lld-link against
#   import libraries made from Wine's own DLLs; crt.c + chkstk.S as msvcrt.lib.
#
# Usage: build.sh [--install]
#   --install  apt-get install what is missing first (.ci/run does this; through sudo when not root)
# The toolchain is prepared once per machine under the cache, keyed by the hash of these
# files; the corpus is built into the cache's target dir (cargo rebuilds what changed).
# The last line printed is the directory that holds the release EXEs and PDBs; the
# `relayout` profile's (the same programs at other addresses) are in ../relayout.
# Exit 3: a needed tool or package is missing (the message names it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CORPUS=$REPO/tests/corpus/std-crashers
TARGET=x86_64-pc-windows-msvc
WINEDLLS=${WINEDLLS:-/usr/lib/x86_64-linux-gnu/wine/x86_64-windows}
CACHE=${SYMTOOL_STD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/symtool-tests/windows-msvc-std}
PKGS="rustc cargo rust-src clang lld llvm wine wine64
 librust-compiler-builtins-dev librust-libc-dev librust-hashbrown-dev librust-cfg-if-dev
 librust-rustc-demangle-dev librust-cc-dev"

if [ "${1:-}" = "--install" ]; then
    missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing" ]; then
        as_root=; [ "$(id -u)" = 0 ] || as_root=sudo  # a developer's run of .ci/run, not as root
        $as_root apt-get update -qq
        # shellcheck disable=SC2086
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi
for tool in /usr/bin/rustc /usr/bin/cargo clang lld-link llvm-lib llvm-dlltool llvm-readobj python3 flock; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool (run $0 --install)" >&2; exit 3; }
done
/usr/bin/rustc -V | grep -q '^rustc 1\.63\.' || { echo "missing: Debian's rustc 1.63 at /usr/bin/rustc" >&2; exit 3; }
[ -d /usr/lib/rustlib/src/rust/library ] || { echo "missing: rust-src (Debian's package)" >&2; exit 3; }
[ -f "$WINEDLLS/kernel32.dll" ] || { echo "missing: Wine's PE DLLs in $WINEDLLS" >&2; exit 3; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9  # one builder at a time (parallel test workers, CI and a developer's shell)

# The toolchain's key: what goes into it (bump TOOLCHAIN_RECIPE when the steps below change).
TOOLCHAIN_RECIPE=1
KEY=$({ echo "$TOOLCHAIN_RECIPE"; cat "$HERE/prep_src.py" "$HERE/crt.c" "$HERE/chkstk.S"; } | sha256sum | cut -c1-16)
TC=$CACHE/toolchain-$KEY
if [ ! -f "$TC/complete" ]; then
    echo "== preparing the toolchain in $TC" >&2
    WORK=$(mktemp -d "$CACHE/toolchain.tmp.XXXXXX")
    python3 "$HERE/prep_src.py" "$WORK" >&2
    mkdir -p "$WORK/winlibs" "$WORK/crt"
    # Import libraries from Wine's PE DLLs: their export tables, as .def files, through llvm-dlltool.
    for dll in kernel32 ntdll advapi32 userenv ws2_32 bcrypt ucrtbase vcruntime140 dbghelp user32; do
        { echo "LIBRARY $dll.dll"; echo "EXPORTS"
          llvm-readobj --coff-exports "$WINEDLLS/$dll.dll" | sed -n 's/^  Name: \(..*\)$/  \1/p'; } > "$WORK/winlibs/$dll.def"
        llvm-dlltool -m i386:x86-64 -d "$WORK/winlibs/$dll.def" -l "$WORK/winlibs/$dll.lib"
    done
    CL="clang --target=$TARGET -O0 -g -gcodeview -c"
    $CL "$HERE/crt.c" -o "$WORK/crt/crt.obj"
    $CL "$HERE/chkstk.S" -o "$WORK/crt/chkstk.obj"
    echo > "$WORK/crt/empty.c"
    $CL "$WORK/crt/empty.c" -o "$WORK/crt/empty.obj"
    llvm-lib /out:"$WORK/winlibs/msvcrt.lib" "$WORK/crt/crt.obj" "$WORK/crt/chkstk.obj"  # the libc crate links msvcrt.lib
    llvm-lib /out:"$WORK/winlibs/legacy_stdio_definitions.lib" "$WORK/crt/empty.obj"  # std's target spec links it
    mkdir -p "$WORK/cargo-home"
    cat > "$WORK/cargo-home/config.toml" <<CONF
[source.crates-io]
replace-with = "debian-vendored"
[source.debian-vendored]
directory = "$TC/vendor"
[target.$TARGET]
linker = "lld-link"
rustflags = ["-C", "debuginfo=2", "-L", "native=$TC/winlibs", "-C", "link-arg=/PDBALTPATH:%_PDB%"]
CONF
    touch "$WORK/complete"
    rm -rf "$TC"
    mv "$WORK" "$TC"
fi

export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
       __CARGO_TESTS_ONLY_SRC_ROOT="$TC/rust-src" CARGO_HOME="$TC/cargo-home" CARGO_TARGET_DIR="$CACHE/target"
BUILD_STD=(-Zbuild-std=std,panic_abort -Zbuild-std-features=backtrace)
/usr/bin/cargo build -q --manifest-path "$CORPUS/Cargo.toml" --target $TARGET --release --bins "${BUILD_STD[@]}" >&2
/usr/bin/cargo build -q --manifest-path "$CORPUS/Cargo.toml" --target $TARGET --profile relayout \
    --bin unwrap_none --bin two_panics "${BUILD_STD[@]}" >&2
echo "$CACHE/target/$TARGET/release"

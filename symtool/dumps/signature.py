"""Crash signatures: the exception code plus the first meaningful frames of the crashing stack.

A frame is *not* meaningful when it only carries the crash outward: Rust's panic
and abort runtime, the OS's exception raisers, allocator failure paths.  Those
are listed once, here, in :data:`SKIP_FUNCTIONS` (prefixes of normalized names)
and :data:`SKIP_EXACT`; extend them (or pass ``skip=``) for a project's own
crash reporters.  Frames of OS modules with no symbols are skipped too: they
name no function, so two unrelated crashes would otherwise share them.

The panic or abort path is longer than any list: between the raise and the user's
code lie std and core frames that change with every Rust release
(``__rust_end_short_backtrace<…>``, ``const_eval_select<…>``) and the
``#[track_caller]`` helpers the user called (``Option::unwrap``, slice indexing).
So once a raise frame is seen, every std/core/alloc frame that follows it belongs to
the path too (:func:`runtime_prefix`), and the signature starts at the first frame
outside them: the user's.  The list was checked against the frames of the std crash
corpus (tests/corpus/std-crashers, rustc 1.63) and the Linux std programs (rustc 1.95).
"""

from __future__ import annotations

from symtool.dumps.stack import FrameRow, windbg_module_name

SIGNATURE_FRAMES = 3

# Prefixes of function names (demangled, as the PDB stores them) that only carry a crash outward.
SKIP_FUNCTIONS: tuple[str, ...] = (
    # Rust panic and abort runtime
    "core::panicking::", "std::panicking::", "std::process::abort", "std::sys::abort_internal",
    "std::sys::pal::windows::abort_internal", "std::sys::pal::windows::stack_overflow::",
    "panic_abort::", "panic_unwind::", "__rust_start_panic", "__rust_abort", "rust_panic",
    "rust_begin_unwind", "__rustc::", "core::option::unwrap_failed", "core::option::expect_failed",
    "core::result::unwrap_failed", "core::slice::index::slice_", "core::panic::",
    "std::rt::", "std::backtrace_rs::", "std::sys::backtrace::", "std::sys_common::backtrace::",
    "std::sys::windows::abort_internal", "std::sys::pal::unix::abort_internal", "std::sys::unix::abort_internal",
    # allocator failure paths
    "alloc::alloc::handle_alloc_error", "std::alloc::rust_oom", "std::alloc::default_alloc_error_hook",
    "__rg_oom", "__rdl_oom", "alloc::raw_vec::handle_error", "alloc::raw_vec::capacity_overflow",
    "alloc::raw_vec::finish_grow",
    # C runtime
    "abort", "_invoke_watson", "_invalid_parameter", "__report_gsfailure", "__fastfail", "_CxxThrowException",
    "__CxxFrameHandler", "raise",
)
# Exact names of OS exception raisers and dispatchers (any module).
SKIP_EXACT: frozenset[str] = frozenset({
    "RaiseException", "RaiseFailFastException", "RtlRaiseException", "KiUserExceptionDispatch",
    "KiUserExceptionDispatcher", "RtlDispatchException", "RtlUserThreadStart", "BaseThreadInitThunk",
    "UnhandledExceptionFilter", "RtlReportException", "WerpReportFault", "TerminateProcess",
    "NtTerminateProcess", "ZwRaiseException", "NtRaiseException",
    # C runtime entry points
    "mainCRTStartup", "wmainCRTStartup", "__scrt_common_main_seh", "invoke_main", "__libc_start_main",
    "__libc_start_call_main", "_start",
})


def is_runtime_frame(function: str | None, skip: tuple[str, ...] = SKIP_FUNCTIONS) -> bool:
    if not function:
        return False
    return function in SKIP_EXACT or function.startswith(skip)


# Namespaces of the Rust runtime: once the crash was raised, their frames only carry it outward.
RUNTIME_CRATES = ("std::", "core::", "alloc::", "panic_abort::", "panic_unwind::", "__rustc::", "<std::", "<core::", "<alloc::",
                  "<&", "<[", "<str")
# Where std's sources are: a frame with no crate path (an inline helper) is std's by its file.
_STD_SOURCE_MARKERS = ("/library/core/src/", "/library/std/src/", "/library/alloc/src/", "\\library\\core\\src\\",
                       "\\library\\std\\src\\", "\\library\\alloc\\src\\")


def is_std_frame(frame: FrameRow) -> bool:
    """A frame of std, core or alloc: by its name, or by its source file for a bare name."""
    if frame.function and frame.function.startswith(RUNTIME_CRATES):
        return True
    return bool(frame.file) and any(m in frame.file for m in _STD_SOURCE_MARKERS)


def runtime_prefix(frames: list[FrameRow], os_modules: set[str] | None = None,
                   skip: tuple[str, ...] = SKIP_FUNCTIONS) -> int:
    """How many of the innermost frames belong to the panic or abort path: raise frames
    (the lists above), unsymbolized OS frames, and after a raise every std/core/alloc frame."""
    def os_frame(f: FrameRow) -> bool:
        return f.function is None and (f.module is None or os_modules is None or f.module.lower() in os_modules)

    raised = False
    for i, f in enumerate(frames):
        if is_runtime_frame(f.function, skip):
            raised = True
        elif not (os_frame(f) or is_std_frame(f)):
            end = i
            break
    else:
        end = len(frames)
    if raised:
        return end
    # No raise: the OS's unsymbolized frames (and raisers) are left out, and std code inlined
    # into the function that crashed (a write_volatile, an unchecked index): that function is
    # the crash site.  std code that crashed in a function of its own stays.
    return next((i for i, f in enumerate(frames)
                 if not (os_frame(f) or is_runtime_frame(f.function, skip) or (f.inline and is_std_frame(f)))),
                len(frames))


def frame_key(frame: FrameRow) -> str:
    module = windbg_module_name(frame.module) if frame.module else "?"
    if frame.function:
        return f"{module}!{frame.function}"
    return f"{module}+{frame.offset}" if frame.offset else frame.address


def signature(frames: list[FrameRow], os_modules: set[str], count: int = SIGNATURE_FRAMES,
              skip: tuple[str, ...] = SKIP_FUNCTIONS) -> list[str]:
    """The first ``count`` meaningful frames (``module!function`` or ``module+0xoff``), from the
    first frame past the panic or abort path; std/core/alloc frames below it are left out."""
    chosen = []
    previous = None
    for f in frames[runtime_prefix(frames, os_modules, skip):]:
        inner, previous = previous, f
        if is_runtime_frame(f.function, skip):
            continue
        if f.function == "main" and inner is not None and is_std_frame(inner):
            continue  # rustc's generated C `main`, which calls std::rt::lang_start (a C program's main is not)
        if f.function is None and (f.module is None or f.module.lower() in os_modules):
            continue
        if chosen and is_std_frame(f):
            continue  # std's plumbing between the user's frames (lang_start, iterator adaptors, call_once)
        chosen.append(frame_key(f))
        if len(chosen) >= count:
            break
    return chosen


__all__ = ["signature", "is_runtime_frame", "runtime_prefix", "is_std_frame", "SKIP_FUNCTIONS", "SKIP_EXACT", "SIGNATURE_FRAMES", "frame_key"]

"""Crash signatures: the exception code plus the first meaningful frames of the crashing stack.

A frame is *not* meaningful when it only carries the crash outward: Rust's panic
and abort runtime, the OS's exception raisers, allocator failure paths.  Those
are listed once, here, in :data:`SKIP_FUNCTIONS` (prefixes of demangled names)
and :data:`SKIP_EXACT`; extend them (or pass ``skip=``) for a project's own
crash reporters.  Frames of OS modules with no symbols are skipped too: they
name no function, so two unrelated crashes would otherwise share them.
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
    "rust_begin_unwind", "core::option::unwrap_failed", "core::option::expect_failed",
    "core::result::unwrap_failed", "core::slice::index::slice_", "core::panic::",
    "std::rt::", "std::backtrace_rs::", "std::sys::backtrace::",
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
})


def is_runtime_frame(function: str | None, skip: tuple[str, ...] = SKIP_FUNCTIONS) -> bool:
    if not function:
        return False
    return function in SKIP_EXACT or function.startswith(skip)


def frame_key(frame: FrameRow) -> str:
    module = windbg_module_name(frame.module) if frame.module else "?"
    if frame.function:
        return f"{module}!{frame.function}"
    return f"{module}+{frame.offset}" if frame.offset else frame.address


def signature(frames: list[FrameRow], os_modules: set[str], count: int = SIGNATURE_FRAMES,
              skip: tuple[str, ...] = SKIP_FUNCTIONS) -> list[str]:
    """The first ``count`` meaningful frames (``module!function`` or ``module+0xoff``)."""
    chosen = []
    for f in frames:
        if is_runtime_frame(f.function, skip):
            continue
        if f.function is None and (f.module is None or f.module.lower() in os_modules):
            continue
        chosen.append(frame_key(f))
        if len(chosen) >= count:
            break
    return chosen


__all__ = ["signature", "is_runtime_frame", "SKIP_FUNCTIONS", "SKIP_EXACT", "SIGNATURE_FRAMES", "frame_key"]

"""Names and details of exception codes: NTSTATUS values (Windows dumps) and
signal numbers (Breakpad/crashpad dumps of POSIX processes)."""

from __future__ import annotations

from symtool.formats.minidump import MACH_PLATFORMS

EXCEPTION_NAMES = {
    0x80000001: "guard page violation",
    0x80000002: "datatype misalignment",
    0x80000003: "breakpoint",
    0x80000004: "single step",
    0x4000001F: "breakpoint (WOW64)",
    0x40010005: "control-C",
    0x406D1388: "thread name (not a crash)",
    0xC0000005: "access violation",
    0xC0000006: "in-page I/O error",
    0xC0000008: "invalid handle",
    0xC000000D: "invalid parameter (CRT invalid parameter handler)",
    0xC0000017: "out of memory",
    0xC000001D: "illegal instruction",
    0xC0000025: "noncontinuable exception",
    0xC0000026: "invalid exception disposition",
    0xC000008C: "array bounds exceeded",
    0xC000008D: "floating-point denormal operand",
    0xC000008E: "floating-point divide by zero",
    0xC000008F: "floating-point inexact result",
    0xC0000090: "floating-point invalid operation",
    0xC0000091: "floating-point overflow",
    0xC0000092: "floating-point stack check",
    0xC0000093: "floating-point underflow",
    0xC0000094: "integer divide by zero",
    0xC0000095: "integer overflow",
    0xC0000096: "privileged instruction",
    0xC00000FD: "stack overflow",
    0xC0000135: "DLL not found",
    0xC0000139: "entry point not found",
    0xC0000142: "DLL initialization failed",
    0xC0000194: "possible deadlock",
    0xC0000374: "heap corruption",
    0xC0000409: "fail-fast (STATUS_STACK_BUFFER_OVERRUN)",
    0xC0000420: "assertion failure",
    0xC0000602: "fail-fast exception",
    0xC06D007E: "delay-load module not found",
    0xC06D007F: "delay-load procedure not found",
    0xE0434352: ".NET (CLR) exception",
    0xE06D7363: "C++ exception (MSVC throw; also a Rust panic unwinding with panic=unwind)",
}

# winnt.h FAST_FAIL_* codes: parameter 0 of a C0000409 raised by __fastfail.
FAST_FAIL = {
    0: "FAST_FAIL_LEGACY_GS_VIOLATION", 1: "FAST_FAIL_VTGUARD_CHECK_FAILURE",
    2: "FAST_FAIL_STACK_COOKIE_CHECK_FAILURE", 3: "FAST_FAIL_CORRUPT_LIST_ENTRY",
    4: "FAST_FAIL_INCORRECT_STACK", 5: "FAST_FAIL_INVALID_ARG", 6: "FAST_FAIL_GS_COOKIE_INIT",
    7: "FAST_FAIL_FATAL_APP_EXIT", 8: "FAST_FAIL_RANGE_CHECK_FAILURE",
    9: "FAST_FAIL_UNSAFE_REGISTRY_ACCESS", 10: "FAST_FAIL_GUARD_ICALL_CHECK_FAILURE",
    11: "FAST_FAIL_GUARD_WRITE_CHECK_FAILURE", 12: "FAST_FAIL_INVALID_FIBER_SWITCH",
    13: "FAST_FAIL_INVALID_SET_OF_CONTEXT", 14: "FAST_FAIL_INVALID_REFERENCE_COUNT",
    18: "FAST_FAIL_INVALID_JUMP_BUFFER", 19: "FAST_FAIL_MRDATA_MODIFIED",
    20: "FAST_FAIL_CERTIFICATION_FAILURE", 21: "FAST_FAIL_INVALID_EXCEPTION_CHAIN",
    22: "FAST_FAIL_CRYPTO_LIBRARY", 23: "FAST_FAIL_INVALID_CALL_IN_DLL_CALLOUT",
    24: "FAST_FAIL_INVALID_IMAGE_BASE", 25: "FAST_FAIL_DLOAD_PROTECTION_FAILURE",
    26: "FAST_FAIL_UNSAFE_EXTENSION_CALL", 27: "FAST_FAIL_DEPRECATED_SERVICE_INVOKED",
    28: "FAST_FAIL_INVALID_BUFFER_ACCESS", 29: "FAST_FAIL_INVALID_BALANCED_TREE",
    30: "FAST_FAIL_INVALID_NEXT_THREAD", 31: "FAST_FAIL_GUARD_ICALL_CHECK_SUPPRESSED",
    32: "FAST_FAIL_APCS_DISABLED", 33: "FAST_FAIL_INVALID_IDLE_STATE",
    34: "FAST_FAIL_MRDATA_PROTECTION_FAILURE", 35: "FAST_FAIL_UNEXPECTED_HEAP_EXCEPTION",
    36: "FAST_FAIL_INVALID_LOCK_STATE", 37: "FAST_FAIL_GUARD_JUMPTABLE",
    38: "FAST_FAIL_INVALID_LONGJUMP_TARGET", 39: "FAST_FAIL_INVALID_DISPATCH_CONTEXT",
    40: "FAST_FAIL_INVALID_THREAD", 41: "FAST_FAIL_INVALID_SYSCALL_NUMBER",
    42: "FAST_FAIL_INVALID_FILE_OPERATION", 43: "FAST_FAIL_LPAC_ACCESS_DENIED",
    44: "FAST_FAIL_GUARD_SS_FAILURE", 45: "FAST_FAIL_LOADER_CONTINUITY_FAILURE",
    46: "FAST_FAIL_GUARD_EXPORT_SUPPRESSION_FAILURE", 47: "FAST_FAIL_INVALID_CONTROL_STACK",
    48: "FAST_FAIL_SET_CONTEXT_DENIED", 49: "FAST_FAIL_INVALID_IAT",
    50: "FAST_FAIL_HEAP_METADATA_CORRUPTION", 0xFFFFFFFF: "FAST_FAIL_INVALID_FAST_FAIL_CODE",
}
FAST_FAIL_NOTES = {
    7: "abort(): what Rust's std::process::abort and panic = \"abort\" raise",
    2: "/GS stack cookie overwritten",
}

ACCESS_KINDS = {0: "read", 1: "write", 8: "execute (DEP)"}

# Breakpad/crashpad put the signal number into ExceptionCode for POSIX dumps.
SIGNALS = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
    8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
    14: "SIGALRM", 15: "SIGTERM", 31: "SIGSYS", 0xFFFFFFFF: "dump requested (no crash)",
}


# macOS and iOS dumps (Breakpad/crashpad) carry Mach exceptions, not signals: ExceptionCode is
# the exception type, ExceptionFlags its first code, ExceptionAddress the second (the address
# touched, for EXC_BAD_ACCESS).  Names from <mach/exception_types.h> and <mach/kern_return.h>.
MACH_EXCEPTIONS = {
    1: "EXC_BAD_ACCESS", 2: "EXC_BAD_INSTRUCTION", 3: "EXC_ARITHMETIC", 4: "EXC_EMULATION", 5: "EXC_SOFTWARE",
    6: "EXC_BREAKPOINT", 7: "EXC_SYSCALL", 8: "EXC_MACH_SYSCALL", 9: "EXC_RPC_ALERT", 10: "EXC_CRASH",
    11: "EXC_RESOURCE", 12: "EXC_GUARD", 13: "EXC_CORPSE_NOTIFY",
}
MACH_BAD_ACCESS_CODES = {
    1: "KERN_INVALID_ADDRESS", 2: "KERN_PROTECTION_FAILURE", 8: "KERN_NO_ACCESS", 9: "KERN_MEMORY_FAILURE",
    10: "KERN_MEMORY_ERROR", 13: "EXC_I386_GPFLT", 50: "KERN_CODESIGN_ERROR", 0x101: "EXC_ARM_DA_ALIGN",
    0x102: "EXC_ARM_DA_DEBUG", 0x103: "EXC_ARM_SP_ALIGN", 0x104: "EXC_ARM_SWP",
}
MACH_SOFTWARE_CODES = {0x10000: "EXC_UNIX_BAD_SYSCALL", 0x10001: "EXC_UNIX_BAD_PIPE", 0x10002: "EXC_UNIX_ABORT",
                       0x10003: "EXC_SOFT_SIGNAL"}


def describe_mach_exception(exception: int, code: int, subcode: int) -> tuple[str, str | None]:
    """(name, detail) of a Mach exception, its code and subcode."""
    name = MACH_EXCEPTIONS.get(exception, f"Mach exception {exception}")
    if exception == 1:
        what = MACH_BAD_ACCESS_CODES.get(code, f"code {code:#x}")
        return name, f"{what} at {subcode:#x}"
    if exception == 10:
        # crashpad's EXC_CRASH: the code packs the original exception (bits 20-23) and the
        # signal that ended the process (bits 24-31).
        signal, original = (code >> 24) & 0xFF, (code >> 20) & 0xF
        detail = SIGNALS.get(signal, f"signal {signal}")
        if original:
            detail += f" after {MACH_EXCEPTIONS.get(original, f'Mach exception {original}')}"
        return f"{name} / {SIGNALS.get(signal, f'signal {signal}')}", detail
    if exception == 5 and code in MACH_SOFTWARE_CODES:
        return name, MACH_SOFTWARE_CODES[code] + (f" ({SIGNALS.get(subcode, subcode)})" if code == 0x10003 else "")
    return name, f"code {code:#x}, subcode {subcode:#x}" if code or subcode else None


def describe_exception(code: int, params: list[int], platform: str = "windows", flags: int = 0,
                       address: int = 0) -> tuple[str, str | None]:
    """(name, detail) of an exception code and its parameters (on macOS: the Mach exception,
    ``flags`` its code and ``address`` its subcode)."""
    if platform in MACH_PLATFORMS:
        return describe_mach_exception(code, flags, address)
    if platform not in ("windows", "unknown"):
        return SIGNALS.get(code, f"signal {code}"), None
    name = EXCEPTION_NAMES.get(code)
    if name is None:
        severity = code >> 30
        name = {3: "error", 2: "warning", 1: "informational", 0: "success"}[severity] + " status"
        if code & 0x20000000:
            name = "application-defined exception"
    detail = None
    if code in (0xC0000005, 0xC0000006) and len(params) >= 2:
        kind = ACCESS_KINDS.get(params[0], f"access kind {params[0]}")
        prep = {0: "from", 1: "to"}.get(params[0], "at")
        detail = f"{kind} {prep} {params[1]:#010x}"
    elif code == 0xC0000409 and params:
        sub = params[0]
        detail = f"{FAST_FAIL.get(sub, 'unknown subcode')} ({sub})"
        if sub in FAST_FAIL_NOTES:
            detail += f": {FAST_FAIL_NOTES[sub]}"
    return name, detail


__all__ = ["describe_exception", "describe_mach_exception", "EXCEPTION_NAMES", "FAST_FAIL", "SIGNALS",
           "MACH_EXCEPTIONS"]

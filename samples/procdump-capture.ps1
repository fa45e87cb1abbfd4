<#
.SYNOPSIS
    Capture a minidump when a Rust program crashes, with the ProcDump filters a
    Rust program needs, named PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp.
.EXAMPLE
    .\procdump-capture.ps1 -Launch .\target\x86_64-pc-windows-msvc\release\crash-me.exe
.EXAMPLE
    .\procdump-capture.ps1 -Wait crash-me.exe -DumpDir D:\dumps
.NOTES
    -e 1          dump on first-chance exceptions too (the filters below decide which)
    -f C0000005   ...only access violations (null/dangling pointer, stack probe hits)
    -fx 406D1388  never the thread-naming exception (MS_VC_EXCEPTION, raised by
                  SetThreadDescription fallbacks; harmless, frequent)
    -fx E06D7363  never C++ EH exceptions: panic=unwind on MSVC unwinds with them,
                  so every caught panic would dump
    -mt           triage dump: small and shareable (no full memory)
    A panic with panic=abort ends in __fastfail (C0000409): ProcDump's -e
    records that unhandled termination as well.
    -Launch starts the program under ProcDump (-x), which only takes a dump
    folder and names files itself; -Wait NAME (-w) gets the
    PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp name.
    Open the dump with windbg.ps1 / cdb.ps1 in this folder.
#>
param(
    [string] $Launch,          # start this program under ProcDump
    [string[]] $Arguments = @(),
    [string] $Wait,            # or wait for a process of this name (-w)
    [string] $DumpDir = (Join-Path (Get-Location).Path 'dumps'),
    [string] $ProcDump = 'procdump.exe'
)
$ErrorActionPreference = 'Stop'
if (-not $Launch -and -not $Wait) { Write-Error 'give -Launch PROGRAM or -Wait NAME'; exit 2 }
New-Item -ItemType Directory -Force -Path $DumpDir | Out-Null
# ProcDump substitutes PROCESSNAME, EXCEPTIONCODE, YYMMDD and HHMMSS in the dump file name.
$target = Join-Path $DumpDir 'PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp'
$filters = @('-accepteula', '-e', '1', '-f', 'C0000005', '-fx', '406D1388', '-fx', 'E06D7363', '-mt')
if ($Launch) {
    & $ProcDump @filters -x $DumpDir (Resolve-Path -LiteralPath $Launch).Path @Arguments
} else {
    & $ProcDump @filters -w $Wait $target
}
exit $LASTEXITCODE

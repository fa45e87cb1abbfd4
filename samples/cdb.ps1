<#
.SYNOPSIS
    Print a crash report from a minidump with cdb (console debugger), using the
    paths symtool computes for a cargo workspace.
.EXAMPLE
    .\cdb.ps1 .\crash-me.exe_C0000005_260412_101500.dmp
.EXAMPLE
    .\cdb.ps1 .\app.dmp -Interactive      # stay in cdb after the report
.NOTES
    symtool.windbg (written by `symtool env --write`) sets .sympath, .srcpath
    and .exepath, loads the toolchain's natvis files, then runs .reload /f,
    .ecxr and kb. It is run with $$< (one command per line), never $><.
#>
param(
    [Parameter(Mandatory = $true, Position = 0)] [string] $Dump,
    [string] $Workspace = (Get-Location).Path,
    [string] $Cdb = 'cdb.exe',
    [string] $OutDir = (Join-Path $env:LOCALAPPDATA 'symtool\env'),
    [switch] $Interactive
)
$ErrorActionPreference = 'Stop'
$Dump = (Resolve-Path -LiteralPath $Dump).Path

symtool env $Workspace --write $OutDir | Out-Null
if ($LASTEXITCODE -ne 0) { exit 2 }

foreach ($pair in @(@('_NT_SYMBOL_PATH', 'symbols.path'), @('_NT_SOURCE_PATH', 'sources.path'),
                    @('_NT_EXECUTABLE_IMAGE_PATH', 'images.path'))) {
    $value = (Get-Content -LiteralPath (Join-Path $OutDir $pair[1]) -Encoding UTF8 -Raw).TrimEnd("`r", "`n")
    Set-Item -Path ("env:" + $pair[0]) -Value $value
}

$script = Join-Path $OutDir 'symtool.windbg'
if ($Interactive) {
    & $Cdb -z $Dump -c ('$$<' + $script)
} else {
    # -cf runs the script file at start-up (a line at a time, like $$<); then quit.
    & $Cdb -z $Dump -cf $script -c 'q'
}
exit $LASTEXITCODE

<#
.SYNOPSIS
    Open a minidump in WinDbg with the paths symtool computes for a cargo workspace.
.EXAMPLE
    .\windbg.ps1 C:\dumps\crash-me.exe_C0000005_260412_101500.dmp -Workspace C:\src\app
.NOTES
    `symtool env --write` writes symbols.path, sources.path, images.path and
    symtool.windbg; the paths become _NT_SYMBOL_PATH, _NT_SOURCE_PATH and
    _NT_EXECUTABLE_IMAGE_PATH for the debugger process, and WinDbg runs
    symtool.windbg with $$< (one command per line). Use -WinDbg WinDbgX for
    WinDbg Preview.
#>
param(
    [Parameter(Mandatory = $true, Position = 0)] [string] $Dump,
    [string] $Workspace = (Get-Location).Path,
    [string] $WinDbg = 'windbg.exe',
    [string] $OutDir = (Join-Path $env:LOCALAPPDATA 'symtool\env')
)
$ErrorActionPreference = 'Stop'
$Dump = (Resolve-Path -LiteralPath $Dump).Path

symtool env $Workspace --write $OutDir | Out-Null
if ($LASTEXITCODE -ne 0) { exit 2 }

# -Raw keeps the line whole; the files are UTF-8 (one line each).
$env:_NT_SYMBOL_PATH = (Get-Content -LiteralPath (Join-Path $OutDir 'symbols.path') -Encoding UTF8 -Raw).TrimEnd("`r", "`n")
$env:_NT_SOURCE_PATH = (Get-Content -LiteralPath (Join-Path $OutDir 'sources.path') -Encoding UTF8 -Raw).TrimEnd("`r", "`n")
$env:_NT_EXECUTABLE_IMAGE_PATH = (Get-Content -LiteralPath (Join-Path $OutDir 'images.path') -Encoding UTF8 -Raw).TrimEnd("`r", "`n")

$script = Join-Path $OutDir 'symtool.windbg'
# '$$<' in single quotes: PowerShell must not expand it.
& $WinDbg -z $Dump -c ('$$<' + $script)

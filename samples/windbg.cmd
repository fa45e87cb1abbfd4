@echo off
rem Open a minidump in WinDbg with the paths symtool computes for a cargo workspace.
rem
rem   windbg.cmd DUMP [WORKSPACE]
rem
rem WORKSPACE defaults to the current directory.  `symtool env --write` puts
rem symbols.path, sources.path, images.path and symtool.windbg into a scratch
rem directory; the three paths become _NT_SYMBOL_PATH, _NT_SOURCE_PATH and
rem _NT_EXECUTABLE_IMAGE_PATH, and WinDbg runs symtool.windbg with $$< (one
rem command per line: .sympath, .srcpath, .exepath, .nvload, .reload /f, .ecxr, kb).
rem Set WINDBG to use another debugger binary (e.g. WinDbgX for WinDbg Preview).
setlocal DisableDelayedExpansion
if "%~1"=="" (
    echo usage: %~nx0 DUMP [WORKSPACE] 1>&2
    exit /b 2
)
if not exist "%~1" (
    echo %~nx0: %~1: no such file 1>&2
    exit /b 2
)
set "DUMP=%~f1"
set "WS=%~2"
if not defined WS set "WS=%CD%"
if not defined WINDBG set "WINDBG=windbg.exe"
set "OUT=%LOCALAPPDATA%\symtool\env"

rem Not `|| exit /b 2`: some cmd implementations (Wine's before 9.0) run the right
rem side of || whatever the exit code; errorlevel works in every one.
symtool env "%WS%" --write "%OUT%" >nul
if errorlevel 1 exit /b 2

rem for /f reads lines of any length (set /p stops near 1 KB); %%l is not re-expanded.
for /f "usebackq delims=" %%l in ("%OUT%\symbols.path") do set "_NT_SYMBOL_PATH=%%l"
for /f "usebackq delims=" %%l in ("%OUT%\sources.path") do set "_NT_SOURCE_PATH=%%l"
for /f "usebackq delims=" %%l in ("%OUT%\images.path") do set "_NT_EXECUTABLE_IMAGE_PATH=%%l"

rem $$< takes the rest of the line as the script's file name, spaces included.
"%WINDBG%" -z "%DUMP%" -c "$$<%OUT%\symtool.windbg"

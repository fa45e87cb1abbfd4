@echo off
rem Capture a minidump when a Rust program crashes (see procdump-capture.ps1 for
rem what each filter is for). Dumps are named PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp.
rem
rem   procdump-capture.cmd PROCESS_NAME_OR_PID [DUMP_DIR]
setlocal DisableDelayedExpansion
if "%~1"=="" (
    echo usage: %~nx0 PROCESS_NAME_OR_PID [DUMP_DIR] 1>&2
    exit /b 2
)
set "DUMPDIR=%~2"
if not defined DUMPDIR set "DUMPDIR=%CD%\dumps"
if not exist "%DUMPDIR%\" mkdir "%DUMPDIR%"
rem Checked, not trusted: a directory that cannot be made (a \\?\ name some cmd versions refuse,
rem a share without write access) would lose the dump when the crash comes, not now.
if not exist "%DUMPDIR%\" goto nodir
if not defined PROCDUMP set "PROCDUMP=procdump.exe"
"%PROCDUMP%" -accepteula -e 1 -f C0000005 -fx 406D1388 -fx E06D7363 -mt -w "%~1" "%DUMPDIR%\PROCESSNAME_EXCEPTIONCODE_YYMMDD_HHMMSS.dmp"
exit /b %errorlevel%

:nodir
rem Outside a ( ) block: a ")" in the path (Program Files (x86)) would end the block early.
echo %~nx0: %DUMPDIR%: cannot create the dump directory 1>&2
exit /b 2

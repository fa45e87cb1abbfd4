/* Minimal MSVC-style CRT startup for Rust std programs (x86_64-pc-windows-msvc): what
   msvcrt.lib adds for a real MSVC link, enough for std to start under Wine. */
#pragma comment(lib, "vcruntime140.lib")
#pragma comment(lib, "ucrtbase.lib")
typedef void (*PVFV)(void);
typedef int (*PIFV)(void);
typedef void (__stdcall *PTLSCB)(void *, unsigned long, void *);
/* C (.CRT$XI*) and C++/Rust (.CRT$XC*: std's compat_fn init) initializer tables */
__attribute__((section(".CRT$XIA"), used)) PIFV __xi_a[] = {0};
__attribute__((section(".CRT$XIZ"), used)) PIFV __xi_z[] = {0};
__attribute__((section(".CRT$XCA"), used)) PVFV __xc_a[] = {0};
__attribute__((section(".CRT$XCZ"), used)) PVFV __xc_z[] = {0};
/* TLS support (MSVC's tlssup.obj): Rust #[thread_local] data lives in .tls$,
   std's TLS-destructor callback in .CRT$XLB */
unsigned int _tls_index = 0;
__attribute__((section(".tls"), used)) char _tls_start = 0;
__attribute__((section(".tls$ZZZ"), used)) char _tls_end = 0;
__attribute__((section(".CRT$XLA"), used)) PTLSCB __xl_a = 0;
__attribute__((section(".CRT$XLZ"), used)) PTLSCB __xl_z = 0;
typedef struct { void *Start, *End, *Index, *Callbacks; unsigned int ZeroFill, Characteristics; } TLS_DIR64;
__attribute__((section(".rdata$T"), used))
const TLS_DIR64 _tls_used = { &_tls_start, &_tls_end, &_tls_index, (&__xl_a) + 1, 0, 0 };
int _fltused = 0x9875;
unsigned long long __security_cookie = 0x00002B992DDFA232ULL;
void __security_check_cookie(unsigned long long c) { if (c != __security_cookie) __builtin_trap(); }
void __security_init_cookie(void) {}
__declspec(dllimport) void __cdecl _set_app_type(int);
__declspec(dllimport) int __cdecl _configure_narrow_argv(int);
__declspec(dllimport) int __cdecl _initialize_narrow_environment(void);
__declspec(dllimport) int *__cdecl __p___argc(void);
__declspec(dllimport) char ***__cdecl __p___argv(void);
__declspec(dllimport) void __cdecl exit(int);
int main(int, char **);
int mainCRTStartup(void) {
  _set_app_type(1);                 /* console app */
  _configure_narrow_argv(1);
  _initialize_narrow_environment();
  for (PIFV *p = __xi_a; p < __xi_z; ++p) if (*p && (*p)()) exit(255);
  for (PVFV *p = __xc_a; p < __xc_z; ++p) if (*p) (*p)();
  exit(main(*__p___argc(), *__p___argv()));
  return 0;
}
/* type_info's vtable: MSVC's static vcruntime part defines it, and panic_unwind's type
   descriptors (the panic = "unwind" runtime's C++ exception object) refer to it directly.
   Catch matching compares the descriptors' names, never this table's entries. */
const void *const symtool_type_info_vftable[2] __asm__("??_7type_info@@6B@") = {0, 0};

/* Crash programs for the aarch64 Linux stack tests (tests/test_linux_arm64_stack.py): each mode
 * (argv[1]) crashes with a different stack shape.  Built by clang and gcc at several settings,
 * run under qemu-aarch64, and read back by gdb-multiarch (the oracle) and symtool.
 * Every call's result is used after it, so no call is a tail call and every caller stays on the
 * stack. */
#include <pthread.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* GCC's interprocedural register allocation would let a caller keep values in registers it knows
 * its callee leaves alone: noipa makes every call a real one, with only x19..x28, d8..d15 kept. */
#if defined(__GNUC__) && !defined(__clang__)
#define NOINLINE __attribute__((noinline, noipa))
#else
#define NOINLINE __attribute__((noinline))
#endif
#define INLINE static inline __attribute__((always_inline))

typedef int (*op_fn)(int *, int);

volatile uintptr_t null_address = 0;
volatile uintptr_t bad_address = 0x10;
volatile int sink;

/* A leaf: no frame record, nothing saved; its return address stays in LR. */
NOINLINE int leaf_load(int *p) { return *p + 1; }

/* Deep recursion: one frame per level. */
NOINLINE int recurse(int *p, int n) {
    if (n == 0)
        return leaf_load(p);
    return recurse(p, n - 1) + n;
}

/* A 64 KiB frame: the prologue allocates it in more than one step. */
NOINLINE int large_frame(int *p, int n) {
    volatile char buf[65536];
    buf[n] = (char)n;
    buf[sizeof buf - 1 - n] = 2;
    return leaf_load(p) + buf[n] + buf[sizeof buf - 1 - n];
}

/* Ten integer and eight floating-point values live across a call: x19..x28 and d8..d15 are saved. */
NOINLINE long many_saves(int *p, long x, double a) {
    long v0 = x * 3, v1 = x ^ 5, v2 = x + 7, v3 = x * 11, v4 = x - 13;
    long v5 = x * 17, v6 = x + 19, v7 = x * 23, v8 = x ^ 29, v9 = x + 31;
    double f0 = a * 1.5, f1 = a + 2.5, f2 = a * 3.5, f3 = a - 4.5;
    double f4 = a * 5.5, f5 = a + 6.5, f6 = a * 7.5, f7 = a - 8.5;
    sink = (int)(v0 + v9);
    long r = leaf_load(p);
    /* XOR with the result keeps each value needed on its own after the call (no algebra folds them). */
    return (v0 ^ r) + (v1 ^ (r + 1)) + (v2 ^ (r + 2)) + (v3 ^ (r + 3)) + (v4 ^ (r + 4)) + (v5 ^ (r + 5)) +
           (v6 ^ (r + 6)) + (v7 ^ (r + 7)) + (v8 ^ (r + 8)) + (v9 ^ (r + 9)) +
           (long)(f0 * r + f1 * (r + 1) + f2 * (r + 2) + f3 * (r + 3) + f4 * (r + 4) + f5 * (r + 5) +
                  f6 * (r + 6) + f7 * (r + 7));
}

/* The fault is inside two inlined functions. */
INLINE int inlined_inner(int *p, int v) { return *p + v; }
INLINE int inlined_outer(int *p, int v) { return inlined_inner(p, v * 2) + 1; }
NOINLINE int with_inlines(int *p, int v) { return inlined_outer(p, v) + sink; }

/* Calls through function pointers (BLR). */
NOINLINE int op_load(int *p, int v) { return leaf_load(p) + v; }
op_fn volatile operations[] = {op_load};
NOINLINE int apply(op_fn f, int *p, int v) { return f(p, v) * 2 + sink; }

/* A call to an address where no code is: the fault is at the bad PC, LR is the way back. */
NOINLINE int call_bad(int v) {
    op_fn f = (op_fn)bad_address;
    return f(0, v) + sink;
}

/* abort(): the signal is raised inside the C library, whose frames are walked with its own CFI. */
NOINLINE int aborts(int v) {
    if (v > 0)
        abort();
    return v + sink;
}

/* A second thread crashes while the first waits for it in pthread_join, inside the C library. */
NOINLINE void *crashing_thread(void *arg) {
    /* Time for the first thread to be waiting inside pthread_join: caught in its PLT stub (under
       load, when the crash came first) its frame 0 has no symbol, and gdb's oracle says "??". */
    usleep(300000);
    sink = leaf_load((int *)null_address) + (int)(uintptr_t)arg;
    return 0;
}

NOINLINE int in_a_thread(int v) {
    pthread_t thread;
    pthread_create(&thread, 0, crashing_thread, (void *)(uintptr_t)v);
    pthread_join(thread, 0);
    return sink;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "leaf";
    int *p = (int *)null_address;
    int r = 0;
    if (!strcmp(mode, "leaf"))
        r = leaf_load(p);
    else if (!strcmp(mode, "recurse"))
        r = recurse(p, 40);
    else if (!strcmp(mode, "large"))
        r = large_frame(p, 5);
    else if (!strcmp(mode, "saves"))
        r = (int)many_saves(p, argc + 100, argc * 0.25);
    else if (!strcmp(mode, "inline"))
        r = with_inlines(p, argc);
    else if (!strcmp(mode, "fnptr"))
        r = apply(operations[0], p, argc);
    else if (!strcmp(mode, "badpc"))
        r = call_bad(argc);
    else if (!strcmp(mode, "abort"))
        r = aborts(argc);
    else if (!strcmp(mode, "thread"))
        r = in_a_thread(argc);
    return r + sink;
}

/* Freestanding Windows ARM64 test program (no CRT): each scenario crashes in its own way.
   Built by tests/arm64_pe_builds.py and run to its fault in unicorn (tests/emulate/). */
typedef unsigned long long u64;
typedef void (*callback)(int);

volatile int sink;
int *volatile null_pointer;  /* zero: stores through it fault */
volatile u64 bad_address = 0x12345678;
volatile int quiet;  /* set: leaf_crash does not crash, every scenario returns */

__attribute__((noinline)) void leaf_crash(int v) {
    if (!quiet)
        *null_pointer = v;
}

__attribute__((noinline)) void recurse(int n) {
    if (n == 0)
        leaf_crash(n);
    else
        recurse(n - 1);
    sink = n;
}

__attribute__((noinline)) int big_frame(int n) {
    volatile char buffer[40000];
    buffer[n] = (char)n;
    leaf_crash(n);
    return buffer[n + 1];
}

__attribute__((noinline)) u64 opaque(u64 x) { __asm__ volatile("" : "+r"(x)); return x; }

__attribute__((noinline)) u64 many_registers(u64 a) {
    u64 r1 = opaque(a + 1), r2 = opaque(a + 2), r3 = opaque(a + 3), r4 = opaque(a + 4), r5 = opaque(a + 5);
    u64 r6 = opaque(a + 6), r7 = opaque(a + 7), r8 = opaque(a + 8), r9 = opaque(a + 9), r10 = opaque(a + 10);
    leaf_crash((int)a);
    return r1 * r2 + r3 * r4 + r5 * r6 + r7 * r8 + r9 * r10 + r1 + r3 + r5 + r7 + r9 + r2 * r4 * r6 * r8 * r10;
}

__attribute__((noinline)) double fopaque(double x) { __asm__ volatile("" : "+w"(x)); return x; }

__attribute__((noinline)) double float_registers(double a) {
    double f1 = fopaque(a + 1), f2 = fopaque(a + 2), f3 = fopaque(a + 3), f4 = fopaque(a + 4);
    double f5 = fopaque(a + 5), f6 = fopaque(a + 6), f7 = fopaque(a + 7), f8 = fopaque(a + 8);
    leaf_crash((int)a);
    return f1 * f2 + f3 * f4 + f5 * f6 + f7 * f8 + f1 + f3 + f5 + f7 + f2 * f4 * f6 * f8;
}

static inline __attribute__((always_inline)) void inlined_inner(int v) {
    if (v > 3)
        leaf_crash(v);
    sink = v;
}
static inline __attribute__((always_inline)) void inlined_outer(int v) {
    inlined_inner(v + 1);
    sink = v * 2;
}
__attribute__((noinline)) void has_inlined_calls(int v) {
    inlined_outer(v);
    sink = v;
}

__attribute__((noinline)) void pointer_target(int v) {
    has_inlined_calls(v);
    sink = v;
}
callback callbacks[2] = {pointer_target, leaf_crash};
__attribute__((noinline)) void call_through_pointer(int which, int v) {
    callbacks[which](v);
    sink = v;
}

__attribute__((noinline)) void jump_to_bad_pc(int v) {
    ((callback)bad_address)(v);
    sink = v;
}

__attribute__((noinline)) int variadic(int count, ...) {
    __builtin_va_list args;
    __builtin_va_start(args, count);
    int total = 0;
    for (int i = 0; i < count; i++)
        total += __builtin_va_arg(args, int);
    __builtin_va_end(args);
    leaf_crash(total);
    return total;
}

__attribute__((noinline)) int dynamic_frame(int n) {
    volatile char *p = __builtin_alloca(n);
    p[0] = 1;
    leaf_crash(n);
    return p[0];
}

/* chained.c (frame pointers, pac-ret) and codes.s (every unwind code) */
void chained_entry(int depth);
void every_int_code(callback next, int v);
void every_fp_code(callback next, int v);
void chain_parent(callback next, int v);

/* The entry point: scenario 0..13 crashes; 100 + n runs scenario n to its end (the tests stop it
   at chosen instructions instead: inside prologues and epilogues). */
int start(int scenario) {
    if (scenario >= 100) {
        quiet = 1;
        scenario -= 100;
    }
    switch (scenario) {
    case 0: recurse(12); break;
    case 1: big_frame(7); break;
    case 2: many_registers(3); break;
    case 3: float_registers(3.0); break;
    case 4: call_through_pointer(0, 5); break;
    case 5: jump_to_bad_pc(1); break;
    case 6: leaf_crash(6); break;
    case 7: variadic(3, 1, 2, 3); break;
    case 8: dynamic_frame(100); break;
    case 9: chained_entry(5); break;
    case 10: every_int_code(leaf_crash, 10); break;
    case 11: every_fp_code(leaf_crash, 11); break;
    case 12: chain_parent(leaf_crash, 12); break;
    case 13: big_frame(13); break;  /* run on a stack smaller than its frame: __chkstk's probe faults */
    }
    return 0;
}
